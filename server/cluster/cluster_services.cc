#include "server/cluster/cluster_services.h"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "server/core/base/status_macros.h"
#include "server/service/handle.h"
#include "server/service/page_token.h"
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

namespace {

// Admits `method` and runs `body` on `worker`; the admission (in-flight
// slot) lasts until it ran.
grpc::ServerUnaryReactor* Queue(grpc::CallbackServerContext* ctx, service::CallGate* gate,
                                service::Worker* worker, const char* method,
                                std::function<absl::Status()> body) {
  absl::StatusOr<service::Admission> admitted = gate->Admit(*ctx, method);
  if (!admitted.ok()) return service::Finish(ctx, method, admitted.status());
  auto call = std::make_shared<service::Admission>(*std::move(admitted));
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  worker->Post([reactor, call, method, body = std::move(body)] {
    const absl::Status status = body();
    service::LogFailure(method, status);
    reactor->Finish(service::ToGrpcStatus(status));
  });
  return reactor;
}

}  // namespace

grpc::ServerUnaryReactor* PeerService::OnDisk(Context* ctx, const char* method,
                                              std::function<absl::Status()> body) {
  return Queue(ctx, gate_, disk_, method, std::move(body));
}

grpc::ServerUnaryReactor* PeerService::PauseChanges(Context* ctx,
                                                    const v1::PauseChangesRequest* request,
                                                    v1::PauseChangesResponse*) {
  constexpr char kMethod[] = "varscope.v1.Peer.PauseChanges";
  absl::StatusOr<service::Admission> admitted = gate_->Admit(*ctx, kMethod);
  if (!admitted.ok()) return service::Finish(ctx, kMethod, admitted.status());
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  auto call = std::make_shared<service::Admission>(*std::move(admitted));
  // Answered once this shard's changes in flight are done.
  const absl::Status paused =
      cuts_->Pause(request->cut_id(), absl::Milliseconds(request->hold_ms()),
                   request->save_name(), [reactor, call] { reactor->Finish(grpc::Status::OK); });
  if (!paused.ok()) reactor->Finish(service::ToGrpcStatus(paused));
  return reactor;
}

grpc::ServerUnaryReactor* PeerService::SaveCut(Context* ctx, const v1::SaveCutRequest* request,
                                               v1::SaveCutStarted*) {
  constexpr char kMethod[] = "varscope.v1.Peer.SaveCut";
  absl::StatusOr<service::Admission> admitted = gate_->Admit(*ctx, kMethod);
  if (!admitted.ok()) return service::Finish(ctx, kMethod, admitted.status());
  auto call = std::make_shared<service::Admission>(*std::move(admitted));
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  // Answered at the snapshot; the files are written after (FinishSave
  // reports them: it runs on the same worker, after this job).
  disk_->Post([this, reactor, call, cut_id = request->cut_id(), name = request->name()] {
    cuts_->Save(cut_id, name, [reactor] { reactor->Finish(grpc::Status::OK); });
  });
  return reactor;
}

grpc::ServerUnaryReactor* PeerService::FinishSave(Context* ctx,
                                                  const v1::FinishSaveRequest* request,
                                                  v1::SaveCutResponse* response) {
  return OnDisk(ctx, "varscope.v1.Peer.FinishSave", [this, request, response]() -> absl::Status {
    VARSCOPE_ASSIGN_OR_RETURN(*response, cuts_->FinishSave(request->cut_id()));
    spdlog::info("saved cluster checkpoint part {} ({} variables, changes paused {:.1f} ms)",
                 response->checkpoint().name(), response->checkpoint().variables(),
                 response->paused_seconds() * 1e3);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* PeerService::ResumeChanges(Context* ctx,
                                                     const v1::ResumeChangesRequest* request,
                                                     v1::ResumeChangesResponse* response) {
  return service::Handle(ctx, gate_, "varscope.v1.Peer.ResumeChanges",
                         [&](const service::Admission&) -> absl::Status {
    response->set_held(cuts_->Resume(request->cut_id()));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* PeerService::PrepareRestore(Context* ctx,
                                                      const v1::PrepareRestoreRequest* request,
                                                      v1::PrepareRestoreResponse*) {
  return OnDisk(ctx, "varscope.v1.Peer.PrepareRestore", [this, request] {
    return cuts_->PrepareRestore(request->cut_id(), request->name(), request->revision());
  });
}

grpc::ServerUnaryReactor* PeerService::CommitRestore(Context* ctx,
                                                     const v1::CommitRestoreRequest* request,
                                                     v1::RestoreResponse* response) {
  constexpr char kMethod[] = "varscope.v1.Peer.CommitRestore";
  absl::StatusOr<service::Admission> admitted = gate_->Admit(*ctx, kMethod);
  if (!admitted.ok()) return service::Finish(ctx, kMethod, admitted.status());
  auto call = std::make_shared<service::Admission>(*std::move(admitted));
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  // Answered right after the swap; the checkpoint that follows a restore
  // is written after, on the same worker.
  disk_->Post([this, reactor, call, response, cut_id = request->cut_id()] {
    cuts_->CommitRestore(cut_id, [this, reactor, response](absl::StatusOr<v1::RestoreResponse> r) {
      if (r.ok()) {
        spdlog::info("restored cluster checkpoint part {} ({} variables)",
                     r->checkpoint().name(), r->variables());
        *response = *std::move(r);
        // The parts on other shards follow the restored records.
        parts_->Reconcile();
      }
      reactor->Finish(service::ToGrpcStatus(r.status()));
    });
  });
  return reactor;
}

grpc::ServerUnaryReactor* PeerService::RecordClusterCheckpoint(
    Context* ctx, const v1::RecordClusterCheckpointRequest* request,
    v1::RecordClusterCheckpointResponse*) {
  return OnDisk(ctx, "varscope.v1.Peer.RecordClusterCheckpoint", [this, request] {
    return cuts_->Record(request->name(), request->manifest());
  });
}

grpc::ServerUnaryReactor* PeerService::StageParts(Context* ctx, const v1::PartsRequest* request,
                                                  v1::PartsResponse*) {
  return service::Handle(ctx, gate_, "varscope.v1.Peer.StageParts",
                         [&](const service::Admission&) { return parts_->Stage(*request); });
}

grpc::ServerUnaryReactor* PeerService::PublishParts(Context* ctx, const v1::PartsRequest* request,
                                                    v1::PartsResponse*) {
  return service::Handle(ctx, gate_, "varscope.v1.Peer.PublishParts",
                         [&](const service::Admission&) { return parts_->Publish(*request); });
}

grpc::ServerUnaryReactor* PeerService::DropParts(Context* ctx, const v1::PartsRequest* request,
                                                 v1::PartsResponse*) {
  return service::Handle(ctx, gate_, "varscope.v1.Peer.DropParts",
                         [&](const service::Admission&) { return parts_->Drop(*request); });
}

grpc::ServerUnaryReactor* PeerService::DeleteParts(Context* ctx, const v1::PartsRequest* request,
                                                   v1::PartsResponse*) {
  return service::Handle(ctx, gate_, "varscope.v1.Peer.DeleteParts",
                         [&](const service::Admission&) { return parts_->Delete(*request); });
}

grpc::ServerUnaryReactor* ClusterAdminService::OnWorker(Context* ctx, const char* method,
                                                        std::function<absl::Status()> body) {
  return Queue(ctx, &routing_->gate(), worker_, method, std::move(body));
}

grpc::ServerUnaryReactor* ClusterAdminService::Save(Context* ctx, const v1::SaveRequest* request,
                                                    v1::CheckpointInfo* response) {
  return OnWorker(ctx, "varscope.v1.Admin.Save", [this, request, response]() -> absl::Status {
    VARSCOPE_ASSIGN_OR_RETURN(*response, coordinator_->Save(request->name()));
    spdlog::info("saved cluster checkpoint {} ({} variables, {} bytes)", response->name(),
                 response->variables(), response->bytes());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ClusterAdminService::ListCheckpoints(
    Context* ctx, const v1::ListCheckpointsRequest* request,
    v1::ListCheckpointsResponse* response) {
  return OnWorker(ctx, "varscope.v1.Admin.ListCheckpoints",
                  [this, request, response]() -> absl::Status {
    VARSCOPE_ASSIGN_OR_RETURN(*response, coordinator_->List(*request));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ClusterAdminService::Restore(Context* ctx,
                                                       const v1::RestoreRequest* request,
                                                       v1::RestoreResponse* response) {
  return OnWorker(ctx, "varscope.v1.Admin.Restore", [this, request, response]() -> absl::Status {
    VARSCOPE_ASSIGN_OR_RETURN(*response, coordinator_->Restore(request->name()));
    spdlog::info("restored cluster checkpoint {} ({} variables) in {:.2f} s",
                 request->name(), response->variables(), response->seconds());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ClusterAdminService::Import(Context* ctx, const v1::ImportRequest*,
                                                      v1::ImportResponse*) {
  return service::Handle(ctx, &routing_->gate(), "varscope.v1.Admin.Import",
                         [&](const service::Admission&) -> absl::Status {
    return absl::FailedPreconditionError(
        "Import into a cluster is not supported: it would place every tensor on this "
        "shard. Import into a single server, save, and re-shard the checkpoint with "
        "varscope-reshard");
  });
}

template <typename Request, typename Response, typename Merge>
grpc::ServerUnaryReactor* ClusterAdminService::FromEveryShard(Context* ctx, const char* method,
                                                              const Request& request,
                                                              Response* response, Merge merge) {
  absl::StatusOr<service::Admission> admitted = routing_->gate().Admit(*ctx, method);
  if (!admitted.ok()) return FinishNow(ctx, admitted.status());
  std::vector<std::pair<int, Request>> calls;
  for (int shard = 0; shard < routing_->spec().size(); ++shard) calls.emplace_back(shard, request);
  // "varscope.v1.Admin.GetStats" -> "/varscope.v1.Admin/GetStats"
  std::string path = absl::StrCat("/", method);
  path[path.rfind('.')] = '/';
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  auto call = std::make_shared<service::Admission>(*std::move(admitted));
  const Routing* routing = routing_;
  FanOut<Response>(
      &routing_->peers(), path, std::move(calls), Routing::DeadlineOf(*ctx),
      [reactor, response, call, routing, merge](std::vector<std::pair<grpc::Status, Response>> all) {
        for (size_t shard = 0; shard < all.size(); ++shard) {
          const auto& [status, answer] = all[shard];
          if (!status.ok()) {
            reactor->Finish(grpc::Status(status.error_code(),
                                         absl::StrCat(routing->peers().Describe(shard), ": ",
                                                      status.error_message()),
                                         status.error_details()));
            return;
          }
          if (shard == 0) {
            *response = answer;
          } else {
            merge(answer, response);
          }
        }
        reactor->Finish(grpc::Status::OK);
      },
      call.get());
  return reactor;
}

grpc::ServerUnaryReactor* ClusterAdminService::GetStats(Context* ctx,
                                                        const v1::GetStatsRequest* request,
                                                        v1::ServerStats* response) {
  if (routing_->FromPeer(*ctx)) return local_->GetStats(ctx, request, response);
  return FromEveryShard(ctx, "varscope.v1.Admin.GetStats", *request, response,
                        [](const v1::ServerStats& stats, v1::ServerStats* sum) {
    sum->set_sessions(sum->sessions() + stats.sessions());
    sum->set_variables(sum->variables() + stats.variables());
    sum->set_tensor_bytes(sum->tensor_bytes() + stats.tensor_bytes());
    sum->set_max_memory_bytes(sum->max_memory_bytes() + stats.max_memory_bytes());
    sum->set_calls_in_flight(sum->calls_in_flight() + stats.calls_in_flight());
    sum->set_uptime_seconds(std::min(sum->uptime_seconds(), stats.uptime_seconds()));
  });
}

grpc::ServerUnaryReactor* ClusterAdminService::ListSessions(
    Context* ctx, const v1::ListSessionsRequest* request, v1::ListSessionsResponse* response) {
  if (routing_->FromPeer(*ctx)) return local_->ListSessions(ctx, request, response);
  // Every shard lists its own after the cursor, at most a page each (the
  // size clamped here as each shard clamps it). In shard order, the page
  // ends at the first shard that had more, or after page_size sessions.
  absl::StatusOr<size_t> page_size = service::PageSize(request->page_size());
  if (!page_size.ok()) return FinishNow(ctx, page_size.status());
  v1::ListSessionsRequest each = *request;
  each.set_page_size(static_cast<int>(*page_size));
  const int limit = static_cast<int>(*page_size);
  return FromEveryShard(ctx, "varscope.v1.Admin.ListSessions", each, response,
                        [limit](const v1::ListSessionsResponse& shard,
                                v1::ListSessionsResponse* all) {
    if (!all->next_page_token().empty()) return;  // an earlier shard had more
    bool more = !shard.next_page_token().empty();
    for (const v1::SessionSummary& s : shard.sessions()) {
      if (all->sessions_size() == limit) {
        more = true;
        break;
      }
      *all->add_sessions() = s;
    }
    if (more && all->sessions_size() > 0) {
      const v1::SessionSummary& last = all->sessions(all->sessions_size() - 1);
      all->set_next_page_token(service::EncodeSessionToken({last.shard(), last.id()}));
    }
  });
}

}  // namespace varscope::cluster
