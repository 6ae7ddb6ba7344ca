// File: npy.h
// NumPy's .npy format (version 1.0, and reading 2.0/3.0): a header naming
// the element type, the order and the shape, then the raw elements.
// https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
//
//   absl::StatusOr<NpyArray> a = ReadNpy("w.npy");
//   absl::Status s = WriteNpy("w.npy", DataType::kFloat, {2, 3}, bytes);
//
// Thread-safety: pure functions over files.
#ifndef VARSCOPE_CLI_NPY_H_
#define VARSCOPE_CLI_NPY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "varscope/types.h"

namespace varscope::cli {

struct NpyArray {
  DataType dtype = DataType::kUnspecified;
  std::vector<int64_t> shape;
  std::string data;  // row-major, little-endian
};

// The .npy descr of `dtype` ("<f4", "|b1", ...); "" for bfloat16, which
// NumPy has no type for.
std::string NpyDescr(DataType dtype);

// Reads a C-order array of a type varscope stores (big-endian files are
// converted); INVALID_ARGUMENT naming what is wrong otherwise.
absl::StatusOr<NpyArray> ReadNpy(const std::string& path);
// Parses the bytes of a .npy file.
absl::StatusOr<NpyArray> ParseNpy(absl::string_view file, absl::string_view what);

// Writes `data` (row-major, little-endian) as a version 1.0 .npy file.
absl::Status WriteNpy(const std::string& path, DataType dtype,
                      const std::vector<int64_t>& shape, absl::string_view data);
std::string EncodeNpy(DataType dtype, const std::vector<int64_t>& shape,
                      absl::string_view data);

}  // namespace varscope::cli

#endif  // VARSCOPE_CLI_NPY_H_
