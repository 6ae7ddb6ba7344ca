// File: server.h
// A running varscope server: the core objects, the gRPC server with the
// VariableStore service, the standard health service and reflection, and the
// lease reaper thread. Used by the daemon and by tests (listen on
// "127.0.0.1:0" and read port()).
//
// Thread-safety: Shutdown() and Wait() may be called from any thread;
// Shutdown() is idempotent.
#ifndef VARSCOPE_SERVER_SERVICE_SERVER_H_
#define VARSCOPE_SERVER_SERVICE_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/core/storage/checkpoint.h"
#include "server/core/storage/recovery.h"
#include "server/core/base/clock.h"
#include "server/core/storage/env.h"
#include "server/core/data/data_plane.h"
#include "server/core/namespace/session_manager.h"
#include "server/core/namespace/variable_store.h"
#include "server/core/shared_memory/attach_socket.h"
#include "server/core/shared_memory/segments.h"

namespace varscope::service {

inline constexpr char kVersion[] = "0.1.0";

// TLS files (PEM). cert_file and key_file turn TLS on; client_ca_file also
// requires every client to present a certificate signed by that CA (mutual
// TLS).
struct TlsFiles {
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;
  bool enabled() const { return !cert_file.empty(); }
};

// A cluster of shards (DESIGN §6); `cluster` empty = a single server.
struct ClusterOptions {
  std::string cluster;     // "host0:port,host1:port,..." (every shard, in order)
  int shard = -1;          // this process's index in it
  std::string token_file;  // the cluster token (shared by the shards)
  std::string ca_file;     // CA of the shards' certificates (TLS); default tls.client_ca_file
};

struct ServerOptions {
  std::string listen = "127.0.0.1:50051";
  // Prometheus metrics over HTTP (GET /metrics) on this host:port; "" = off.
  std::string metrics_listen;
  ClusterOptions cluster;
  TlsFiles tls;
  // Bearer tokens with roles (see core/access.h); "" = no authentication.
  std::string auth_tokens_file;
  // Calls one client connection may have in flight; 0 = unlimited.
  int max_in_flight_per_client = 256;
  // Largest request or response message, in bytes.
  int max_message_bytes = 64 << 20;
  core::StoreOptions store;
  core::SessionOptions sessions;
  // How often expired sessions are reaped.
  absl::Duration reap_interval = absl::Seconds(1);
  // Persistence: "" keeps everything in memory only.
  std::string data_dir;
  // Periodic checkpoints when anything changed; zero = only at shutdown
  // and on request.
  absl::Duration checkpoint_interval = absl::Seconds(60);
  int keep_checkpoints = 5;
  // Fall back to the newest valid checkpoint when the newest is damaged.
  bool recover = false;
  // Durability with a data_dir: relaxed logs creates and deletes (a crash
  // loses pushes since the last checkpoint); strict also logs every push
  // before acknowledging it (a crash loses nothing acknowledged).
  bool strict = false;
  // Same-host bulk transfer: clients on this machine may move tensor bytes
  // through shared memory they attach (proto/varscope/v1/shared_memory.proto).
  bool shared_memory = true;
  core::SharedMemoryLimits shared_memory_limits;
};

}  // namespace varscope::service
namespace varscope::cluster {
class ClusterSpec;
class CutCoordinator;
class PartSpreader;
class CutGate;
class CutParticipant;
class Peers;
class Routing;
}  // namespace varscope::cluster
namespace varscope::metrics {
class MetricsEndpoint;
class RpcMetrics;
}  // namespace varscope::metrics
namespace varscope::service {

class CallGate;
class VariableStoreService;
class VariableDataService;
class AdminService;
class SharedMemoryRoute;
class SharedMemoryService;
class Worker;

class Server {
 public:
  // Builds and starts the server. `clock` (not owned) defaults to real time.
  static absl::StatusOr<std::unique_ptr<Server>> Start(
      ServerOptions options, const core::Clock* clock = nullptr);
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  // Shuts down (with a short grace period) if still running.
  ~Server();

  // Re-reads --auth_tokens_file (SIGHUP). On error the old tokens stay.
  absl::Status ReloadTokens();

  // The checkpointer, or null without a data directory.
  core::Checkpointer* checkpointer() {
    return durable_ != nullptr ? durable_->checkpointer() : nullptr;
  }

  // The bound port (useful with port 0).
  int port() const { return port_; }
  // The metrics endpoint's bound port; 0 when metrics are off.
  int metrics_port() const;
  std::string address() const;

  // Stops accepting calls, lets in-flight calls finish within `grace`, then
  // cancels the rest and stops the reaper.
  void Shutdown(absl::Duration grace = absl::Seconds(5));
  // Blocks until the server has shut down.
  void Wait();

  core::VariableStore& store() { return *store_; }
  // This shard's place in its cluster; null for a single server.
  const cluster::ClusterSpec* cluster() const { return spec_.get(); }
  core::SessionManager& sessions() { return *sessions_; }
  core::DataPlane& data() { return *data_; }
  // Segments same-host clients attached; null when shared memory is off.
  const core::SharedSegments* shared_segments() const {
    return attach_socket_ != nullptr ? shared_segments_.get() : nullptr;
  }

 private:
  Server();
  // The steps of Start.
  absl::Status BuildCore(const core::Clock* clock);
  absl::Status JoinCluster();
  absl::Status OpenDurable();
  absl::Status Listen();
  void StartSharedMemory(grpc::ServerBuilder* builder);
  absl::Status ServeMetrics();
  void StartBackground();
  void ReapLoop();
  void CheckpointLoop();
  // Saves a checkpoint if anything changed since the last one.
  void CheckpointIfChanged(const char* why);

  ServerOptions options_;
  core::RealClock real_clock_;
  std::unique_ptr<CallGate> gate_;  // outlives the services that use it
  std::unique_ptr<core::VariableStore> store_;
  std::unique_ptr<core::SessionManager> sessions_;
  std::unique_ptr<VariableStoreService> service_;
  std::unique_ptr<core::DataPlane> data_;
  std::unique_ptr<VariableDataService> data_service_;
  std::unique_ptr<core::Env> env_;
  std::unique_ptr<core::DurableStore> durable_;  // null without data_dir
  std::unique_ptr<AdminService> admin_service_;
  // The cluster layer (null for a single server): routes calls to the
  // shard that owns them, in front of the local services above.
  std::unique_ptr<cluster::ClusterSpec> spec_;
  std::unique_ptr<cluster::Peers> peers_;
  std::unique_ptr<cluster::Routing> routing_;
  // Cluster checkpoints: this shard's cut gate and part, and the
  // coordination of saves and restores taken here.
  std::unique_ptr<cluster::CutGate> cut_gate_;
  std::unique_ptr<cluster::CutParticipant> cut_participant_;
  std::unique_ptr<cluster::CutCoordinator> cut_coordinator_;
  // Partitioned variables whose parts live on other shards.
  std::unique_ptr<cluster::PartSpreader> part_spreader_;
  // Per-RPC counts kept by an interceptor (null when metrics are off);
  // outlives the gRPC server that calls it.
  std::unique_ptr<metrics::RpcMetrics> rpc_metrics_;
  // Same-host bulk transfer (null when off): the segments outlive the
  // socket that attaches them and the service that reads them.
  std::unique_ptr<core::SharedSegments> shared_segments_;
  std::unique_ptr<core::AttachSocket> attach_socket_;
  std::unique_ptr<SharedMemoryRoute> shared_memory_route_;  // clusters only
  std::unique_ptr<SharedMemoryService> shared_memory_service_;
  std::vector<std::unique_ptr<grpc::Service>> front_services_;
  std::unique_ptr<grpc::Server> grpc_server_;
  int port_ = 0;
  // The HTTP endpoint (null when metrics are off); stopped first.
  std::unique_ptr<metrics::MetricsEndpoint> metrics_endpoint_;
  std::thread reaper_;
  std::thread checkpointer_thread_;
  // Declared last: destroyed first, finishing queued admin calls while the
  // gRPC server still exists.
  std::unique_ptr<Worker> worker_;
  // Runs cluster saves and restores (they wait on peer calls, the admin
  // worker's own among them).
  std::unique_ptr<Worker> cluster_worker_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace varscope::service

#endif  // VARSCOPE_SERVER_SERVICE_SERVER_H_
