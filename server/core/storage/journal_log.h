// File: journal_log.h
// The write-ahead log as the store and the data plane see it: StoreLog and
// UpdateLog (their interfaces) written to a Journal with the encodings of
// log_records.h. Which changes reach it is the callers' choice: the store
// logs every creation, deletion and revision ceiling; the data plane logs
// optimizer settings, and pushes only under strict durability.
//
// Thread-safety: thread-safe (the Journal is).
#ifndef VARSCOPE_SERVER_CORE_STORAGE_JOURNAL_LOG_H_
#define VARSCOPE_SERVER_CORE_STORAGE_JOURNAL_LOG_H_

#include "server/core/data/update_log.h"
#include "server/core/namespace/store_log.h"
#include "server/core/storage/journal.h"

namespace varscope::core {

class JournalLog : public StoreLog, public UpdateLog {
 public:
  explicit JournalLog(Journal* journal) : journal_(journal) {}  // not owned
  JournalLog(const JournalLog&) = delete;
  JournalLog& operator=(const JournalLog&) = delete;

  absl::Status LogCreation(const CreationRecord& record) override;
  absl::Status LogDeletion(absl::string_view name) override;
  absl::Status ReserveRevisions(uint64_t ceiling) override;
  absl::Status LogPush(const PushRecord& record) override;
  absl::Status LogTraining(const TrainingRecord& record) override;
  // The store was replaced by checkpoint `name` at `revision` (Restore).
  absl::Status LogRestore(absl::string_view name, uint64_t revision);

  Journal* journal() const { return journal_; }

 private:
  Journal* const journal_;
};

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_STORAGE_JOURNAL_LOG_H_
