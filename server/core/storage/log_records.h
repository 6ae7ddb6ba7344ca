// File: log_records.h
// The records of the write-ahead log, every kind in one module: how each is
// encoded into a journal record and decoded back. A record's header is
//
//   [u8 format version = 2][u8 kind][JSON body]
//
// and its data holds the tensor bytes (initial values, pushed data, sparse
// indices) back to back, in the order the body lists them. Kinds are the
// explicit numbers below, enums inside bodies explicit names
// (json_forms_internal.h): never a C++ enum's value.
//
// Example:
//   EncodedRecord e = EncodeDeletion("model/w");
//   RETURN_IF_ERROR(journal->Append(e.header, e.data));
//   ...
//   ASSIGN_OR_RETURN(DecodedRecord r, DecodeRecord(journal_record));
//
// Thread-safety: pure functions.
#ifndef VARSCOPE_SERVER_CORE_STORAGE_LOG_RECORDS_H_
#define VARSCOPE_SERVER_CORE_STORAGE_LOG_RECORDS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/core/data/update_log.h"
#include "server/core/namespace/store_log.h"
#include "server/core/storage/journal.h"

namespace varscope::core {

inline constexpr uint8_t kLogFormatVersion = 2;

// On-disk numbers; never renumber or reuse one.
enum class LogRecordKind : uint8_t {
  kCreation = 1,         // new variables with their initial values
  kDeletion = 2,         // a variable or partitioned variable
  kPush = 3,             // an atomic push (strict durability)
  kTraining = 4,         // SetOptimizer on variables
  kRevisionCeiling = 5,  // revisions up to this may be handed out
  kRestore = 6,          // the store was replaced by a checkpoint
};

struct EncodedRecord {
  std::string header;
  std::vector<absl::string_view> data;  // borrowed from the encoded record
};

EncodedRecord EncodeCreation(const CreationRecord& record);
EncodedRecord EncodeDeletion(absl::string_view name);
EncodedRecord EncodePush(const PushRecord& record);
EncodedRecord EncodeTraining(const TrainingRecord& record);
EncodedRecord EncodeRevisionCeiling(uint64_t ceiling);
EncodedRecord EncodeRestore(absl::string_view checkpoint, uint64_t revision);

// A decoded record. Pushed data are views into the JournalRecord it was
// decoded from, which must outlive it.
struct DecodedRecord {
  LogRecordKind kind = LogRecordKind::kCreation;
  // The revision the change was made at; the ceiling for kRevisionCeiling.
  uint64_t revision = 0;
  CreationRecord creation;            // kCreation (values copied)
  std::string name;                   // kDeletion; the checkpoint of kRestore
  std::vector<Update> updates;        // kPush: expected_version = the version
                                      // each applied to
  std::vector<std::string> names;     // kTraining
  TrainingConfig config;              // kTraining
};

// DATA_LOSS for an unknown format version or kind, or a malformed body.
absl::StatusOr<DecodedRecord> DecodeRecord(const JournalRecord& record);

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_STORAGE_LOG_RECORDS_H_
