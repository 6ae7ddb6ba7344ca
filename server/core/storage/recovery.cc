#include "server/core/storage/recovery.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/core/base/status_macros.h"
#include "server/core/storage/log_records.h"

namespace varscope::core {
namespace {

absl::Status ReplayPush(VariableStore* store, DataPlane* data,
                        DecodedRecord record) {
  std::vector<Update> updates;
  for (Update& update : record.updates) {
    absl::StatusOr<VariableHandle> var = store->Find(update.name);
    if (!var.ok()) continue;  // deleted later in the log
    const uint64_t now = var->cell->version();
    if (now >= record.revision) continue;  // the checkpoint already has it
    if (now != *update.expected_version) {
      return absl::DataLossError(absl::StrCat(
          "the log is missing updates of ", update.name, ": it is at version ",
          now, " and the next logged push expects version ",
          *update.expected_version));
    }
    updates.push_back(std::move(update));
  }
  if (updates.empty()) return absl::OkStatus();
  return data->ReplayPush(std::move(updates), record.revision).status();
}

absl::Status ReplayTraining(VariableStore* store, DataPlane* data,
                            const DecodedRecord& record) {
  std::vector<std::string> names;
  for (const std::string& name : record.names) {
    if (store->Find(name).ok()) names.push_back(name);  // else deleted later
  }
  if (names.empty()) return absl::OkStatus();
  return data->ReplayTraining(names, record.config, record.revision);
}

}  // namespace

absl::Status ApplyLogRecord(const JournalRecord& journal_record,
                            VariableStore* store, DataPlane* data,
                            Checkpointer* checkpointer) {
  VARSCOPE_ASSIGN_OR_RETURN(DecodedRecord record, DecodeRecord(journal_record));
  store->revisions().AdvanceTo(record.revision);
  switch (record.kind) {
    case LogRecordKind::kCreation: {
      StoreSnapshot add;
      add.variables = std::move(record.creation.variables);
      if (record.creation.partitioned) {
        add.partitioned.push_back(std::move(*record.creation.partitioned));
      }
      return store->Insert(std::move(add));
    }
    case LogRecordKind::kDeletion: {
      absl::StatusOr<std::vector<std::string>> removed =
          store->Delete(record.name, /*foreign_part=*/true);
      return removed.ok() || absl::IsNotFound(removed.status()) ? absl::OkStatus()
                                                                : removed.status();
    }
    case LogRecordKind::kPush:
      return ReplayPush(store, data, std::move(record));
    case LogRecordKind::kTraining:
      return ReplayTraining(store, data, record);
    case LogRecordKind::kRevisionCeiling:
      return absl::OkStatus();  // the clock moved above it
    case LogRecordKind::kRestore:
      if (checkpointer == nullptr) {
        return absl::DataLossError("a logged restore without checkpoints");
      }
      return checkpointer->ReplayRestore(record.name, record.revision);
  }
  return absl::DataLossError("unknown log record");
}

absl::StatusOr<std::unique_ptr<DurableStore>> DurableStore::Open(
    Env* env, VariableStore* store, DataPlane* data,
    const DurabilityOptions& options, RecoveryReport* report) {
  std::unique_ptr<DurableStore> durable(new DurableStore());
  durable->store_ = store;
  durable->data_ = data;
  durable->checkpointer_ = std::make_unique<Checkpointer>(
      store, env, options.data_dir, options.keep_checkpoints);
  if (options.progress) {
    durable->checkpointer_->SetProgress(options.progress, absl::Seconds(5));
  }
  VARSCOPE_RETURN_IF_ERROR(durable->RestoreNewest(options, report));
  VARSCOPE_RETURN_IF_ERROR(durable->ReplayLog(env, options, report));
  VARSCOPE_RETURN_IF_ERROR(durable->AttachLog(env, options));
  // Pushes since the checkpoint may be lost (relaxed durability) after
  // their versions were served: continue above everything, for everyone.
  VARSCOPE_RETURN_IF_ERROR(store->MakeRoomForRevisions());
  if (store->num_variables() > 0) store->BumpAllVersions();
  report->revision = store->revisions().current();
  return durable;
}

absl::Status DurableStore::RestoreNewest(const DurabilityOptions& options,
                                         RecoveryReport* report) {
  VARSCOPE_ASSIGN_OR_RETURN(report->restored,
                            checkpointer_->RestoreNewest(options.recover));
  return absl::OkStatus();
}

absl::Status DurableStore::ReplayLog(Env* env, const DurabilityOptions& options,
                                     RecoveryReport* report) {
  const absl::Time start = absl::Now();
  VARSCOPE_ASSIGN_OR_RETURN(
      report->replayed,
      Journal::Replay(env, options.data_dir, report->restored.checkpoint.wal_segment,
                      options.recover, [&](const JournalRecord& record) {
                        return ApplyLogRecord(record, store_, data_,
                                              checkpointer_.get());
                      }));
  report->replay_seconds = absl::ToDoubleSeconds(absl::Now() - start);
  return absl::OkStatus();
}

absl::Status DurableStore::AttachLog(Env* env, const DurabilityOptions& options) {
  VARSCOPE_ASSIGN_OR_RETURN(journal_, Journal::Open(env, options.data_dir));
  log_ = std::make_unique<JournalLog>(journal_.get());
  store_->set_log(log_.get());
  data_->set_log(log_.get(), options.strict);
  checkpointer_->set_log(log_.get());
  return absl::OkStatus();
}

}  // namespace varscope::core
