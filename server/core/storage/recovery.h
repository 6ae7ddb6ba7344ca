// File: recovery.h
// The durable half of a server, opened in one call: restore the newest
// checkpoint (keeping its versions), replay the write-ahead log after it,
// open the log for new records and attach it to the store and data plane,
// then give every variable one new revision (pushes may have been lost
// since the checkpoint, and a restarted server must never repeat a version
// it may have served).
//
// Replay is idempotent, because a record may describe a change the
// checkpoint already holds: creations of existing variables are skipped,
// pushes apply only to variables still at the record's version, deletions
// only to variables that exist.
//
// Example:
//   RecoveryReport report;
//   ASSIGN_OR_RETURN(std::unique_ptr<DurableStore> durable,
//       DurableStore::Open(env, &store, &data, {.data_dir = "/srv/vs"}, &report));
//   durable->checkpointer()->Save();
//
// Thread-safety: Open runs before serving; afterwards the checkpointer and
// log are thread-safe.
#ifndef VARSCOPE_SERVER_CORE_STORAGE_RECOVERY_H_
#define VARSCOPE_SERVER_CORE_STORAGE_RECOVERY_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/core/data/data_plane.h"
#include "server/core/namespace/variable_store.h"
#include "server/core/storage/checkpoint.h"
#include "server/core/storage/env.h"
#include "server/core/storage/journal.h"
#include "server/core/storage/journal_log.h"

namespace varscope::core {

struct DurabilityOptions {
  std::string data_dir;
  int keep_checkpoints = 5;
  // Fall back to the newest valid checkpoint, and replay the log up to its
  // damage, instead of refusing to start.
  bool recover = false;
  // Log every push before it is acknowledged (else creations, deletions
  // and settings only).
  bool strict = false;
  // Restore progress, every few seconds.
  Checkpointer::Progress progress;
};

struct RecoveryReport {
  RestoreReport restored;   // checkpoint.name empty: started empty
  ReplayReport replayed;
  double replay_seconds = 0;
  uint64_t revision = 0;    // the clock once serving
};

class DurableStore {
 public:
  static absl::StatusOr<std::unique_ptr<DurableStore>> Open(
      Env* env, VariableStore* store, DataPlane* data,
      const DurabilityOptions& options, RecoveryReport* report);
  DurableStore(const DurableStore&) = delete;
  DurableStore& operator=(const DurableStore&) = delete;

  Checkpointer* checkpointer() { return checkpointer_.get(); }
  Journal* journal() { return journal_.get(); }

 private:
  DurableStore() = default;
  // The steps of Open.
  absl::Status RestoreNewest(const DurabilityOptions& options,
                             RecoveryReport* report);
  absl::Status ReplayLog(Env* env, const DurabilityOptions& options,
                         RecoveryReport* report);
  absl::Status AttachLog(Env* env, const DurabilityOptions& options);

  VariableStore* store_ = nullptr;  // Not owned.
  DataPlane* data_ = nullptr;       // Not owned.
  std::unique_ptr<Checkpointer> checkpointer_;
  std::unique_ptr<Journal> journal_;
  std::unique_ptr<JournalLog> log_;
};

// Applies one log record (replay); exposed for the fuzzer.
absl::Status ApplyLogRecord(const JournalRecord& record, VariableStore* store,
                            DataPlane* data, Checkpointer* checkpointer);

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_STORAGE_RECOVERY_H_
