// Connection's defaults: UNIMPLEMENTED, so a test double overrides only
// the calls it expects.
#include "varscope/connection.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace varscope {
namespace {

absl::Status Unimplemented(absl::string_view method) {
  return absl::UnimplementedError(
      absl::StrCat(method, " is not implemented by this Connection"));
}

template <typename T>
std::future<absl::StatusOr<T>> ReadyUnimplemented(absl::string_view method) {
  std::promise<absl::StatusOr<T>> promise;
  promise.set_value(Unimplemented(method));
  return promise.get_future();
}

// A watch that has already ended with `status`.
class EndedWatch : public WatchStream {
 public:
  explicit EndedWatch(absl::Status status) : status_(std::move(status)) {}
  bool Next(WatchEvent*) override { return false; }
  void Cancel() override {}
  absl::Status status() override { return status_; }

 private:
  absl::Status status_;
};

}  // namespace

absl::StatusOr<Connection::Session> Connection::OpenSession(const std::string& client_name, absl::Duration lease, const CallOptions& call) {
  return Unimplemented("OpenSession");
}

absl::StatusOr<absl::Duration> Connection::KeepAlive(uint64_t session, const CallOptions& call) {
  return Unimplemented("KeepAlive");
}

absl::Status Connection::CloseSession(uint64_t session, const CallOptions& call) {
  return Unimplemented("CloseSession");
}

absl::StatusOr<ScopeInfo> Connection::OpenScope(const OpenScopeArgs& args, const CallOptions& call) {
  return Unimplemented("OpenScope");
}

absl::StatusOr<ScopeInfo> Connection::UpdateScope(uint64_t session, uint64_t scope, const ScopeDefaults& defaults, const CallOptions& call) {
  return Unimplemented("UpdateScope");
}

absl::StatusOr<ScopeInfo> Connection::ReuseVariables(uint64_t session, uint64_t scope, const CallOptions& call) {
  return Unimplemented("ReuseVariables");
}

absl::Status Connection::CloseScope(uint64_t session, uint64_t scope, const CallOptions& call) {
  return Unimplemented("CloseScope");
}

absl::StatusOr<GetVariableResult> Connection::GetVariable(const GetVariableArgs& args, const CallOptions& call) {
  return Unimplemented("GetVariable");
}

absl::StatusOr<VariableInfo> Connection::NewVariable(const NewVariableArgs& args, const CallOptions& call) {
  return Unimplemented("NewVariable");
}

absl::StatusOr<std::string> Connection::OpName(uint64_t session, uint64_t scope, const std::string& name, bool preview, const CallOptions& call) {
  return Unimplemented("OpName");
}

absl::StatusOr<VariablePage> Connection::ListVariables(const ListVariablesArgs& args, const CallOptions& call) {
  return Unimplemented("ListVariables");
}

absl::StatusOr<ScopePage> Connection::ListScopes(const ListScopesArgs& args, const CallOptions& call) {
  return Unimplemented("ListScopes");
}

absl::StatusOr<VariableInfo> Connection::DescribeVariable(const std::string& name, const CallOptions& call) {
  return Unimplemented("DescribeVariable");
}

absl::StatusOr<std::vector<std::string>> Connection::DeleteVariable(const std::string& name, const CallOptions& call) {
  return Unimplemented("DeleteVariable");
}

absl::StatusOr<PullResult> Connection::Pull(const PullArgs& args, DataType dtype, absl::Span<uint8_t> out, const CallOptions& call) {
  return Unimplemented("Pull");
}

absl::StatusOr<std::vector<Tensor>> Connection::PullMany(const std::vector<std::string>& names, const CallOptions& call) {
  return Unimplemented("PullMany");
}

absl::StatusOr<std::vector<UpdateResult>> Connection::Push(const std::vector<PushItem>& items, const CallOptions& call) {
  return Unimplemented("Push");
}

absl::StatusOr<Tensor> Connection::Gather(const std::string& name, const std::vector<int64_t>& indices, const CallOptions& call) {
  return Unimplemented("Gather");
}

absl::StatusOr<std::vector<TrainingState>> Connection::SetOptimizer(const std::vector<std::string>& names, const std::optional<OptimizerConfig>& optimizer, int replicas_to_aggregate, const CallOptions& call) {
  return Unimplemented("SetOptimizer");
}

absl::StatusOr<TrainingState> Connection::DescribeTraining(const std::string& name, const CallOptions& call) {
  return Unimplemented("DescribeTraining");
}

absl::StatusOr<uint64_t> Connection::WaitVersion(const std::string& name, uint64_t version, absl::Duration timeout, const CallOptions& call) {
  return Unimplemented("WaitVersion");
}

std::unique_ptr<WatchStream> Connection::Watch(const std::string& prefix, bool send_initial, uint32_t buffer_events, const CallOptions& call) {
  return std::make_unique<EndedWatch>(Unimplemented("Watch"));
}

std::future<absl::StatusOr<PullResult>> Connection::PullAsync(const PullArgs& args, DataType dtype, absl::Span<uint8_t> out, const CallOptions& call) {
  return ReadyUnimplemented<PullResult>("PullAsync");
}

std::future<absl::StatusOr<std::vector<UpdateResult>>> Connection::PushAsync(const std::vector<PushItem>& items, const CallOptions& call) {
  return ReadyUnimplemented<std::vector<UpdateResult>>("PushAsync");
}

absl::StatusOr<CheckpointInfo> Connection::Save(const std::string& name, const CallOptions& call) {
  return Unimplemented("Save");
}

absl::StatusOr<std::vector<CheckpointInfo>> Connection::ListCheckpoints(const CallOptions& call) {
  return Unimplemented("ListCheckpoints");
}

absl::StatusOr<CheckpointInfo> Connection::Restore(const std::string& name, const CallOptions& call) {
  return Unimplemented("Restore");
}

absl::StatusOr<std::vector<std::string>> Connection::Import(const std::string& path, const std::string& scope, std::optional<bool> trainable, const CallOptions& call) {
  return Unimplemented("Import");
}

absl::StatusOr<ServerStats> Connection::GetStats(const CallOptions& call) {
  return Unimplemented("GetStats");
}

absl::StatusOr<std::vector<SessionSummary>> Connection::ListSessions(const CallOptions& call) {
  return Unimplemented("ListSessions");
}

absl::StatusOr<HealthStatus> Connection::CheckHealth(const CallOptions& call) {
  return Unimplemented("CheckHealth");
}

}  // namespace varscope
