#include "cli/tensor_values.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace varscope::cli {
namespace {

template <typename T>
T Load(absl::string_view data, int64_t i) {
  T value;
  std::memcpy(&value, data.data() + i * sizeof(T), sizeof(T));
  return value;
}

float FromBits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

double HalfToDouble(uint16_t h) {
  const int sign = (h >> 15) ? -1 : 1;
  const int exponent = (h >> 10) & 0x1f;
  const int mantissa = h & 0x3ff;
  if (exponent == 0) return sign * std::ldexp(mantissa, -24);  // subnormal
  if (exponent == 31) {
    return mantissa != 0 ? std::numeric_limits<double>::quiet_NaN()
                         : sign * std::numeric_limits<double>::infinity();
  }
  return sign * std::ldexp(mantissa + 1024, exponent - 25);
}

}  // namespace

double ElementAt(DataType dtype, absl::string_view data, int64_t i) {
  switch (dtype) {
    case DataType::kFloat: return Load<float>(data, i);
    case DataType::kDouble: return Load<double>(data, i);
    case DataType::kInt32: return Load<int32_t>(data, i);
    case DataType::kUInt8: return Load<uint8_t>(data, i);
    case DataType::kInt16: return Load<int16_t>(data, i);
    case DataType::kInt8: return Load<int8_t>(data, i);
    case DataType::kInt64: return static_cast<double>(Load<int64_t>(data, i));
    case DataType::kBool: return Load<uint8_t>(data, i) != 0 ? 1 : 0;
    case DataType::kBFloat16: return FromBits(uint32_t{Load<uint16_t>(data, i)} << 16);
    case DataType::kHalf: return HalfToDouble(Load<uint16_t>(data, i));
    case DataType::kUnspecified: break;
  }
  return 0;
}

Summary Summarize(DataType dtype, absl::string_view data, int first) {
  Summary s;
  const size_t size = DataTypeSize(dtype);
  s.elements = size == 0 ? 0 : static_cast<int64_t>(data.size() / size);
  double sum = 0, squares = 0;
  int64_t finite = 0;
  for (int64_t i = 0; i < s.elements; ++i) {
    const double v = ElementAt(dtype, data, i);
    if (i < first) s.first.push_back(v);
    if (!std::isfinite(v)) {
      ++s.non_finite;
      continue;
    }
    if (finite == 0 || v < s.min) s.min = v;
    if (finite == 0 || v > s.max) s.max = v;
    sum += v;
    squares += v * v;
    ++finite;
  }
  s.mean = finite > 0 ? sum / static_cast<double>(finite) : 0;
  s.norm = std::sqrt(squares);
  return s;
}

std::string BFloat16ToFloat32(absl::string_view data) {
  std::string out(data.size() * 2, '\0');
  for (size_t i = 0; i < data.size() / 2; ++i) {
    const uint32_t bits = uint32_t{Load<uint16_t>(data, static_cast<int64_t>(i))} << 16;
    std::memcpy(&out[i * 4], &bits, 4);
  }
  return out;
}

std::string Float32ToBFloat16(absl::string_view data) {
  std::string out(data.size() / 2, '\0');
  for (size_t i = 0; i < data.size() / 4; ++i) {
    uint32_t bits = Load<uint32_t>(data, static_cast<int64_t>(i));
    uint16_t top;
    if ((bits & 0x7fffffff) > 0x7f800000) {
      top = static_cast<uint16_t>((bits >> 16) | 0x40);  // a quiet NaN stays NaN
    } else {
      bits += 0x7fff + ((bits >> 16) & 1);  // round to nearest even
      top = static_cast<uint16_t>(bits >> 16);
    }
    std::memcpy(&out[i * 2], &top, 2);
  }
  return out;
}

}  // namespace varscope::cli
