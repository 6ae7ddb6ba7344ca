// Linked into every test binary: Abseil's deadlock detector in abort mode,
// whatever the library's build default, so a lock-order cycle anywhere in a
// test is a crash ("Potential Mutex deadlock"), never a silent hang. The
// death test proves it is on in this binary.
#include <gtest/gtest.h>

#include "absl/synchronization/mutex.h"

namespace {

const bool kDeadlockDetectionOn = [] {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kAbort);
  return true;
}();

void LockInBothOrders() {
  absl::Mutex a;
  absl::Mutex b;
  {
    absl::MutexLock la(&a);
    absl::MutexLock lb(&b);
  }
  absl::MutexLock lb(&b);
  absl::MutexLock la(&a);  // b then a: a cycle with a then b
}

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define VARSCOPE_UNDER_TSAN 1
#endif
#endif

TEST(DeadlockDetection, AbortsOnALockOrderCycle) {
  ASSERT_TRUE(kDeadlockDetectionOn);
  GTEST_FLAG_SET(death_test_style, "threadsafe");
#ifdef VARSCOPE_UNDER_TSAN
  // Under TSan (whose shim shows it every absl::Mutex) TSan's own
  // lock-order check sees the cycle first and ends the process.
  EXPECT_DEATH(LockInBothOrders(), "Potential Mutex deadlock|lock-order-inversion");
#else
  EXPECT_DEATH(LockInBothOrders(), "Potential Mutex deadlock");
#endif
}

}  // namespace
