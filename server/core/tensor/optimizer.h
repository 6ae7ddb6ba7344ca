// File: optimizer.h
// Server-side optimizers with TensorFlow 1.x's update rules (training_ops
// kernels): SGD, Momentum (optionally Nesterov), Adagrad, Adam, RMSProp
// (optionally centered) and FTRL (with L2 shrinkage). Each optimizer keeps
// its state in slot variables named as TensorFlow names them ("v/Momentum",
// "v/Adam", "v/Adam_1", ...); this file only does the arithmetic on raw
// float32/float64 buffers; DataPlane owns the variables.
//
// Example:
//   OptimizerSpec spec{OptimizerKind::kAdam, {{"learning_rate", 0.01}}};
//   absl::StatusOr<ResolvedOptimizer> adam = ResolveOptimizer(spec);
//   // adam->slots: {"Adam", 0.0}, {"Adam_1", 0.0}
//   ApplyDense(*adam, /*step=*/1, DType::kFloat, var, {m, v}, grad, n);
//
// Thread-safety: pure functions; callers hold the variables' write locks.
#ifndef VARSCOPE_SERVER_CORE_TENSOR_OPTIMIZER_H_
#define VARSCOPE_SERVER_CORE_TENSOR_OPTIMIZER_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/core/tensor/types.h"

namespace varscope::core {

enum class OptimizerKind {
  kNone = 0,
  kSgd = 1,
  kMomentum = 2,
  kAdagrad = 3,
  kAdam = 4,
  kRmsProp = 5,
  kFtrl = 6,
};
absl::string_view OptimizerName(OptimizerKind kind);

// An optimizer as requested: kind plus named hyperparameters (names as in
// TensorFlow's constructors: learning_rate, momentum, use_nesterov, ...).
struct OptimizerSpec {
  OptimizerKind kind = OptimizerKind::kNone;
  std::map<std::string, double> hyperparameters;
};

// One slot variable: "<var>/<suffix>", filled with `initial_value`.
struct SlotSpec {
  std::string suffix;
  double initial_value = 0.0;
};

// A validated optimizer with every hyperparameter filled in.
struct ResolvedOptimizer {
  OptimizerKind kind = OptimizerKind::kNone;
  double learning_rate = 0.0;
  double momentum = 0.0;        // Momentum, RMSProp
  bool use_nesterov = false;    // Momentum
  double initial_accumulator_value = 0.1;  // Adagrad, FTRL
  double beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8;  // Adam (RMSProp: eps)
  double decay = 0.9;           // RMSProp
  bool centered = false;        // RMSProp
  double learning_rate_power = -0.5;  // FTRL
  double l1 = 0.0, l2 = 0.0, l2_shrinkage = 0.0;  // FTRL
  // Slots in TensorFlow's creation order.
  std::vector<SlotSpec> slots;
  OptimizerSpec spec;  // as given, for descriptions and checkpoints
};

// Checks names and ranges (unknown hyperparameter, missing learning rate,
// epsilon < 0, ...) and fills defaults. INVALID_ARGUMENT names the problem.
absl::StatusOr<ResolvedOptimizer> ResolveOptimizer(const OptimizerSpec& spec);

// Optimizers update floating-point variables only.
absl::Status CheckOptimizerDType(DType dtype, absl::string_view variable);

// var/slots/grad hold `n` elements of `dtype` (float32 or float64). `step` is
// the 1-based count of updates including this one (Adam's bias correction).
void ApplyDense(const ResolvedOptimizer& opt, int64_t step, DType dtype,
                uint8_t* var, const std::vector<uint8_t*>& slots,
                const uint8_t* grad, int64_t n);

// Sparse update of rows `rows` (unique, in range) of tables with
// `row_elements` elements per row; `grad` holds one summed gradient row per
// entry of `rows`, as doubles. Rows not listed keep their values, except for
// Adam, whose moments decay on every row as in TensorFlow 1.x's
// AdamOptimizer._apply_sparse (`num_rows` = the table's rows).
void ApplySparse(const ResolvedOptimizer& opt, int64_t step, DType dtype,
                 uint8_t* var, const std::vector<uint8_t*>& slots,
                 int64_t num_rows, int64_t row_elements,
                 const std::vector<int64_t>& rows,
                 const std::vector<double>& grad);

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_TENSOR_OPTIMIZER_H_
