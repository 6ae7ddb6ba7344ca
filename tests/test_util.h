// Test helpers for absl::Status (Debian's Abseil has no status matchers).
#ifndef VARSCOPE_TESTS_TEST_UTIL_H_
#define VARSCOPE_TESTS_TEST_UTIL_H_

#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace varscope::testing {
// `bytes` bytes at `data`, as the client's pull and push take them.
inline absl::Span<const uint8_t> AsBytes(const void* data, size_t bytes) {
  return {static_cast<const uint8_t*>(data), bytes};
}
inline absl::Span<uint8_t> AsWritableBytes(void* data, size_t bytes) {
  return {static_cast<uint8_t*>(data), bytes};
}
inline const absl::Status& ToStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& ToStatus(const absl::StatusOr<T>& s) {
  return s.status();
}
}  // namespace varscope::testing

#define EXPECT_OK(expr) EXPECT_TRUE(::varscope::testing::ToStatus(expr).ok()) \
    << ::varscope::testing::ToStatus(expr)
#define ASSERT_OK(expr) ASSERT_TRUE(::varscope::testing::ToStatus(expr).ok()) \
    << ::varscope::testing::ToStatus(expr)
#define EXPECT_CODE(expr, code_) \
  EXPECT_EQ(::varscope::testing::ToStatus(expr).code(), absl::StatusCode::code_) \
      << ::varscope::testing::ToStatus(expr)

#define VARSCOPE_TEST_CONCAT_(a, b) a##b
#define VARSCOPE_TEST_CONCAT(a, b) VARSCOPE_TEST_CONCAT_(a, b)
#define ASSERT_OK_AND_ASSIGN(lhs, expr)                                    \
  auto VARSCOPE_TEST_CONCAT(_or_, __LINE__) = (expr);                      \
  ASSERT_TRUE(VARSCOPE_TEST_CONCAT(_or_, __LINE__).ok())                   \
      << VARSCOPE_TEST_CONCAT(_or_, __LINE__).status();                    \
  lhs = std::move(VARSCOPE_TEST_CONCAT(_or_, __LINE__)).value()

#endif  // VARSCOPE_TESTS_TEST_UTIL_H_
