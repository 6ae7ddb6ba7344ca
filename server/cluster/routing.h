// File: routing.h
// What the cluster's forwarding services share: whether a call came from
// a peer (then it is answered from the local store), whether the client
// routed by the current slot table, the caller's deadline, and forwarding
// one unary call to the shard that owns its variable.
//
// Thread-safety: thread-safe (immutable after construction).
#ifndef VARSCOPE_SERVER_CLUSTER_ROUTING_H_
#define VARSCOPE_SERVER_CLUSTER_ROUTING_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "server/cluster/peers.h"
#include "server/service/call_gate.h"

namespace varscope::cluster {

// Metadata a routing client sends: the slot table version it routed by.
inline constexpr char kTopologyKey[] = "varscope-topology";

class Routing {
 public:
  // Not owned; both must outlive the routing.
  Routing(Peers* peers, service::CallGate* gate) : peers_(peers), gate_(gate) {}

  Peers& peers() const { return *peers_; }
  service::CallGate& gate() const { return *gate_; }
  const ClusterSpec& spec() const { return peers_->spec(); }
  int self() const { return spec().self(); }
  int OwnerOf(absl::string_view name) const { return spec().OwnerOf(name); }

  // The call is another shard's, made on a client's behalf: answer it from
  // this shard's own store. (The hop marker counts only with the cluster
  // token.)
  bool FromPeer(const grpc::ServerContextBase& ctx) const;
  // FAILED_PRECONDITION, reason TOPOLOGY_CHANGED, when the client routed by
  // a slot table other than this shard's.
  absl::Status CheckTopology(const grpc::ServerContextBase& ctx) const;
  // The caller's deadline (infinite when it set none).
  static absl::Time DeadlineOf(const grpc::ServerContextBase& ctx);

  // Sends a unary call to `shard` and finishes `ctx`'s reactor with the
  // answer (the peer's status, error details included). `call` (the
  // admission) is held until then.
  // `hold` (e.g. a cut ticket) is also kept until then.
  template <typename Request, typename Response>
  grpc::ServerUnaryReactor* Forward(grpc::CallbackServerContext* ctx,
                                    service::Admission call, int shard,
                                    const std::string& method, const Request& request,
                                    Response* response,
                                    std::shared_ptr<void> hold = nullptr) const {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    auto held = std::make_shared<service::Admission>(std::move(call));
    peers_->Call(shard, method, Serialize(request), DeadlineOf(*ctx),
                 [reactor, response, held, hold](const grpc::Status& status,
                                                 grpc::ByteBuffer bytes) {
                   if (status.ok() && !Parse(bytes, response)) {
                     reactor->Finish(grpc::Status(grpc::StatusCode::INTERNAL,
                                                  "a peer's reply did not parse"));
                     return;
                   }
                   reactor->Finish(status);
                 },
                 held.get());
    return reactor;
  }
  // The same for raw methods: the bytes pass through unparsed.
  grpc::ServerUnaryReactor* ForwardRaw(grpc::CallbackServerContext* ctx,
                                       service::Admission call, int shard,
                                       const std::string& method,
                                       const grpc::ByteBuffer& request,
                                       grpc::ByteBuffer* response) const;

 private:
  Peers* const peers_;            // Not owned.
  service::CallGate* const gate_;  // Not owned.
};

// Finishes `ctx`'s unary reactor at once with `status`.
grpc::ServerUnaryReactor* FinishNow(grpc::CallbackServerContext* ctx,
                                    const absl::Status& status);

}  // namespace varscope::cluster

#endif  // VARSCOPE_SERVER_CLUSTER_ROUTING_H_
