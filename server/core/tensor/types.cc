#include "server/core/tensor/types.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace varscope::core {

absl::StatusOr<DType> DTypeFromNumber(int number) {
  switch (number) {
    case 0:
    case 1:
    case 2:
    case 3:
    case 4:
    case 5:
    case 6:
    case 9:
    case 10:
    case 14:
    case 19:
      return static_cast<DType>(number);
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "unsupported dtype ", number,
          "; supported: DT_HALF, DT_BFLOAT16, DT_FLOAT, DT_DOUBLE, DT_INT8, "
          "DT_INT16, DT_INT32, DT_INT64, DT_UINT8, DT_BOOL"));
  }
}

int DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kInvalid:
      return 0;
    case DType::kBool:
    case DType::kInt8:
    case DType::kUInt8:
      return 1;
    case DType::kInt16:
    case DType::kHalf:
    case DType::kBFloat16:
      return 2;
    case DType::kFloat:
    case DType::kInt32:
      return 4;
    case DType::kDouble:
    case DType::kInt64:
      return 8;
  }
  return 0;
}

absl::string_view DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kInvalid:
      return "invalid";
    case DType::kFloat:
      return "float32";
    case DType::kDouble:
      return "float64";
    case DType::kInt32:
      return "int32";
    case DType::kUInt8:
      return "uint8";
    case DType::kInt16:
      return "int16";
    case DType::kInt8:
      return "int8";
    case DType::kInt64:
      return "int64";
    case DType::kBool:
      return "bool";
    case DType::kBFloat16:
      return "bfloat16";
    case DType::kHalf:
      return "float16";
  }
  return "invalid";
}

bool IsFloating(DType dtype) {
  return dtype == DType::kFloat || dtype == DType::kDouble ||
         dtype == DType::kHalf || dtype == DType::kBFloat16;
}

bool ShapeSpec::IsFullyDefined() const {
  if (!known) return false;
  for (int64_t d : dims) {
    if (d < 0) return false;
  }
  return true;
}

std::string ShapeToString(const Shape& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

std::string ShapeSpecToString(const ShapeSpec& spec) {
  return spec.known ? ShapeToString(spec.dims) : "<unknown>";
}

absl::Status ValidateShapeSpec(const ShapeSpec& spec, absl::string_view what) {
  if (!spec.known) return absl::OkStatus();
  if (spec.dims.size() > static_cast<size_t>(kMaxRank)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " has rank ", spec.dims.size(),
                     "; the largest supported rank is ", kMaxRank));
  }
  for (size_t i = 0; i < spec.dims.size(); ++i) {
    if (spec.dims[i] < -1) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, " ", ShapeToString(spec.dims), " has dimension ", i, " = ",
          spec.dims[i], "; dimensions are >= 0, or -1 for unknown"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> NumElements(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "shape ", ShapeToString(shape), " is not fully defined"));
    }
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d) {
      return absl::InvalidArgumentError(
          absl::StrCat("shape ", ShapeToString(shape),
                       " has more elements than fit in 64 bits"));
    }
    n *= d;
  }
  return n;
}

absl::StatusOr<int64_t> NumBytes(DType dtype, const Shape& shape) {
  absl::StatusOr<int64_t> n = NumElements(shape);
  if (!n.ok()) return n.status();
  const int64_t size = DTypeSize(dtype);
  if (size == 0) {
    return absl::InvalidArgumentError("dtype is not given");
  }
  if (*n > std::numeric_limits<int64_t>::max() / size) {
    return absl::InvalidArgumentError(
        absl::StrCat("shape ", ShapeToString(shape), " of ", DTypeName(dtype),
                     " has more bytes than fit in 64 bits"));
  }
  return *n * size;
}

bool IsCompatible(const ShapeSpec& spec, const Shape& shape) {
  if (!spec.known) return true;
  if (spec.dims.size() != shape.size()) return false;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (spec.dims[i] >= 0 && spec.dims[i] != shape[i]) return false;
  }
  return true;
}

absl::string_view ReuseName(Reuse reuse) {
  switch (reuse) {
    case Reuse::kInherit:
      return "INHERIT";
    case Reuse::kReuse:
      return "REUSE";
    case Reuse::kAutoReuse:
      return "AUTO_REUSE";
  }
  return "INHERIT";
}

}  // namespace varscope::core
