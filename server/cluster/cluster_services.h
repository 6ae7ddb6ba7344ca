// File: cluster_services.h
// The cluster's own services: Cluster (the topology clients route by),
// Peer (calls between shards), and Admin of a shard in a cluster (GetStats
// adds up every shard; the other Admin calls act on this shard's store).
//
// Thread-safety: handlers run concurrently on gRPC's callback threads.
#ifndef VARSCOPE_SERVER_CLUSTER_CLUSTER_SERVICES_H_
#define VARSCOPE_SERVER_CLUSTER_CLUSTER_SERVICES_H_

#include "server/cluster/routing.h"
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

// Peer.* (the cluster token only).
class PeerService final : public v1::Peer::CallbackService {
 public:
  PeerService(core::SessionManager* sessions, service::CallGate* gate)
      : sessions_(sessions), gate_(gate) {}
  grpc::ServerUnaryReactor* CaptureScope(grpc::CallbackServerContext* ctx,
                                         const v1::CaptureScopeRequest* request,
                                         v1::CapturedScope* response) override;

 private:
  core::SessionManager* const sessions_;  // Not owned.
  service::CallGate* const gate_;         // Not owned.
};

class ClusterAdminService final : public v1::Admin::CallbackService {
 public:
  ClusterAdminService(service::AdminService* local, const Routing* routing)
      : local_(local), routing_(routing) {}
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

 private:
  service::AdminService* const local_;  // Not owned.
  const Routing* const routing_;        // Not owned.
};

}  // namespace varscope::cluster

#endif  // VARSCOPE_SERVER_CLUSTER_CLUSTER_SERVICES_H_
