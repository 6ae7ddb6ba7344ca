// File: store_log.h
// What the store writes to the log, as an interface the store owns and
// storage/ implements (storage/journal_log.h), so the namespace never
// depends on the log's format or files.
//
// Thread-safety: implementations are thread-safe. Each call returns once
// its record is durable; an error refuses the change it describes (the
// caller changes nothing) and may be sticky.
#ifndef VARSCOPE_SERVER_CORE_NAMESPACE_STORE_LOG_H_
#define VARSCOPE_SERVER_CORE_NAMESPACE_STORE_LOG_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "server/core/namespace/revision_clock.h"
#include "server/core/namespace/variable_state.h"

namespace varscope::core {

// New variables with their initial values, created together at one
// revision (one variable, the parts of a partitioned variable, or the
// tensors of an import).
struct CreationRecord {
  uint64_t revision = 0;
  std::vector<VariableState> variables;  // value set; version = revision
  std::optional<PartitionedState> partitioned;
};

class StoreLog : public RevisionClock::Reserver {
 public:
  virtual absl::Status LogCreation(const CreationRecord& record) = 0;
  // `name` is a variable or a partitioned variable (with all its parts).
  virtual absl::Status LogDeletion(absl::string_view name) = 0;
};

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_NAMESPACE_STORE_LOG_H_
