// File: data_plane.h
// Reads and writes of variable values: pull (whole or a row range,
// version-conditional), push (assign / add / subtract / apply a gradient
// with a server-side optimizer) of a whole tensor, a row range or sparse
// rows, many variables atomically, and synchronous gradient aggregation.
//
// Example:
//   DataPlane data(&store);
//   Update add{.name = "scope/w", .op = UpdateOp::kAdd};
//   add.dtype = DType::kFloat;
//   add.data = bytes;                       // one float per element
//   absl::StatusOr<std::vector<UpdateResult>> r = data.Push({add});
//   absl::StatusOr<ReadResult> w = data.Read({.name = "scope/w"});
//
// Atomicity: a Push of several updates validates all of them first, then
// takes each variable's writer lock in name order (slots included), checks
// every expected_version, applies all, and publishes all; on any error
// nothing changes. Readers never wait for the arithmetic of a large write:
// writers copy, compute, and swap the pointer (see variable_cell.h).
//
// Thread-safety: all methods are thread-safe.
#ifndef VARSCOPE_SERVER_CORE_DATA_DATA_PLANE_H_
#define VARSCOPE_SERVER_CORE_DATA_DATA_PLANE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/core/tensor/optimizer.h"
#include "server/core/namespace/variable_store.h"

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

class DataPlane {
 public:
  explicit DataPlane(VariableStore* store);  // not owned

  // Logs training settings to `journal`, and with `log_pushes` (strict
  // durability) every push before it takes effect. Set before serving;
  // null = no log. Not owned.
  void set_journal(Journal* journal, bool log_pushes) {
    journal_ = journal;
    log_pushes_ = log_pushes;
  }
  DataPlane(const DataPlane&) = delete;
  DataPlane& operator=(const DataPlane&) = delete;

  absl::StatusOr<ReadResult> Read(const ReadRequest& request) const;
  // Applies all updates or none.
  absl::StatusOr<std::vector<UpdateResult>> Push(std::vector<Update> updates);
  // Rows `indices` (any order, repeats allowed) of a rank >= 1 variable.
  absl::StatusOr<GatherResult> Gather(absl::string_view name,
                                      const std::vector<int64_t>& indices) const;
  // Stores an optimizer and/or the synchronous replica count on variables,
  // creating the optimizer's slot variables.
  absl::Status SetTraining(const std::vector<std::string>& names,
                           const TrainingConfig& config);
  absl::StatusOr<TrainingInfo> DescribeTraining(absl::string_view name) const;
  // Validates `update` except for its data and returns how many data bytes
  // it needs (streamed pushes allocate this much, and no more, up front).
  absl::StatusOr<int64_t> DataBytes(const Update& update) const;
  // A buffer for a streamed push (recycled when possible). Throws
  // std::bad_alloc.
  std::shared_ptr<TensorBuffer> NewBuffer(size_t size) const {
    return TensorBuffer::Allocate(size, store_->buffers());
  }

 private:
  struct Target;
  absl::StatusOr<Target> Prepare(Update update, bool check_data = true) const;
  // The log record of a push; `data` gets the indices and values, in
  // order, as views into the updates.
  std::string PushRecord(const std::vector<Target>& targets,
                         std::vector<absl::string_view>* data) const;
  absl::StatusOr<std::vector<VariableHandle>> EnsureSlots(
      const VariableHandle& var, const ResolvedOptimizer& optimizer);

  VariableStore* const store_;  // Not owned.
  Journal* journal_ = nullptr;  // Not owned; set before serving.
  bool log_pushes_ = false;
};

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_DATA_DATA_PLANE_H_
