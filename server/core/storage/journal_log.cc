#include "server/core/storage/journal_log.h"

#include "server/core/storage/log_records.h"

namespace varscope::core {
namespace {

absl::Status Write(Journal* journal, const EncodedRecord& record) {
  return journal->Append(record.header, record.data);
}

}  // namespace

absl::Status JournalLog::LogCreation(const CreationRecord& record) {
  return Write(journal_, EncodeCreation(record));
}

absl::Status JournalLog::LogDeletion(absl::string_view name) {
  return Write(journal_, EncodeDeletion(name));
}

absl::Status JournalLog::ReserveRevisions(uint64_t ceiling) {
  return Write(journal_, EncodeRevisionCeiling(ceiling));
}

absl::Status JournalLog::LogPush(const PushRecord& record) {
  return Write(journal_, EncodePush(record));
}

absl::Status JournalLog::LogTraining(const TrainingRecord& record) {
  return Write(journal_, EncodeTraining(record));
}

absl::Status JournalLog::LogRestore(absl::string_view name, uint64_t revision) {
  return Write(journal_, EncodeRestore(name, revision));
}

}  // namespace varscope::core
