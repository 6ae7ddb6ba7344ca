// File: variable_cell.h
// The mutable half of a stored variable: its value and version, and the
// training state its writers keep beside it (optimizer, step counts, the
// synchronous-training accumulator). Metadata (name, dtype, shape) is
// constant and lives in VariableStore.
//
// Locking (levels 4 and 6 of base/lock_order.h):
//  - writer_mu serializes writers of this variable and guards the training
//    state. Only a writer changes the value, so a writer holding it sees a
//    stable value.
//  - value_mu guards the value pointer and version. Readers hold it (shared)
//    only to copy the pointer. A writer takes it (exclusively, in name
//    order with the other variables of its change) only to swap in a new
//    buffer, or to change an unshared buffer in place: a small write to a
//    buffer no reader holds is cheaper than copying the tensor, and readers
//    wait for at most kMaxInPlaceBytes of arithmetic.
//
// Example (writer, with both locks held):
//   if (!cell.ValueShared()) { Change(cell.MutableValue()); }
//   else { std::shared_ptr<const TensorBuffer> old = cell.Swap(copy); }
//   cell.SetVersion(revision);
#ifndef VARSCOPE_SERVER_CORE_TENSOR_VARIABLE_CELL_H_
#define VARSCOPE_SERVER_CORE_TENSOR_VARIABLE_CELL_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "server/core/tensor/optimizer.h"
#include "server/core/tensor/tensor.h"

namespace varscope::core {

// Writes touching at most this many bytes of an unshared buffer are done in
// place; larger ones (or any write while a reader holds the buffer) copy.
inline constexpr int64_t kMaxInPlaceBytes = int64_t{1} << 20;

// State kept by writers: the stored optimizer and synchronous aggregation
// (TensorFlow's SyncReplicasOptimizer / ConditionalAccumulator).
struct TrainingState {
  std::optional<ResolvedOptimizer> optimizer;  // set by SetOptimizer
  int64_t optimizer_steps = 0;  // optimizer updates applied (Adam's t - 1)
  int replicas_to_aggregate = 0;  // 0 = asynchronous: every gradient applies
  int64_t sync_step = 0;          // the accumulator's global step
  std::vector<double> accumulated;  // sum of this step's gradients
  int accumulated_count = 0;
  int64_t stale_dropped = 0;      // gradients dropped for an old step
};

class VariableCell {
 public:
  struct Snapshot {
    std::shared_ptr<const TensorBuffer> value;
    uint64_t version = 0;
  };

  VariableCell(std::shared_ptr<const TensorBuffer> value, uint64_t version)
      : value_(std::move(value)), version_(version) {}
  VariableCell(const VariableCell&) = delete;
  VariableCell& operator=(const VariableCell&) = delete;

  Snapshot Read() const ABSL_LOCKS_EXCLUDED(value_mu_) {
    absl::ReaderMutexLock lock(&value_mu_);
    return Snapshot{value_, version_};
  }
  uint64_t version() const ABSL_LOCKS_EXCLUDED(value_mu_) {
    absl::ReaderMutexLock lock(&value_mu_);
    return version_;
  }

  absl::Mutex* writer_mu() const ABSL_LOCK_RETURNED(writer_mu_) {
    return &writer_mu_;
  }
  absl::Mutex* value_mu() const ABSL_LOCK_RETURNED(value_mu_) {
    return &value_mu_;
  }

  // True when a reader (or anyone but the cell) holds the value: it must
  // not be changed in place. With value_mu held nobody can take a new
  // reference, so false stays false until the lock is released.
  bool ValueShared() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(value_mu_) {
    return value_.use_count() > 1;
  }
  // The value's bytes, for an in-place change (ValueShared() is false).
  uint8_t* MutableValue() ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_, value_mu_) {
    return const_cast<TensorBuffer&>(*value_).data();
  }
  // Installs a new value and returns the old one, for the caller to drop
  // after unlocking (freeing a large buffer is not done under the lock).
  std::shared_ptr<const TensorBuffer> Swap(std::shared_ptr<const TensorBuffer> value)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_, value_mu_) {
    value_.swap(value);
    return value;
  }
  void SetVersion(uint64_t version)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_, value_mu_) {
    version_ = version;
  }

  TrainingState training ABSL_GUARDED_BY(writer_mu_);

 private:
  mutable absl::Mutex writer_mu_ ABSL_ACQUIRED_BEFORE(value_mu_);
  mutable absl::Mutex value_mu_;
  std::shared_ptr<const TensorBuffer> value_ ABSL_GUARDED_BY(value_mu_);
  uint64_t version_ ABSL_GUARDED_BY(value_mu_);
};

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_TENSOR_VARIABLE_CELL_H_
