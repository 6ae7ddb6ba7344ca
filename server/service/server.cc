#include "server/service/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "server/core/storage/recovery.h"
#include "server/core/tensor/idle_trim.h"
#include "server/core/base/status_macros.h"
#include "absl/strings/ascii.h"
#include "grpc/health/v1/health.pb.h"
#include "server/cluster/cluster_checkpoints.h"
#include "server/cluster/cluster_data_service.h"
#include "server/cluster/cluster_services.h"
#include "server/cluster/cluster_spec.h"
#include "server/cluster/cluster_store_service.h"
#include "server/cluster/cut_gate.h"
#include "server/cluster/peers.h"
#include "server/cluster/routing.h"
#include "server/cluster/shared_memory_route.h"
#include "server/service/call_gate.h"
#include "server/service/admin_service.h"
#include "server/metrics/metrics_endpoint.h"
#include "server/metrics/rpc_metrics.h"
#include "server/metrics/server_metrics.h"
#include "server/service/shared_memory_service.h"
#include "server/service/variable_data_service.h"
#include "server/service/variable_store_service.h"

namespace varscope::service {
namespace {

// The longest a cluster cut may pause a shard's changes before the shard
// resumes on its own (the cut then fails): a coordinator that died must
// not stop the cluster.
constexpr absl::Duration kCutHold = absl::Seconds(10);

bool IsLoopback(absl::string_view listen) {
  // host:port, [v6]:port, or unix sockets (local by nature).
  absl::string_view host = listen.substr(0, listen.rfind(':'));
  return absl::StartsWith(listen, "unix:") || absl::StartsWith(host, "127.") ||
         host == "localhost" || host == "[::1]";
}

absl::StatusOr<std::string> ReadPem(core::Env* env, absl::string_view flag,
                                    const std::string& path) {
  absl::StatusOr<std::string> pem = core::ReadWholeFile(env, path);
  if (!pem.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": ", pem.status().message()));
  }
  if (pem->find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": ", path, " is not a PEM file"));
  }
  return pem;
}

// TLS (mutual with a client CA) or plaintext, with a loud warning when
// plaintext leaves the machine.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentialsFor(
    core::Env* env, const ServerOptions& options) {
  const TlsFiles& tls = options.tls;
  if (!tls.enabled()) {
    if (!tls.key_file.empty() || !tls.client_ca_file.empty()) {
      return absl::InvalidArgumentError(
          "--tls_key and --tls_client_ca need --tls_cert");
    }
    if (!IsLoopback(options.listen)) {
      spdlog::warn(
          "*** listening on {} WITHOUT TLS: anyone on the network can read "
          "and change the variables{}. Use --tls_cert/--tls_key (and "
          "--tls_client_ca) outside loopback. ***",
          options.listen,
          options.auth_tokens_file.empty() ? ""
                                           : " and steal the bearer tokens");
    }
    return grpc::InsecureServerCredentials();
  }
  if (tls.key_file.empty()) {
    return absl::InvalidArgumentError("--tls_cert needs --tls_key");
  }
  grpc::SslServerCredentialsOptions ssl;
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  VARSCOPE_ASSIGN_OR_RETURN(pair.cert_chain,
                            ReadPem(env, "--tls_cert", tls.cert_file));
  VARSCOPE_ASSIGN_OR_RETURN(pair.private_key,
                            ReadPem(env, "--tls_key", tls.key_file));
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  if (!tls.client_ca_file.empty()) {
    VARSCOPE_ASSIGN_OR_RETURN(ssl.pem_root_certs,
                              ReadPem(env, "--tls_client_ca", tls.client_ca_file));
    ssl.client_certificate_request =
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  spdlog::info("TLS on{}", tls.client_ca_file.empty()
                               ? ""
                               : ", client certificates required (mutual TLS)");
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Start(
    ServerOptions options, const core::Clock* clock) {
  std::unique_ptr<Server> server(new Server());
  server->options_ = std::move(options);
  VARSCOPE_RETURN_IF_ERROR(server->BuildCore(clock));
  VARSCOPE_RETURN_IF_ERROR(server->OpenDurable());
  VARSCOPE_RETURN_IF_ERROR(server->Listen());
  VARSCOPE_RETURN_IF_ERROR(server->ServeMetrics());
  server->StartBackground();
  return server;
}

absl::Status Server::BuildCore(const core::Clock* clock) {
  const core::Clock* effective_clock = clock != nullptr ? clock : &real_clock_;
  env_ = core::NewPosixEnv();
  gate_ = std::make_unique<CallGate>(options_.max_in_flight_per_client);
  if (!options_.metrics_listen.empty()) {
    // Bound first: a taken metrics port fails the start before recovery.
    VARSCOPE_ASSIGN_OR_RETURN(metrics_endpoint_,
                              metrics::MetricsEndpoint::Bind(options_.metrics_listen));
  }
  VARSCOPE_RETURN_IF_ERROR(JoinCluster());
  store_ = std::make_unique<core::VariableStore>(options_.store);
  if (spec_ != nullptr) {
    // Before recovery: a record's parts on other shards are not missing.
    const cluster::ClusterSpec* spec = spec_.get();
    store_->set_placement(
        [spec](absl::string_view name) { return spec->OwnerOf(name) == spec->self(); });
  }
  sessions_ = std::make_unique<core::SessionManager>(
      store_.get(), effective_clock, options_.sessions);
  data_ = std::make_unique<core::DataPlane>(store_.get());
  if (!options_.auth_tokens_file.empty()) {
    VARSCOPE_RETURN_IF_ERROR(ReloadTokens());
  }
  return absl::OkStatus();
}

// A shard of a cluster: its spec, the peers' credentials, and session ids
// and scope handles that name this shard as their home.
absl::Status Server::JoinCluster() {
  const ClusterOptions& c = options_.cluster;
  if (c.cluster.empty()) {
    if (c.shard >= 0 || !c.token_file.empty()) {
      return absl::InvalidArgumentError("--shard and --cluster_token_file need --cluster");
    }
    return absl::OkStatus();
  }
  VARSCOPE_ASSIGN_OR_RETURN(cluster::ClusterSpec spec,
                            cluster::ClusterSpec::Create(c.cluster, c.shard));
  spec_ = std::make_unique<cluster::ClusterSpec>(std::move(spec));
  if (c.token_file.empty()) {
    return absl::InvalidArgumentError(
        "--cluster needs --cluster_token_file: the shards authenticate each other with it "
        "(the same secret on every shard; openssl rand -hex 32 > cluster.token)");
  }
  absl::StatusOr<std::string> token = core::ReadWholeFile(env_.get(), c.token_file);
  if (!token.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--cluster_token_file: ", token.status().message()));
  }
  const std::string secret(absl::StripAsciiWhitespace(*token));
  if (secret.size() < core::kMinTokenBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--cluster_token_file: the cluster token must be at least ", core::kMinTokenBytes,
        " bytes"));
  }
  gate_->SetPeerToken(secret);
  cluster::PeerSecurity security;
  security.token = secret;
  if (options_.tls.enabled()) {
    security.tls = true;
    const std::string& ca =
        !c.ca_file.empty() ? c.ca_file : options_.tls.client_ca_file;
    if (ca.empty()) {
      return absl::InvalidArgumentError(
          "a TLS cluster needs the CA of the shards' certificates: --cluster_ca (or "
          "--tls_client_ca)");
    }
    VARSCOPE_ASSIGN_OR_RETURN(security.root_pem, ReadPem(env_.get(), "--cluster_ca", ca));
    VARSCOPE_ASSIGN_OR_RETURN(security.cert_pem,
                              ReadPem(env_.get(), "--tls_cert", options_.tls.cert_file));
    VARSCOPE_ASSIGN_OR_RETURN(security.key_pem,
                              ReadPem(env_.get(), "--tls_key", options_.tls.key_file));
  }
  peers_ = std::make_unique<cluster::Peers>(*spec_, security);
  routing_ = std::make_unique<cluster::Routing>(peers_.get(), gate_.get());
  if (options_.sessions.first_session_id == 0) {
    options_.sessions.first_session_id = spec_->FirstId();
  }
  if (options_.sessions.first_scope_handle == 0) {
    options_.sessions.first_scope_handle = spec_->FirstId();
  }
  spdlog::info("shard {} of {} ({}); slot table {}", spec_->self(), spec_->size(),
               spec_->address(spec_->self()), spec_->table().version());
  return absl::OkStatus();
}

// Restores and replays before serving: nobody sees a half-restored store.
absl::Status Server::OpenDurable() {
  if (options_.data_dir.empty()) return absl::OkStatus();
  core::DurabilityOptions durability;
  durability.data_dir = options_.data_dir;
  durability.keep_checkpoints = options_.keep_checkpoints;
  durability.recover = options_.recover;
  durability.strict = options_.strict;
  durability.progress = [](int64_t done, int64_t total, int64_t variables) {
    spdlog::info("restoring: {} of {} bytes read ({} variables)", done, total,
                 variables);
  };
  core::RecoveryReport report;
  VARSCOPE_ASSIGN_OR_RETURN(
      durable_, core::DurableStore::Open(env_.get(), store_.get(), data_.get(),
                                         durability, &report));
  for (const std::string& skipped : report.restored.skipped) {
    spdlog::warn("--recover: skipped damaged checkpoint {}", skipped);
  }
  if (spec_ != nullptr) {
    if (std::vector<std::string> misplaced = store_->MisplacedParts(); !misplaced.empty()) {
      // Written when parts lived with their partitioned variable: serving
      // it would route the parts to shards that lack them.
      return absl::FailedPreconditionError(absl::StrCat(
          options_.data_dir, " holds ", misplaced.size(), " part(s) of partitioned variables ",
          "this shard does not own (e.g. ", misplaced.front(), ", now placed on shard ",
          spec_->OwnerOf(misplaced.front()),
          "): they were placed with their partitioned variable by an earlier version. Save "
          "a cluster checkpoint with that version, re-shard it with varscope-reshard and "
          "restore it"));
    }
  }
  if (report.restored.checkpoint.name.empty()) {
    spdlog::info("no checkpoint in {}; starting empty",
                 durable_->checkpointer()->checkpoints_dir());
  } else {
    spdlog::info("restored {} variables ({} bytes) in {:.2f} s from {}",
                 report.restored.variables, report.restored.tensor_bytes,
                 report.restored.seconds, report.restored.checkpoint.path);
  }
  const core::ReplayReport& replayed = report.replayed;
  if (replayed.records > 0 || replayed.torn_tail) {
    spdlog::info("replayed {} log records from {} segment(s) in {:.2f} s{}",
                 replayed.records, replayed.segments, report.replay_seconds,
                 replayed.torn_tail
                     ? " (cut one torn, unacknowledged record at the end)"
                     : "");
  }
  if (!replayed.stopped_at.empty()) {
    spdlog::warn(
        "--recover: the log is damaged at {}; dropped everything after it",
        replayed.stopped_at);
  }
  spdlog::info(
      "durability {}: {}; versions continue above {}",
      options_.strict ? "strict" : "relaxed",
      options_.strict
          ? "creates, deletes and every push are logged before they are "
            "acknowledged"
          : "creates and deletes are logged; pushes since the last checkpoint "
            "are lost in a crash",
      report.revision);
  return absl::OkStatus();
}

absl::Status Server::Listen() {
  VARSCOPE_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials,
                            ServerCredentialsFor(env_.get(), options_));
  service_ = std::make_unique<VariableStoreService>(store_.get(), sessions_.get(),
                                                    gate_.get(), spec_ != nullptr);
  data_service_ = std::make_unique<VariableDataService>(
      store_.get(), data_.get(), gate_.get(), options_.max_message_bytes);
  admin_service_ = std::make_unique<AdminService>(
      checkpointer(), store_.get(), sessions_.get(), env_.get(), worker_.get(),
      gate_.get(), AdminService::ServerFacts{kVersion, absl::Now(), options_.tls.enabled(),
                                             spec_ != nullptr ? options_.cluster.shard : 0});

  // Both are gRPC's own registration hooks for standard services.
  grpc::EnableDefaultHealthCheckService(true);
  // gRPC's health service encodes its messages by hand; reflection can
  // describe it only with the generated descriptors in the pool (this
  // reference keeps them linked in).
  (void)grpc::health::v1::HealthCheckRequest::descriptor();
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  grpc::ServerBuilder builder;
  builder.AddListeningPort(options_.listen, credentials, &port_);
  // gRPC sets SO_REUSEPORT by default: a second daemon started on the same
  // port would silently take half its connections. Refuse to start instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(options_.max_message_bytes);
  builder.SetMaxSendMessageSize(options_.max_message_bytes);
  // Let clients send large tensors in 1 MiB HTTP/2 frames (the default is
  // 16 KiB): fewer frames and flow-control updates per chunk.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_FRAME_SIZE, 1 << 20);
  if (!options_.metrics_listen.empty()) {
    // Counted only when asked for: no per-call cost otherwise.
    rpc_metrics_ = std::make_unique<metrics::RpcMetrics>(std::vector<std::string>{
        "varscope.v1.VariableStore", "varscope.v1.VariableData", "varscope.v1.Admin",
        "varscope.v1.Cluster", "varscope.v1.Peer", "varscope.v1.SharedMemory",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection"});
    builder.experimental().SetInterceptorCreators(rpc_metrics_->InterceptorFactories());
  }
  if (spec_ == nullptr) {
    builder.RegisterService(service_.get());
    builder.RegisterService(data_service_.get());
    builder.RegisterService(admin_service_.get());
    front_services_.push_back(
        std::make_unique<cluster::TopologyService>(nullptr, gate_.get(), address()));
  } else {
    // The cluster layer answers every call, routing it to the shard that
    // owns it; the local services above answer for this shard.
    cut_gate_ = std::make_unique<cluster::CutGate>();
    cut_participant_ = std::make_unique<cluster::CutParticipant>(
        checkpointer(), cut_gate_.get(), env_.get(), options_.data_dir);
    cut_coordinator_ = std::make_unique<cluster::CutCoordinator>(
        peers_.get(), cut_participant_.get(), kCutHold);
    cluster_worker_ = std::make_unique<Worker>();
    part_spreader_ = std::make_unique<cluster::PartSpreader>(store_.get(), routing_.get());
    front_services_.push_back(std::make_unique<cluster::ClusterStoreService>(
        service_.get(), store_.get(), sessions_.get(), routing_.get(), part_spreader_.get()));
    front_services_.push_back(std::make_unique<cluster::ClusterDataService>(
        data_service_.get(), routing_.get(), cut_gate_.get()));
    front_services_.push_back(std::make_unique<cluster::ClusterAdminService>(
        admin_service_.get(), routing_.get(), cut_coordinator_.get(), cluster_worker_.get()));
    front_services_.push_back(
        std::make_unique<cluster::TopologyService>(routing_.get(), gate_.get(), ""));
    front_services_.push_back(std::make_unique<cluster::PeerService>(
        sessions_.get(), gate_.get(), cut_participant_.get(), worker_.get(),
        part_spreader_.get()));
  }
  for (auto& front : front_services_) builder.RegisterService(front.get());
  if (options_.shared_memory) StartSharedMemory(&builder);
  grpc_server_ = builder.BuildAndStart();
  if (grpc_server_ == nullptr || port_ == 0) {
    return absl::UnavailableError(absl::StrCat(
        "could not listen on ", options_.listen,
        " (address in use or not valid; use host:port, e.g. 127.0.0.1:50051",
        options_.tls.enabled()
            ? "; or the TLS certificate and key do not match"
            : "",
        ")"));
  }
  grpc_server_->GetHealthCheckService()->SetServingStatus(true);
  return absl::OkStatus();
}

absl::Status Server::ServeMetrics() {
  if (options_.metrics_listen.empty()) return absl::OkStatus();
  metrics::MetricSources sources;
  sources.rpcs = rpc_metrics_.get();
  sources.store = store_.get();
  sources.sessions = sessions_.get();
  sources.data = data_.get();
  sources.checkpointer = checkpointer();
  sources.journal = durable_ != nullptr ? durable_->journal() : nullptr;
  sources.shared_segments = shared_segments();
  sources.version = kVersion;
  sources.started = absl::Now();
  sources.shard = spec_ != nullptr ? options_.cluster.shard : -1;
  VARSCOPE_RETURN_IF_ERROR(
      metrics_endpoint_->Serve([sources] { return metrics::RenderServerMetrics(sources); }));
  spdlog::info("metrics on http://{}:{}/metrics",
               options_.metrics_listen.substr(0, options_.metrics_listen.rfind(':')),
               metrics_endpoint_->port());
  if (!IsLoopback(options_.metrics_listen)) {
    spdlog::warn(
        "metrics on {} are open to the network without authentication: they "
        "show call counts, latencies and sizes (never variable names, values "
        "or tokens)",
        options_.metrics_listen);
  }
  return absl::OkStatus();
}

int Server::metrics_port() const {
  return metrics_endpoint_ != nullptr ? metrics_endpoint_->port() : 0;
}

void Server::StartBackground() {
  reaper_ = std::thread([this] { ReapLoop(); });
  if (part_spreader_ != nullptr) part_spreader_->Start();
  if (durable_ != nullptr &&
      options_.checkpoint_interval > absl::ZeroDuration()) {
    checkpointer_thread_ = std::thread([this] { CheckpointLoop(); });
  }
}

Server::Server() : worker_(std::make_unique<Worker>()) {}

absl::Status Server::ReloadTokens() {
  const std::string& path = options_.auth_tokens_file;
  if (path.empty()) {
    return absl::FailedPreconditionError("no --auth_tokens_file to reload");
  }
  absl::StatusOr<std::string> text = core::ReadWholeFile(env_.get(), path);
  if (!text.ok()) {
    return absl::Status(text.status().code(),
                        absl::StrCat("--auth_tokens_file: ", text.status().message()));
  }
  absl::StatusOr<core::TokenTable> table = core::TokenTable::Parse(*text);
  if (!table.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", table.status().message()));
  }
  const size_t count = table->size();
  gate_->SetTokens(std::make_shared<const core::TokenTable>(*std::move(table)));
  spdlog::info("loaded {} bearer token(s) from {}", count, path);
  return absl::OkStatus();
}

void Server::CheckpointLoop() {
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    mu_.AwaitWithTimeout(absl::Condition(&stopping_),
                         options_.checkpoint_interval);
    if (stopping_) break;
    mu_.Unlock();
    CheckpointIfChanged("periodic");
    mu_.Lock();
  }
}

void Server::CheckpointIfChanged(const char* why) {
  core::Checkpointer* checkpoints = checkpointer();
  if (checkpoints == nullptr) return;
  if (store_->feed().published() == checkpoints->saved_at()) return;
  const absl::Time start = absl::Now();
  absl::StatusOr<core::CheckpointInfo> saved = checkpoints->Save();
  if (!saved.ok()) {
    spdlog::error("{} checkpoint failed: {}", why,
                  std::string(saved.status().message()));
    return;
  }
  spdlog::info("{} checkpoint {}: {} variables, {} bytes in {:.2f} s", why,
               saved->name, saved->variables, saved->bytes,
               absl::ToDoubleSeconds(absl::Now() - start));
}

void Server::StartSharedMemory(grpc::ServerBuilder* builder) {
  // Each attached segment keeps one socket open: leave most descriptors to
  // gRPC, checkpoints and the log.
  core::SharedMemoryLimits limits = options_.shared_memory_limits;
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur != RLIM_INFINITY) {
    limits.max_segments =
        static_cast<int>(std::min<rlim_t>(limits.max_segments, files.rlim_cur / 4));
  }
  shared_segments_ = std::make_unique<core::SharedSegments>(limits);
  absl::StatusOr<std::unique_ptr<core::AttachSocket>> socket =
      core::AttachSocket::Start(shared_segments_.get());
  if (!socket.ok()) {
    // Clients then move everything over gRPC, as they do across hosts.
    spdlog::warn("same-host shared memory is off: {}", std::string(socket.status().message()));
    return;
  }
  attach_socket_ = *std::move(socket);
  if (spec_ != nullptr) {
    shared_memory_route_ = cluster::MakeSharedMemoryRoute(routing_.get(), cut_gate_.get());
  }
  shared_memory_service_ = std::make_unique<SharedMemoryService>(
      data_.get(), gate_.get(), shared_segments_.get(), attach_socket_.get(),
      shared_memory_route_.get());
  builder->RegisterService(shared_memory_service_.get());
  spdlog::info("same-host clients may attach shared memory (socket @{})", attach_socket_->name());
}

Server::~Server() {
  if (grpc_server_ == nullptr) return;  // Start failed before serving
  Shutdown(absl::Seconds(1));
  Wait();
}

std::string Server::address() const {
  const absl::string_view listen = options_.listen;
  const size_t colon = listen.rfind(':');
  return absl::StrCat(listen.substr(0, colon), ":", port_);
}

void Server::ReapLoop() {
  core::IdleTrim idle_trim({});
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), options_.reap_interval);
    if (stopping_) break;
    mu_.Unlock();
    const int reaped = sessions_->ReapExpired();
    store_->buffers()->Trim();  // return idle recycled buffers to the OS
    const core::DataCounters& moved = data_->counters();
    const bool trimmed =
        idle_trim.Tick(absl::Now(), moved.bytes_pushed.load(std::memory_order_relaxed) +
                                        moved.bytes_read.load(std::memory_order_relaxed));
    if (trimmed && shared_segments_ != nullptr) shared_segments_->ReleaseResidentPages();
    if (reaped > 0) spdlog::info("released {} expired session(s)", reaped);
    mu_.Lock();
  }
}

void Server::Shutdown(absl::Duration grace) {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  grpc_server_->GetHealthCheckService()->SetServingStatus(false);
  metrics_endpoint_.reset();  // it reads the objects shut down below
  // Calls a cluster cut kept run now (and fail fast as the server stops).
  if (cut_gate_ != nullptr) cut_gate_->ReopenAll();
  if (part_spreader_ != nullptr) part_spreader_->Stop();
  grpc_server_->Shutdown(
      std::chrono::system_clock::now() + absl::ToChronoNanoseconds(grace));
  if (reaper_.joinable()) reaper_.join();
  if (checkpointer_thread_.joinable()) checkpointer_thread_.join();
  CheckpointIfChanged("shutdown");  // after the last write was served
  absl::MutexLock lock(&mu_);
  stopped_ = true;
}

void Server::Wait() {
  grpc_server_->Wait();
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(&stopped_));
}

}  // namespace varscope::service
