#include "server/core/tensor/tensor_memory.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

namespace varscope::core {

namespace {

constexpr size_t kHugePage = size_t{2} << 20;

size_t MappedLength(size_t size) {
  const size_t unit = size >= kHugePage ? kHugePage : size_t{4096};
  return (size + unit - 1) / unit * unit;
}

// Maps `length` bytes at a 2 MiB boundary: maps one huge page more than
// asked and unmaps the unaligned head and the tail.
void* MapAligned(size_t length) {
  const size_t padded = length + kHugePage;
  void* raw = mmap(nullptr, padded, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (start + kHugePage - 1) & ~(uintptr_t{kHugePage} - 1);
  if (aligned > start) munmap(raw, aligned - start);
  const uintptr_t end = start + padded;
  if (end > aligned + length) {
    munmap(reinterpret_cast<void*>(aligned + length), end - (aligned + length));
  }
  return reinterpret_cast<void*>(aligned);
}

}  // namespace

uint8_t* AllocateTensorBytes(size_t size) {
  if (size > SIZE_MAX - 2 * kHugePage) throw std::bad_alloc();  // would wrap
  if (!kLargeTensorsMapped && size >= kMappedBytes) {
    void* p = std::aligned_alloc(kHugePage, (size + kHugePage - 1) / kHugePage * kHugePage);
    if (p == nullptr) throw std::bad_alloc();
    std::memset(p, 0, size);  // as mapped memory is
    return static_cast<uint8_t*>(p);
  }
  if (size < kMappedBytes) {
    void* p = std::malloc(size == 0 ? 1 : size);
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<uint8_t*>(p);
  }
  const size_t length = MappedLength(size);
  void* p;
  if (length >= kHugePage) {
    p = MapAligned(length);
    if (p != nullptr) madvise(p, length, MADV_HUGEPAGE);  // advisory
  } else {
    p = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
             -1, 0);
    if (p == MAP_FAILED) p = nullptr;
  }
  if (p == nullptr) throw std::bad_alloc();
  return static_cast<uint8_t*>(p);
}

void FreeTensorBytes(uint8_t* data, size_t size) {
  if (data == nullptr) return;
  if (size < kMappedBytes || !kLargeTensorsMapped) {
    std::free(data);
  } else {
    munmap(data, MappedLength(size));
  }
}

}  // namespace varscope::core
