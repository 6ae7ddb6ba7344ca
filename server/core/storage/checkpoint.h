// File: checkpoint.h
// Checkpoints of the whole store in a data directory:
//
//   <data_dir>/checkpoints/<name>/model.safetensors  tensors by full name
//                                 metadata.json      dtype, shape, version,
//                                                    trainable, collections,
//                                                    initializer, optimizer
//                                                    state, partitions
//                                 MANIFEST.json      size and CRC-32 of both
//
// A save writes everything under ".tmp-<name>", fsyncs each file, renames
// the directory into place and fsyncs the parent, so a crash leaves either
// the old set of checkpoints or the old set plus a complete new one. Values
// are copy-on-write snapshots, so saving never stalls pushes. Automatic
// checkpoints are named "ckpt-<sequence>"; only the newest `keep` of those
// are kept (named ones stay until deleted by hand).
//
// Example:
//   Checkpointer ckpt(&store, env.get(), "/var/lib/varscope", /*keep=*/5);
//   absl::StatusOr<CheckpointInfo> saved = ckpt.Save();
//   absl::StatusOr<RestoreReport> r = ckpt.RestoreNewest(/*recover=*/false);
//
// Thread-safety: all methods are thread-safe; saves and restores run one at
// a time.
#ifndef VARSCOPE_SERVER_CORE_STORAGE_CHECKPOINT_H_
#define VARSCOPE_SERVER_CORE_STORAGE_CHECKPOINT_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/core/base/histogram.h"
#include "server/core/storage/env.h"
#include "server/core/storage/journal_log.h"
#include "server/core/namespace/variable_store.h"

namespace varscope::core {

// Checkpoint names: 1-64 of [A-Za-z0-9._-], not starting with '.'.
absl::Status ValidateCheckpointName(absl::string_view name);

struct CheckpointInfo {
  std::string name;
  std::string path;       // the checkpoint's directory
  int64_t sequence = 0;   // increases with every save
  int64_t bytes = 0;      // of all its files
  int64_t variables = 0;
  std::string created;    // RFC 3339, UTC
  // The first write-ahead-log segment not contained in it (0: no log).
  int64_t wal_segment = 0;
  // A server restarted from it hands out revisions above this.
  uint64_t revision = 0;
};

struct RestoreReport {
  CheckpointInfo checkpoint;  // empty name: nothing to restore
  int64_t variables = 0;
  int64_t tensor_bytes = 0;
  double seconds = 0;
  // --recover: checkpoints skipped as damaged, each with the reason.
  std::vector<std::string> skipped;
};

struct ImportReport {
  std::vector<std::string> names;  // created variables, full names
  int64_t tensor_bytes = 0;
};

// Creates one variable per tensor of a safetensors file made elsewhere
// (e.g. exported from PyTorch), named "<scope>/<tensor name>", with the
// file's dtype, shape and values, version 1. All or nothing: every name is
// validated and checked to be free, and the file fully read, before the
// first variable is created. `trainable` unset = true.
absl::StatusOr<ImportReport> ImportSafetensors(VariableStore* store, Env* env,
                                               const std::string& path,
                                               absl::string_view scope,
                                               std::optional<bool> trainable);

class Checkpointer {
 public:
  // Not owned: store and env must outlive the checkpointer.
  Checkpointer(VariableStore* store, Env* env, std::string data_dir, int keep);
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // Saves the store; `name` "" picks "ckpt-<sequence>". Names are 1-64 of
  // [A-Za-z0-9._-], not starting with '.'; ALREADY_EXISTS if taken. A
  // failed save (write error, full disk) removes its temporary directory
  // and leaves every earlier checkpoint as it was.
  absl::StatusOr<CheckpointInfo> Save(absl::string_view name = "")
      ABSL_LOCKS_EXCLUDED(mu_);
  // The same, calling `after_cut` as soon as the snapshot is taken (before
  // the files are written), also when the save then fails: a cluster cut
  // lets this shard's changes go on from there.
  absl::StatusOr<CheckpointInfo> Save(absl::string_view name,
                                      const std::function<void()>& after_cut)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Complete checkpoints, oldest first.
  absl::StatusOr<std::vector<CheckpointInfo>> List() ABSL_LOCKS_EXCLUDED(mu_);
  // Replaces the store with checkpoint `name`, all or nothing: every file
  // is read and checked before the store changes. Every variable gets one
  // new revision. With a log, the restore is logged (so a crash before the
  // next checkpoint replays it) and a fresh checkpoint follows.
  absl::StatusOr<RestoreReport> Restore(absl::string_view name)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Restore in two steps, for a cluster that restores every shard or none:
  // Prepare reads and checks all of checkpoint `name` (the store is
  // untouched); Apply swaps it in (as Restore does), calling `after_swap`
  // (when set) right after the swap, before the fresh checkpoint is saved.
  struct PreparedRestore {
    CheckpointInfo info;
    StoreSnapshot snapshot;
    RestoreReport report;
  };
  absl::StatusOr<PreparedRestore> PrepareRestore(absl::string_view name)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<RestoreReport> ApplyRestore(
      PreparedRestore prepared, const std::function<void()>& after_swap = nullptr)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Offline use (varscope-reshard; the store may be null): what checkpoint
  // `name` holds, checked, and a snapshot written as a new checkpoint.
  absl::StatusOr<StoreSnapshot> LoadSnapshot(absl::string_view name)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<CheckpointInfo> SaveSnapshot(absl::string_view name,
                                              const StoreSnapshot& snapshot)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Log replay of a logged restore: the same, at the logged revision,
  // without logging or saving.
  absl::Status ReplayRestore(absl::string_view name, uint64_t revision)
      ABSL_LOCKS_EXCLUDED(mu_);
  // On start: restores the newest checkpoint, keeping its versions. When it
  // is damaged, fails
  // with a message naming the file and offset, unless `recover`, which
  // falls back to the newest valid one and reports what it skipped.
  absl::StatusOr<RestoreReport> RestoreNewest(bool recover)
      ABSL_LOCKS_EXCLUDED(mu_);

  const std::string& checkpoints_dir() const { return dir_; }
  // Coordinates saves with the write-ahead log (null = no log): each save
  // switches the log to a new segment and snapshots while no change is in
  // progress, records the first segment it does not contain, and drops
  // older segments. Set before serving; not owned.
  void set_log(JournalLog* log) { log_ = log; }
  // The store's change count (ChangeFeed::published) covered by the last
  // save or restore: equal to the current count means nothing to save.
  uint64_t saved_at() const { return saved_at_.load(std::memory_order_relaxed); }
  // Successful saves: how long each took, and how long each paused changes
  // (the snapshot under the update barrier).
  const Histogram& save_seconds() const { return save_seconds_; }
  const Histogram& pause_seconds() const { return pause_seconds_; }

  // Called during restores, at most every `every`, with tensor bytes read
  // so far, the total, and the variables done (for progress logs).
  using Progress = std::function<void(int64_t done, int64_t total, int64_t variables)>;
  void SetProgress(Progress progress, absl::Duration every) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    progress_ = std::move(progress);
    progress_every_ = every;
  }

 private:
  absl::StatusOr<std::vector<CheckpointInfo>> ListLocked()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A save in named steps: name it, snapshot at one cut (the update
  // barrier held only for that), write the files, prune, drop old log.
  absl::StatusOr<CheckpointInfo> SaveLocked(
      absl::string_view name, const std::function<void()>& after_cut = nullptr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<RestoreReport> ApplyLocked(
      PreparedRestore prepared, absl::Time start,
      const std::function<void()>& after_swap = nullptr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<CheckpointInfo> NameNext(absl::string_view name)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<StoreSnapshot> SnapshotAtCut(CheckpointInfo* info)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status WriteFiles(const StoreSnapshot& snapshot, CheckpointInfo* info)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DropCoveredLog(int64_t segment) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Reads and verifies a checkpoint, all of it.
  absl::StatusOr<StoreSnapshot> Load(const CheckpointInfo& info,
                                     RestoreReport* report)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Prune() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<CheckpointInfo> FindCheckpoint(absl::string_view name)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  VariableStore* const store_;  // Not owned.
  Env* const env_;              // Not owned.
  const std::string dir_;       // <data_dir>/checkpoints
  const int keep_;
  JournalLog* log_ = nullptr;  // Not owned.
  std::atomic<uint64_t> saved_at_{0};
  Histogram save_seconds_{Histogram::DurationBounds()};
  Histogram pause_seconds_{Histogram::DurationBounds()};
  absl::Mutex mu_;
  Progress progress_ ABSL_GUARDED_BY(mu_);
  absl::Duration progress_every_ ABSL_GUARDED_BY(mu_) = absl::Seconds(5);
};

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_STORAGE_CHECKPOINT_H_
