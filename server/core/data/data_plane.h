// File: data_plane.h
// Reads and writes of variable values: pull (whole or a row range,
// version-conditional), push (assign / add / subtract / apply a gradient
// with a server-side optimizer) of a whole tensor, a row range or sparse
// rows, many variables atomically, synchronous gradient aggregation, and
// the optimizer settings of variables.
//
// Example:
//   DataPlane data(&store);
//   Update add{.name = "scope/w", .op = UpdateOp::kAdd};
//   add.dtype = DType::kFloat;
//   add.data = bytes;                       // one float per element
//   absl::StatusOr<std::vector<UpdateResult>> r = data.Push({add});
//   absl::StatusOr<ReadResult> w = data.Read({.name = "scope/w"});
//
// A push runs in named phases (push.cc): plan (no locks), lock (the update
// barrier, then every writer lock in name order, slots included), decide
// (versions, optimizers, sync actions, reserve missing slots), prepare
// (copy-on-write values computed into private buffers), log (strict
// durability), apply (value locks in name order: in-place changes and
// pointer swaps, one revision for everything), publish. Every error comes
// before apply, and undoes the reservations: a failed push changes
// nothing, not even optimizer slots. Readers never wait for the arithmetic
// of a large write nor for the log.
//
// Thread-safety: all methods are thread-safe.
#ifndef VARSCOPE_SERVER_CORE_DATA_DATA_PLANE_H_
#define VARSCOPE_SERVER_CORE_DATA_DATA_PLANE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/core/data/update.h"
#include "server/core/data/update_log.h"
#include "server/core/namespace/variable_store.h"

namespace varscope::core {

// The state of a push in progress (defined in push_internal.h).
struct PushTarget;
struct PushPlan;

// What the data plane has moved since the process started (for metrics).
struct DataCounters {
  std::atomic<int64_t> bytes_pushed{0};   // update data of applied pushes
  std::atomic<int64_t> bytes_read{0};     // values and rows returned
  std::atomic<int64_t> stale_dropped{0};  // gradients too stale to apply
};

class DataPlane {
 public:
  explicit DataPlane(VariableStore* store);  // not owned
  DataPlane(const DataPlane&) = delete;
  DataPlane& operator=(const DataPlane&) = delete;

  // Logs optimizer settings to `log`, and with `log_pushes` (strict
  // durability) every push before it takes effect. Set before serving;
  // null = no log. Not owned.
  void set_log(UpdateLog* log, bool log_pushes) {
    log_ = log;
    log_pushes_ = log_pushes;
  }

  absl::StatusOr<ReadResult> Read(const ReadRequest& request) const;
  // Applies all updates or none.
  absl::StatusOr<std::vector<UpdateResult>> Push(std::vector<Update> updates);
  // Log replay: applies a logged push at its logged revision (each update
  // carries its version_before as expected_version).
  absl::StatusOr<std::vector<UpdateResult>> ReplayPush(std::vector<Update> updates,
                                                       uint64_t revision);
  // Rows `indices` (any order, repeats allowed) of a rank >= 1 variable.
  absl::StatusOr<GatherResult> Gather(absl::string_view name,
                                      const std::vector<int64_t>& indices) const;
  // Stores an optimizer and/or the synchronous replica count on variables,
  // creating the optimizer's slot variables: for all of them or none.
  absl::Status SetTraining(const std::vector<std::string>& names,
                           const TrainingConfig& config);
  // Log replay of SetTraining at its logged revision.
  absl::Status ReplayTraining(const std::vector<std::string>& names,
                              const TrainingConfig& config, uint64_t revision);
  absl::StatusOr<TrainingInfo> DescribeTraining(absl::string_view name) const;
  // Validates `update` except for its data and returns how many data bytes
  // it needs (streamed pushes allocate this much, and no more, up front).
  absl::StatusOr<int64_t> DataBytes(const Update& update) const;
  // A buffer for a streamed push (recycled when possible). Throws
  // std::bad_alloc.
  std::shared_ptr<TensorBuffer> NewBuffer(size_t size) const {
    return TensorBuffer::Allocate(size, store_->buffers());
  }
  const DataCounters& counters() const { return counters_; }

 private:
  // Checks one update against its variable's constant metadata.
  absl::StatusOr<PushTarget> Check(Update update, bool check_data = true) const;
  // The phases of a push (push.cc).
  absl::StatusOr<std::vector<UpdateResult>> RunPush(
      std::vector<Update> updates, std::optional<uint64_t> revision);
  absl::StatusOr<PushPlan> PlanPush(std::vector<Update> updates) const;
  // The optimizer a gradient will use and the slots that needs: existing
  // ones as handles, missing ones by name.
  absl::Status PlanSlots(PushTarget& t) const;
  absl::Status DecidePush(PushPlan& plan, bool* replan)
      ABSL_SHARED_LOCKS_REQUIRED(store_->update_barrier());
  absl::Status PreparePush(PushPlan& plan);
  absl::Status LogPush(const PushPlan& plan);
  void ApplyPush(PushPlan& plan)
      ABSL_SHARED_LOCKS_REQUIRED(store_->update_barrier());
  void AbandonSlots(PushPlan& plan);
  // SetTraining in the same steps (training.cc).
  absl::Status RunTraining(const std::vector<std::string>& names,
                           const TrainingConfig& config,
                           std::optional<uint64_t> revision);

  VariableStore* const store_;  // Not owned.
  UpdateLog* log_ = nullptr;    // Not owned; set before serving.
  bool log_pushes_ = false;
  mutable DataCounters counters_;  // atomics: counted from const reads
};

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_DATA_DATA_PLANE_H_
