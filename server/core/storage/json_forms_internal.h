// File: json_forms_internal.h
// Private to storage/: the JSON forms of variable metadata, shared by
// checkpoints (metadata.json) and log records (log_records.cc), so both
// describe a variable the same way. Every enum is written by an explicit
// name from a table here (never a C++ enum's numeric value), so reordering
// an enum can never change what a file means. JSON stays inside storage/.
//
// Thread-safety: pure functions. The *FromJson functions return DATA_LOSS
// (never throw) on a missing, mistyped or unknown field.
#ifndef VARSCOPE_SERVER_CORE_STORAGE_JSON_FORMS_INTERNAL_H_
#define VARSCOPE_SERVER_CORE_STORAGE_JSON_FORMS_INTERNAL_H_

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "server/core/namespace/variable_state.h"
#include "server/core/tensor/optimizer.h"

namespace varscope::core {

// dtypes by TensorFlow's name ("float32", "bfloat16", ...).
std::string DTypeToJson(DType dtype);
absl::StatusOr<DType> DTypeFromJson(const nlohmann::json& j);
nlohmann::json InitializerToJson(const InitializerSpec& spec);
absl::StatusOr<InitializerSpec> InitializerFromJson(const nlohmann::json& j);
nlohmann::json OptimizerToJson(const OptimizerSpec& spec);
absl::StatusOr<OptimizerSpec> OptimizerFromJson(const nlohmann::json& j);
// Everything but the value (and its CRC).
nlohmann::json VariableStateToJson(const VariableState& v);
absl::StatusOr<VariableState> VariableStateFromJson(const nlohmann::json& j);
nlohmann::json PartitionedStateToJson(const PartitionedState& p);
absl::StatusOr<PartitionedState> PartitionedStateFromJson(const nlohmann::json& j);

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_STORAGE_JSON_FORMS_INTERNAL_H_
