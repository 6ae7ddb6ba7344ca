#include "server/service/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <spdlog/spdlog.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "server/core/storage/recovery.h"
#include "server/core/base/status_macros.h"
#include "server/service/call_gate.h"
#include "server/service/admin_service.h"
#include "server/service/variable_data_service.h"
#include "server/service/variable_store_service.h"

namespace varscope::service {
namespace {

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
  const core::Clock* effective_clock =
      clock != nullptr ? clock : &server->real_clock_;
  server->store_ =
      std::make_unique<core::VariableStore>(server->options_.store);
  server->sessions_ = std::make_unique<core::SessionManager>(
      server->store_.get(), effective_clock, server->options_.sessions);
  server->env_ = core::NewPosixEnv();
  server->gate_ =
      std::make_unique<CallGate>(server->options_.max_in_flight_per_client);
  if (!server->options_.auth_tokens_file.empty()) {
    VARSCOPE_RETURN_IF_ERROR(server->ReloadTokens());
  }
  VARSCOPE_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials,
                            ServerCredentialsFor(server->env_.get(), server->options_));
  server->service_ = std::make_unique<VariableStoreService>(
      server->store_.get(), server->sessions_.get(), server->gate_.get());
  server->data_ = std::make_unique<core::DataPlane>(server->store_.get());
  server->data_service_ = std::make_unique<VariableDataService>(
      server->store_.get(), server->data_.get(), server->gate_.get(),
      server->options_.max_message_bytes);
  if (!server->options_.data_dir.empty()) {
    server->checkpointer_ = std::make_unique<core::Checkpointer>(
        server->store_.get(), server->env_.get(), server->options_.data_dir,
        server->options_.keep_checkpoints);
    server->checkpointer_->SetProgress(
        [](int64_t done, int64_t total, int64_t variables) {
          spdlog::info("restoring: {} of {} bytes read ({} variables)", done,
                       total, variables);
        },
        absl::Seconds(5));
    // Restore before serving: nobody sees a half-restored store.
    absl::StatusOr<core::RestoreReport> restored =
        server->checkpointer_->RestoreNewest(server->options_.recover);
    if (!restored.ok()) return restored.status();
    for (const std::string& skipped : restored->skipped) {
      spdlog::warn("--recover: skipped damaged checkpoint {}", skipped);
    }
    if (restored->checkpoint.name.empty()) {
      spdlog::info("no checkpoint in {}; starting empty",
                   server->checkpointer_->checkpoints_dir());
    } else {
      spdlog::info("restored {} variables ({} bytes) in {:.2f} s from {}",
                   restored->variables, restored->tensor_bytes,
                   restored->seconds, restored->checkpoint.path);
    }
    // Then everything logged after that checkpoint.
    core::VariableStore* store = server->store_.get();
    core::DataPlane* data = server->data_.get();
    const absl::Time replay_start = absl::Now();
    absl::StatusOr<core::ReplayReport> replayed = core::Journal::Replay(
        server->env_.get(), server->options_.data_dir,
        restored->checkpoint.wal_segment, server->options_.recover,
        [&](const core::JournalRecord& record) {
          return core::ApplyJournalRecord(store, data, record);
        });
    if (!replayed.ok()) return replayed.status();
    if (replayed->records > 0 || replayed->torn_tail) {
      spdlog::info("replayed {} log records from {} segment(s) in {:.2f} s{}",
                   replayed->records, replayed->segments,
                   absl::ToDoubleSeconds(absl::Now() - replay_start),
                   replayed->torn_tail ? " (cut one torn, unacknowledged record at the end)" : "");
    }
    if (!replayed->stopped_at.empty()) {
      spdlog::warn("--recover: the log is damaged at {}; dropped everything after it",
                   replayed->stopped_at);
    }
    absl::StatusOr<std::unique_ptr<core::Journal>> journal =
        core::Journal::Open(server->env_.get(), server->options_.data_dir);
    if (!journal.ok()) return journal.status();
    server->journal_ = *std::move(journal);
    server->store_->set_journal(server->journal_.get());
    server->data_->set_journal(server->journal_.get(), server->options_.strict);
    server->checkpointer_->set_journal(server->journal_.get());
    spdlog::info("durability {}: {}", server->options_.strict ? "strict" : "relaxed",
                 server->options_.strict
                     ? "creates, deletes and every push are logged before they are acknowledged"
                     : "creates and deletes are logged; pushes since the last checkpoint "
                       "are lost in a crash");
  }
  server->admin_service_ = std::make_unique<AdminService>(
      server->checkpointer_.get(), server->store_.get(),
      server->sessions_.get(), server->env_.get(), server->worker_.get(),
      server->gate_.get(),
      AdminService::ServerFacts{kVersion, absl::Now(),
                                server->options_.tls.enabled()});

  // Both are gRPC's own registration hooks for standard services.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  grpc::ServerBuilder builder;
  builder.AddListeningPort(server->options_.listen, credentials,
                           &server->port_);
  builder.SetMaxReceiveMessageSize(server->options_.max_message_bytes);
  builder.SetMaxSendMessageSize(server->options_.max_message_bytes);
  // Let clients send large tensors in 1 MiB HTTP/2 frames (the default is
  // 16 KiB): fewer frames and flow-control updates per chunk.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_FRAME_SIZE, 1 << 20);
  builder.RegisterService(server->service_.get());
  builder.RegisterService(server->data_service_.get());
  builder.RegisterService(server->admin_service_.get());
  server->grpc_server_ = builder.BuildAndStart();
  if (server->grpc_server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(absl::StrCat(
        "could not listen on ", server->options_.listen,
        " (address in use or not valid; use host:port, e.g. 127.0.0.1:50051",
        server->options_.tls.enabled()
            ? "; or the TLS certificate and key do not match"
            : "",
        ")"));
  }
  server->grpc_server_->GetHealthCheckService()->SetServingStatus(true);
  server->reaper_ = std::thread([s = server.get()] { s->ReapLoop(); });
  if (server->checkpointer_ != nullptr &&
      server->options_.checkpoint_interval > absl::ZeroDuration()) {
    server->checkpointer_thread_ =
        std::thread([s = server.get()] { s->CheckpointLoop(); });
  }
  return server;
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
  if (checkpointer_ == nullptr) return;
  if (store_->feed().published() == checkpointer_->saved_at()) return;
  const absl::Time start = absl::Now();
  absl::StatusOr<core::CheckpointInfo> saved = checkpointer_->Save();
  if (!saved.ok()) {
    spdlog::error("{} checkpoint failed: {}", why,
                  std::string(saved.status().message()));
    return;
  }
  spdlog::info("{} checkpoint {}: {} variables, {} bytes in {:.2f} s", why,
               saved->name, saved->variables, saved->bytes,
               absl::ToDoubleSeconds(absl::Now() - start));
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
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), options_.reap_interval);
    if (stopping_) break;
    mu_.Unlock();
    const int reaped = sessions_->ReapExpired();
    store_->buffers()->Trim();  // return idle recycled buffers to the OS
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
