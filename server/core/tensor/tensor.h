// File: tensor.h
// Tensor storage. A variable's value is a std::shared_ptr<const TensorBuffer>:
// readers take the pointer under the store's lock and use the bytes after
// releasing it; writers install a new buffer (copy-on-write), so a buffer that
// a reader holds is never mutated.
//
// Thread-safety: a TensorBuffer is filled once by its creator, then shared
// read-only.
#ifndef VARSCOPE_SERVER_CORE_TENSOR_TENSOR_H_
#define VARSCOPE_SERVER_CORE_TENSOR_TENSOR_H_

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "server/core/tensor/buffer_pool.h"
#include "server/core/tensor/types.h"

namespace varscope::core {

class TensorBuffer {
 public:
  // Uninitialized storage of `size` bytes; with a pool, large buffers come
  // from (and return to) it. Throws std::bad_alloc.
  static std::shared_ptr<TensorBuffer> Allocate(size_t size,
                                                BufferPool* pool = nullptr);
  static std::shared_ptr<TensorBuffer> CopyOf(const void* data, size_t size,
                                              BufferPool* pool = nullptr);

  TensorBuffer(const TensorBuffer&) = delete;
  TensorBuffer& operator=(const TensorBuffer&) = delete;
  ~TensorBuffer();

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  TensorBuffer(uint8_t* data, size_t size, std::shared_ptr<BufferPool> pool)
      : data_(data), size_(size), pool_(std::move(pool)) {}

  uint8_t* const data_;  // owned: freed or given back to pool_
  const size_t size_;
  const std::shared_ptr<BufferPool> pool_;  // null = FreeTensorBytes()
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

#endif  // VARSCOPE_SERVER_CORE_TENSOR_TENSOR_H_
