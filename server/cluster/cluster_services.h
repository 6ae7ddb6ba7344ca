// File: cluster_services.h
// The cluster's own services: Cluster (the topology clients route by),
// Peer (calls between shards), and Admin of a shard in a cluster (GetStats
// adds up every shard; the other Admin calls act on this shard's store).
//
// Thread-safety: handlers run concurrently on gRPC's callback threads.
#ifndef VARSCOPE_SERVER_CLUSTER_CLUSTER_SERVICES_H_
#define VARSCOPE_SERVER_CLUSTER_CLUSTER_SERVICES_H_

#include <functional>

#include "server/cluster/cluster_checkpoints.h"
#include "server/cluster/routing.h"
#include "server/cluster/spread_parts.h"
#include "server/core/namespace/session_manager.h"
#include "server/service/admin_service.h"
#include "varscope/v1/cluster.grpc.pb.h"

namespace varscope::cluster {

// Cluster.GetTopology. `routing` null: a single server (one shard, itself).
class TopologyService final : public v1::Cluster::CallbackService {
 public:
  TopologyService(const Routing* routing, service::CallGate* gate, std::string self_address)
      : routing_(routing), gate_(gate), self_address_(std::move(self_address)) {}
  grpc::ServerUnaryReactor* GetTopology(grpc::CallbackServerContext* ctx,
                                        const v1::GetTopologyRequest* request,
                                        v1::Topology* response) override;

 private:
  const Routing* const routing_;    // Not owned; null when not clustered.
  service::CallGate* const gate_;   // Not owned.
  const std::string self_address_;
};

// Peer.* (the cluster token only). Disk work (saving, reading and
// swapping in checkpoints) runs on `disk`, the shard's admin worker.
class PeerService final : public v1::Peer::CallbackService {
 public:
  // Not owned; all must outlive the service.
  PeerService(core::SessionManager* sessions, service::CallGate* gate,
              CutParticipant* cuts, service::Worker* disk, PartSpreader* parts)
      : sessions_(sessions), gate_(gate), cuts_(cuts), disk_(disk), parts_(parts) {}
  using Context = grpc::CallbackServerContext;
  grpc::ServerUnaryReactor* CaptureScope(Context* ctx, const v1::CaptureScopeRequest* request,
                                         v1::CapturedScope* response) override;
  grpc::ServerUnaryReactor* PauseChanges(Context* ctx, const v1::PauseChangesRequest* request,
                                         v1::PauseChangesResponse* response) override;
  grpc::ServerUnaryReactor* SaveCut(Context* ctx, const v1::SaveCutRequest* request,
                                    v1::SaveCutStarted* response) override;
  grpc::ServerUnaryReactor* FinishSave(Context* ctx, const v1::FinishSaveRequest* request,
                                       v1::SaveCutResponse* response) override;
  grpc::ServerUnaryReactor* ResumeChanges(Context* ctx, const v1::ResumeChangesRequest* request,
                                          v1::ResumeChangesResponse* response) override;
  grpc::ServerUnaryReactor* PrepareRestore(Context* ctx,
                                           const v1::PrepareRestoreRequest* request,
                                           v1::PrepareRestoreResponse* response) override;
  grpc::ServerUnaryReactor* CommitRestore(Context* ctx, const v1::CommitRestoreRequest* request,
                                          v1::RestoreResponse* response) override;
  grpc::ServerUnaryReactor* RecordClusterCheckpoint(
      Context* ctx, const v1::RecordClusterCheckpointRequest* request,
      v1::RecordClusterCheckpointResponse* response) override;
  grpc::ServerUnaryReactor* StageParts(Context* ctx, const v1::PartsRequest* request,
                                       v1::PartsResponse* response) override;
  grpc::ServerUnaryReactor* PublishParts(Context* ctx, const v1::PartsRequest* request,
                                         v1::PartsResponse* response) override;
  grpc::ServerUnaryReactor* DropParts(Context* ctx, const v1::PartsRequest* request,
                                      v1::PartsResponse* response) override;
  grpc::ServerUnaryReactor* DeleteParts(Context* ctx, const v1::PartsRequest* request,
                                        v1::PartsResponse* response) override;

 private:
  // Admits the call and runs `body` on the disk worker.
  grpc::ServerUnaryReactor* OnDisk(Context* ctx, const char* method,
                                   std::function<absl::Status()> body);

  core::SessionManager* const sessions_;  // Not owned.
  service::CallGate* const gate_;         // Not owned.
  CutParticipant* const cuts_;            // Not owned.
  service::Worker* const disk_;           // Not owned.
  PartSpreader* const parts_;             // Not owned.
};

// Admin of a shard in a cluster: Save, Restore and ListCheckpoints act on
// cluster checkpoints (cluster_checkpoints.h), run on `worker`; GetStats
// adds up every shard and ListSessions lists every shard's; Import is
// refused (it would place every tensor on
// this shard).
class ClusterAdminService final : public v1::Admin::CallbackService {
 public:
  // Not owned; all must outlive the service.
  ClusterAdminService(service::AdminService* local, const Routing* routing,
                      CutCoordinator* coordinator, service::Worker* worker)
      : local_(local), routing_(routing), coordinator_(coordinator), worker_(worker) {}
  using Context = grpc::CallbackServerContext;
  grpc::ServerUnaryReactor* Save(Context* ctx, const v1::SaveRequest* request,
                                 v1::CheckpointInfo* response) override;
  grpc::ServerUnaryReactor* ListCheckpoints(Context* ctx,
                                            const v1::ListCheckpointsRequest* request,
                                            v1::ListCheckpointsResponse* response) override;
  grpc::ServerUnaryReactor* Restore(Context* ctx, const v1::RestoreRequest* request,
                                    v1::RestoreResponse* response) override;
  grpc::ServerUnaryReactor* Import(Context* ctx, const v1::ImportRequest* request,
                                   v1::ImportResponse* response) override;
  grpc::ServerUnaryReactor* GetStats(Context* ctx, const v1::GetStatsRequest* request,
                                     v1::ServerStats* response) override;
  grpc::ServerUnaryReactor* ListSessions(Context* ctx, const v1::ListSessionsRequest* request,
                                         v1::ListSessionsResponse* response) override;

 private:
  // Admits the call, asks every shard (this one included) and merges the
  // answers in shard order; a shard that fails fails the call, named.
  template <typename Request, typename Response, typename Merge>
  grpc::ServerUnaryReactor* FromEveryShard(Context* ctx, const char* method,
                                           const Request& request, Response* response,
                                           Merge merge);
  // Admits the call and runs `body` on the coordinator's worker.
  grpc::ServerUnaryReactor* OnWorker(Context* ctx, const char* method,
                                     std::function<absl::Status()> body);

  service::AdminService* const local_;  // Not owned.
  const Routing* const routing_;        // Not owned.
  CutCoordinator* const coordinator_;   // Not owned.
  service::Worker* const worker_;       // Not owned.
};

}  // namespace varscope::cluster

#endif  // VARSCOPE_SERVER_CLUSTER_CLUSTER_SERVICES_H_
