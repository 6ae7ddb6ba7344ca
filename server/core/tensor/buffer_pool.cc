#include "server/core/tensor/buffer_pool.h"

#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "server/core/tensor/tensor_memory.h"

namespace varscope::core {

std::shared_ptr<BufferPool> BufferPool::Create(BufferPoolOptions options) {
  return std::shared_ptr<BufferPool>(new BufferPool(options));
}

BufferPool::~BufferPool() {
  for (auto& [size, block] : blocks_) FreeTensorBytes(block.data, size);
}

uint8_t* BufferPool::Take(size_t size) {
  absl::MutexLock lock(&mu_);
  auto it = blocks_.find(size);
  if (it == blocks_.end()) return nullptr;
  uint8_t* data = it->second.data;
  cached_bytes_ -= size;
  blocks_.erase(it);
  return data;
}

void BufferPool::Give(uint8_t* data, size_t size) {
  std::vector<std::pair<uint8_t*, size_t>> to_free;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = Now();
    TrimLocked(now, &to_free);
    if (size < options_.min_bytes || size > options_.max_cached_bytes) {
      to_free.emplace_back(data, size);
    } else {
      // Make room by dropping the oldest blocks.
      while (cached_bytes_ + size > options_.max_cached_bytes) {
        auto oldest = blocks_.begin();
        for (auto it = blocks_.begin(); it != blocks_.end(); ++it) {
          if (it->second.since < oldest->second.since) oldest = it;
        }
        to_free.emplace_back(oldest->second.data, oldest->first);
        cached_bytes_ -= oldest->first;
        blocks_.erase(oldest);
      }
      blocks_.emplace(size, Block{data, now});
      cached_bytes_ += size;
    }
  }
  FreeAll(to_free);
}

void BufferPool::Trim() {
  std::vector<std::pair<uint8_t*, size_t>> to_free;
  {
    absl::MutexLock lock(&mu_);
    TrimLocked(Now(), &to_free);
  }
  FreeAll(to_free);
}

void BufferPool::TrimLocked(absl::Time now,
                            std::vector<std::pair<uint8_t*, size_t>>* to_free) {
  for (auto it = blocks_.begin(); it != blocks_.end();) {
    if (now - it->second.since >= options_.keep) {
      to_free->emplace_back(it->second.data, it->first);
      cached_bytes_ -= it->first;
      it = blocks_.erase(it);
    } else {
      ++it;
    }
  }
}

// Outside the lock: unmapping 256 MiB takes a while.
void BufferPool::FreeAll(const std::vector<std::pair<uint8_t*, size_t>>& blocks) {
  for (const auto& [data, size] : blocks) FreeTensorBytes(data, size);
}

size_t BufferPool::cached_bytes() const {
  absl::MutexLock lock(&mu_);
  return cached_bytes_;
}

}  // namespace varscope::core
