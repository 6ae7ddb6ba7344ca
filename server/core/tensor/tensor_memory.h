// File: tensor_memory.h
// Where tensor bytes live. Buffers of kMappedBytes and more are mapped
// straight from the kernel and unmapped when freed, so a freed tensor's
// memory goes back to the OS at once. Through malloc they would not: glibc
// raises its mmap threshold after the first large free (up to 32 MiB), and
// from then on large buffers come from per-thread arenas that keep freed
// memory (measured: 141-307 MiB of RSS for 16 MiB stored after a push
// storm). Mapped buffers of 2 MiB and more are 2 MiB-aligned and marked
// for transparent huge pages: a fresh 256 MiB buffer then costs 128 page
// faults instead of 65536.
//
// Example:
//   uint8_t* p = AllocateTensorBytes(n);
//   ...
//   FreeTensorBytes(p, n);  // the same n
//
// Thread-safety: both functions are thread-safe.
#ifndef VARSCOPE_SERVER_CORE_TENSOR_TENSOR_MEMORY_H_
#define VARSCOPE_SERVER_CORE_TENSOR_TENSOR_MEMORY_H_

#include <cstddef>
#include <cstdint>

namespace varscope::core {

inline constexpr size_t kMappedBytes = size_t{1} << 20;

// AddressSanitizer checks only what its allocator hands out, so sanitizer
// builds keep large tensors on it (and their memory is not returned).
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kLargeTensorsMapped = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kLargeTensorsMapped = false;
#else
inline constexpr bool kLargeTensorsMapped = true;
#endif
#else
inline constexpr bool kLargeTensorsMapped = true;
#endif

// `size` bytes (uninitialized below kMappedBytes, zero above); throws
// std::bad_alloc when out of memory. Never null.
uint8_t* AllocateTensorBytes(size_t size);
// Frees what AllocateTensorBytes(size) returned.
void FreeTensorBytes(uint8_t* data, size_t size);

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_TENSOR_TENSOR_MEMORY_H_
