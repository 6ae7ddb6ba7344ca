#include "varscope/client.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/client_interceptor.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "client_data.h"
#include "status_util.h"
#include "varscope/v1/variable_store.grpc.pb.h"

namespace varscope {
namespace internal {

// One opened scope guard (or captured scope). The fields after `thread` are
// guarded by Client::Impl::mu_.
struct ScopeRecord {
  v1::OpenScopeRequest request;          // as first sent (ids re-filled)
  std::shared_ptr<ScopeRecord> parent;   // null = session root
  std::shared_ptr<ScopeRecord> reenter;  // captured scope re-entered
  std::thread::id thread;

  uint64_t seq = 0;         // creation order, for replay after recovery
  uint64_t id = 0;          // server handle, valid in `generation`
  uint64_t generation = 0;  // session generation the handle belongs to
  v1::Scope info;
  bool open = false;
  bool reused = false;      // ReuseVariables was called on it
};

}  // namespace internal

namespace {

constexpr char kReasonKey[] = "varscope-error-reason";
constexpr char kSessionNotFound[] = "SESSION_NOT_FOUND";

using internal::FromGrpc;

bool SessionLost(const grpc::ClientContext& context) {
  const auto& trailers = context.GetServerTrailingMetadata();
  auto it = trailers.find(kReasonKey);
  return it != trailers.end() &&
         absl::string_view(it->second.data(), it->second.size()) ==
             kSessionNotFound;
}

}  // namespace

using internal::ScopeRecord;

class Client::Impl {
 public:
  Impl(std::shared_ptr<grpc::Channel> channel, ClientOptions options)
      : channel_(std::move(channel)),
        stub_(v1::VariableStore::NewStub(channel_)),
        options_(std::move(options)) {}

  ~Impl() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    if (keep_alive_.joinable()) keep_alive_.join();
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(2));
    v1::CloseSessionRequest request;
    request.set_session_id(session_id());
    v1::CloseSessionResponse response;
    stub_->CloseSession(&context, request, &response);  // best effort
  }

  // The OpenSession RPC; the caller publishes the result.
  absl::StatusOr<v1::OpenSessionResponse> OpenSessionRpc() {
    grpc::ClientContext context;
    SetDeadline(context);
    v1::OpenSessionRequest request;
    request.set_client_name(options_.client_name);
    request.set_lease_ttl_ms(absl::ToInt64Milliseconds(options_.lease));
    v1::OpenSessionResponse response;
    grpc::Status status = stub_->OpenSession(&context, request, &response);
    if (!status.ok()) return FromGrpc(status);
    return response;
  }

  void StartKeepAlive() {
    if (options_.keep_alive) keep_alive_ = std::thread([this] { KeepAliveLoop(); });
  }

  void SetDeadline(grpc::ClientContext& context,
                   absl::Duration extra = absl::ZeroDuration()) const {
    context.set_deadline(std::chrono::system_clock::now() +
                         absl::ToChronoNanoseconds(options_.rpc_timeout + extra));
  }

  // Runs `call(context, session_id, scope_id)` where scope_id is `scope`'s
  // handle (0 for the root). When the server no longer knows the session,
  // recovers it and retries once.
  template <typename Call>
  absl::Status Run(const std::shared_ptr<ScopeRecord>& scope, Call&& call,
                   absl::Duration extra_deadline = absl::ZeroDuration()) {
    for (int attempt = 0;; ++attempt) {
      uint64_t session, scope_id = 0, generation;
      {
        absl::MutexLock lock(&mu_);
        session = session_id_;
        generation = generation_;
        if (scope != nullptr) {
          if (scope->generation != generation_ || !scope->open) {
            return absl::FailedPreconditionError(absl::StrCat(
                "scope '", scope->info.name(),
                "' is no longer open on the server (its session was lost and "
                "it could not be re-opened)"));
          }
          scope_id = scope->id;
        }
      }
      grpc::ClientContext context;
      SetDeadline(context, extra_deadline);
      const grpc::Status status = call(&context, session, scope_id);
      if (status.ok()) return absl::OkStatus();
      if (attempt == 0 && SessionLost(context)) {
        absl::Status recovered = Recover(generation);
        if (!recovered.ok()) return recovered;
        continue;
      }
      return FromGrpc(status);
    }
  }

  // Opens a new session and re-opens every live guard (re-applying
  // ReuseVariables), unless another thread already recovered since
  // `seen_generation`. One recovery at a time; no lock is held across its
  // RPCs, and every reply is checked: a guard whose scope (or whose REUSE)
  // could not be restored is left unusable, never silently different.
  absl::Status Recover(uint64_t seen_generation) {
    std::vector<std::shared_ptr<ScopeRecord>> live;
    bool root_reused;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](bool* recovering) { return !*recovering; }, &recovering_));
      if (generation_ != seen_generation) return absl::OkStatus();
      recovering_ = true;
      root_reused = root_reused_;
      for (auto& [thread, stack] : stacks_) {
        live.insert(live.end(), stack.begin(), stack.end());
      }
    }
    std::sort(live.begin(), live.end(),
              [](const auto& a, const auto& b) { return a->seq < b->seq; });
    struct Reopened {
      std::shared_ptr<ScopeRecord> record;
      v1::Scope info;
    };
    std::vector<Reopened> reopened;
    absl::Status result = absl::OkStatus();
    absl::StatusOr<v1::OpenSessionResponse> session = OpenSessionRpc();
    if (session.ok() && root_reused) {
      v1::Scope ignored;
      result = ReuseRpc(session->session_id(), 0, &ignored);
      if (!result.ok()) {
        result = absl::Status(result.code(),
                              absl::StrCat("the re-opened session could not be "
                                           "set to REUSE again: ", result.message()));
      }
    }
    if (session.ok()) {
      absl::flat_hash_map<const ScopeRecord*, uint64_t> new_ids;
      for (const auto& record : live) {
        // A parent or captured target that could not be re-opened leaves
        // this one unusable too (Run reports it).
        auto id_of = [&](const std::shared_ptr<ScopeRecord>& r) -> std::optional<uint64_t> {
          if (r == nullptr) return uint64_t{0};
          auto it = new_ids.find(r.get());
          if (it == new_ids.end()) return std::nullopt;
          return it->second;
        };
        const std::optional<uint64_t> parent = id_of(record->parent);
        const std::optional<uint64_t> reenter = id_of(record->reenter);
        if (!parent || !reenter) continue;
        v1::OpenScopeRequest request = record->request;
        request.set_session_id(session->session_id());
        request.set_parent_scope_id(*parent);
        if (record->reenter) request.set_reenter_scope_id(*reenter);
        grpc::ClientContext context;
        SetDeadline(context);
        v1::Scope info;
        if (!stub_->OpenScope(&context, request, &info).ok()) continue;
        if (record->reused &&
            !ReuseRpc(session->session_id(), info.scope_id(), &info).ok()) {
          continue;  // without its REUSE it would mean something else
        }
        new_ids[record.get()] = info.scope_id();
        reopened.push_back({record, std::move(info)});
      }
    }
    absl::MutexLock lock(&mu_);
    recovering_ = false;
    if (!session.ok()) return session.status();
    session_id_ = session->session_id();
    lease_ = absl::Milliseconds(session->lease_ttl_ms());
    ++generation_;
    ++recoveries_;
    for (Reopened& r : reopened) {
      r.record->id = r.info.scope_id();
      r.record->generation = generation_;
      r.record->info = std::move(r.info);
    }
    return result;
  }

  // ReuseVariables on `scope` (0 = root) of `session`.
  absl::Status ReuseRpc(uint64_t session, uint64_t scope, v1::Scope* out) {
    grpc::ClientContext context;
    SetDeadline(context);
    v1::ReuseVariablesRequest request;
    request.set_session_id(session);
    request.set_scope_id(scope);
    return FromGrpc(stub_->ReuseVariables(&context, request, out));
  }

  void KeepAliveLoop() {
    absl::MutexLock lock(&mu_);
    while (!stopping_) {
      mu_.AwaitWithTimeout(absl::Condition(&stopping_),
                           std::max(lease_ / 3, absl::Milliseconds(100)));
      if (stopping_) break;
      const uint64_t session = session_id_;
      const uint64_t generation = generation_;
      mu_.Unlock();
      grpc::ClientContext context;
      SetDeadline(context);
      v1::KeepAliveRequest request;
      request.set_session_id(session);
      v1::KeepAliveResponse response;
      const grpc::Status status = stub_->KeepAlive(&context, request, &response);
      // Server down: try again next round. Server back without our session:
      // recover it (and our scopes) now rather than on the next call.
      if (!status.ok() && SessionLost(context)) Recover(generation).IgnoreError();
      mu_.Lock();
    }
  }

  std::shared_ptr<ScopeRecord> Innermost() {
    absl::MutexLock lock(&mu_);
    auto it = stacks_.find(std::this_thread::get_id());
    if (it == stacks_.end() || it->second.empty()) return nullptr;
    return it->second.back();
  }

  absl::StatusOr<std::shared_ptr<ScopeRecord>> OpenScope(
      v1::OpenScopeRequest request, std::shared_ptr<ScopeRecord> reenter) {
    auto record = std::make_shared<ScopeRecord>();
    record->parent = Innermost();
    record->reenter = std::move(reenter);
    record->thread = std::this_thread::get_id();
    record->request = request;
    v1::Scope response;
    absl::Status status = Run(
        record->parent, [&](grpc::ClientContext* context, uint64_t session,
                            uint64_t parent_id) {
          request.set_session_id(session);
          request.set_parent_scope_id(parent_id);
          if (record->reenter) {
            absl::MutexLock lock(&mu_);
            if (record->reenter->generation != generation_) {
              return grpc::Status(grpc::StatusCode::NOT_FOUND,
                                  "the captured scope was lost when the "
                                  "session was re-opened");
            }
            request.set_reenter_scope_id(record->reenter->id);
          }
          return stub_->OpenScope(context, request, &response);
        });
    if (!status.ok()) return status;
    absl::MutexLock lock(&mu_);
    record->id = response.scope_id();
    record->generation = generation_;
    record->info = response;
    record->open = true;
    record->seq = next_seq_++;
    stacks_[record->thread].push_back(record);
    return record;
  }

  absl::Status CloseScope(const std::shared_ptr<ScopeRecord>& record) {
    {
      absl::MutexLock lock(&mu_);
      auto& stack = stacks_[record->thread];
      if (stack.empty() || stack.back() != record) {
        return absl::FailedPreconditionError(absl::StrCat(
            "improper nesting: scope '", record->info.name_scope(),
            "' is not the innermost scope of its thread; close scopes "
            "innermost-first"));
      }
    }
    absl::Status status = Run(record, [&](grpc::ClientContext* context,
                                          uint64_t session, uint64_t id) {
      v1::CloseScopeRequest request;
      request.set_session_id(session);
      request.set_scope_id(id);
      v1::CloseScopeResponse response;
      return stub_->CloseScope(context, request, &response);
    });
    // Closed locally either way: the block has ended.
    absl::MutexLock lock(&mu_);
    auto& stack = stacks_[record->thread];
    stack.pop_back();
    if (stack.empty()) stacks_.erase(record->thread);
    record->open = false;
    return absl::IsFailedPrecondition(status) ? absl::OkStatus() : status;
  }

  absl::Status ReuseVariables(const std::shared_ptr<ScopeRecord>& record) {
    v1::Scope response;
    absl::Status status = Run(record, [&](grpc::ClientContext* context,
                                          uint64_t session, uint64_t id) {
      v1::ReuseVariablesRequest request;
      request.set_session_id(session);
      request.set_scope_id(id);
      return stub_->ReuseVariables(context, request, &response);
    });
    if (!status.ok()) return status;
    absl::MutexLock lock(&mu_);
    if (record) {
      record->reused = true;
      record->info = response;
    } else {
      root_reused_ = true;
    }
    return absl::OkStatus();
  }

  uint64_t session_id() const {
    absl::MutexLock lock(&mu_);
    return session_id_;
  }
  int recoveries() const {
    absl::MutexLock lock(&mu_);
    return recoveries_;
  }

  v1::VariableStore::Stub& stub() { return *stub_; }
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }
  const ClientOptions& options() const { return options_; }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::VariableStore::Stub> stub_;
  const ClientOptions options_;
  std::thread keep_alive_;

  mutable absl::Mutex mu_;
  uint64_t session_id_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Duration lease_ ABSL_GUARDED_BY(mu_) = absl::Seconds(30);
  int recoveries_ ABSL_GUARDED_BY(mu_) = 0;
  bool root_reused_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool recovering_ ABSL_GUARDED_BY(mu_) = false;  // one Recover at a time
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 1;
  // Each thread's open guards, outermost first.
  absl::flat_hash_map<std::thread::id, std::vector<std::shared_ptr<ScopeRecord>>>
      stacks_ ABSL_GUARDED_BY(mu_);
};

// ---- Client ----

namespace {

// Adds "authorization: Bearer <token>" to every call of a channel.
class BearerTokenInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit BearerTokenInterceptor(const std::string* header) : header_(header) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::
                PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->emplace("authorization", *header_);
    }
    methods->Proceed();
  }

 private:
  const std::string* header_;
};

class BearerTokenFactory
    : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit BearerTokenFactory(const std::string& token)
      : header_("Bearer " + token) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo*) override {
    return new BearerTokenInterceptor(&header_);
  }

 private:
  const std::string header_;  // lives as long as the channel
};

absl::StatusOr<std::string> ReadFile(const std::string& path,
                                     absl::string_view what) {
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
    const ClientTlsOptions& tls) {
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

}  // namespace

// Targets whose traffic never leaves the machine.
bool IsLocalTarget(absl::string_view target) {
  absl::ConsumePrefix(&target, "dns:///");
  absl::ConsumePrefix(&target, "ipv4:");
  absl::ConsumePrefix(&target, "ipv6:");
  if (absl::StartsWith(target, "unix:")) return true;
  const absl::string_view host = target.substr(0, target.rfind(':'));
  return absl::StartsWith(host, "127.") || host == "localhost" ||
         host == "[::1]";
}

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(
    const std::string& target, ClientOptions options) {
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
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>>
      interceptors;
  if (!options.auth_token.empty()) {
    interceptors.push_back(
        std::make_unique<BearerTokenFactory>(options.auth_token));
  }
  auto channel = grpc::experimental::CreateCustomChannelWithInterceptors(
      target, *credentials, args, std::move(interceptors));
  auto impl = std::make_unique<Impl>(channel, options);
  auto data = std::make_unique<Data>(std::move(channel), std::move(options));
  // Generation 0 has no session yet, so this opens the first one.
  if (absl::Status status = impl->Recover(0); !status.ok()) {
    return absl::Status(status.code(),
                        absl::StrCat("cannot open a session on ", target, ": ",
                                     status.message()));
  }
  impl->StartKeepAlive();
  std::unique_ptr<Client> client(new Client(std::move(impl)));
  client->data_ = std::move(data);
  return client;
}

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

absl::Status Client::CloseGuard(
    Client*& client, const std::shared_ptr<internal::ScopeRecord>& record) {
  if (client == nullptr || record == nullptr) return absl::OkStatus();
  absl::Status status = client->impl_->CloseScope(record);
  if (status.ok()) client = nullptr;  // closed: later Close() is a no-op
  return status;
}

uint64_t Client::session_id() const { return impl_->session_id(); }
int Client::session_recoveries() const {
  return std::max(0, impl_->recoveries() - 1);  // the first open is not one
}

absl::StatusOr<Variable> Client::GetVariable(absl::string_view name,
                                             const VariableOptions& options) {
  v1::GetVariableRequest request;
  request.set_name(std::string(name));
  request.mutable_shape()->Assign(options.shape.begin(), options.shape.end());
  request.set_scalar(options.scalar);
  request.set_dtype(options.dtype);
  if (options.initializer) *request.mutable_initializer() = *options.initializer;
  if (options.trainable) request.set_trainable(*options.trainable);
  for (const std::string& c : options.collections) request.add_collections(c);
  if (options.partitioner) *request.mutable_partitioner() = *options.partitioner;
  request.set_local(options.local);
  request.set_wait_ms(absl::ToInt64Milliseconds(options.wait));
  v1::Variable response;
  absl::Status status = impl_->Run(
      impl_->Innermost(),
      [&](grpc::ClientContext* context, uint64_t session, uint64_t scope) {
        request.set_session_id(session);
        request.set_scope_id(scope);
        return impl_->stub().GetVariable(context, request, &response);
      },
      options.wait);
  if (!status.ok()) return status;
  return Variable(std::move(response), this);
}

absl::StatusOr<Variable> Client::GetVariable(absl::string_view name,
                                             std::vector<int64_t> shape,
                                             DataType dtype) {
  VariableOptions options;
  options.scalar = shape.empty();
  options.shape = std::move(shape);
  options.dtype = dtype;
  return GetVariable(name, options);
}

absl::StatusOr<Variable> Client::NewVariable(absl::string_view name,
                                             const v1::TensorValue& value) {
  v1::NewVariableRequest request;
  request.set_name(std::string(name));
  *request.mutable_value() = value;
  v1::Variable response;
  absl::Status status = impl_->Run(
      impl_->Innermost(),
      [&](grpc::ClientContext* context, uint64_t session, uint64_t scope) {
        request.set_session_id(session);
        request.set_scope_id(scope);
        return impl_->stub().NewVariable(context, request, &response);
      });
  if (!status.ok()) return status;
  return Variable(std::move(response), this);
}

absl::StatusOr<std::string> Client::OpName(absl::string_view name) {
  v1::OpNameRequest request;
  request.set_name(std::string(name));
  v1::OpNameResponse response;
  absl::Status status = impl_->Run(
      impl_->Innermost(),
      [&](grpc::ClientContext* context, uint64_t session, uint64_t scope) {
        request.set_session_id(session);
        request.set_scope_id(scope);
        return impl_->stub().OpName(context, request, &response);
      });
  if (!status.ok()) return status;
  return response.name();
}

absl::Status Client::ReuseVariables() {
  return impl_->ReuseVariables(impl_->Innermost());
}

absl::StatusOr<std::vector<Variable>> Client::ListVariables(
    absl::string_view prefix, absl::string_view collection) {
  v1::ListVariablesRequest request;
  request.set_prefix(std::string(prefix));
  request.set_collection(std::string(collection));
  v1::ListVariablesResponse response;
  absl::Status status = impl_->Run(
      nullptr, [&](grpc::ClientContext* context, uint64_t, uint64_t) {
        return impl_->stub().ListVariables(context, request, &response);
      });
  if (!status.ok()) return status;
  std::vector<Variable> out;
  for (v1::Variable& v : *response.mutable_variables()) {
    out.emplace_back(std::move(v), this);
  }
  return out;
}

absl::StatusOr<Variable> Client::DescribeVariable(absl::string_view name) {
  v1::DescribeVariableRequest request;
  request.set_name(std::string(name));
  v1::Variable response;
  absl::Status status = impl_->Run(
      nullptr, [&](grpc::ClientContext* context, uint64_t, uint64_t) {
        return impl_->stub().DescribeVariable(context, request, &response);
      });
  if (!status.ok()) return status;
  return Variable(std::move(response), this);
}

absl::Status Client::DeleteVariable(absl::string_view name) {
  v1::DeleteVariableRequest request;
  request.set_name(std::string(name));
  v1::DeleteVariableResponse response;
  return impl_->Run(nullptr,
                    [&](grpc::ClientContext* context, uint64_t, uint64_t) {
                      return impl_->stub().DeleteVariable(context, request,
                                                          &response);
                    });
}

// ---- Scope guards ----

const std::string& CapturedScope::name() const { return record_->info.name(); }

namespace {

v1::OpenScopeRequest VariableScopeRequest(const ScopeOptions& options) {
  v1::OpenScopeRequest request;
  request.set_kind(v1::VARIABLE_SCOPE);
  request.set_reuse(options.reuse);
  if (options.initializer) *request.mutable_initializer() = *options.initializer;
  request.set_dtype(options.dtype);
  if (options.partitioner) *request.mutable_partitioner() = *options.partitioner;
  if (!options.auxiliary_name_scope) request.set_auxiliary_name_scope(false);
  return request;
}

}  // namespace

absl::StatusOr<VariableScope> VariableScope::Open(Client& client,
                                                  absl::string_view name,
                                                  ScopeOptions options) {
  if (name.empty()) {
    return absl::InvalidArgumentError(
        "a variable scope needs a name (use OpenDefault for default names)");
  }
  v1::OpenScopeRequest request = VariableScopeRequest(options);
  request.set_name(std::string(name));
  auto record = client.impl_->OpenScope(std::move(request), nullptr);
  if (!record.ok()) return record.status();
  return VariableScope(&client, *std::move(record));
}

absl::StatusOr<VariableScope> VariableScope::OpenDefault(
    Client& client, absl::string_view default_name, ScopeOptions options) {
  v1::OpenScopeRequest request = VariableScopeRequest(options);
  request.set_default_name(std::string(default_name));
  auto record = client.impl_->OpenScope(std::move(request), nullptr);
  if (!record.ok()) return record.status();
  return VariableScope(&client, *std::move(record));
}

absl::StatusOr<VariableScope> VariableScope::Reenter(Client& client,
                                                     const CapturedScope& scope,
                                                     ScopeOptions options) {
  v1::OpenScopeRequest request = VariableScopeRequest(options);
  auto record = client.impl_->OpenScope(std::move(request), scope.record_);
  if (!record.ok()) return record.status();
  return VariableScope(&client, *std::move(record));
}

VariableScope::VariableScope(Client& client, absl::string_view name,
                             ScopeOptions options) {
  absl::StatusOr<VariableScope> opened = Open(client, name, std::move(options));
  if (!opened.ok()) throw StatusError(opened.status());
  *this = *std::move(opened);
}

VariableScope::VariableScope(VariableScope&& other) noexcept
    : client_(std::exchange(other.client_, nullptr)),
      record_(std::move(other.record_)) {}

VariableScope& VariableScope::operator=(VariableScope&& other) noexcept {
  if (this != &other) {
    Close().IgnoreError();
    client_ = std::exchange(other.client_, nullptr);
    record_ = std::move(other.record_);
  }
  return *this;
}

VariableScope::~VariableScope() { Close().IgnoreError(); }

absl::Status VariableScope::Close() {
  return Client::CloseGuard(client_, record_);  // keeps record_ for Capture()
}

absl::Status VariableScope::ReuseVariables() {
  if (client_ == nullptr) {
    return absl::FailedPreconditionError("the scope guard is closed");
  }
  return client_->impl_->ReuseVariables(record_);
}

CapturedScope VariableScope::Capture() const { return CapturedScope(record_); }
const std::string& VariableScope::name() const { return record_->info.name(); }
const std::string& VariableScope::name_scope() const {
  return record_->info.name_scope();
}
Reuse VariableScope::reuse() const { return record_->info.reuse(); }

absl::StatusOr<NameScope> NameScope::Open(Client& client,
                                          absl::string_view name) {
  v1::OpenScopeRequest request;
  request.set_kind(v1::NAME_SCOPE);
  request.set_name(std::string(name));
  auto record = client.impl_->OpenScope(std::move(request), nullptr);
  if (!record.ok()) return record.status();
  return NameScope(&client, *std::move(record));
}

NameScope::NameScope(Client& client, absl::string_view name) {
  absl::StatusOr<NameScope> opened = Open(client, name);
  if (!opened.ok()) throw StatusError(opened.status());
  *this = *std::move(opened);
}

NameScope::NameScope(NameScope&& other) noexcept
    : client_(std::exchange(other.client_, nullptr)),
      record_(std::move(other.record_)) {}

NameScope& NameScope::operator=(NameScope&& other) noexcept {
  if (this != &other) {
    Close().IgnoreError();
    client_ = std::exchange(other.client_, nullptr);
    record_ = std::move(other.record_);
  }
  return *this;
}

NameScope::~NameScope() { Close().IgnoreError(); }

absl::Status NameScope::Close() { return Client::CloseGuard(client_, record_); }

const std::string& NameScope::name_scope() const {
  return record_->info.name_scope();
}

}  // namespace varscope
