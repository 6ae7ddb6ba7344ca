#include "server/core/tensor/buffer_pool.h"

#include <cstdlib>
#include <vector>

#include "absl/time/clock.h"

namespace varscope::core {

std::shared_ptr<BufferPool> BufferPool::Create(BufferPoolOptions options) {
  return std::shared_ptr<BufferPool>(new BufferPool(options));
}

BufferPool::~BufferPool() {
  for (auto& [size, block] : blocks_) std::free(block.data);
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
  std::vector<uint8_t*> to_free;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = Now();
    TrimLocked(now);
    if (size < options_.min_bytes || size > options_.max_cached_bytes) {
      to_free.push_back(data);
    } else {
      // Make room by dropping the oldest blocks.
      while (cached_bytes_ + size > options_.max_cached_bytes) {
        auto oldest = blocks_.begin();
        for (auto it = blocks_.begin(); it != blocks_.end(); ++it) {
          if (it->second.since < oldest->second.since) oldest = it;
        }
        to_free.push_back(oldest->second.data);
        cached_bytes_ -= oldest->first;
        blocks_.erase(oldest);
      }
      blocks_.emplace(size, Block{data, now});
      cached_bytes_ += size;
    }
  }
  for (uint8_t* p : to_free) std::free(p);  // outside the lock
}

void BufferPool::Trim() {
  absl::MutexLock lock(&mu_);
  TrimLocked(Now());
}

void BufferPool::TrimLocked(absl::Time now) {
  for (auto it = blocks_.begin(); it != blocks_.end();) {
    if (now - it->second.since >= options_.keep) {
      std::free(it->second.data);
      cached_bytes_ -= it->first;
      it = blocks_.erase(it);
    } else {
      ++it;
    }
  }
}

size_t BufferPool::cached_bytes() const {
  absl::MutexLock lock(&mu_);
  return cached_bytes_;
}

}  // namespace varscope::core
