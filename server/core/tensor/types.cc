#include "server/core/tensor/types.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/core/base/error_info.h"

namespace varscope::core {

namespace {

// TensorFlow's names of the types.proto values varscope does not store.
absl::string_view UnstoredDTypeName(int number) {
  switch (number) {
    case 7: return "string";
    case 8: return "complex64";
    case 11: return "qint8";
    case 12: return "quint8";
    case 13: return "qint32";
    case 15: return "qint16";
    case 16: return "quint16";
    case 17: return "uint16";
    case 18: return "complex128";
    case 20: return "resource";
    case 21: return "variant";
    case 22: return "uint32";
    case 23: return "uint64";
  }
  return "";
}

constexpr char kStored[] =
    "varscope stores float16, bfloat16, float32, float64, int8, int16, int32, "
    "int64, uint8 and bool";

}  // namespace

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
      break;
  }
  // Reference types (TensorFlow's DT_*_REF = 100 + the base type).
  const bool ref = number > 100 && number < 200;
  absl::string_view name;
  if (ref) {
    name = UnstoredDTypeName(number - 100);
    if (name.empty() && DTypeFromNumber(number - 100).ok() && number != 100) {
      name = DTypeName(static_cast<DType>(number - 100));
    }
  } else {
    name = UnstoredDTypeName(number);
  }
  const std::string shown =
      name.empty() ? absl::StrCat("number ", number)
                   : absl::StrCat(name, ref ? "_ref" : "");
  return WithReason(
      absl::InvalidArgumentError(absl::StrCat(
          name.empty() ? "unknown dtype " : "dtype ", shown,
          " is not supported; ", kStored)),
      kUnsupportedDType, {{"dtype", shown}});
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
