// File: crc32.h
// CRC-32 (zlib's polynomial) over buffers of any size; zlib's crc32()
// takes 32-bit lengths, so large tensors are fed in 1 GiB pieces.
// Used by checkpoints and the write-ahead log.
//
// Thread-safety: pure functions.
#ifndef VARSCOPE_SERVER_CORE_STORAGE_CRC32_H_
#define VARSCOPE_SERVER_CORE_STORAGE_CRC32_H_

#include <zlib.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace varscope::core {

// Extends `crc` (0 to start) with `n` bytes at `data`.
inline uint32_t Crc32(uint32_t crc, const void* data, size_t n) {
  const auto* p = static_cast<const Bytef*>(data);
  while (n > 0) {
    const uInt chunk = static_cast<uInt>(std::min<size_t>(n, size_t{1} << 30));
    crc = static_cast<uint32_t>(crc32(crc, p, chunk));
    p += chunk;
    n -= chunk;
  }
  return crc;
}

inline uint32_t Crc32(absl::string_view bytes, uint32_t crc = 0) {
  return Crc32(crc, bytes.data(), bytes.size());
}

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_STORAGE_CRC32_H_
