// File: safetensors.h
// The safetensors file format (https://github.com/huggingface/safetensors):
// an 8-byte little-endian header length N, N bytes of JSON (padded with
// spaces to a multiple of 8), then the tensors' raw little-endian bytes.
// The JSON maps each tensor name to {"dtype", "shape", "data_offsets"}
// (offsets relative to the end of the header) plus an optional
// "__metadata__" map of strings. Any standard reader loads our files.
//
// Thread-safety: pure functions.
#ifndef VARSCOPE_SERVER_CORE_STORAGE_SAFETENSORS_H_
#define VARSCOPE_SERVER_CORE_STORAGE_SAFETENSORS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/core/storage/env.h"
#include "server/core/tensor/types.h"

namespace varscope::core {

struct SafetensorsTensor {
  std::string name;
  DType dtype = DType::kInvalid;
  Shape shape;
  int64_t begin = 0;  // absolute file offsets of the data: [begin, end)
  int64_t end = 0;
};

// "F32", "BF16", ...; empty for kInvalid.
absl::string_view SafetensorsDType(DType dtype);

// The header (length prefix + padded JSON) for `tensors` laid out back to
// back in the given order; their begin/end are filled in (absolute).
std::string EncodeSafetensorsHeader(
    std::vector<SafetensorsTensor>* tensors,
    const std::map<std::string, std::string>& metadata);

// Reads and validates the header of `path`: JSON syntax, dtypes, shapes,
// offsets that tile the data region exactly and match each tensor's size.
// Errors name the file and the offending offset or tensor (DATA_LOSS for a
// damaged file, INVALID_ARGUMENT for a dtype varscope does not store).
absl::StatusOr<std::vector<SafetensorsTensor>> ReadSafetensorsHeader(
    Env* env, const std::string& path,
    std::map<std::string, std::string>* metadata = nullptr);

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_STORAGE_SAFETENSORS_H_
