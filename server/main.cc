// varscoped: the varscope daemon. Serves the variable namespace over gRPC
// with health checking and server reflection; stops gracefully on SIGINT or
// SIGTERM (in-flight calls finish, exit code 0).
#include <signal.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/time/time.h"
#include "server/service/server.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051",
          "host:port to listen on; port 0 picks a free port");
ABSL_FLAG(std::string, log_level, "info",
          "trace, debug, info, warn, error or off (debug logs each failed RPC)");
ABSL_FLAG(absl::Duration, lease_ttl, absl::Seconds(30),
          "default session lease; clients renew it with KeepAlive");
ABSL_FLAG(int64_t, max_message_bytes, 64 << 20,
          "largest gRPC message accepted or sent, in bytes");
ABSL_FLAG(int64_t, max_variable_bytes, int64_t{4} << 30,
          "largest tensor one variable (or one part) may hold, in bytes");
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

namespace {

// Blocks SIGINT/SIGTERM in every thread (call before any thread starts) so
// that one thread can take them with sigwait.
sigset_t BlockShutdownSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

}  // namespace

int main(int argc, char** argv) {
  const sigset_t signals = BlockShutdownSignals();
  absl::SetProgramUsageMessage(
      "varscoped: a parameter server with TensorFlow 1.x variable scopes.\n"
      "Usage: varscoped [--listen=127.0.0.1:50051] [--flagfile=FILE] ...");
  absl::ParseCommandLine(argc, argv);

  const spdlog::level::level_enum level =
      spdlog::level::from_str(absl::GetFlag(FLAGS_log_level));
  if (level == spdlog::level::off && absl::GetFlag(FLAGS_log_level) != "off") {
    std::fprintf(stderr, "unknown --log_level '%s'\n",
                 absl::GetFlag(FLAGS_log_level).c_str());
    return 2;
  }
  spdlog::set_level(level);

  const int64_t max_message = absl::GetFlag(FLAGS_max_message_bytes);
  if (max_message < 1024 || max_message > (int64_t{2} << 30) - 1) {
    spdlog::error("--max_message_bytes must be in [1024, 2^31-1]");
    return 2;
  }
  varscope::service::ServerOptions options;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.max_message_bytes = static_cast<int>(max_message);
  options.store.max_variable_bytes = absl::GetFlag(FLAGS_max_variable_bytes);
  options.sessions.default_lease = absl::GetFlag(FLAGS_lease_ttl);
  if (options.sessions.default_lease <= absl::ZeroDuration()) {
    spdlog::error("--lease_ttl must be positive");
    return 2;
  }

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
  spdlog::info("varscoped {} listening on {} (lease {}, max message {} bytes)",
               varscope::service::kVersion, (*server)->address(),
               absl::FormatDuration(options.sessions.default_lease).c_str(),
               options.max_message_bytes);
  if (const std::string port_file = absl::GetFlag(FLAGS_port_file);
      !port_file.empty()) {
    std::ofstream(port_file) << (*server)->port() << "\n";
  }

  std::thread signal_waiter([&] {
    int signal_number = 0;
    sigwait(&signals, &signal_number);
    spdlog::info("received {}, shutting down",
                 signal_number == SIGINT ? "SIGINT" : "SIGTERM");
    (*server)->Shutdown(absl::GetFlag(FLAGS_shutdown_grace));
  });
  (*server)->Wait();
  signal_waiter.join();
  spdlog::info("varscoped stopped");
  return 0;
}
