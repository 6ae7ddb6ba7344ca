// File: convert.h (internal)
// The client's own types to and from the wire messages (varscope.v1), one
// function per direction; used only by the gRPC connection.
#ifndef VARSCOPE_CLIENT_SRC_CONVERT_H_
#define VARSCOPE_CLIENT_SRC_CONVERT_H_

#include "varscope/connection.h"
#include "varscope/types.h"
#include "varscope/v1/admin.pb.h"
#include "varscope/v1/types.pb.h"
#include "varscope/v1/variable_data.pb.h"
#include "varscope/v1/variable_store.pb.h"

namespace varscope::internal {

v1::DataType ToProto(DataType dtype);
DataType FromProto(v1::DataType dtype);
v1::Reuse ToProto(Reuse reuse);
Reuse FromProto(v1::Reuse reuse);
void ToProto(const Tensor& tensor, v1::TensorValue* out);
void ToProto(const Initializer& init, v1::Initializer* out);
Initializer FromProto(const v1::Initializer& init);
void ToProto(const Partitioner& partitioner, v1::Partitioner* out);
Partitioner FromProto(const v1::Partitioner& partitioner);
void ToProto(const OptimizerConfig& config, v1::OptimizerConfig* out);
void ToProto(const OpenScopeArgs& args, v1::OpenScopeRequest* out);
void ToProto(const GetVariableArgs& args, v1::GetVariableRequest* out);
void ToProto(const NewVariableArgs& args, v1::NewVariableRequest* out);
// The update header; the data is added by the caller (copied or streamed).
void ToProto(const PushItem& item, v1::Update* out);

VariableInfo FromProto(const v1::Variable& variable);
ScopeInfo FromProto(const v1::Scope& scope);
UpdateResult FromProto(const v1::UpdateResult& result);
TrainingState FromProto(const v1::TrainingState& state);
WatchEvent FromProto(const v1::WatchEvent& event);
CheckpointInfo FromProto(const v1::CheckpointInfo& info);
ServerStats FromProto(const v1::ServerStats& stats);
SessionSummary FromProto(const v1::SessionSummary& session);
Tensor FromProto(const v1::Tensor& tensor);

}  // namespace varscope::internal

#endif  // VARSCOPE_CLIENT_SRC_CONVERT_H_
