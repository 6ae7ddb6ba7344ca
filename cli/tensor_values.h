// File: tensor_values.h
// What the CLI shows of a tensor's bytes: elements as doubles, summary
// statistics, and the bfloat16 <-> float32 conversions .npy files need
// (NumPy has no bfloat16).
//
// Thread-safety: pure functions.
#ifndef VARSCOPE_CLI_TENSOR_VALUES_H_
#define VARSCOPE_CLI_TENSOR_VALUES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "varscope/types.h"

namespace varscope::cli {

// Element `i` of little-endian row-major `data` of `dtype`.
double ElementAt(DataType dtype, absl::string_view data, int64_t i);

struct Summary {
  int64_t elements = 0;
  double min = 0, max = 0, mean = 0, norm = 0;  // over the finite values
  int64_t non_finite = 0;                        // NaN and infinities
  std::vector<double> first;                     // the first few values
};
Summary Summarize(DataType dtype, absl::string_view data, int first = 8);

// bfloat16 is the top half of a float32: widening is exact, narrowing
// rounds to nearest even.
std::string BFloat16ToFloat32(absl::string_view data);
std::string Float32ToBFloat16(absl::string_view data);

}  // namespace varscope::cli

#endif  // VARSCOPE_CLI_TENSOR_VALUES_H_
