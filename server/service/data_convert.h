// File: data_convert.h
// Conversions for the data plane (varscope.v1.VariableData) between the
// public messages and core types. Wire-level checks live here (unknown
// enums, missing op or dtype); the core checks lengths, ranges and names.
//
// Thread-safety: pure functions.
#ifndef VARSCOPE_SERVER_SERVICE_DATA_CONVERT_H_
#define VARSCOPE_SERVER_SERVICE_DATA_CONVERT_H_

#include "absl/status/statusor.h"
#include "server/core/namespace/change_feed.h"
#include "server/core/data/data_plane.h"
#include "varscope/v1/variable_data.pb.h"

namespace varscope::service {

namespace pb = ::varscope::v1;

absl::StatusOr<core::OptimizerSpec> FromProto(const pb::OptimizerConfig& config);
// The returned update borrows `update.data()`; keep the message alive.
absl::StatusOr<core::Update> FromProto(const pb::Update& update);
core::ReadRequest FromProto(const pb::Selector& selector);

void ToProto(const core::UpdateResult& result, pb::UpdateResult* out);
void ToProto(const core::TrainingInfo& info, absl::string_view name,
             pb::TrainingState* out);
pb::WatchEvent::Kind ToProto(core::ChangeKind kind);

}  // namespace varscope::service

#endif  // VARSCOPE_SERVER_SERVICE_DATA_CONVERT_H_
