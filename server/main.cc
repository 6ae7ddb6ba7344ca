// varscoped: the varscope daemon. Serves the variable namespace over gRPC
// with health checking and server reflection; stops gracefully on SIGINT or
// SIGTERM (in-flight calls finish, exit code 0).
#include <google/protobuf/stubs/logging.h>
#include <grpc/support/log.h>
#include <signal.h>
#include <unistd.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/synchronization/mutex.h"
#include "absl/flags/usage.h"
#include "absl/time/time.h"
#include "absl/strings/str_cat.h"
#include "server/core/namespace/names.h"
#include "server/core/tensor/idle_trim.h"
#include "server/cluster/cluster_spec.h"
#include "server/logging/log_format.h"
#include "server/service/server.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051",
          "host:port to listen on; port 0 picks a free port");
ABSL_FLAG(std::string, metrics_listen, "",
          "host:port for Prometheus metrics over HTTP (GET /metrics), e.g. "
          "127.0.0.1:9464; empty = off. No authentication: keep it on loopback "
          "or a private network");
ABSL_FLAG(std::string, log_format, "text",
          "text (for people) or json (one object per line: time, level, msg)");
ABSL_FLAG(std::string, log_level, "info",
          "trace, debug, info, warn, error or off (debug logs each failed RPC)");
ABSL_FLAG(absl::Duration, lease_ttl, absl::Seconds(30),
          "default session lease; clients renew it with KeepAlive");
ABSL_FLAG(int64_t, max_message_bytes, 64 << 20,
          "largest gRPC message accepted or sent, in bytes");
ABSL_FLAG(int64_t, max_variable_bytes, int64_t{4} << 30,
          "largest tensor one variable (or one part) may hold, in bytes");
ABSL_FLAG(int64_t, max_memory_bytes, 0,
          "limit on all stored tensors together (variables, parts, optimizer "
          "slots), in bytes; a create beyond it fails with RESOURCE_EXHAUSTED. "
          "0 = no limit");
ABSL_FLAG(bool, shared_memory, true,
          "let clients on this machine move tensor bytes through shared memory "
          "they attach (a memfd handed over an abstract Unix socket) instead "
          "of gRPC; false = everything over gRPC");
ABSL_FLAG(int64_t, max_shared_segment_bytes, int64_t{1} << 30,
          "largest shared-memory segment a client may attach, in bytes");
ABSL_FLAG(int, max_sessions, 10000,
          "live sessions at most (0 = no limit)");
ABSL_FLAG(int, max_open_scopes_per_session, 10000,
          "open scope handles per session at most (0 = no limit)");
ABSL_FLAG(int, max_name_bytes, 1024,
          "longest full variable or scope name, in bytes (at most 1024)");
ABSL_FLAG(int, max_in_flight_per_client, 256,
          "calls one client connection may have in flight, streams and waits "
          "included; more fail with RESOURCE_EXHAUSTED (0 = no limit)");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain; with --tls_key turns TLS on");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA certificates; if set, every client must present a "
          "certificate signed by one of them (mutual TLS)");
ABSL_FLAG(std::string, auth_tokens_file, "",
          "bearer tokens with roles, one per line: '<name> <role> <token> "
          "[<scope prefix> ...]' (roles: reader, trainer, admin). Re-read on "
          "SIGHUP. Empty = no authentication");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(10),
          "how long in-flight calls may run on after SIGINT/SIGTERM");
ABSL_FLAG(std::string, port_file, "",
          "if set, write the bound port to this file once serving");
ABSL_FLAG(std::string, data_dir, "",
          "directory for checkpoints; on start the newest one is restored. "
          "Empty (the default) keeps everything in memory only");
ABSL_FLAG(absl::Duration, checkpoint_interval, absl::Seconds(60),
          "with --data_dir: save a checkpoint this often when anything "
          "changed (0 = only at shutdown and on request)");
ABSL_FLAG(int, keep_checkpoints, 5,
          "automatic checkpoints to keep (named ones are never pruned)");
ABSL_FLAG(std::string, durability, "relaxed",
          "with --data_dir: relaxed logs creates and deletes before acknowledging "
          "them (a crash loses pushes since the last checkpoint); strict also "
          "logs every push (a crash loses nothing acknowledged)");
ABSL_FLAG(bool, recover, false,
          "if the newest checkpoint is damaged, fall back to the newest "
          "valid one (and log what was skipped), and replay a damaged log up to "
          "the damage, instead of refusing to start");

ABSL_FLAG(std::string, cluster, "",
          "every shard of the cluster, in order: host0:port,host1:port,... "
          "(empty: a single server)");
ABSL_FLAG(int, shard, -1,
          "this process's index in --cluster; -1: the ordinal of a StatefulSet "
          "pod name (the host name, e.g. varscope-2)");
ABSL_FLAG(std::string, cluster_token_file, "",
          "the secret the shards authenticate each other with (the same file "
          "on every shard; at least 16 bytes)");
ABSL_FLAG(std::string, cluster_ca, "",
          "PEM CA of the shards' certificates, when they serve TLS (default: "
          "--tls_client_ca)");
ABSL_FLAG(std::string, deadlock_detection, "off",
          "abort: Abseil checks the order of every lock acquisition and "
          "aborts on a potential deadlock (what every test runs with); off: "
          "no checks (it costs about half of an in-process push, see "
          "bench/RESULTS.md)");

namespace {

// Blocks SIGINT/SIGTERM/SIGHUP in every thread (call before any thread
// starts) so that one thread can take them with sigwait.
sigset_t BlockHandledSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

// Protobuf logs every request whose string field is not UTF-8 to stderr; a
// hostile client could fill the log with them. They go through spdlog at
// debug level instead (the failed call is logged there anyway).
void RouteProtobufLogs() {
  google::protobuf::SetLogHandler([](google::protobuf::LogLevel level,
                                     const char* file, int line,
                                     const std::string& message) {
    if (level >= google::protobuf::LOGLEVEL_FATAL) {
      spdlog::critical("protobuf {}:{}: {}", file, line, message);
    } else {
      spdlog::debug("protobuf {}:{}: {}", file, line, message);
    }
  });
}

// gRPC's own messages (gpr_log) go through spdlog too, so that every line
// has the chosen format (--log_format=json stays one object per line).
void RouteGrpcLogs() {
  gpr_set_log_function([](gpr_log_func_args* args) {
    switch (args->severity) {
      case GPR_LOG_SEVERITY_DEBUG:
        spdlog::debug("grpc {}:{}: {}", args->file, args->line, args->message);
        break;
      case GPR_LOG_SEVERITY_INFO:
        spdlog::info("grpc {}:{}: {}", args->file, args->line, args->message);
        break;
      default:
        spdlog::error("grpc {}:{}: {}", args->file, args->line, args->message);
    }
  });
}

}  // namespace

int main(int argc, char** argv) {
  const sigset_t signals = BlockHandledSignals();
  absl::SetProgramUsageMessage(
      "varscoped: a parameter server with TensorFlow 1.x variable scopes.\n"
      "Usage: varscoped [--listen=127.0.0.1:50051] [--flagfile=FILE] ...");
  absl::ParseCommandLine(argc, argv);
  varscope::core::KeepGrpcBuffersWarm();  // the reap loop gives memory back when idle

  const spdlog::level::level_enum level =
      spdlog::level::from_str(absl::GetFlag(FLAGS_log_level));
  if (level == spdlog::level::off && absl::GetFlag(FLAGS_log_level) != "off") {
    std::fprintf(stderr, "unknown --log_level '%s'\n",
                 absl::GetFlag(FLAGS_log_level).c_str());
    return 2;
  }
  spdlog::set_level(level);
  if (absl::Status s = varscope::logging::SetLogFormat(absl::GetFlag(FLAGS_log_format)); !s.ok()) {
    std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
    return 2;
  }
  RouteProtobufLogs();
  RouteGrpcLogs();
  const std::string detection = absl::GetFlag(FLAGS_deadlock_detection);
  if (detection != "abort" && detection != "off") {
    spdlog::error("--deadlock_detection must be abort or off");
    return 2;
  }
  // Before any lock is taken: Debian's Abseil checks by default.
  absl::SetMutexDeadlockDetectionMode(detection == "abort"
                                          ? absl::OnDeadlockCycle::kAbort
                                          : absl::OnDeadlockCycle::kIgnore);

  const int64_t max_message = absl::GetFlag(FLAGS_max_message_bytes);
  if (max_message < 1024 || max_message > (int64_t{2} << 30) - 1) {
    spdlog::error("--max_message_bytes must be in [1024, 2^31-1]");
    return 2;
  }
  varscope::service::ServerOptions options;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  options.max_message_bytes = static_cast<int>(max_message);
  options.store.max_variable_bytes = absl::GetFlag(FLAGS_max_variable_bytes);
  options.store.max_memory_bytes = absl::GetFlag(FLAGS_max_memory_bytes);
  options.sessions.max_sessions = absl::GetFlag(FLAGS_max_sessions);
  options.sessions.max_open_scopes =
      absl::GetFlag(FLAGS_max_open_scopes_per_session);
  options.max_in_flight_per_client =
      absl::GetFlag(FLAGS_max_in_flight_per_client);
  const int max_name = absl::GetFlag(FLAGS_max_name_bytes);
  if (max_name < 1 || max_name > static_cast<int>(varscope::core::kMaxNameBytes)) {
    spdlog::error("--max_name_bytes must be in [1, {}]",
                  varscope::core::kMaxNameBytes);
    return 2;
  }
  options.store.max_name_bytes = static_cast<size_t>(max_name);
  if (options.store.max_memory_bytes < 0 || options.sessions.max_sessions < 0 ||
      options.sessions.max_open_scopes < 0 ||
      options.max_in_flight_per_client < 0 ||
      options.store.max_variable_bytes <= 0) {
    spdlog::error("limits must not be negative (0 = no limit), and "
                  "--max_variable_bytes must be positive");
    return 2;
  }
  options.tls.cert_file = absl::GetFlag(FLAGS_tls_cert);
  options.tls.key_file = absl::GetFlag(FLAGS_tls_key);
  options.tls.client_ca_file = absl::GetFlag(FLAGS_tls_client_ca);
  options.auth_tokens_file = absl::GetFlag(FLAGS_auth_tokens_file);
  options.cluster.cluster = absl::GetFlag(FLAGS_cluster);
  options.cluster.shard = absl::GetFlag(FLAGS_shard);
  options.cluster.token_file = absl::GetFlag(FLAGS_cluster_token_file);
  options.cluster.ca_file = absl::GetFlag(FLAGS_cluster_ca);
  if (!options.cluster.cluster.empty() && options.cluster.shard < 0) {
    char host[256] = {0};
    gethostname(host, sizeof(host) - 1);
    absl::StatusOr<int> ordinal = varscope::cluster::ShardFromPodName(host);
    if (!ordinal.ok()) {
      spdlog::error("{}", std::string(ordinal.status().message()));
      return 2;
    }
    options.cluster.shard = *ordinal;
  }
  options.sessions.default_lease = absl::GetFlag(FLAGS_lease_ttl);
  if (options.sessions.default_lease <= absl::ZeroDuration()) {
    spdlog::error("--lease_ttl must be positive");
    return 2;
  }

  options.shared_memory = absl::GetFlag(FLAGS_shared_memory);
  const int64_t max_segment = absl::GetFlag(FLAGS_max_shared_segment_bytes);
  if (max_segment <= 0) {
    spdlog::error("--max_shared_segment_bytes must be positive");
    return 2;
  }
  options.shared_memory_limits.max_segment_bytes = static_cast<size_t>(max_segment);

  options.data_dir = absl::GetFlag(FLAGS_data_dir);
  options.checkpoint_interval = absl::GetFlag(FLAGS_checkpoint_interval);
  options.keep_checkpoints = absl::GetFlag(FLAGS_keep_checkpoints);
  options.recover = absl::GetFlag(FLAGS_recover);
  const std::string durability = absl::GetFlag(FLAGS_durability);
  if (durability != "relaxed" && durability != "strict") {
    spdlog::error("--durability must be relaxed or strict");
    return 2;
  }
  options.strict = durability == "strict";
  if (options.keep_checkpoints < 1) {
    spdlog::error("--keep_checkpoints must be at least 1");
    return 2;
  }
  if (options.data_dir.empty()) {
    spdlog::warn("no --data_dir: variables live in memory only and are lost "
                 "when varscoped stops");
  }

  auto server = varscope::service::Server::Start(options);
  if (!server.ok()) {
    spdlog::error("{}", std::string(server.status().message()));
    return 1;
  }
  spdlog::info("varscoped {} listening on {} (lease {}, max message {} bytes); data {}; metrics {}",
               varscope::service::kVersion, (*server)->address(),
               absl::FormatDuration(options.sessions.default_lease).c_str(),
               options.max_message_bytes,
               options.data_dir.empty()
                   ? std::string("in memory only")
                   : absl::StrCat("in ", options.data_dir, " (", durability, " durability)"),
               (*server)->metrics_port() > 0
                   ? absl::StrCat("on port ", (*server)->metrics_port(), " (GET /metrics)")
                   : std::string("off"));
  spdlog::info("security: TLS {}, bearer tokens {}",
               options.tls.enabled()
                   ? (options.tls.client_ca_file.empty() ? "on" : "on with client certificates")
                   : "off",
               options.auth_tokens_file.empty() ? "off (every caller is trusted)"
                                                : "on");
  if (const std::string port_file = absl::GetFlag(FLAGS_port_file);
      !port_file.empty()) {
    std::ofstream(port_file) << (*server)->port() << "\n";
  }

  std::thread signal_waiter([&] {
    for (;;) {
      int signal_number = 0;
      sigwait(&signals, &signal_number);
      if (signal_number == SIGHUP) {
        if (options.auth_tokens_file.empty()) {
          spdlog::info("received SIGHUP; no --auth_tokens_file to reload");
        } else if (absl::Status s = (*server)->ReloadTokens(); !s.ok()) {
          spdlog::error("SIGHUP: kept the previous tokens: {}",
                        std::string(s.message()));
        }
        continue;
      }
      spdlog::info("received {}, shutting down",
                   signal_number == SIGINT ? "SIGINT" : "SIGTERM");
      (*server)->Shutdown(absl::GetFlag(FLAGS_shutdown_grace));
      return;
    }
  });
  (*server)->Wait();
  signal_waiter.join();
  spdlog::info("varscoped stopped");
  return 0;
}
