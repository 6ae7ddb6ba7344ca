// File: update.h
// The data plane's vocabulary: reads (whole, rows, version-conditional),
// updates (assign / add / subtract / apply a gradient, on the whole tensor,
// a row range or sparse rows), their results, gathers, and the training
// settings SetOptimizer stores.
//
// Thread-safety: plain values.
#ifndef VARSCOPE_SERVER_CORE_DATA_UPDATE_H_
#define VARSCOPE_SERVER_CORE_DATA_UPDATE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "server/core/tensor/optimizer.h"
#include "server/core/tensor/tensor.h"
#include "server/core/tensor/types.h"

namespace varscope::core {

// Rows [start, start + count) along axis 0.
struct RowRange {
  int64_t start = 0;
  int64_t count = 0;
};

struct ReadRequest {
  std::string name;
  std::optional<RowRange> rows;  // unset = the whole tensor
  uint64_t if_newer_than = 0;    // > 0: unchanged when version <= this
};

struct ReadResult {
  std::string name;         // full name, no ":0"
  DType dtype = DType::kInvalid;
  Shape shape;              // of the variable
  uint64_t version = 0;
  bool unchanged = false;   // if_newer_than matched: no data
  int64_t row_start = 0;    // first row returned (row reads)
  Shape data_shape;         // shape of the returned bytes
  // The returned bytes are buffer->data() + offset, `length` bytes; the
  // buffer is an immutable snapshot, safe to send without copying.
  std::shared_ptr<const TensorBuffer> buffer;
  int64_t offset = 0;
  int64_t length = 0;
};

enum class UpdateOp { kAssign = 1, kAdd = 2, kSub = 3, kApplyGradient = 4 };

struct Update {
  std::string name;
  UpdateOp op = UpdateOp::kAssign;
  std::optional<RowRange> rows;          // dense rows; unset = whole tensor
  std::optional<std::vector<int64_t>> indices;  // sparse rows (scatter)
  DType dtype = DType::kInvalid;         // of `data`; must match
  absl::string_view data;                // borrowed for the call
  // A whole-tensor ASSIGN may hand over a filled buffer instead of `data`;
  // it is installed without another copy.
  std::shared_ptr<const TensorBuffer> owned_value;
  std::optional<uint64_t> expected_version;  // compare-and-set
  std::optional<OptimizerSpec> optimizer;    // overrides the stored one
  std::optional<int64_t> step;               // worker step (sync training)
};

struct UpdateResult {
  std::string name;
  uint64_t version = 0;      // after this call
  bool applied = true;       // false: stale, or waiting for more replicas
  bool stale = false;        // dropped: its step was older than sync_step
  int accumulated = 0;       // gradients waiting for this step (sync)
  int64_t sync_step = 0;     // the accumulator's step after this call
  int64_t stale_dropped = 0; // total stale gradients dropped so far
};

struct GatherResult {
  std::string name;
  DType dtype = DType::kInvalid;
  Shape shape;     // [len(indices), shape[1:]...]
  uint64_t version = 0;
  std::shared_ptr<const TensorBuffer> buffer;
};

// What SetOptimizer stores on a variable.
struct TrainingConfig {
  std::optional<OptimizerSpec> optimizer;  // unset = keep
  int replicas_to_aggregate = 0;           // 0 = asynchronous
};

struct TrainingInfo {
  std::string optimizer;                   // "" when none stored
  std::vector<std::string> slots;          // slot variable names
  int64_t optimizer_steps = 0;
  int replicas_to_aggregate = 0;
  int64_t sync_step = 0;
  int accumulated = 0;
  int64_t stale_dropped = 0;
};

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_DATA_UPDATE_H_
