// varscope: the operators' command line for varscoped (see README,
// "The varscope CLI"). Works against a single server or any shard of a
// cluster, which answers for the whole cluster.
//
// Exit codes: 0 done; 1 the server refused or failed the call; 2 bad
// usage; 3 the server cannot be reached (UNAVAILABLE, DEADLINE_EXCEEDED);
// 4 not found; 5 health: the server is not serving; 6 a local file could
// not be read or written. Errors go to stderr as
// "varscope: CODE: message".
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "CLI/CLI.hpp"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "cli/commands.h"
#include "varscope/connection.h"

namespace {

struct GlobalOptions {
  std::string addr = "127.0.0.1:50051";
  bool json = false;
  double timeout_seconds = 30;
  bool tls = false;
  std::string tls_ca, tls_cert, tls_key, tls_server_name;
  std::string token_file;
};

enum ExitCode { kOk = 0, kFailed = 1, kUsage = 2, kUnreachable = 3, kNotFound = 4,
                kNotServing = 5, kFileError = 6 };

int Report(const absl::Status& status, bool health) {
  if (status.ok()) return kOk;
  std::cerr << "varscope: " << absl::StatusCodeToString(status.code()) << ": "
            << status.message() << "\n";
  if (varscope::cli::IsLocalFileError(status)) return kFileError;
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return kUnreachable;
    case absl::StatusCode::kNotFound:
      return kNotFound;
    case absl::StatusCode::kFailedPrecondition:
      return health ? kNotServing : kFailed;
    default:
      return kFailed;
  }
}

// The token: --token_file, else $VARSCOPE_TOKEN. Never printed.
absl::StatusOr<std::string> Token(const GlobalOptions& g) {
  if (!g.token_file.empty()) {
    std::ifstream in(g.token_file);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot read --token_file ", g.token_file));
    std::stringstream text;
    text << in.rdbuf();
    return std::string(absl::StripAsciiWhitespace(text.str()));
  }
  const char* env = std::getenv("VARSCOPE_TOKEN");
  return std::string(env != nullptr ? env : "");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"varscope: inspect and operate a varscoped parameter server (or cluster)"};
  app.require_subcommand(1);
  GlobalOptions g;
  app.add_option("--addr", g.addr, "server or any shard, host:port")
      ->envname("VARSCOPE_ADDR")
      ->capture_default_str();
  app.add_flag("--json", g.json, "print JSON instead of text");
  app.add_option("--timeout", g.timeout_seconds, "seconds per call")->capture_default_str();
  app.add_flag("--tls", g.tls, "use TLS (implied by the --tls_* files)");
  app.add_option("--tls_ca", g.tls_ca, "CA that signed the server's certificate (PEM)");
  app.add_option("--tls_cert", g.tls_cert, "client certificate for mutual TLS (PEM)");
  app.add_option("--tls_key", g.tls_key, "key of --tls_cert (PEM)");
  app.add_option("--tls_server_name", g.tls_server_name,
                 "expect this name in the server certificate");
  app.add_option("--token_file", g.token_file,
                 "file holding the bearer token (else $VARSCOPE_TOKEN)");

  std::string prefix, name, file, scope, op = "assign";
  int first = 8;
  int64_t count = 0;
  std::optional<bool> trainable;
  std::string trainable_text;

  auto* tree = app.add_subcommand("tree", "the namespace as a tree: dtype, shape, bytes, version");
  tree->add_option("prefix", prefix, "only names under this scope prefix");
  auto* ls = app.add_subcommand("ls", "variables under a prefix, one per line");
  ls->add_option("prefix", prefix, "scope prefix (\"\" = all)");
  auto* describe = app.add_subcommand("describe", "one variable: metadata and optimizer state");
  describe->add_option("name", name, "variable name")->required();
  auto* pull = app.add_subcommand("pull", "a variable's value: summary statistics, or .npy");
  pull->add_option("name", name, "variable name")->required();
  pull->add_option("--out", file, "also write the whole value to this .npy file");
  pull->add_option("--first", first, "how many first values to show")->capture_default_str();
  auto* push = app.add_subcommand("push", "write a variable from a .npy file");
  push->add_option("name", name, "variable name")->required();
  push->add_option("--from", file, ".npy file of the variable's dtype and shape")->required();
  push->add_option("--op", op, "assign, add or sub")
      ->check(CLI::IsMember({"assign", "add", "sub"}))
      ->capture_default_str();
  auto* save = app.add_subcommand("save", "write a checkpoint now");
  save->add_option("name", name, "checkpoint name (default: ckpt-<sequence>)");
  auto* restore = app.add_subcommand("restore", "replace every variable with a checkpoint");
  restore->add_option("name", name, "checkpoint name")->required();
  auto* checkpoints = app.add_subcommand("checkpoints", "checkpoints in the data directory");
  auto* import = app.add_subcommand("import", "create variables from a safetensors file");
  import->add_option("file", file, "path on the server's disk")->required();
  import->add_option("--scope", scope, "scope to create them under")->required();
  import->add_option("--trainable", trainable_text, "true or false (default: true)")
      ->check(CLI::IsMember({"true", "false"}));
  auto* sessions = app.add_subcommand("sessions", "live sessions: client, owner, scopes, lease");
  auto* stats = app.add_subcommand("stats", "server counters");
  auto* watch = app.add_subcommand("watch", "print changes under a prefix as they happen");
  watch->add_option("prefix", prefix, "scope prefix (\"\" = all)");
  watch->add_option("--count", count, "stop after this many events (0 = never)");
  bool initial = false;
  watch->add_flag("--initial", initial, "first list what exists (EXISTING events)");
  auto* health = app.add_subcommand("health", "grpc.health.v1 check; exit 0 when SERVING");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kOk : kUsage;
  }
  if (!trainable_text.empty()) trainable = trainable_text == "true";

  varscope::ConnectionOptions options;
  options.tls.enabled = g.tls || !g.tls_ca.empty() || !g.tls_cert.empty();
  options.tls.ca_file = g.tls_ca;
  options.tls.cert_file = g.tls_cert;
  options.tls.key_file = g.tls_key;
  options.tls.server_name = g.tls_server_name;
  absl::StatusOr<std::string> token = Token(g);
  if (!token.ok()) return Report(token.status(), false) == kNotFound ? kFileError : kFailed;
  options.auth_token = *token;
  options.rpc_timeout = absl::Seconds(g.timeout_seconds);
  // A health check needs no token: skip the topology call (which does).
  options.use_topology = !health->parsed();
  absl::StatusOr<std::shared_ptr<varscope::Connection>> connection =
      varscope::MakeConnection(g.addr, options);
  if (!connection.ok()) return Report(connection.status(), health->parsed());

  varscope::cli::Context c;
  c.connection = connection->get();
  c.json = g.json;
  c.out = &std::cout;
  absl::Status status;
  if (tree->parsed()) status = varscope::cli::Tree(c, prefix);
  if (ls->parsed()) status = varscope::cli::Ls(c, prefix);
  if (describe->parsed()) status = varscope::cli::Describe(c, name);
  if (pull->parsed()) status = varscope::cli::Pull(c, name, file, first);
  if (push->parsed()) {
    const varscope::UpdateOp update = op == "add"   ? varscope::UpdateOp::kAdd
                                      : op == "sub" ? varscope::UpdateOp::kSub
                                                    : varscope::UpdateOp::kAssign;
    status = varscope::cli::Push(c, name, file, update);
  }
  if (save->parsed()) status = varscope::cli::Save(c, name);
  if (restore->parsed()) status = varscope::cli::Restore(c, name);
  if (checkpoints->parsed()) status = varscope::cli::Checkpoints(c);
  if (import->parsed()) status = varscope::cli::Import(c, file, scope, trainable);
  if (sessions->parsed()) status = varscope::cli::Sessions(c);
  if (stats->parsed()) status = varscope::cli::Stats(c);
  if (watch->parsed()) status = varscope::cli::Watch(c, prefix, count, initial);
  if (health->parsed()) status = varscope::cli::Health(c);
  std::cout.flush();
  return Report(status, health->parsed());
}
