#include "server/cluster/cluster_data_service.h"

#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/cluster/stream_proxies.h"
#include "server/core/base/error_info.h"
#include "server/service/handle.h"
#include "server/service/status_convert.h"

namespace varscope::cluster {
namespace {

constexpr char kPull[] = "/varscope.v1.VariableData/Pull";
constexpr char kGather[] = "/varscope.v1.VariableData/Gather";
constexpr char kPush[] = "/varscope.v1.VariableData/Push";
constexpr char kSetOptimizer[] = "/varscope.v1.VariableData/SetOptimizer";
constexpr char kDescribeTraining[] = "/varscope.v1.VariableData/DescribeTraining";
constexpr char kWaitVersion[] = "/varscope.v1.VariableData/WaitVersion";

// The shard of each name; `single` gets the one shard when all agree.
std::vector<int> OwnersOf(const Routing& routing, const std::vector<std::string>& names,
                          int* single) {
  std::vector<int> owners;
  *single = -2;
  for (const std::string& name : names) {
    owners.push_back(routing.OwnerOf(name));
    if (*single == -2) {
      *single = owners.back();
    } else if (*single != owners.back()) {
      *single = -1;
    }
  }
  return owners;
}

// Admits a call this shard forwards (token, role, in-flight slot) and
// checks the token may touch every name.
absl::StatusOr<service::Admission> AdmitForward(const Routing& routing,
                                                const grpc::ServerContextBase& ctx,
                                                const char* full_method,
                                                const std::vector<std::string>& names) {
  absl::StatusOr<service::Admission> call = routing.gate().Admit(ctx, full_method);
  if (!call.ok()) return call.status();
  for (const std::string& name : names) {
    if (absl::Status s = call->CheckName(name); !s.ok()) return s;
  }
  return call;
}

// What a split change (push, SetOptimizer) reports when some shards
// applied their part and others did not.
grpc::Status PartialOutcome(const Routing& routing, const std::vector<std::string>& names,
                            const std::vector<int>& owners,
                            const std::map<int, grpc::Status>& by_shard) {
  std::vector<std::string> applied, not_applied, causes;
  for (size_t i = 0; i < names.size(); ++i) {
    (by_shard.at(owners[i]).ok() ? applied : not_applied).push_back(names[i]);
  }
  const grpc::Status* first_failure = nullptr;
  for (const auto& [shard, status] : by_shard) {
    if (status.ok()) continue;
    if (first_failure == nullptr) first_failure = &status;
    causes.push_back(absl::StrCat(routing.peers().Describe(shard), ": ",
                                  status.error_message()));
  }
  // Nothing applied: the first failure as the shard gave it.
  if (applied.empty()) return *first_failure;
  const absl::Status partial = core::WithReason(
      absl::AbortedError(absl::StrCat(
          "applied on some shards only (each shard applies its variables "
          "atomically): applied to ", absl::StrJoin(applied, ", "), "; not applied to ",
          absl::StrJoin(not_applied, ", "), ": ", absl::StrJoin(causes, "; "))),
      "PARTIALLY_APPLIED",
      {{"applied", absl::StrJoin(applied, ",")}, {"not_applied", absl::StrJoin(not_applied, ",")}});
  return service::ToGrpcStatus(partial);
}

// A change naming variables of several shards (a push, SetOptimizer):
// each shard gets its part (`parts[shard]`: the request and the positions
// of its names in the caller's request) and applies it atomically; the
// answer puts every result back in the caller's order (`results` picks the
// response's repeated field), or is PARTIALLY_APPLIED when some part failed.
template <typename Request, typename Response, typename Results>
grpc::ServerUnaryReactor* SplitChange(
    grpc::CallbackServerContext* ctx, const Routing* routing, const std::string& method,
    std::map<int, std::pair<Request, std::vector<int>>> parts, std::vector<std::string> names,
    std::vector<int> owners, service::Admission call, std::shared_ptr<CutGate::Ticket> in_flight,
    Response* response, Results results) {
  std::vector<std::pair<int, Request>> calls;
  std::vector<std::pair<int, std::vector<int>>> positions;
  for (auto& [shard, part] : parts) {
    calls.emplace_back(shard, std::move(part.first));
    positions.emplace_back(shard, std::move(part.second));
  }
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  auto held = std::make_shared<service::Admission>(std::move(call));
  FanOut<Response>(
      &routing->peers(), method, std::move(calls), Routing::DeadlineOf(*ctx),
      [reactor, response, held, in_flight, positions = std::move(positions),
       names = std::move(names), owners = std::move(owners), routing,
       results](std::vector<std::pair<grpc::Status, Response>> answers) {
        std::map<int, grpc::Status> by_shard;
        bool all_ok = true;
        for (size_t s = 0; s < answers.size(); ++s) {
          by_shard[positions[s].first] = answers[s].first;
          all_ok = all_ok && answers[s].first.ok();
        }
        if (!all_ok) {
          reactor->Finish(PartialOutcome(*routing, names, owners, by_shard));
          return;
        }
        auto* merged = results(response);
        for (size_t i = 0; i < names.size(); ++i) merged->Add();
        for (size_t s = 0; s < answers.size(); ++s) {
          auto* part = results(&answers[s].second);
          for (size_t k = 0; k < positions[s].second.size(); ++k) {
            merged->Mutable(positions[s].second[k])->Swap(part->Mutable(static_cast<int>(k)));
          }
        }
        reactor->Finish(grpc::Status::OK);
      },
      held.get());
  return reactor;
}

}  // namespace

template <typename Request, typename Response>
grpc::ServerUnaryReactor* ClusterDataService::KeepForLater(
    Context* ctx, const char* full_method, const char* path,
    const std::vector<std::string>& names, const Request& request, Response* response) {
  auto call = AdmitForward(*routing_, *ctx, full_method, names);
  if (!call.ok()) return FinishNow(ctx, call.status());
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  auto held = std::make_shared<service::Admission>(*std::move(call));
  auto bytes = std::make_shared<grpc::ByteBuffer>(Serialize(request));
  const Routing* routing = routing_;
  const absl::Time deadline = Routing::DeadlineOf(*ctx);
  const std::string method = path;
  auto run = [routing, reactor, response, held, bytes, deadline, method] {
    routing->peers().Call(
        routing->self(), method, *bytes, deadline,
        [reactor, response, held](const grpc::Status& status, grpc::ByteBuffer answer) {
          if (status.ok() && !Parse(answer, response)) {
            reactor->Finish(
                grpc::Status(grpc::StatusCode::INTERNAL, "a peer's reply did not parse"));
            return;
          }
          reactor->Finish(status);
        },
        held.get(), /*hop=*/false);
  };
  if (!cuts_->KeepUntilOpen(run)) run();  // reopened meanwhile
  return reactor;
}

grpc::ServerUnaryReactor* ClusterDataService::Pull(Context* ctx,
                                                   const grpc::ByteBuffer* request,
                                                   grpc::ByteBuffer* response) {
  if (routing_->FromPeer(*ctx)) return local_->Pull(ctx, request, response);
  if (absl::Status s = routing_->CheckTopology(*ctx); !s.ok()) return FinishNow(ctx, s);
  v1::PullRequest parsed;
  // A malformed request is the local handler's to report.
  if (!Parse(*request, &parsed)) return local_->Pull(ctx, request, response);
  std::vector<std::string> names;
  for (const v1::Selector& selector : parsed.variables()) names.push_back(selector.name());
  int single;
  const std::vector<int> owners = OwnersOf(*routing_, names, &single);
  if (single == routing_->self() || names.empty()) return local_->Pull(ctx, request, response);
  auto call = AdmitForward(*routing_, *ctx, "varscope.v1.VariableData.Pull", names);
  if (!call.ok()) return FinishNow(ctx, call.status());
  if (single >= 0) {
    return routing_->ForwardRaw(ctx, *std::move(call), single, kPull, *request, response);
  }
  // Variables of several shards: one pull per shard, answers put back in
  // the order asked.
  std::map<int, std::pair<v1::PullRequest, std::vector<int>>> parts;
  for (int i = 0; i < parsed.variables_size(); ++i) {
    auto& [part, positions] = parts[owners[i]];
    *part.add_variables() = parsed.variables(i);
    positions.push_back(i);
  }
  std::vector<std::pair<int, v1::PullRequest>> calls;
  std::vector<std::vector<int>> positions;
  for (auto& [shard, part] : parts) {
    calls.emplace_back(shard, std::move(part.first));
    positions.push_back(std::move(part.second));
  }
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  auto held = std::make_shared<service::Admission>(*std::move(call));
  const int total = parsed.variables_size();
  FanOut<v1::PullResponse>(
      &routing_->peers(), kPull, std::move(calls), Routing::DeadlineOf(*ctx),
      [reactor, response, held, positions, total](
          std::vector<std::pair<grpc::Status, v1::PullResponse>> answers) {
        v1::PullResponse merged;
        for (int i = 0; i < total; ++i) merged.add_tensors();
        for (size_t s = 0; s < answers.size(); ++s) {
          if (!answers[s].first.ok()) {
            reactor->Finish(answers[s].first);
            return;
          }
          for (size_t k = 0; k < positions[s].size(); ++k) {
            merged.mutable_tensors(positions[s][k])->Swap(answers[s].second.mutable_tensors(k));
          }
        }
        *response = Serialize(merged);
        reactor->Finish(grpc::Status::OK);
      },
      held.get());
  return reactor;
}

grpc::ServerUnaryReactor* ClusterDataService::Gather(Context* ctx,
                                                     const grpc::ByteBuffer* request,
                                                     grpc::ByteBuffer* response) {
  if (routing_->FromPeer(*ctx)) return local_->Gather(ctx, request, response);
  if (absl::Status s = routing_->CheckTopology(*ctx); !s.ok()) return FinishNow(ctx, s);
  v1::GatherRequest parsed;
  if (!Parse(*request, &parsed)) return local_->Gather(ctx, request, response);
  const int owner = routing_->OwnerOf(parsed.name());
  if (owner == routing_->self()) return local_->Gather(ctx, request, response);
  auto call = AdmitForward(*routing_, *ctx, "varscope.v1.VariableData.Gather", {parsed.name()});
  if (!call.ok()) return FinishNow(ctx, call.status());
  return routing_->ForwardRaw(ctx, *std::move(call), owner, kGather, *request, response);
}

grpc::ServerUnaryReactor* ClusterDataService::Push(Context* ctx,
                                                   const v1::PushRequest* request,
                                                   v1::PushResponse* response) {
  if (routing_->FromPeer(*ctx)) return local_->Push(ctx, request, response);
  if (absl::Status s = routing_->CheckTopology(*ctx); !s.ok()) return FinishNow(ctx, s);
  std::vector<std::string> names;
  for (const v1::Update& u : request->updates()) names.push_back(u.name());
  int single;
  const std::vector<int> owners = OwnersOf(*routing_, names, &single);
  std::optional<CutGate::Ticket> ticket = cuts_->TryEnter();
  if (!ticket.has_value()) {
    return KeepForLater(ctx, "varscope.v1.VariableData.Push", kPush, names, *request, response);
  }
  // (The local handler is done when it returns, and so is the ticket.)
  if (single == routing_->self() || names.empty()) return local_->Push(ctx, request, response);
  auto call = AdmitForward(*routing_, *ctx, "varscope.v1.VariableData.Push", names);
  if (!call.ok()) return FinishNow(ctx, call.status());
  auto in_flight = std::make_shared<CutGate::Ticket>(*std::move(ticket));
  if (single >= 0) {
    return routing_->Forward(ctx, *std::move(call), single, kPush, *request, response,
                             in_flight);
  }
  // Updates of several shards: each shard applies its part atomically.
  std::map<int, std::pair<v1::PushRequest, std::vector<int>>> parts;
  for (int i = 0; i < request->updates_size(); ++i) {
    auto& [part, positions] = parts[owners[i]];
    *part.add_updates() = request->updates(i);
    positions.push_back(i);
  }
  return SplitChange(ctx, routing_, kPush, std::move(parts), names, owners, *std::move(call),
                     in_flight, response,
                     [](v1::PushResponse* r) { return r->mutable_results(); });
}

grpc::ServerUnaryReactor* ClusterDataService::SetOptimizer(
    Context* ctx, const v1::SetOptimizerRequest* request, v1::SetOptimizerResponse* response) {
  if (routing_->FromPeer(*ctx)) return local_->SetOptimizer(ctx, request, response);
  if (absl::Status s = routing_->CheckTopology(*ctx); !s.ok()) return FinishNow(ctx, s);
  const std::vector<std::string> names(request->names().begin(), request->names().end());
  int single;
  const std::vector<int> owners = OwnersOf(*routing_, names, &single);
  std::optional<CutGate::Ticket> ticket = cuts_->TryEnter();
  if (!ticket.has_value()) {
    return KeepForLater(ctx, "varscope.v1.VariableData.SetOptimizer", kSetOptimizer, names,
                        *request, response);
  }
  if (single == routing_->self() || names.empty()) {
    return local_->SetOptimizer(ctx, request, response);
  }
  auto call = AdmitForward(*routing_, *ctx, "varscope.v1.VariableData.SetOptimizer", names);
  if (!call.ok()) return FinishNow(ctx, call.status());
  auto in_flight = std::make_shared<CutGate::Ticket>(*std::move(ticket));
  if (single >= 0) {
    return routing_->Forward(ctx, *std::move(call), single, kSetOptimizer, *request, response,
                             in_flight);
  }
  std::map<int, std::pair<v1::SetOptimizerRequest, std::vector<int>>> parts;
  for (size_t i = 0; i < names.size(); ++i) {
    auto& [part, positions] = parts[owners[i]];
    if (part.names_size() == 0) {
      part = *request;
      part.clear_names();
    }
    part.add_names(names[i]);
    positions.push_back(static_cast<int>(i));
  }
  return SplitChange(ctx, routing_, kSetOptimizer, std::move(parts), names, owners,
                     *std::move(call), in_flight, response,
                     [](v1::SetOptimizerResponse* r) { return r->mutable_variables(); });
}

grpc::ServerUnaryReactor* ClusterDataService::DescribeTraining(
    Context* ctx, const v1::DescribeTrainingRequest* request, v1::TrainingState* response) {
  if (routing_->FromPeer(*ctx)) return local_->DescribeTraining(ctx, request, response);
  if (absl::Status s = routing_->CheckTopology(*ctx); !s.ok()) return FinishNow(ctx, s);
  const int owner = routing_->OwnerOf(request->name());
  if (owner == routing_->self()) return local_->DescribeTraining(ctx, request, response);
  auto call = AdmitForward(*routing_, *ctx, "varscope.v1.VariableData.DescribeTraining",
                           {request->name()});
  if (!call.ok()) return FinishNow(ctx, call.status());
  return routing_->Forward(ctx, *std::move(call), owner, kDescribeTraining, *request, response);
}

grpc::ServerUnaryReactor* ClusterDataService::WaitVersion(Context* ctx,
                                                          const v1::WaitVersionRequest* request,
                                                          v1::WaitVersionResponse* response) {
  if (routing_->FromPeer(*ctx)) return local_->WaitVersion(ctx, request, response);
  if (absl::Status s = routing_->CheckTopology(*ctx); !s.ok()) return FinishNow(ctx, s);
  const int owner = routing_->OwnerOf(request->name());
  if (owner == routing_->self()) return local_->WaitVersion(ctx, request, response);
  auto call = AdmitForward(*routing_, *ctx, "varscope.v1.VariableData.WaitVersion",
                           {request->name()});
  if (!call.ok()) return FinishNow(ctx, call.status());
  return routing_->Forward(ctx, *std::move(call), owner, kWaitVersion, *request, response);
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* ClusterDataService::PullStream(
    Context* ctx, const grpc::ByteBuffer* request) {
  if (routing_->FromPeer(*ctx)) return local_->PullStream(ctx, request);
  v1::PullStreamRequest parsed;
  if (!Parse(*request, &parsed)) return local_->PullStream(ctx, request);
  const std::string& name = parsed.variable().name();
  const int owner = routing_->OwnerOf(name);
  if (owner == routing_->self()) return local_->PullStream(ctx, request);
  return ProxyPullStream(ctx, *routing_, owner, *request);
}

grpc::ServerReadReactor<grpc::ByteBuffer>* ClusterDataService::PushStream(
    Context* ctx, grpc::ByteBuffer* response) {
  if (routing_->FromPeer(*ctx)) return local_->PushStream(ctx, response);
  // A stream cannot be kept for later; one that starts during a cut's
  // pause is refused (the client library retries UNAVAILABLE). Streams
  // already running need no drain: each applies on one shard only.
  if (!cuts_->TryEnter().has_value()) {
    return new service::Rejected<grpc::ServerReadReactor<grpc::ByteBuffer>>(core::WithReason(
        absl::UnavailableError("a cluster checkpoint is pausing changes on this shard for a "
                               "moment; retry"),
        "CLUSTER_CUT", {}));
  }
  // The client library names the variable up front (it routed by it);
  // otherwise the first chunk decides.
  const auto& metadata = ctx->client_metadata();
  auto named = metadata.find(kVariableKey);
  if (named != metadata.end() &&
      routing_->OwnerOf(absl::string_view(named->second.data(), named->second.size())) ==
          routing_->self()) {
    return local_->PushStream(ctx, response);
  }
  return ProxyPushStream(ctx, *routing_, response);
}

grpc::ServerWriteReactor<v1::WatchEvent>* ClusterDataService::Watch(
    Context* ctx, const v1::WatchRequest* request) {
  if (routing_->FromPeer(*ctx)) return local_->Watch(ctx, request);
  return WatchEveryShard(ctx, *routing_, *request);
}

}  // namespace varscope::cluster
