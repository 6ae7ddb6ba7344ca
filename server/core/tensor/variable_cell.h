// File: variable_cell.h
// The mutable half of a stored variable: its value and version, and the
// training state its writers keep beside it (optimizer, step counts, the
// synchronous-training accumulator). Metadata (name, dtype, shape) is
// constant and lives in VariableStore.
//
// Locking: two mutexes with distinct jobs.
//  - writer_mu serializes writers of this variable. Multi-variable writes
//    take it in canonical (name) order; it is held across the arithmetic.
//  - value_mu guards the value pointer and version. Readers hold it only to
//    copy the shared_ptr; a copy-on-write writer holds it only to swap the
//    pointer. A small write to a buffer nobody else references is done in
//    place while holding value_mu (readers then wait for at most
//    kMaxInPlaceBytes of arithmetic, cheaper than a copy of the tensor).
//  Lock order: writer_mu, then VariableStore's mutex, then value_mu.
//
// Example (writer):
//   absl::MutexLock lock(cell->writer_mu());
//   ASSIGN_OR_RETURN(uint8_t* data, cell->BeginWrite(bytes, /*keep=*/true));
//   ... change data ...
//   uint64_t version = cell->Commit();
#ifndef VARSCOPE_SERVER_CORE_TENSOR_VARIABLE_CELL_H_
#define VARSCOPE_SERVER_CORE_TENSOR_VARIABLE_CELL_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
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

  // Starts a write and returns the bytes to change. `keep_old` copies the
  // current value into a new buffer (or writes in place, see above);
  // otherwise the buffer's contents are unspecified and the caller fills
  // all of it. Every BeginWrite ends in Commit or Abort.
  // New buffers come from `pool` (may be null).
  absl::StatusOr<uint8_t*> BeginWrite(int64_t touched_bytes, bool keep_old,
                                      BufferPool* pool)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_);
  // Publishes the write; returns the new version.
  uint64_t Commit() ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_);
  // Drops a write that BeginWrite started and nobody changed yet.
  void Abort() ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_);
  // Replaces the whole value with a buffer the caller filled.
  uint64_t Install(std::shared_ptr<const TensorBuffer> value)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_) ABSL_LOCKS_EXCLUDED(value_mu_);

  TrainingState training ABSL_GUARDED_BY(writer_mu_);

 private:
  mutable absl::Mutex writer_mu_ ABSL_ACQUIRED_BEFORE(value_mu_);
  mutable absl::Mutex value_mu_;
  std::shared_ptr<const TensorBuffer> value_ ABSL_GUARDED_BY(value_mu_);
  uint64_t version_ ABSL_GUARDED_BY(value_mu_);

  // The write in progress.
  std::shared_ptr<TensorBuffer> pending_ ABSL_GUARDED_BY(writer_mu_);
  bool in_place_ ABSL_GUARDED_BY(writer_mu_) = false;
};

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_TENSOR_VARIABLE_CELL_H_
