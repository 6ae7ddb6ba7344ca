// File: tensor.h
// Tensor storage. A variable's value is a std::shared_ptr<const TensorBuffer>:
// readers take the pointer under the store's lock and use the bytes after
// releasing it; writers install a new buffer (copy-on-write), so a buffer that
// a reader holds is never mutated.
//
// Thread-safety: a TensorBuffer is filled once by its creator, then shared
// read-only.
#ifndef VARSCOPE_SERVER_CORE_TENSOR_H_
#define VARSCOPE_SERVER_CORE_TENSOR_H_

#include <cstdint>
#include <memory>
#include <string>

#include "server/core/types.h"

namespace varscope::core {

class TensorBuffer {
 public:
  // Uninitialized storage of `size` bytes.
  static std::shared_ptr<TensorBuffer> Allocate(size_t size);
  static std::shared_ptr<TensorBuffer> CopyOf(const void* data, size_t size);

  TensorBuffer(const TensorBuffer&) = delete;
  TensorBuffer& operator=(const TensorBuffer&) = delete;

  uint8_t* data() { return data_.get(); }
  const uint8_t* data() const { return data_.get(); }
  size_t size() const { return size_; }

 private:
  explicit TensorBuffer(size_t size);

  std::unique_ptr<uint8_t[]> data_;
  size_t size_;
};

// A dense value with its type and shape (used for "from value" initializers).
struct TensorValue {
  DType dtype = DType::kInvalid;
  Shape shape;
  std::shared_ptr<const TensorBuffer> buffer;
};

// Conversions between double and the 16-bit float formats (round to nearest
// even), used to fill and inspect float16 / bfloat16 tensors.
uint16_t FloatToHalf(float f);
float HalfToFloat(uint16_t h);
uint16_t FloatToBFloat16(float f);
float BFloat16ToFloat(uint16_t b);

// Writes `value` as element `index` of a buffer of `dtype`.
void StoreElement(DType dtype, double value, uint8_t* base, int64_t index);
// Reads element `index` of a buffer of `dtype` as a double.
double LoadElement(DType dtype, const uint8_t* base, int64_t index);

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_TENSOR_H_
