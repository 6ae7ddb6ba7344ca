// File: peers.h
// Calls from this shard to the other shards of its cluster: one channel
// each, the cluster token as bearer, the `varscope-hop` marker (the
// receiver answers from its own store and never forwards again: one hop),
// the caller's deadline, and transport errors that name the shard.
//
// Calls are asynchronous (gRPC's callback API): a forwarding handler never
// parks a thread while a peer answers, so two shards forwarding to each
// other cannot exhaust each other's threads.
//
// Thread-safety: all methods are thread-safe.
#ifndef VARSCOPE_SERVER_CLUSTER_PEERS_H_
#define VARSCOPE_SERVER_CLUSTER_PEERS_H_

#include <grpcpp/generic/generic_stub.h>
#include <google/protobuf/message.h>
#include <grpcpp/grpcpp.h>

#include <functional>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/cluster/cluster_spec.h"
#include "server/service/call_gate.h"

namespace varscope::cluster {

// Metadata of a call one shard makes to another on a client's behalf.
inline constexpr char kHopKey[] = "varscope-hop";

// How peers reach each other.
struct PeerSecurity {
  std::string token;      // the cluster token (sent as a bearer token)
  bool tls = false;       // the shards serve TLS
  std::string root_pem;   // CA that signed the shards' certificates
  std::string cert_pem;   // this shard's certificate and key, presented
  std::string key_pem;    // to peers that require client certificates
};

class Peers {
 public:
  using Done = std::function<void(const grpc::Status& status, grpc::ByteBuffer response)>;

  Peers(const ClusterSpec& spec, const PeerSecurity& security);
  Peers(const Peers&) = delete;
  Peers& operator=(const Peers&) = delete;

  const ClusterSpec& spec() const { return spec_; }

  // Calls `method` ("/varscope.v1.VariableData/Push") on `shard` with the
  // serialized `request`, by `deadline`. `done` runs once, on a gRPC
  // thread, with the peer's own status (its code, message and error
  // details pass through unchanged) or, if the shard could not be reached,
  // UNAVAILABLE / DEADLINE_EXCEEDED naming it.
  // `on_behalf`, when set, is the client this call is made for: its
  // session owner and token limits travel with the call.
  // `hop` false sends the call to the shard's front like a client's (it
  // routes it again): how a shard re-runs a call it kept during a cut.
  void Call(int shard, const std::string& method, grpc::ByteBuffer request,
            absl::Time deadline, Done done,
            const service::Admission* on_behalf = nullptr, bool hop = true);
  // The same with a message; the response is parsed into Response.
  template <typename Response>
  void Call(int shard, const std::string& method, const google::protobuf::Message& request,
            absl::Time deadline, std::function<void(const grpc::Status&, Response)> done,
            const service::Admission* on_behalf = nullptr);
  // Blocking form for worker threads (never a gRPC callback thread).
  template <typename Response>
  grpc::Status CallAndWait(int shard, const std::string& method,
                           const google::protobuf::Message& request, absl::Time deadline,
                           Response* response);

  // Who a shard is, for messages: "shard 2 (10.0.0.7:50051)".
  std::string Describe(int shard) const;

  // For streaming calls made with typed stubs: the channel to `shard`, and
  // the metadata and deadline every peer call carries.
  std::shared_ptr<grpc::Channel> channel(int shard) const { return channels_[shard]; }
  void Prepare(grpc::ClientContext* context, absl::Time deadline,
               const service::Admission* on_behalf = nullptr, bool hop = true) const;

 private:
  const ClusterSpec spec_;
  const std::string token_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;  // self included
  std::vector<std::unique_ptr<grpc::GenericStub>> stubs_;
};

// A message as a ByteBuffer, and back.
grpc::ByteBuffer Serialize(const google::protobuf::Message& message);
bool Parse(const grpc::ByteBuffer& buffer, google::protobuf::Message* message);

// Calls `method` on several shards at once; `done` runs once, on a gRPC
// thread, with every answer (in the order of `calls`) after the last.
template <typename Response, typename Request>
void FanOut(Peers* peers, const std::string& method,
            std::vector<std::pair<int, Request>> calls, absl::Time deadline,
            std::function<void(std::vector<std::pair<grpc::Status, Response>>)> done,
            const service::Admission* on_behalf = nullptr) {
  struct State {
    absl::Mutex mu;
    size_t left ABSL_GUARDED_BY(mu) = 0;
    std::vector<std::pair<grpc::Status, Response>> answers ABSL_GUARDED_BY(mu);
    std::function<void(std::vector<std::pair<grpc::Status, Response>>)> done;
  };
  if (calls.empty()) {
    done({});
    return;
  }
  auto state = std::make_shared<State>();
  {
    absl::MutexLock lock(&state->mu);
    state->left = calls.size();
    state->answers.resize(calls.size());
  }
  state->done = std::move(done);
  for (size_t i = 0; i < calls.size(); ++i) {
    peers->Call<Response>(calls[i].first, method, calls[i].second, deadline,
                          [state, i](const grpc::Status& status, Response response) {
                            std::vector<std::pair<grpc::Status, Response>> all;
                            {
                              absl::MutexLock lock(&state->mu);
                              state->answers[i] = {status, std::move(response)};
                              if (--state->left > 0) return;
                              all = std::move(state->answers);
                            }
                            state->done(std::move(all));
                          },
                          on_behalf);
  }
}

template <typename Response>
void Peers::Call(int shard, const std::string& method, const google::protobuf::Message& request,
                 absl::Time deadline, std::function<void(const grpc::Status&, Response)> done,
                 const service::Admission* on_behalf) {
  Call(
      shard, method, Serialize(request), deadline,
      [done = std::move(done)](const grpc::Status& status, grpc::ByteBuffer bytes) {
        Response response;
        if (status.ok() && !Parse(bytes, &response)) {
          done(grpc::Status(grpc::StatusCode::INTERNAL, "a peer's reply did not parse"),
               std::move(response));
          return;
        }
        done(status, std::move(response));
      },
      on_behalf);
}

template <typename Response>
grpc::Status Peers::CallAndWait(int shard, const std::string& method,
                                const google::protobuf::Message& request, absl::Time deadline,
                                Response* response) {
  auto result = std::make_shared<std::promise<std::pair<grpc::Status, Response>>>();
  auto future = result->get_future();
  Call<Response>(shard, method, request, deadline,
                 [result](const grpc::Status& status, Response r) {
                   result->set_value({status, std::move(r)});
                 });
  auto [status, r] = future.get();
  *response = std::move(r);
  return status;
}

}  // namespace varscope::cluster

#endif  // VARSCOPE_SERVER_CLUSTER_PEERS_H_
