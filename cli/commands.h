// File: commands.h
// The `varscope` CLI's commands, each over one Connection (single server or
// any shard of a cluster: the server answers for the whole cluster). Text
// for people by default, JSON (one document, or one line per event for
// watch) with --json.
//
// Thread-safety: one command at a time.
#ifndef VARSCOPE_CLI_COMMANDS_H_
#define VARSCOPE_CLI_COMMANDS_H_

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "varscope/connection.h"

namespace varscope::cli {

// Errors about the caller's own files (a .npy that cannot be read or
// written) carry this payload, so the exit code can say so.
inline constexpr char kLocalFilePayload[] = "varscope.cli/local_file";
bool IsLocalFileError(const absl::Status& status);

struct Context {
  Connection* connection = nullptr;
  bool json = false;
  std::ostream* out = nullptr;
  CallOptions call;  // the deadline of each RPC
};

absl::Status Tree(const Context& c, const std::string& prefix);
absl::Status Ls(const Context& c, const std::string& prefix);
absl::Status Describe(const Context& c, const std::string& name);
// Summary statistics and the first values; with `out_file`, also the
// whole value as .npy.
absl::Status Pull(const Context& c, const std::string& name, const std::string& out_file,
                  int first);
absl::Status Push(const Context& c, const std::string& name, const std::string& from_file,
                  UpdateOp op);
absl::Status Save(const Context& c, const std::string& name);
absl::Status Restore(const Context& c, const std::string& name);
absl::Status Checkpoints(const Context& c);
absl::Status Import(const Context& c, const std::string& file, const std::string& scope,
                    std::optional<bool> trainable);
absl::Status Sessions(const Context& c);
absl::Status Stats(const Context& c);
// Prints events until `count` of them (0 = until interrupted or the
// stream ends); with `initial`, first one EXISTING event per variable.
absl::Status Watch(const Context& c, const std::string& prefix, int64_t count, bool initial);
// NOT_SERVING and friends come back as FAILED_PRECONDITION.
absl::Status Health(const Context& c);

}  // namespace varscope::cli

#endif  // VARSCOPE_CLI_COMMANDS_H_
