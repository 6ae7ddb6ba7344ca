// File: update_log.h
// What the data plane writes to the log, as an interface it owns and
// storage/ implements (storage/journal_log.h): pushes (strict durability
// only) and optimizer settings (always).
//
// Thread-safety: implementations are thread-safe. Each call returns once
// its record is durable; an error refuses the change it describes (the
// caller changes nothing) and may be sticky.
#ifndef VARSCOPE_SERVER_CORE_DATA_UPDATE_LOG_H_
#define VARSCOPE_SERVER_CORE_DATA_UPDATE_LOG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "server/core/data/update.h"

namespace varscope::core {

// One update of a logged push: the update as requested (its data is
// borrowed) and the version of the variable it applies to. Replay applies
// it only to a variable still at that version, so replay is idempotent.
struct LoggedUpdate {
  const Update* update = nullptr;  // Not owned.
  std::string name;                // full name, no ":0"
  uint64_t version_before = 0;
};

// A push applied atomically at one revision.
struct PushRecord {
  uint64_t revision = 0;
  std::vector<LoggedUpdate> updates;
};

// SetOptimizer on several variables at one revision (slots are created by
// replaying it, deterministically).
struct TrainingRecord {
  uint64_t revision = 0;
  std::vector<std::string> names;
  TrainingConfig config;
};

class UpdateLog {
 public:
  virtual ~UpdateLog() = default;
  virtual absl::Status LogPush(const PushRecord& record) = 0;
  virtual absl::Status LogTraining(const TrainingRecord& record) = 0;
};

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_DATA_UPDATE_LOG_H_
