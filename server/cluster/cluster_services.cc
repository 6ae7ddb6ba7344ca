#include "server/cluster/cluster_services.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "server/core/base/status_macros.h"
#include "server/service/handle.h"
#include "server/service/proto_convert.h"

namespace varscope::cluster {

grpc::ServerUnaryReactor* TopologyService::GetTopology(grpc::CallbackServerContext* ctx,
                                                       const v1::GetTopologyRequest*,
                                                       v1::Topology* response) {
  return service::Handle(ctx, gate_, "varscope.v1.Cluster.GetTopology",
                         [&](const service::Admission&) -> absl::Status {
    response->set_slot_count(placement::kSlots);
    response->set_hash("fnv1a64+fmix64");
    if (routing_ == nullptr) {
      v1::Shard* self = response->add_shards();
      self->set_index(0);
      self->set_address(self_address_);
      return absl::OkStatus();
    }
    const ClusterSpec& spec = routing_->spec();
    response->set_clustered(true);
    response->set_self(spec.self());
    for (int i = 0; i < spec.size(); ++i) {
      v1::Shard* shard = response->add_shards();
      shard->set_index(i);
      shard->set_address(spec.address(i));
    }
    const std::vector<uint32_t>& assignment = spec.table().assignment();
    response->mutable_shard_of_slot()->Assign(assignment.begin(), assignment.end());
    response->set_version(spec.table().version());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* PeerService::CaptureScope(grpc::CallbackServerContext* ctx,
                                                    const v1::CaptureScopeRequest* request,
                                                    v1::CapturedScope* response) {
  return service::Handle(ctx, gate_, "varscope.v1.Peer.CaptureScope",
                         [&](const service::Admission&) -> absl::Status {
    VARSCOPE_ASSIGN_OR_RETURN(core::CapturedScope captured,
                              sessions_->CaptureForPeer(request->scope_id(), request->owner()));
    response->set_root(captured.root);
    response->set_name(captured.name);
    response->set_reuse(service::ToProto(captured.reuse));
    if (captured.initializer) service::ToProto(*captured.initializer, response->mutable_initializer());
    response->set_dtype(service::ToProto(captured.dtype));
    if (captured.partitioner) service::ToProto(*captured.partitioner, response->mutable_partitioner());
    response->set_original_name_scope(captured.original_name_scope);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ClusterAdminService::Save(Context* ctx, const v1::SaveRequest* request,
                                                    v1::CheckpointInfo* response) {
  return local_->Save(ctx, request, response);
}

grpc::ServerUnaryReactor* ClusterAdminService::ListCheckpoints(
    Context* ctx, const v1::ListCheckpointsRequest* request,
    v1::ListCheckpointsResponse* response) {
  return local_->ListCheckpoints(ctx, request, response);
}

grpc::ServerUnaryReactor* ClusterAdminService::Restore(Context* ctx,
                                                       const v1::RestoreRequest* request,
                                                       v1::RestoreResponse* response) {
  return local_->Restore(ctx, request, response);
}

grpc::ServerUnaryReactor* ClusterAdminService::Import(Context* ctx,
                                                      const v1::ImportRequest* request,
                                                      v1::ImportResponse* response) {
  return local_->Import(ctx, request, response);
}

grpc::ServerUnaryReactor* ClusterAdminService::GetStats(Context* ctx,
                                                        const v1::GetStatsRequest* request,
                                                        v1::ServerStats* response) {
  if (routing_->FromPeer(*ctx)) return local_->GetStats(ctx, request, response);
  absl::StatusOr<service::Admission> admitted =
      routing_->gate().Admit(*ctx, "varscope.v1.Admin.GetStats");
  if (!admitted.ok()) return FinishNow(ctx, admitted.status());
  std::vector<std::pair<int, v1::GetStatsRequest>> calls;
  for (int shard = 0; shard < routing_->spec().size(); ++shard) calls.emplace_back(shard, *request);
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  auto call = std::make_shared<service::Admission>(*std::move(admitted));
  const Routing* routing = routing_;
  FanOut<v1::ServerStats>(
      &routing_->peers(), "/varscope.v1.Admin/GetStats", std::move(calls),
      Routing::DeadlineOf(*ctx),
      [reactor, response, call, routing](std::vector<std::pair<grpc::Status, v1::ServerStats>> all) {
        for (size_t shard = 0; shard < all.size(); ++shard) {
          const auto& [status, stats] = all[shard];
          if (!status.ok()) {
            reactor->Finish(grpc::Status(status.error_code(),
                                         absl::StrCat(routing->peers().Describe(shard), ": ",
                                                      status.error_message()),
                                         status.error_details()));
            return;
          }
          if (shard == 0) {
            *response = stats;
            continue;
          }
          response->set_sessions(response->sessions() + stats.sessions());
          response->set_variables(response->variables() + stats.variables());
          response->set_tensor_bytes(response->tensor_bytes() + stats.tensor_bytes());
          response->set_max_memory_bytes(response->max_memory_bytes() + stats.max_memory_bytes());
          response->set_calls_in_flight(response->calls_in_flight() + stats.calls_in_flight());
          response->set_uptime_seconds(std::min(response->uptime_seconds(), stats.uptime_seconds()));
        }
        reactor->Finish(grpc::Status::OK);
      },
      call.get());
  return reactor;
}

}  // namespace varscope::cluster
