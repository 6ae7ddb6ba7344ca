#include "server/core/tensor/tensor.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <new>

#include "server/core/tensor/tensor_memory.h"

namespace varscope::core {

std::shared_ptr<TensorBuffer> TensorBuffer::Allocate(size_t size,
                                                     BufferPool* pool) {
  if (pool != nullptr && size >= pool->options().min_bytes) {
    uint8_t* data = pool->Take(size);
    if (data == nullptr) data = AllocateTensorBytes(size);
    return std::shared_ptr<TensorBuffer>(
        new TensorBuffer(data, size, pool->shared_from_this()));
  }
  return std::shared_ptr<TensorBuffer>(
      new TensorBuffer(AllocateTensorBytes(size), size, nullptr));
}

TensorBuffer::~TensorBuffer() {
  if (pool_) {
    pool_->Give(data_, size_);
  } else {
    FreeTensorBytes(data_, size_);
  }
}

std::shared_ptr<TensorBuffer> TensorBuffer::CopyOf(const void* data,
                                                   size_t size,
                                                   BufferPool* pool) {
  auto buffer = Allocate(size, pool);
  if (size > 0) std::memcpy(buffer->data(), data, size);
  return buffer;
}

namespace {

uint32_t FloatBits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  return bits;
}

float BitsFloat(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

template <typename T>
void StoreAs(T value, uint8_t* base, int64_t index) {
  std::memcpy(base + index * static_cast<int64_t>(sizeof(T)), &value,
              sizeof(T));
}

template <typename T>
T LoadAs(const uint8_t* base, int64_t index) {
  T value;
  std::memcpy(&value, base + index * static_cast<int64_t>(sizeof(T)),
              sizeof(T));
  return value;
}

// Integer conversion as a C cast would do for in-range values, saturating
// outside the range instead of invoking undefined behaviour.
template <typename T>
T ToInt(double v) {
  if (std::isnan(v)) return 0;
  const double lo = static_cast<double>(std::numeric_limits<T>::min());
  const double hi = static_cast<double>(std::numeric_limits<T>::max());
  if (v <= lo) return std::numeric_limits<T>::min();
  if (v >= hi) return std::numeric_limits<T>::max();
  return static_cast<T>(v);
}

}  // namespace

uint16_t FloatToHalf(float f) {
  const uint32_t x = FloatBits(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) {  // inf or nan
    return sign | (abs > 0x7f800000u ? 0x7e00u : 0x7c00u);
  }
  if (abs >= 0x477ff000u) return sign | 0x7c00u;  // rounds to >= 65520: inf
  if (abs < 0x38800000u) {                        // subnormal half or zero
    // Scale into the subnormal range with float arithmetic (exact rounding).
    const float scaled = BitsFloat(abs) * 16777216.0f;  // * 2^24
    return sign | static_cast<uint16_t>(std::nearbyint(scaled));
  }
  // Normal: rebias exponent, round mantissa to 10 bits (nearest even).
  const uint32_t mant_odd = (abs >> 13) & 1u;
  const uint32_t rounded = abs + 0xfffu + mant_odd;
  return sign | static_cast<uint16_t>((rounded - 0x38000000u) >> 13);
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0) {
    const float v = static_cast<float>(mant) / 16777216.0f;  // mant * 2^-24
    return sign ? -v : v;
  }
  if (exp == 31) return BitsFloat(sign | 0x7f800000u | (mant << 13));
  return BitsFloat(sign | ((exp + 112u) << 23) | (mant << 13));
}

uint16_t FloatToBFloat16(float f) {
  const uint32_t x = FloatBits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return 0x7fc0u;  // nan
  const uint32_t rounded = x + 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(rounded >> 16);
}

float BFloat16ToFloat(uint16_t b) {
  return BitsFloat(static_cast<uint32_t>(b) << 16);
}

void StoreElement(DType dtype, double value, uint8_t* base, int64_t index) {
  switch (dtype) {
    case DType::kFloat:
      return StoreAs<float>(static_cast<float>(value), base, index);
    case DType::kDouble:
      return StoreAs<double>(value, base, index);
    case DType::kHalf:
      return StoreAs<uint16_t>(FloatToHalf(static_cast<float>(value)), base,
                               index);
    case DType::kBFloat16:
      return StoreAs<uint16_t>(FloatToBFloat16(static_cast<float>(value)),
                               base, index);
    case DType::kInt8:
      return StoreAs<int8_t>(ToInt<int8_t>(value), base, index);
    case DType::kUInt8:
      return StoreAs<uint8_t>(ToInt<uint8_t>(value), base, index);
    case DType::kInt16:
      return StoreAs<int16_t>(ToInt<int16_t>(value), base, index);
    case DType::kInt32:
      return StoreAs<int32_t>(ToInt<int32_t>(value), base, index);
    case DType::kInt64:
      return StoreAs<int64_t>(ToInt<int64_t>(value), base, index);
    case DType::kBool:
      return StoreAs<uint8_t>(value != 0 ? 1 : 0, base, index);
    case DType::kInvalid:
      return;
  }
}

double LoadElement(DType dtype, const uint8_t* base, int64_t index) {
  switch (dtype) {
    case DType::kFloat:
      return LoadAs<float>(base, index);
    case DType::kDouble:
      return LoadAs<double>(base, index);
    case DType::kHalf:
      return HalfToFloat(LoadAs<uint16_t>(base, index));
    case DType::kBFloat16:
      return BFloat16ToFloat(LoadAs<uint16_t>(base, index));
    case DType::kInt8:
      return LoadAs<int8_t>(base, index);
    case DType::kUInt8:
      return LoadAs<uint8_t>(base, index);
    case DType::kInt16:
      return LoadAs<int16_t>(base, index);
    case DType::kInt32:
      return LoadAs<int32_t>(base, index);
    case DType::kInt64:
      return static_cast<double>(LoadAs<int64_t>(base, index));
    case DType::kBool:
      return LoadAs<uint8_t>(base, index);
    case DType::kInvalid:
      return 0;
  }
  return 0;
}

}  // namespace varscope::core
