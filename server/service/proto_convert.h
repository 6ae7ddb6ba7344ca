// File: proto_convert.h
// Conversion between the public API messages (varscope.v1) and the core's
// own types, one function per direction. Wire-level checks live here
// (unknown enum values, data length vs shape, mutually exclusive fields);
// semantic checks (names, reuse, shapes) stay in the core.
//
// Thread-safety: pure functions.
#ifndef VARSCOPE_SERVER_SERVICE_PROTO_CONVERT_H_
#define VARSCOPE_SERVER_SERVICE_PROTO_CONVERT_H_

#include "absl/status/statusor.h"
#include "server/core/namespace/scope_tree.h"
#include "server/core/namespace/session_manager.h"
#include "server/core/namespace/variable_store.h"
#include "varscope/v1/variable_store.pb.h"

namespace varscope::service {

namespace pb = ::varscope::v1;

absl::StatusOr<core::DType> FromProto(pb::DataType dtype);
absl::StatusOr<core::Reuse> FromProto(pb::Reuse reuse);
absl::StatusOr<core::ScopeKind> FromProto(pb::ScopeKind kind);
absl::StatusOr<core::TensorValue> FromProto(const pb::TensorValue& value);
absl::StatusOr<core::InitializerSpec> FromProto(const pb::Initializer& init);
absl::StatusOr<core::PartitionerSpec> FromProto(const pb::Partitioner& part);
absl::StatusOr<core::OpenScopeRequest> FromProto(
    const pb::OpenScopeRequest& request);
absl::StatusOr<core::GetVariableRequest> FromProto(
    const pb::GetVariableRequest& request);
absl::StatusOr<core::NewVariableRequest> FromProto(
    const pb::NewVariableRequest& request);
absl::StatusOr<core::ScopeDefaultsUpdate> FromProto(
    const pb::UpdateScopeRequest& request);


pb::DataType ToProto(core::DType dtype);
pb::Reuse ToProto(core::Reuse reuse);
void ToProto(const core::InitializerSpec& spec, pb::Initializer* out);
void ToProto(const core::PartitionerSpec& spec, pb::Partitioner* out);
void ToProto(const core::ScopeInfo& scope, pb::Scope* out);
void ToProto(const core::VariableInfo& info, pb::Variable* out);
void ToProto(const core::ScopeNode& node, pb::ScopeNode* out);

}  // namespace varscope::service

#endif  // VARSCOPE_SERVER_SERVICE_PROTO_CONVERT_H_
