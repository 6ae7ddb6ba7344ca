// varscope-reshard: turns a cluster checkpoint of N shards into one of M
// shards (1 <-> N included), offline, so a job can come back on a
// different number of servers. Each variable goes to the shard the
// M-shard slot table gives it (an optimizer slot with its variable; each
// part of a partitioned variable by its own name, the record by the
// partitioned variable's name); values, versions, optimizer
// state and metadata are copied as they are, checked on read.
//
//   varscope-reshard --from=/data/s0,/data/s1,/data/s2 --name=before-lr-change
//                    --to=/new/s0,/new/s1 [--to_name=NAME] [--addresses=h0:p,h1:p]
//
// --from lists the old shards' data directories in shard order (one
// directory and no cluster manifest: a single server's checkpoint). Each
// --to directory gets <to>/checkpoints/<to_name>/ and the cluster manifest
// <to>/cluster/<to_name>.json; start the new cluster on them and call
// Admin.Restore with <to_name> (a single --to: a single server; restore
// the checkpoint by name).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/placement/placement.h"
#include "server/cluster/cluster_checkpoints.h"
#include "server/core/base/status_macros.h"
#include "server/core/storage/checkpoint.h"
#include "server/core/storage/env.h"

ABSL_FLAG(std::string, from, "", "the old shards' data directories, in shard order, comma-separated");
ABSL_FLAG(std::string, name, "", "the cluster checkpoint to re-shard");
ABSL_FLAG(std::string, to, "", "the new shards' data directories, comma-separated");
ABSL_FLAG(std::string, to_name, "", "the new checkpoint's name (default: --name)");
ABSL_FLAG(std::string, addresses, "", "the new shards' host:port, for the manifest (optional)");

namespace varscope {
namespace {

using cluster::ClusterManifest;

std::vector<std::string> List(const std::string& flag) {
  return absl::StrSplit(flag, ',', absl::SkipEmpty());
}

absl::Status Run() {
  const std::vector<std::string> from = List(absl::GetFlag(FLAGS_from));
  const std::vector<std::string> to = List(absl::GetFlag(FLAGS_to));
  const std::string name = absl::GetFlag(FLAGS_name);
  const std::string to_name =
      absl::GetFlag(FLAGS_to_name).empty() ? name : absl::GetFlag(FLAGS_to_name);
  const std::vector<std::string> addresses = List(absl::GetFlag(FLAGS_addresses));
  if (from.empty() || to.empty() || name.empty()) {
    return absl::InvalidArgumentError("--from, --name and --to are required (see --help)");
  }
  VARSCOPE_RETURN_IF_ERROR(core::ValidateCheckpointName(name));
  VARSCOPE_RETURN_IF_ERROR(core::ValidateCheckpointName(to_name));
  if (!addresses.empty() && addresses.size() != to.size()) {
    return absl::InvalidArgumentError("--addresses must name one address per --to directory");
  }
  std::unique_ptr<core::Env> env = core::NewPosixEnv();

  // The old parts: from the cluster manifest, or one server's checkpoint.
  std::vector<std::string> parts;
  const std::string manifest_path = absl::StrCat(from[0], "/cluster/", name, ".json");
  if (env->Exists(manifest_path)) {
    VARSCOPE_ASSIGN_OR_RETURN(std::string text, core::ReadWholeFile(env.get(), manifest_path));
    VARSCOPE_ASSIGN_OR_RETURN(ClusterManifest old, cluster::DecodeManifest(text, manifest_path));
    if (old.parts.size() != from.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, " was saved by ", old.parts.size(), " shards; --from lists ", from.size(),
          " directories (one per shard, in shard order)"));
    }
    for (const ClusterManifest::Part& part : old.parts) parts.push_back(part.name);
  } else if (from.size() == 1) {
    parts.push_back(name);
  } else {
    return absl::NotFoundError(absl::StrCat("no cluster checkpoint ", manifest_path));
  }

  // Every variable, checked on read, to its new shard.
  VARSCOPE_ASSIGN_OR_RETURN(placement::SlotTable table,
                            placement::SlotTable::Static(static_cast<int>(to.size())));
  std::vector<core::StoreSnapshot> out(to.size());
  uint64_t revision = 0;
  for (size_t i = 0; i < from.size(); ++i) {
    core::Checkpointer reader(/*store=*/nullptr, env.get(), from[i], /*keep=*/1);
    VARSCOPE_ASSIGN_OR_RETURN(core::StoreSnapshot snapshot, reader.LoadSnapshot(parts[i]));
    revision = std::max(revision, snapshot.revision);
    for (core::VariableState& v : snapshot.variables) {
      out[table.OwnerOf(v.info.name)].variables.push_back(std::move(v));
    }
    for (core::PartitionedState& p : snapshot.partitioned) {
      out[table.OwnerOf(p.name)].partitioned.push_back(std::move(p));
    }
  }
  ClusterManifest manifest;
  manifest.name = to_name;
  manifest.created = absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone());
  manifest.table = table;
  for (size_t j = 0; j < to.size(); ++j) {
    core::StoreSnapshot& snapshot = out[j];
    // A restarted shard hands out versions above every one it held.
    snapshot.revision = revision;
    std::sort(snapshot.variables.begin(), snapshot.variables.end(),
              [](const core::VariableState& a, const core::VariableState& b) {
                return a.info.name < b.info.name;
              });
    core::Checkpointer writer(/*store=*/nullptr, env.get(), to[j], /*keep=*/1);
    VARSCOPE_ASSIGN_OR_RETURN(core::CheckpointInfo info, writer.SaveSnapshot(to_name, snapshot));
    manifest.parts.push_back({info.name, addresses.empty() ? "" : addresses[j], info.revision,
                              info.sequence, info.variables, info.bytes});
    std::printf("shard %zu: %s (%lld variables, %lld bytes)\n", j, info.path.c_str(),
                static_cast<long long>(info.variables), static_cast<long long>(info.bytes));
  }
  // A single server restores its checkpoint by name; a cluster needs the
  // manifest on its shards.
  if (to.size() > 1) {
    const std::string text = cluster::EncodeManifest(manifest);
    for (const std::string& dir : to) {
      const std::string cluster_dir = absl::StrCat(dir, "/cluster");
      VARSCOPE_RETURN_IF_ERROR(env->CreateDirs(cluster_dir));
      const std::string tmp = absl::StrCat(cluster_dir, "/.tmp-", to_name);
      VARSCOPE_RETURN_IF_ERROR(env->WriteFile(tmp, {text}));
      VARSCOPE_RETURN_IF_ERROR(
          env->Rename(tmp, absl::StrCat(cluster_dir, "/", to_name, ".json")));
      VARSCOPE_RETURN_IF_ERROR(env->SyncDir(cluster_dir));
    }
  }
  std::printf("re-sharded %s from %zu to %zu shards as %s\n", name.c_str(), from.size(),
              to.size(), to_name.c_str());
  return absl::OkStatus();
}

}  // namespace
}  // namespace varscope

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "re-shards a cluster checkpoint: varscope-reshard --from=DIR,... --name=NAME "
      "--to=DIR,... [--to_name=NAME] [--addresses=HOST:PORT,...]");
  absl::ParseCommandLine(argc, argv);
  const absl::Status status = varscope::Run();
  if (!status.ok()) {
    std::fprintf(stderr, "varscope-reshard: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
