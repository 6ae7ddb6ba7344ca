// The gRPC Connection: every call converts the library's types to the wire
// messages (convert.h) and back. Tensors of 1 MiB and more move as raw
// streams straight from and into the caller's memory (raw_stream.h); pulls
// and pushes run on gRPC's callback API, so the async calls need no thread.
#include <grpc/grpc.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/support/client_interceptor.h>
#include <grpcpp/support/proto_buffer_reader.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <future>
#include <sstream>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "convert.h"
#include "raw_stream.h"
#include "shard_connection.h"
#include "shared_memory.h"
#include "status_util.h"
#include "varscope/connection.h"
#include "varscope/v1/admin.grpc.pb.h"
#include "varscope/v1/cluster.grpc.pb.h"
#include "varscope/v1/shared_memory.grpc.pb.h"
#include "varscope/v1/variable_data.grpc.pb.h"
#include "varscope/v1/variable_store.grpc.pb.h"

namespace varscope {
namespace {

using internal::FromGrpc;
using internal::FromProto;
using internal::ToProto;

// Tensors of at least this many bytes move as streams of chunks.
constexpr size_t kStreamBytes = size_t{1} << 20;
// Chunk payload: 1 MiB less room for the message header, so a stream also
// fits a server whose message limit is 1 MiB.
constexpr size_t kChunkBytes = (size_t{1} << 20) - 4096;
// Tensors of at least this many bytes go through shared memory when the
// daemon shares this host (see ConnectionOptions::shared_memory).
constexpr size_t kSharedMemoryBytes = size_t{64} << 10;

// What a shared-memory call's status means for its segment and the call.
// Returns true when the daemon did not serve it that way and nothing
// changed, so it is repeated over gRPC: USE_GRPC_TRANSFER (an unknown
// segment means the daemon restarted: the pool's segments are dropped), or
// UNIMPLEMENTED (a daemon now without shared memory). A failure without
// the daemon's answer (deadline, cancel, a broken connection) may leave
// its handler still using the segment, so the segment is never lent again.
bool UseGrpcInstead(const absl::Status& status, internal::SegmentLease* lease,
                    internal::SharedMemoryPool* pool) {
  if (status.ok()) return false;
  if (status.code() == absl::StatusCode::kUnimplemented) {
    pool->Disable();
    return true;
  }
  const std::string reason = ErrorReason(status);
  if (reason.empty()) {
    lease->Discard();  // every error of varscoped's own carries a reason
    return false;
  }
  if (status.code() != absl::StatusCode::kFailedPrecondition || reason != "USE_GRPC_TRANSFER") {
    return false;
  }
  if (ErrorMetadata(status)["segment"] == "unknown") pool->Forget();
  return true;
}

// ---- Channel: credentials and the bearer token ----

using Metadata = std::vector<std::pair<std::string, std::string>>;

// Adds fixed metadata to every call of a channel: "authorization: Bearer
// <token>", and for a shard of a cluster the slot-table version routed by.
class MetadataInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit MetadataInterceptor(const Metadata* metadata) : metadata_(metadata) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      for (const auto& [key, value] : *metadata_) {
        methods->GetSendInitialMetadata()->emplace(key, value);
      }
    }
    methods->Proceed();
  }

 private:
  const Metadata* metadata_;
};

class MetadataFactory : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit MetadataFactory(Metadata metadata) : metadata_(std::move(metadata)) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo*) override {
    return new MetadataInterceptor(&metadata_);
  }

 private:
  const Metadata metadata_;  // lives as long as the channel
};

absl::StatusOr<std::string> ReadFile(const std::string& path, absl::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read the TLS ", what, " file ", path));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> CredentialsFor(
    const TlsOptions& tls) {
  if (!tls.enabled) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions ssl;
  if (!tls.ca_file.empty()) {
    auto ca = ReadFile(tls.ca_file, "CA");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *std::move(ca);
  }
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    return absl::InvalidArgumentError(
        "a client certificate needs both cert_file and key_file");
  }
  if (!tls.cert_file.empty()) {
    auto cert = ReadFile(tls.cert_file, "certificate");
    if (!cert.ok()) return cert.status();
    auto key = ReadFile(tls.key_file, "key");
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *std::move(cert);
    ssl.pem_private_key = *std::move(key);
  }
  return grpc::SslCredentials(ssl);
}

// Targets whose traffic never leaves the machine.
bool IsLocalTarget(absl::string_view target) {
  absl::ConsumePrefix(&target, "dns:///");
  absl::ConsumePrefix(&target, "ipv4:");
  absl::ConsumePrefix(&target, "ipv6:");
  if (absl::StartsWith(target, "unix:")) return true;
  const absl::string_view host = target.substr(0, target.rfind(':'));
  return absl::StartsWith(host, "127.") || host == "localhost" || host == "[::1]";
}

absl::Status DTypeMismatch(const std::string& name, v1::DataType got, DataType want) {
  return absl::InvalidArgumentError(absl::StrCat(
      "variable ", name, " is ", DataTypeName(FromProto(got)),
      ", the caller asked for ", DataTypeName(want)));
}

absl::Status SizeMismatch(const std::string& name, size_t got, size_t want) {
  return absl::InvalidArgumentError(absl::StrCat(
      "variable ", name, " holds ", got, " bytes here; the caller's buffer has ", want));
}

class Watcher : public WatchStream {
 public:
  Watcher(v1::VariableData::Stub* stub, const v1::WatchRequest& request) {
    reader_ = stub->Watch(&context_, request);
  }
  ~Watcher() override {
    if (finished_) return;
    Cancel();
    v1::WatchEvent ignored;
    while (reader_->Read(&ignored)) {
    }
    reader_->Finish();
  }
  bool Next(WatchEvent* event) override {
    if (finished_) return false;  // Read after Finish is not allowed
    v1::WatchEvent wire;
    if (reader_->Read(&wire)) {
      *event = FromProto(wire);
      return true;
    }
    if (!finished_) {
      finished_ = true;
      status_ = FromGrpc(reader_->Finish());
    }
    return false;
  }
  void Cancel() override { context_.TryCancel(); }
  absl::Status status() override { return status_; }

 private:
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<v1::WatchEvent>> reader_;
  bool finished_ = false;
  absl::Status status_;
};

// Runs an asynchronous operation and waits for it: the synchronous calls
// are the asynchronous ones, waited for.
template <typename T, typename Start>
T Wait(Start start) {
  // Shared: set_value may still be returning on gRPC's thread when get()
  // wakes this one up.
  auto promise = std::make_shared<std::promise<T>>();
  std::future<T> result = promise->get_future();
  start([promise](T value) { promise->set_value(std::move(value)); });
  return result.get();
}

class GrpcConnection final : public internal::ShardConnection,
                             public std::enable_shared_from_this<GrpcConnection> {
 public:
  // `same_host`: the target is a loopback or unix: address.
  GrpcConnection(std::shared_ptr<grpc::Channel> channel, ConnectionOptions options,
                 bool same_host)
      : channel_(channel),
        store_(v1::VariableStore::NewStub(channel)),
        data_(v1::VariableData::NewStub(channel)),
        admin_(v1::Admin::NewStub(channel)),
        cluster_(v1::Cluster::NewStub(channel)),
        shared_(v1::SharedMemory::NewStub(channel)),
        generic_(channel),
        options_(std::move(options)) {
    if (same_host && options_.shared_memory) {
      shared_pool_ = internal::SharedMemoryPool::Create(
          [stub = shared_, timeout = options_.rpc_timeout](bool wait_for_ready)
              -> absl::StatusOr<internal::AttachTicket> {
            grpc::ClientContext ctx;
            ctx.set_wait_for_ready(wait_for_ready);
            ctx.set_deadline(std::chrono::system_clock::now() +
                             absl::ToChronoNanoseconds(std::min(timeout, absl::Seconds(10))));
            v1::AttachResponse response;
            if (grpc::Status s = stub->Attach(&ctx, v1::AttachRequest(), &response); !s.ok()) {
              return FromGrpc(s);
            }
            return internal::AttachTicket{response.socket_name(), response.ticket(),
                                          static_cast<size_t>(response.max_segment_bytes())};
          });
    }
  }

  absl::StatusOr<internal::Topology> GetTopology(const CallOptions& call) override {
    v1::GetTopologyRequest request;
    v1::Topology response;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, call);
    if (grpc::Status s = cluster_->GetTopology(&ctx, request, &response); !s.ok()) {
      return FromGrpc(s);
    }
    internal::Topology topology;
    topology.clustered = response.clustered();
    for (const v1::Shard& shard : response.shards()) topology.addresses.push_back(shard.address());
    topology.self = response.self();
    topology.shard_of_slot.assign(response.shard_of_slot().begin(),
                                  response.shard_of_slot().end());
    topology.version = response.version();
    return topology;
  }

  // ---- VariableStore ----

  absl::StatusOr<Session> OpenSession(const std::string& client_name,
                                      absl::Duration lease,
                                      const CallOptions& call) override {
    v1::OpenSessionRequest request;
    request.set_client_name(client_name);
    request.set_lease_ttl_ms(absl::ToInt64Milliseconds(lease));
    v1::OpenSessionResponse response;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, call);
    if (grpc::Status s = store_->OpenSession(&ctx, request, &response); !s.ok()) {
      return FromGrpc(s);
    }
    return Session{response.session_id(), absl::Milliseconds(response.lease_ttl_ms()),
                   response.root_scope_id()};
  }

  absl::StatusOr<absl::Duration> KeepAlive(uint64_t session,
                                           const CallOptions& call) override {
    v1::KeepAliveRequest request;
    request.set_session_id(session);
    v1::KeepAliveResponse response;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, call);
    if (grpc::Status s = store_->KeepAlive(&ctx, request, &response); !s.ok()) {
      return FromGrpc(s);
    }
    return absl::Milliseconds(response.lease_ttl_ms());
  }

  absl::Status CloseSession(uint64_t session, const CallOptions& call) override {
    v1::CloseSessionRequest request;
    request.set_session_id(session);
    v1::CloseSessionResponse response;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, call);
    return FromGrpc(store_->CloseSession(&ctx, request, &response));
  }

  absl::StatusOr<ScopeInfo> OpenScope(const OpenScopeArgs& args,
                                      const CallOptions& call) override {
    v1::OpenScopeRequest request;
    ToProto(args, &request);
    return ScopeCall(call, [&](grpc::ClientContext* ctx, v1::Scope* out) {
      return store_->OpenScope(ctx, request, out);
    });
  }

  absl::StatusOr<ScopeInfo> UpdateScope(uint64_t session, uint64_t scope,
                                        const ScopeDefaults& defaults,
                                        const CallOptions& call) override {
    v1::UpdateScopeRequest request;
    request.set_session_id(session);
    request.set_scope_id(scope);
    if (defaults.initializer.has_value()) {
      request.mutable_update_mask()->add_paths("initializer");
      if (defaults.initializer->has_value()) {
        ToProto(**defaults.initializer, request.mutable_initializer());
      }
    }
    if (defaults.dtype.has_value()) {
      request.mutable_update_mask()->add_paths("dtype");
      request.set_dtype(ToProto(*defaults.dtype));
    }
    if (defaults.partitioner.has_value()) {
      request.mutable_update_mask()->add_paths("partitioner");
      if (defaults.partitioner->has_value()) {
        ToProto(**defaults.partitioner, request.mutable_partitioner());
      }
    }
    return ScopeCall(call, [&](grpc::ClientContext* ctx, v1::Scope* out) {
      return store_->UpdateScope(ctx, request, out);
    });
  }

  absl::StatusOr<ScopeInfo> ReuseVariables(uint64_t session, uint64_t scope,
                                           const CallOptions& call) override {
    v1::ReuseVariablesRequest request;
    request.set_session_id(session);
    request.set_scope_id(scope);
    return ScopeCall(call, [&](grpc::ClientContext* ctx, v1::Scope* out) {
      return store_->ReuseVariables(ctx, request, out);
    });
  }

  absl::Status CloseScope(uint64_t session, uint64_t scope,
                          const CallOptions& call) override {
    v1::CloseScopeRequest request;
    request.set_session_id(session);
    request.set_scope_id(scope);
    v1::CloseScopeResponse response;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, call);
    return FromGrpc(store_->CloseScope(&ctx, request, &response));
  }

  absl::StatusOr<GetVariableResult> GetVariable(const GetVariableArgs& args,
                                                const CallOptions& call) override {
    v1::GetVariableRequest request;
    ToProto(args, &request);
    v1::GetVariableResponse response;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, call, 0, args.wait);
    if (grpc::Status s = store_->GetVariable(&ctx, request, &response); !s.ok()) {
      return FromGrpc(s);
    }
    return GetVariableResult{FromProto(response.variable()), response.created()};
  }

  absl::StatusOr<VariableInfo> NewVariable(const NewVariableArgs& args,
                                           const CallOptions& call) override {
    v1::NewVariableRequest request;
    ToProto(args, &request);
    v1::Variable response;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, call);
    if (grpc::Status s = store_->NewVariable(&ctx, request, &response); !s.ok()) {
      return FromGrpc(s);
    }
    return FromProto(response);
  }

  absl::StatusOr<std::string> OpName(uint64_t session, uint64_t scope,
                                     const std::string& name, bool preview,
                                     const CallOptions& call) override {
    v1::OpNameRequest request;
    request.set_session_id(session);
    request.set_scope_id(scope);
    request.set_name(name);
    request.set_preview(preview);
    v1::OpNameResponse response;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, call);
    if (grpc::Status s = store_->OpName(&ctx, request, &response); !s.ok()) {
      return FromGrpc(s);
    }
    return response.name();
  }

  absl::StatusOr<VariablePage> ListVariables(const ListVariablesArgs& args,
                                             const CallOptions& call) override {
    v1::ListVariablesRequest request;
    request.set_prefix(args.prefix);
    request.set_collection(args.collection);
    request.set_include_partitioned(args.include_partitioned);
    request.set_page_size(args.page_size);
    request.set_page_token(args.page_token);
    v1::ListVariablesResponse response;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, call);
    if (grpc::Status s = store_->ListVariables(&ctx, request, &response); !s.ok()) {
      return FromGrpc(s);
    }
    VariablePage page;
    for (const v1::Variable& v : response.variables()) {
      page.variables.push_back(FromProto(v));
    }
    page.next_page_token = response.next_page_token();
    return page;
  }

  absl::StatusOr<ScopePage> ListScopes(const ListScopesArgs& args,
                                       const CallOptions& call) override {
    v1::ListScopesRequest request;
    request.set_prefix(args.prefix);
    request.set_session_id(args.session);
    request.set_handles_only(args.handles_only);
    request.set_page_size(args.page_size);
    request.set_page_token(args.page_token);
    v1::ListScopesResponse response;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, call);
    if (grpc::Status s = store_->ListScopes(&ctx, request, &response); !s.ok()) {
      return FromGrpc(s);
    }
    ScopePage page;
    for (const v1::ScopeNode& n : response.scopes()) {
      page.scopes.push_back({n.name(), n.variables(), n.total_variables()});
    }
    for (const v1::Scope& h : response.handles()) page.handles.push_back(FromProto(h));
    page.next_page_token = response.next_page_token();
    return page;
  }

  absl::StatusOr<VariableInfo> DescribeVariable(const std::string& name,
                                                const CallOptions& call) override {
    v1::DescribeVariableRequest request;
    request.set_name(name);
    v1::Variable response;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, call);
    if (grpc::Status s = store_->DescribeVariable(&ctx, request, &response); !s.ok()) {
      return FromGrpc(s);
    }
    return FromProto(response);
  }

  absl::StatusOr<std::vector<std::string>> DeleteVariable(
      const std::string& name, const CallOptions& call) override {
    v1::DeleteVariableRequest request;
    request.set_name(name);
    v1::DeleteVariableResponse response;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, call);
    if (grpc::Status s = store_->DeleteVariable(&ctx, request, &response); !s.ok()) {
      return FromGrpc(s);
    }
    return std::vector<std::string>(response.deleted().begin(), response.deleted().end());
  }

  // ---- VariableData ----

  absl::StatusOr<PullResult> Pull(const PullArgs& args, DataType dtype,
                                  absl::Span<uint8_t> out,
                                  const CallOptions& call) override {
    if (std::optional<internal::SegmentLease> lease = LeaseFor(out.size(), call)) {
      SharedPullCall p(args, dtype, out, std::move(*lease));
      SetDeadline(&p.ctx, call, out.size());
      const grpc::Status s = shared_->Pull(&p.ctx, p.request, &p.response);
      if (!UseGrpcInstead(FromGrpc(s), &p.lease, shared_pool_.get())) {
        return FinishSharedPull(&p, s);
      }
    }
    if (out.size() >= kStreamBytes) {  // the stream's own thread does the work
      return Wait<absl::StatusOr<PullResult>>(
          [&](auto done) { StartGrpcPull(args, dtype, out, call, std::move(done)); });
    }
    // Small: the sync stub, with no hop to another thread.
    PullCall p;
    p.dtype = dtype;
    p.out = out;
    SetDeadline(&p.ctx, call, out.size());
    *p.request.add_variables() = SelectorOf(args);
    return FinishUnaryPull(&p, data_->Pull(&p.ctx, p.request, &p.response));
  }

  std::future<absl::StatusOr<PullResult>> PullAsync(const PullArgs& args,
                                                    DataType dtype,
                                                    absl::Span<uint8_t> out,
                                                    const CallOptions& call) override {
    auto promise = std::make_shared<std::promise<absl::StatusOr<PullResult>>>();
    std::future<absl::StatusOr<PullResult>> result = promise->get_future();
    StartPull(args, dtype, out, call, [promise](absl::StatusOr<PullResult> r) {
      promise->set_value(std::move(r));
    });
    return result;
  }

  absl::StatusOr<std::vector<Tensor>> PullMany(const std::vector<std::string>& names,
                                               const CallOptions& call) override {
    v1::PullRequest request;
    for (const std::string& name : names) request.add_variables()->set_name(name);
    v1::PullResponse response;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, call);
    if (grpc::Status s = data_->Pull(&ctx, request, &response); !s.ok()) {
      return FromGrpc(s);
    }
    std::vector<Tensor> out;
    for (const v1::Tensor& t : response.tensors()) out.push_back(FromProto(t));
    return out;
  }

  absl::StatusOr<std::vector<UpdateResult>> Push(const std::vector<PushItem>& items,
                                                 const CallOptions& call) override {
    if (std::optional<internal::SegmentLease> lease = LeaseFor(items, call)) {
      SharedPushCall p(items[0], std::move(*lease));
      SetDeadline(&p.ctx, call, items[0].data.size());
      const grpc::Status s = shared_->Push(&p.ctx, p.request, &p.response);
      if (!UseGrpcInstead(FromGrpc(s), &p.lease, shared_pool_.get())) {
        if (!s.ok()) return FromGrpc(s);
        return Results(p.response);
      }
    }
    if (items.size() == 1 && items[0].data.size() >= kStreamBytes) {
      return Wait<absl::StatusOr<std::vector<UpdateResult>>>(
          [&](auto done) { StartGrpcPush(items, call, std::move(done)); });
    }
    // Unary: the sync stub, with no hop to another thread.
    PushCall p;
    size_t total = 0;
    for (const PushItem& item : items) {
      v1::Update* update = p.request.add_updates();
      ToProto(item, update);
      update->set_data(item.data.data(), item.data.size());
      total += item.data.size();
    }
    SetDeadline(&p.ctx, call, total);
    grpc::Status s = data_->Push(&p.ctx, p.request, &p.response);
    if (!s.ok()) return FromGrpc(s);
    return Results(p.response);
  }

  std::future<absl::StatusOr<std::vector<UpdateResult>>> PushAsync(
      const std::vector<PushItem>& items, const CallOptions& call) override {
    auto promise =
        std::make_shared<std::promise<absl::StatusOr<std::vector<UpdateResult>>>>();
    auto result = promise->get_future();
    StartPush(items, call, [promise](absl::StatusOr<std::vector<UpdateResult>> r) {
      promise->set_value(std::move(r));
    });
    return result;
  }

  absl::StatusOr<Tensor> Gather(const std::string& name,
                                const std::vector<int64_t>& indices,
                                const CallOptions& call) override {
    v1::GatherRequest request;
    request.set_name(name);
    request.mutable_indices()->Assign(indices.begin(), indices.end());
    v1::Tensor response;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, call);
    if (grpc::Status s = data_->Gather(&ctx, request, &response); !s.ok()) {
      return FromGrpc(s);
    }
    return FromProto(response);
  }

  absl::StatusOr<std::vector<TrainingState>> SetOptimizer(
      const std::vector<std::string>& names,
      const std::optional<OptimizerConfig>& optimizer, int replicas,
      const CallOptions& call) override {
    v1::SetOptimizerRequest request;
    for (const std::string& n : names) request.add_names(n);
    if (optimizer) ToProto(*optimizer, request.mutable_optimizer());
    request.set_replicas_to_aggregate(replicas);
    v1::SetOptimizerResponse response;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, call);
    if (grpc::Status s = data_->SetOptimizer(&ctx, request, &response); !s.ok()) {
      return FromGrpc(s);
    }
    std::vector<TrainingState> out;
    for (const v1::TrainingState& t : response.variables()) out.push_back(FromProto(t));
    return out;
  }

  absl::StatusOr<TrainingState> DescribeTraining(const std::string& name,
                                                 const CallOptions& call) override {
    v1::DescribeTrainingRequest request;
    request.set_name(name);
    v1::TrainingState response;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, call);
    if (grpc::Status s = data_->DescribeTraining(&ctx, request, &response); !s.ok()) {
      return FromGrpc(s);
    }
    return FromProto(response);
  }

  absl::StatusOr<uint64_t> WaitVersion(const std::string& name, uint64_t version,
                                       absl::Duration timeout,
                                       const CallOptions& call) override {
    v1::WaitVersionRequest request;
    request.set_name(name);
    request.set_version(version);
    request.set_timeout_ms(std::max<int64_t>(1, absl::ToInt64Milliseconds(timeout)));
    v1::WaitVersionResponse response;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, call, 0, timeout);
    if (grpc::Status s = data_->WaitVersion(&ctx, request, &response); !s.ok()) {
      return FromGrpc(s);
    }
    return response.version();
  }

  std::unique_ptr<WatchStream> Watch(const std::string& prefix, bool send_initial,
                                     uint32_t buffer, const CallOptions&) override {
    v1::WatchRequest request;
    request.set_prefix(prefix);
    request.set_send_initial(send_initial);
    request.set_buffer_events(buffer);
    return std::make_unique<Watcher>(data_.get(), request);
  }

  // ---- Admin ----

  absl::StatusOr<CheckpointInfo> Save(const std::string& name,
                                      const CallOptions& call) override {
    v1::SaveRequest request;
    request.set_name(name);
    v1::CheckpointInfo response;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, call, 0, absl::Hours(1));
    if (grpc::Status s = admin_->Save(&ctx, request, &response); !s.ok()) {
      return FromGrpc(s);
    }
    return FromProto(response);
  }

  absl::StatusOr<std::vector<CheckpointInfo>> ListCheckpoints(
      const CallOptions& call) override {
    std::vector<CheckpointInfo> out;
    std::string token;
    do {
      v1::ListCheckpointsRequest request;
      request.set_page_token(token);
      v1::ListCheckpointsResponse response;
      grpc::ClientContext ctx;
      SetDeadline(&ctx, call);
      if (grpc::Status s = admin_->ListCheckpoints(&ctx, request, &response); !s.ok()) {
        return FromGrpc(s);
      }
      for (const v1::CheckpointInfo& c : response.checkpoints()) out.push_back(FromProto(c));
      token = response.next_page_token();
    } while (!token.empty());
    return out;
  }

  absl::StatusOr<CheckpointInfo> Restore(const std::string& name,
                                         const CallOptions& call) override {
    v1::RestoreRequest request;
    request.set_name(name);
    v1::RestoreResponse response;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, call, 0, absl::Hours(1));
    if (grpc::Status s = admin_->Restore(&ctx, request, &response); !s.ok()) {
      return FromGrpc(s);
    }
    return FromProto(response.checkpoint());
  }

  absl::StatusOr<std::vector<std::string>> Import(const std::string& path,
                                                  const std::string& scope,
                                                  std::optional<bool> trainable,
                                                  const CallOptions& call) override {
    v1::ImportRequest request;
    request.set_path(path);
    request.set_scope(scope);
    if (trainable) request.set_trainable(*trainable);
    v1::ImportResponse response;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, call, 0, absl::Hours(1));
    if (grpc::Status s = admin_->Import(&ctx, request, &response); !s.ok()) {
      return FromGrpc(s);
    }
    return std::vector<std::string>(response.names().begin(), response.names().end());
  }

  absl::StatusOr<ServerStats> GetStats(const CallOptions& call) override {
    v1::GetStatsRequest request;
    v1::ServerStats response;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, call);
    if (grpc::Status s = admin_->GetStats(&ctx, request, &response); !s.ok()) {
      return FromGrpc(s);
    }
    return FromProto(response);
  }

  absl::StatusOr<std::vector<SessionSummary>> ListSessions(const CallOptions& call) override {
    // Every page: operators want all of them, and there are at most
    // --max_sessions per shard.
    std::vector<SessionSummary> out;
    v1::ListSessionsRequest request;
    do {
      v1::ListSessionsResponse response;
      grpc::ClientContext ctx;
      SetDeadline(&ctx, call);
      if (grpc::Status s = admin_->ListSessions(&ctx, request, &response); !s.ok()) {
        return FromGrpc(s);
      }
      for (const v1::SessionSummary& s : response.sessions()) out.push_back(FromProto(s));
      request.set_page_token(response.next_page_token());
    } while (!request.page_token().empty());
    return out;
  }

  absl::StatusOr<HealthStatus> CheckHealth(const CallOptions& call) override {
    // grpc.health.v1 is not among the client's generated types: the
    // request (service "") is the empty message, and the response is one
    // field, `ServingStatus status = 1`.
    grpc::ClientContext ctx;
    SetDeadline(&ctx, call);
    grpc::Slice empty("");
    grpc::ByteBuffer request(&empty, 1), response;
    std::promise<grpc::Status> done;
    generic_.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request,
                       &response, [&done](grpc::Status s) { done.set_value(std::move(s)); });
    if (grpc::Status s = done.get_future().get(); !s.ok()) return FromGrpc(s);
    std::vector<grpc::Slice> slices;
    std::string bytes;
    if (response.Dump(&slices).ok()) {
      for (const grpc::Slice& slice : slices) {
        bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
      }
    }
    // Field 1, varint (tag 0x08); absent = UNKNOWN (0).
    int status = 0;
    if (bytes.size() >= 2 && bytes[0] == 0x08 && (bytes[1] & 0x80) == 0) status = bytes[1];
    if (status < 0 || status > 3) status = 0;
    return static_cast<HealthStatus>(status);
  }

  // Large transfers get extra time: a second per 64 MiB on top of the
  // call's timeout (a 1 GiB pull is not cut off at 30 s on a slow link).
  // Also applies wait_for_ready (see ConnectionOptions).
  void SetDeadline(grpc::ClientContext* ctx, const CallOptions& call, size_t bytes = 0,
                   absl::Duration extra = absl::ZeroDuration()) const {
    ctx->set_wait_for_ready(call.wait_for_ready.value_or(options_.wait_for_ready));
    const absl::Duration base = call.timeout.value_or(options_.rpc_timeout);
    const absl::Duration transfer = absl::Seconds(bytes / (size_t{64} << 20));
    const absl::Duration total = base + transfer + extra;
    // An infinite (or absurdly long) timeout is no deadline at all; adding
    // it to now() would overflow into the past.
    if (total >= absl::Hours(24 * 365)) return;
    ctx->set_deadline(std::chrono::system_clock::now() + absl::ToChronoNanoseconds(total));
  }

  template <typename Call>
  absl::StatusOr<ScopeInfo> ScopeCall(const CallOptions& call, Call rpc) {
    v1::Scope response;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, call);
    if (grpc::Status s = rpc(&ctx, &response); !s.ok()) return FromGrpc(s);
    return FromProto(response);
  }

  static v1::Selector SelectorOf(const PullArgs& args) {
    v1::Selector selector;
    selector.set_name(args.name);
    if (args.rows) {
      selector.mutable_rows()->set_start(args.rows->start);
      selector.mutable_rows()->set_count(args.rows->count);
    }
    selector.set_if_newer_than(args.if_newer_than);
    return selector;
  }

  // ---- Same-host shared memory ----

  // A segment for a pull of `bytes`, or nothing (gRPC then).
  std::optional<internal::SegmentLease> LeaseFor(size_t bytes, const CallOptions& call) {
    if (shared_pool_ == nullptr || bytes < kSharedMemoryBytes) return std::nullopt;
    return shared_pool_->Acquire(bytes, call.wait_for_ready.value_or(options_.wait_for_ready));
  }
  // A segment for a push of one item (several go over gRPC, atomically).
  std::optional<internal::SegmentLease> LeaseFor(const std::vector<PushItem>& items,
                                                 const CallOptions& call) {
    if (items.size() != 1) return std::nullopt;
    return LeaseFor(items[0].data.size(), call);
  }

  // A pull into a segment; the lease goes back to the pool with it.
  struct SharedPullCall {
    SharedPullCall(const PullArgs& a, DataType d, absl::Span<uint8_t> o,
                   internal::SegmentLease l)
        : args(a), dtype(d), out(o), lease(std::move(l)) {
      *request.mutable_variable() = SelectorOf(args);
      v1::Region* into = request.mutable_into();
      into->set_segment(lease.id());
      into->set_length(lease.size());
    }
    grpc::ClientContext ctx;
    PullArgs args;
    DataType dtype;
    absl::Span<uint8_t> out;
    internal::SegmentLease lease;
    v1::SharedPullRequest request;
    v1::SharedPullResponse response;
  };

  static absl::StatusOr<PullResult> FinishSharedPull(SharedPullCall* p, const grpc::Status& s) {
    if (!s.ok()) return FromGrpc(s);
    const v1::Tensor& t = p->response.tensor();
    return CopyPulled(t, p->dtype, p->lease.data(), static_cast<size_t>(t.total_bytes()), p->out);
  }

  // A push whose data was copied into a segment.
  struct SharedPushCall {
    SharedPushCall(const PushItem& item, internal::SegmentLease l) : lease(std::move(l)) {
      std::memcpy(lease.data(), item.data.data(), item.data.size());
      ToProto(item, request.mutable_update());
      v1::Region* data = request.mutable_data();
      data->set_segment(lease.id());
      data->set_length(item.data.size());
    }
    grpc::ClientContext ctx;
    internal::SegmentLease lease;
    v1::SharedPushRequest request;
    v1::PushResponse response;
  };

  // One pull in flight: unary below 1 MiB, else a raw stream decoded
  // straight into `out`. Deletes itself after calling `done`.
  struct PullCall {
    grpc::ClientContext ctx;
    v1::PullRequest request;
    v1::PullResponse response;
    std::string wire;
    DataType dtype = DataType::kUnspecified;
    absl::Span<uint8_t> out;
    PullResult result;
    bool sent = false, first = true;
    size_t received = 0;
    PullDone done;
  };

  void StartPull(const PullArgs& args, DataType dtype, absl::Span<uint8_t> out,
                 const CallOptions& call, PullDone done) override {
    std::optional<internal::SegmentLease> lease = LeaseFor(out.size(), call);
    if (!lease.has_value()) {
      StartGrpcPull(args, dtype, out, call, std::move(done));
      return;
    }
    auto* p = new SharedPullCall(args, dtype, out, std::move(*lease));
    SetDeadline(&p->ctx, call, out.size());
    // Weak: the connection may be dropped (a topology refresh) while the
    // call is in flight; the repeat over gRPC then has nowhere to go.
    shared_->async()->Pull(
        &p->ctx, &p->request, &p->response,
        [self = weak_from_this(), pool = shared_pool_, p, call,
         done = std::move(done)](grpc::Status status) mutable {
          std::shared_ptr<GrpcConnection> connection = self.lock();
          if (UseGrpcInstead(FromGrpc(status), &p->lease, pool.get()) && connection != nullptr) {
            connection->StartGrpcPull(p->args, p->dtype, p->out, call, std::move(done));
          } else {
            done(FinishSharedPull(p, status));
          }
          delete p;
        });
  }

  void StartGrpcPull(const PullArgs& args, DataType dtype, absl::Span<uint8_t> out,
                     const CallOptions& call, PullDone done) {
    auto* p = new PullCall();
    p->dtype = dtype;
    p->out = out;
    p->done = std::move(done);
    SetDeadline(&p->ctx, call, out.size());
    v1::Selector selector = SelectorOf(args);
    if (out.size() < kStreamBytes) {
      *p->request.add_variables() = std::move(selector);
      data_->async()->Pull(&p->ctx, &p->request, &p->response,
                           [p](grpc::Status status) {
                             p->done(FinishUnaryPull(p, status));
                             delete p;
                           });
      return;
    }
    v1::PullStreamRequest request;
    *request.mutable_variable() = std::move(selector);
    request.set_chunk_bytes(kChunkBytes);
    p->wire = request.SerializeAsString();
    internal::StartRawStreamingCall(
        &generic_, &p->ctx, "/varscope.v1.VariableData/PullStream",
        [p](grpc::ByteBuffer* next) {
          if (p->sent) return false;
          p->sent = true;
          grpc::Slice slice(p->wire);
          *next = grpc::ByteBuffer(&slice, 1);
          return true;
        },
        [p](const grpc::ByteBuffer& in) { return OnPullChunk(p, in); },
        [p](absl::Status status) {
          if (status.ok() && !p->result.unchanged && p->received != p->out.size()) {
            status = absl::DataLossError(absl::StrCat(
                "the stream ended after ", p->received, " of ", p->out.size(), " bytes"));
          }
          if (status.ok()) {
            p->done(std::move(p->result));
          } else {
            p->done(status);
          }
          delete p;
        });
  }

  static absl::StatusOr<PullResult> FinishUnaryPull(PullCall* p, const grpc::Status& s) {
    if (!s.ok()) return FromGrpc(s);
    if (p->response.tensors_size() != 1) {
      return absl::InternalError(absl::StrCat("the server answered a pull of one variable with ",
                                              p->response.tensors_size(), " tensors"));
    }
    const v1::Tensor& t = p->response.tensors(0);
    return CopyPulled(t, p->dtype, reinterpret_cast<const uint8_t*>(t.data().data()),
                      t.data().size(), p->out);
  }

  // A pulled tensor's header checked against what the caller asked for,
  // and its `bytes` (`length` of them) copied into `out` unless unchanged.
  static absl::StatusOr<PullResult> CopyPulled(const v1::Tensor& t, DataType dtype,
                                               const uint8_t* bytes, size_t length,
                                               absl::Span<uint8_t> out) {
    if (dtype != DataType::kUnspecified && FromProto(t.dtype()) != dtype) {
      return DTypeMismatch(t.name(), t.dtype(), dtype);
    }
    PullResult result;
    result.version = t.version();
    result.unchanged = t.unchanged();
    result.shape.assign(t.shape().begin(), t.shape().end());
    if (t.unchanged()) return result;
    if (length != out.size()) return SizeMismatch(t.name(), length, out.size());
    std::memcpy(out.data(), bytes, out.size());
    return result;
  }

  static absl::Status OnPullChunk(PullCall* p, const grpc::ByteBuffer& in) {
    internal::TensorChunk chunk;
    absl::Status s = internal::DecodeTensorChunk(in, p->out.data(), p->out.size(), &chunk);
    if (!s.ok()) return s;
    if (p->first) {
      p->first = false;
      const v1::DataType got = static_cast<v1::DataType>(chunk.dtype);
      if (p->dtype != DataType::kUnspecified && FromProto(got) != p->dtype) {
        return DTypeMismatch(chunk.name, got, p->dtype);
      }
      if (!chunk.unchanged && static_cast<size_t>(chunk.total_bytes) != p->out.size()) {
        return SizeMismatch(chunk.name, chunk.total_bytes, p->out.size());
      }
      p->result.version = chunk.version;
      p->result.unchanged = chunk.unchanged;
      p->result.shape = chunk.shape;
    }
    p->received += static_cast<size_t>(chunk.data_bytes);
    return absl::OkStatus();
  }

  // One push in flight: unary for several updates or small data, else a
  // raw stream whose chunks point at the caller's bytes.
  struct PushCall {
    grpc::ClientContext ctx;
    v1::PushRequest request;
    v1::PushResponse response;
    std::string wire;
    absl::Span<const uint8_t> data;
    bool header_sent = false;
    size_t sent = 0;
    PushDone done;
  };

  static absl::StatusOr<std::vector<UpdateResult>> Results(const v1::PushResponse& r) {
    std::vector<UpdateResult> out;
    for (const v1::UpdateResult& u : r.results()) out.push_back(FromProto(u));
    return out;
  }

  void StartPush(const std::vector<PushItem>& items, const CallOptions& call,
                 PushDone done) override {
    std::optional<internal::SegmentLease> lease = LeaseFor(items, call);
    if (!lease.has_value()) {
      StartGrpcPush(items, call, std::move(done));
      return;
    }
    auto* p = new SharedPushCall(items[0], std::move(*lease));
    SetDeadline(&p->ctx, call, items[0].data.size());
    shared_->async()->Push(
        &p->ctx, &p->request, &p->response,
        [self = weak_from_this(), pool = shared_pool_, p, items, call,
         done = std::move(done)](grpc::Status status) mutable {
          std::shared_ptr<GrpcConnection> connection = self.lock();
          if (UseGrpcInstead(FromGrpc(status), &p->lease, pool.get()) && connection != nullptr) {
            connection->StartGrpcPush(items, call, std::move(done));
          } else if (status.ok()) {
            done(Results(p->response));
          } else {
            done(FromGrpc(status));
          }
          delete p;
        });
  }

  void StartGrpcPush(const std::vector<PushItem>& items, const CallOptions& call,
                     PushDone done) {
    auto* p = new PushCall();
    p->done = std::move(done);
    size_t total = 0;
    for (const PushItem& item : items) total += item.data.size();
    SetDeadline(&p->ctx, call, total);
    if (items.size() != 1 || items[0].data.size() < kStreamBytes) {
      for (const PushItem& item : items) {
        v1::Update* update = p->request.add_updates();
        ToProto(item, update);
        update->set_data(item.data.data(), item.data.size());
      }
      data_->async()->Push(&p->ctx, &p->request, &p->response,
                           [p](grpc::Status status) {
                             if (status.ok()) {
                               p->done(Results(p->response));
                             } else {
                               p->done(FromGrpc(status));
                             }
                             delete p;
                           });
      return;
    }
    // The first message carries the update; the others are PushChunk.data
    // (field 2) slices pointing straight at the caller's bytes.
    v1::PushChunk head;
    ToProto(items[0], head.mutable_update());
    p->wire = head.SerializeAsString();
    // A shard of a cluster answers without relaying when it owns the name.
    p->ctx.AddMetadata("varscope-variable", items[0].name);
    p->data = items[0].data;
    internal::StartRawStreamingCall(
        &generic_, &p->ctx, "/varscope.v1.VariableData/PushStream",
        [p](grpc::ByteBuffer* next) {
          if (!p->header_sent) {
            p->header_sent = true;
            grpc::Slice slice(p->wire);
            *next = grpc::ByteBuffer(&slice, 1);
            return true;
          }
          if (p->sent >= p->data.size()) return false;
          const size_t n = std::min(kChunkBytes, p->data.size() - p->sent);
          *next = internal::BytesField(2, p->data.data() + p->sent, n);
          p->sent += n;
          return true;
        },
        [p](const grpc::ByteBuffer& in) -> absl::Status {
          grpc::ByteBuffer copy(in);
          grpc::ProtoBufferReader reader(&copy);
          if (!p->response.ParseFromZeroCopyStream(&reader)) {
            return absl::DataLossError("malformed PushResponse");
          }
          return absl::OkStatus();
        },
        [p](absl::Status status) {
          if (status.ok() && p->response.results_size() != 1) {
            status = absl::InternalError("PushStream returned no result");
          }
          if (status.ok()) {
            p->done(Results(p->response));
          } else {
            p->done(status);
          }
          delete p;
        });
  }

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::VariableStore::Stub> store_;
  std::unique_ptr<v1::VariableData::Stub> data_;
  std::unique_ptr<v1::Admin::Stub> admin_;
  std::unique_ptr<v1::Cluster::Stub> cluster_;
  std::shared_ptr<v1::SharedMemory::Stub> shared_;  // also held by the pool's attach
  grpc::GenericStub generic_;  // raw streams for large tensors
  const ConnectionOptions options_;
  // Same-host bulk transfer; null when the daemon is on another host or
  // shared_memory is off.
  std::shared_ptr<internal::SharedMemoryPool> shared_pool_;
};

}  // namespace

namespace {

// How long MakeConnection waits for a reconnect when its first call could
// not connect: a few of the channel's 100 ms reconnect attempts.
constexpr absl::Duration kConnectGrace = absl::Seconds(1);

// gRPC 1.51 (Debian 12) runs callback-API calls on one process-wide
// "callback alternative" completion queue, shared by reference count among
// the channels that made such calls. When the last of those channels is
// destroyed the queue is shut down and freed while its threads may still
// be returning from a just-completed call: an abort in
// grpc_cq_internal_unref or a crash in grpc_completion_queue_next (seen
// in tests that destroy the only client right after 400 async calls). An
// idle channel that made one callback call, kept for the process's life,
// keeps that reference above zero.
struct CallbackAnchor {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<grpc::GenericStub> stub;
  grpc::ClientContext context;
  grpc::ByteBuffer request, response;
};

void AnchorCallbackQueue() {
  // Reachable from this static for the process's life (not a leak).
  static CallbackAnchor* const kAnchor = [] {
    auto* anchor = new CallbackAnchor;
    anchor->channel = grpc::CreateChannel("unix:/nonexistent/varscope-callback-anchor",
                                          grpc::InsecureChannelCredentials());
    anchor->stub = std::make_unique<grpc::GenericStub>(anchor->channel);
    anchor->context.set_deadline(std::chrono::system_clock::now() +
                                 std::chrono::milliseconds(1));
    grpc::Slice empty("");
    anchor->request = grpc::ByteBuffer(&empty, 1);
    auto done = std::make_shared<std::promise<void>>();
    anchor->stub->UnaryCall(&anchor->context, "/varscope.Anchor/Anchor", grpc::StubOptions(),
                            &anchor->request, &anchor->response,
                            [done](grpc::Status) { done->set_value(); });
    done->get_future().wait();  // fails at once: nothing listens there
    return anchor;
  }();
  (void)kAnchor;
}

}  // namespace

namespace internal {

absl::StatusOr<std::shared_ptr<ShardConnection>> MakeShardConnection(
    const std::string& target, const ConnectionOptions& options,
    std::vector<std::pair<std::string, std::string>> metadata, int64_t group) {
  AnchorCallbackQueue();
  if (!options.auth_token.empty() && !options.tls.enabled &&
      !options.allow_token_without_tls && !IsLocalTarget(target)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "refusing to send a bearer token to ", target,
        " without TLS (anyone on the network could read it): set tls.enabled, "
        "or allow_token_without_tls if the network is trusted"));
  }
  auto credentials = CredentialsFor(options.tls);
  if (!credentials.ok()) return credentials.status();
  grpc::ChannelArguments args;
  if (!options.tls.server_name.empty()) {
    args.SetSslTargetNameOverride(options.tls.server_name);
  }
  args.SetMaxReceiveMessageSize(options.max_message_bytes);
  args.SetMaxSendMessageSize(options.max_message_bytes);
  // Let the server send pulled tensors in 1 MiB HTTP/2 frames.
  args.SetInt(GRPC_ARG_HTTP2_MAX_FRAME_SIZE, 1 << 20);
  // TCP connections of their own per Client: gRPC shares one among all
  // channels to an address whose arguments match, so clients on several
  // threads would queue behind each other's tensors. One Client's channels
  // (its entry, its shards, and their renewals) still share.
  args.SetString("varscope.client_group", absl::StrCat(group));
  // Reconnect 100 ms after a failed attempt, backing off to 10 s at most
  // (gRPC's defaults are 1 s and 120 s): a restarted shard is used again
  // within seconds, and MakeConnection's grace relies on a quick retry.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 10000);
  if (!options.auth_token.empty()) {
    metadata.emplace_back("authorization", "Bearer " + options.auth_token);
  }
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>>
      interceptors;
  if (!metadata.empty()) {
    interceptors.push_back(std::make_unique<MetadataFactory>(std::move(metadata)));
  }
  auto channel = grpc::experimental::CreateCustomChannelWithInterceptors(
      target, *credentials, args, std::move(interceptors));
  return std::shared_ptr<ShardConnection>(
      std::make_shared<GrpcConnection>(std::move(channel), options, IsLocalTarget(target)));
}

}  // namespace internal

absl::StatusOr<std::shared_ptr<Connection>> MakeConnection(
    const std::string& target, const ConnectionOptions& options) {
  // A random group: distinct per Client without any process-wide counter.
  absl::BitGen random;
  const int64_t group = absl::Uniform<int64_t>(random, 0, INT64_MAX);
  absl::StatusOr<std::shared_ptr<internal::ShardConnection>> entry =
      internal::MakeShardConnection(target, options, {}, group);
  if (!entry.ok()) return entry.status();
  if (!options.use_topology) return std::shared_ptr<Connection>(*entry);
  // A cluster routes data-plane calls to each variable's shard; a single
  // server (or one too old to know the Cluster service) is used directly.
  // Any other failure (unreachable, refused token) is the caller's: never
  // a cluster silently used without routing.
  absl::StatusOr<internal::Topology> topology = (*entry)->GetTopology({});
  if (topology.status().code() == absl::StatusCode::kUnavailable && !options.wait_for_ready) {
    // gRPC 1.51 (Debian's) can fail a TCP connect that was going to succeed:
    // it reads errno after other calls that may change it (grpc/grpc#35064).
    // Give the channel one quick reconnect before calling the server down.
    CallOptions grace;
    grace.timeout = std::min(kConnectGrace, options.rpc_timeout);
    grace.wait_for_ready = true;
    absl::StatusOr<internal::Topology> again = (*entry)->GetTopology(grace);
    if (again.status().code() != absl::StatusCode::kDeadlineExceeded) topology = again;
  }
  if (!topology.ok() && topology.status().code() != absl::StatusCode::kUnimplemented) {
    return topology.status();
  }
  if (!topology.ok() || !topology->clustered) return std::shared_ptr<Connection>(*entry);
  return internal::MakeClusterConnection(*std::move(entry), *std::move(topology), options,
                                         group);
}

}  // namespace varscope
