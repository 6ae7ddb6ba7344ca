// File: buffer_pool.h
// Recycles large tensor buffers for a short while after they are freed.
// Copy-on-write means every large write needs a fresh buffer, and on
// Linux fresh memory costs a page fault and a zeroed page per 4 KiB
// (measured: ~100 ms per 256 MiB, about as long as receiving the data).
// The buffer a write replaces is usually free again a moment later, so
// the next write of that size takes it warm. Peak memory does not grow:
// old and new buffers coexist during a write anyway. Cached buffers are
// dropped after `keep`, so at rest the server holds only live tensors.
//
// Example:
//   auto pool = BufferPool::Create({});
//   auto buf = TensorBuffer::Allocate(256 << 20, pool.get());  // maybe warm
//   buf.reset();          // returns the memory to the pool
//   pool->Trim();         // frees what has been cached longer than `keep`
//
// Thread-safety: all methods are thread-safe.
#ifndef VARSCOPE_SERVER_CORE_TENSOR_BUFFER_POOL_H_
#define VARSCOPE_SERVER_CORE_TENSOR_BUFFER_POOL_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/core/base/clock.h"

namespace varscope::core {

struct BufferPoolOptions {
  size_t min_bytes = size_t{1} << 20;        // smaller buffers use malloc
  size_t max_cached_bytes = size_t{1} << 30;  // cap on idle memory
  absl::Duration keep = absl::Seconds(2);
  const Clock* clock = nullptr;  // Not owned; null = real time.
};

class BufferPool : public std::enable_shared_from_this<BufferPool> {
 public:
  static std::shared_ptr<BufferPool> Create(BufferPoolOptions options);
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;
  ~BufferPool();

  // A cached block of exactly `size` bytes, or nullptr.
  uint8_t* Take(size_t size) ABSL_LOCKS_EXCLUDED(mu_);
  // Caches `data` (from AllocateTensorBytes(size)) or frees it.
  void Give(uint8_t* data, size_t size) ABSL_LOCKS_EXCLUDED(mu_);
  // Frees blocks cached longer than `keep`.
  void Trim() ABSL_LOCKS_EXCLUDED(mu_);
  size_t cached_bytes() const ABSL_LOCKS_EXCLUDED(mu_);
  const BufferPoolOptions& options() const { return options_; }

 private:
  explicit BufferPool(BufferPoolOptions options) : options_(options) {}
  absl::Time Now() const {
    return options_.clock != nullptr ? options_.clock->Now() : absl::Now();
  }
  // Moves blocks cached longer than `keep` to `to_free`.
  void TrimLocked(absl::Time now, std::vector<std::pair<uint8_t*, size_t>>* to_free)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static void FreeAll(const std::vector<std::pair<uint8_t*, size_t>>& blocks);

  const BufferPoolOptions options_;
  mutable absl::Mutex mu_;
  struct Block {
    uint8_t* data;
    absl::Time since;
  };
  std::multimap<size_t, Block> blocks_ ABSL_GUARDED_BY(mu_);
  size_t cached_bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_TENSOR_BUFFER_POOL_H_
