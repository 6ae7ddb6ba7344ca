// File: recovery.h
// Replays write-ahead-log records onto a store restored from a checkpoint.
// Replay is idempotent, because a record may describe a change the
// checkpoint already holds: creations of existing variables are skipped,
// pushes apply only to variables still at the record's version_before,
// deletions only to variables that exist.
//
// Thread-safety: call before serving, with the journal detached from the
// store and data plane (replay must not log again).
#ifndef VARSCOPE_SERVER_CORE_STORAGE_RECOVERY_H_
#define VARSCOPE_SERVER_CORE_STORAGE_RECOVERY_H_

#include "absl/status/status.h"
#include "server/core/data/data_plane.h"
#include "server/core/storage/journal.h"
#include "server/core/namespace/variable_store.h"

namespace varscope::core {

absl::Status ApplyJournalRecord(VariableStore* store, DataPlane* data,
                                const JournalRecord& record);

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_STORAGE_RECOVERY_H_
