// File: state_json.h
// JSON forms of variable metadata, shared by checkpoints (metadata.json)
// and the write-ahead log, so both describe a variable the same way.
//
// Thread-safety: pure functions. The *FromJson functions throw
// nlohmann::json::exception on a missing or mistyped field; callers turn
// that into DATA_LOSS naming their file.
#ifndef VARSCOPE_SERVER_CORE_STORAGE_STATE_JSON_H_
#define VARSCOPE_SERVER_CORE_STORAGE_STATE_JSON_H_

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "server/core/tensor/optimizer.h"
#include "server/core/namespace/variable_store.h"

namespace varscope::core {

nlohmann::json InitializerToJson(const InitializerSpec& spec);
InitializerSpec InitializerFromJson(const nlohmann::json& j);
nlohmann::json OptimizerToJson(const OptimizerSpec& spec);
OptimizerSpec OptimizerFromJson(const nlohmann::json& j);
// Everything but the value (and its CRC).
nlohmann::json VariableStateToJson(const VariableState& v);
absl::StatusOr<VariableState> VariableStateFromJson(const nlohmann::json& j);
nlohmann::json PartitionedStateToJson(const PartitionedState& p);
absl::StatusOr<PartitionedState> PartitionedStateFromJson(const nlohmann::json& j);

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_STORAGE_STATE_JSON_H_
