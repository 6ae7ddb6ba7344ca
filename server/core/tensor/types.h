// File: types.h
// The core's own vocabulary: element types, shapes and reuse modes. The core
// never sees generated protobuf classes; service/proto_convert translates.
//
// Thread-safety: plain values and pure functions.
#ifndef VARSCOPE_SERVER_CORE_TENSOR_TYPES_H_
#define VARSCOPE_SERVER_CORE_TENSOR_TYPES_H_

#include <cstdint>
#include <optional>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace varscope::core {

// Element types; the numbers are TensorFlow's types.proto numbers.
enum class DType : int {
  kInvalid = 0,  // "not given"
  kFloat = 1,
  kDouble = 2,
  kInt32 = 3,
  kUInt8 = 4,
  kInt16 = 5,
  kInt8 = 6,
  kInt64 = 9,
  kBool = 10,
  kBFloat16 = 14,
  kHalf = 19,
};

// Returns the dtype for a wire number, or INVALID_ARGUMENT for numbers that
// are not a supported dtype (strings, complex, unknown values). 0 gives
// kInvalid ("not given").
absl::StatusOr<DType> DTypeFromNumber(int number);
// Bytes per element (bool: 1); 0 for kInvalid.
int DTypeSize(DType dtype);
// TensorFlow's name: "float32", "int64", "bfloat16", ...
absl::string_view DTypeName(DType dtype);
bool IsFloating(DType dtype);

// Largest rank a variable or request may have.
inline constexpr int kMaxRank = 32;

// A fully defined shape (every dim >= 0). Empty = scalar.
using Shape = std::vector<int64_t>;

// A requested shape: unknown altogether, or of known rank with -1 for an
// unknown dimension (TensorFlow's TensorShape with None dims).
struct ShapeSpec {
  bool known = false;
  std::vector<int64_t> dims;

  static ShapeSpec Unknown() { return {}; }
  static ShapeSpec Of(std::vector<int64_t> dims) { return {true, std::move(dims)}; }
  bool IsFullyDefined() const;
};

// "[784, 256]", "[]" for a scalar, "<unknown>" / "[-1, 3]" for specs.
std::string ShapeToString(const Shape& shape);
std::string ShapeSpecToString(const ShapeSpec& spec);
// Rank <= kMaxRank and every dim >= -1; names `what` in the error.
absl::Status ValidateShapeSpec(const ShapeSpec& spec, absl::string_view what);
// Number of elements, or INVALID_ARGUMENT when the product overflows int64.
absl::StatusOr<int64_t> NumElements(const Shape& shape);
// Bytes of a tensor of this dtype and shape, overflow-checked.
absl::StatusOr<int64_t> NumBytes(DType dtype, const Shape& shape);
// TensorShape.is_compatible_with: unknown matches anything; otherwise the
// same rank and equal dims wherever the spec gives one.
bool IsCompatible(const ShapeSpec& spec, const Shape& shape);

// The reuse flag of a variable scope. kInherit, as an effective flag, means
// "not reusing" (TensorFlow's False/None).
enum class Reuse { kInherit = 0, kReuse = 1, kAutoReuse = 2 };
absl::string_view ReuseName(Reuse reuse);
// TensorFlow's `requested or parent`: REUSE and AUTO_REUSE are truthy.
inline Reuse ResolveReuse(Reuse requested, Reuse inherited) {
  return requested != Reuse::kInherit ? requested : inherited;
}

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_TENSOR_TYPES_H_
