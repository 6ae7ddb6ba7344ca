// ClusterConnection: one client over a cluster of shards (DESIGN §6).
// Namespace and admin calls go to the entry shard, where the client's
// session lives (it forwards what other shards own). Calls about a
// variable go straight to the shard that owns it: no hop on the hot path.
// Each carries the slot table's version; a shard with another table
// answers TOPOLOGY_CHANGED, and the call is retried once on a fresh
// topology. Pushes and SetOptimizer calls naming variables of several
// shards go to the first owner, whose front splits them: each shard
// applies its part atomically, a mixed outcome is ABORTED, reason
// PARTIALLY_APPLIED, saying what applied, and a cluster checkpoint holds
// the whole push or none of it.
#include <future>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/placement/placement.h"
#include "shard_connection.h"

namespace varscope::internal {
namespace {

// Metadata a routed call carries: the slot table's version it was routed by.
constexpr char kTopologyKey[] = "varscope-topology";

// What the client routes by, replaced whole on a refresh.
struct Route {
  placement::SlotTable table;
  std::vector<std::shared_ptr<ShardConnection>> shards;
  std::vector<std::string> addresses;
};

bool TopologyChanged(const absl::Status& status) {
  return ErrorReason(status) == "TOPOLOGY_CHANGED";
}

// How often a push refused by a cluster checkpoint's pause is retried
// (pauses last milliseconds; these retries span about 1 s).
constexpr int kCutRetries = 20;

class ClusterConnection final : public Connection {
 public:
  ClusterConnection(std::shared_ptr<ShardConnection> entry, ConnectionOptions options,
                    int64_t group)
      : entry_(std::move(entry)), options_(std::move(options)), group_(group) {}

  // Builds the route from `topology`.
  absl::Status Adopt(const Topology& topology) {
    auto route = std::make_shared<Route>();
    absl::StatusOr<placement::SlotTable> table = placement::SlotTable::FromAssignment(
        topology.shard_of_slot, static_cast<int>(topology.addresses.size()));
    if (!table.ok()) return table.status();
    route->table = *std::move(table);
    route->addresses = topology.addresses;
    const std::string version = absl::StrCat(route->table.version());
    for (const std::string& address : topology.addresses) {
      absl::StatusOr<std::shared_ptr<ShardConnection>> shard =
          MakeShardConnection(address, options_, {{kTopologyKey, version}}, group_);
      if (!shard.ok()) return shard.status();
      route->shards.push_back(*std::move(shard));
    }
    absl::MutexLock lock(&mu_);
    route_ = std::move(route);
    return absl::OkStatus();
  }

  // ---- Namespace and admin calls: the entry shard. ----
  absl::StatusOr<Session> OpenSession(const std::string& client_name, absl::Duration lease,
                                      const CallOptions& call) override {
    return entry_->OpenSession(client_name, lease, call);
  }
  absl::StatusOr<absl::Duration> KeepAlive(uint64_t session, const CallOptions& call) override {
    return entry_->KeepAlive(session, call);
  }
  absl::Status CloseSession(uint64_t session, const CallOptions& call) override {
    return entry_->CloseSession(session, call);
  }
  absl::StatusOr<ScopeInfo> OpenScope(const OpenScopeArgs& args, const CallOptions& call) override {
    return entry_->OpenScope(args, call);
  }
  absl::StatusOr<ScopeInfo> UpdateScope(uint64_t session, uint64_t scope,
                                        const ScopeDefaults& defaults,
                                        const CallOptions& call) override {
    return entry_->UpdateScope(session, scope, defaults, call);
  }
  absl::StatusOr<ScopeInfo> ReuseVariables(uint64_t session, uint64_t scope,
                                           const CallOptions& call) override {
    return entry_->ReuseVariables(session, scope, call);
  }
  absl::Status CloseScope(uint64_t session, uint64_t scope, const CallOptions& call) override {
    return entry_->CloseScope(session, scope, call);
  }
  absl::StatusOr<GetVariableResult> GetVariable(const GetVariableArgs& args,
                                                const CallOptions& call) override {
    return entry_->GetVariable(args, call);
  }
  absl::StatusOr<VariableInfo> NewVariable(const NewVariableArgs& args,
                                           const CallOptions& call) override {
    return entry_->NewVariable(args, call);
  }
  absl::StatusOr<std::string> OpName(uint64_t session, uint64_t scope, const std::string& name,
                                     bool preview, const CallOptions& call) override {
    return entry_->OpName(session, scope, name, preview, call);
  }
  absl::StatusOr<VariablePage> ListVariables(const ListVariablesArgs& args,
                                             const CallOptions& call) override {
    return entry_->ListVariables(args, call);
  }
  absl::StatusOr<ScopePage> ListScopes(const ListScopesArgs& args,
                                       const CallOptions& call) override {
    return entry_->ListScopes(args, call);
  }
  std::unique_ptr<WatchStream> Watch(const std::string& prefix, bool send_initial,
                                     uint32_t buffer_events, const CallOptions& call) override {
    return entry_->Watch(prefix, send_initial, buffer_events, call);
  }
  absl::StatusOr<CheckpointInfo> Save(const std::string& name, const CallOptions& call) override {
    return entry_->Save(name, call);
  }
  absl::StatusOr<std::vector<CheckpointInfo>> ListCheckpoints(const CallOptions& call) override {
    return entry_->ListCheckpoints(call);
  }
  absl::StatusOr<CheckpointInfo> Restore(const std::string& name,
                                         const CallOptions& call) override {
    return entry_->Restore(name, call);
  }
  absl::StatusOr<std::vector<std::string>> Import(const std::string& path,
                                                  const std::string& scope,
                                                  std::optional<bool> trainable,
                                                  const CallOptions& call) override {
    return entry_->Import(path, scope, trainable, call);
  }
  absl::StatusOr<ServerStats> GetStats(const CallOptions& call) override {
    return entry_->GetStats(call);
  }
  absl::StatusOr<std::vector<SessionSummary>> ListSessions(const CallOptions& call) override {
    return entry_->ListSessions(call);  // the shard lists every shard's
  }
  absl::StatusOr<HealthStatus> CheckHealth(const CallOptions& call) override {
    return entry_->CheckHealth(call);
  }

  // ---- Calls about one variable: its shard. ----
  absl::StatusOr<VariableInfo> DescribeVariable(const std::string& name,
                                                const CallOptions& call) override {
    return OnOwner(name, [&](ShardConnection& shard) { return shard.DescribeVariable(name, call); });
  }
  absl::StatusOr<std::vector<std::string>> DeleteVariable(const std::string& name,
                                                          const CallOptions& call) override {
    return OnOwner(name, [&](ShardConnection& shard) { return shard.DeleteVariable(name, call); });
  }
  absl::StatusOr<PullResult> Pull(const PullArgs& args, DataType dtype, absl::Span<uint8_t> out,
                                  const CallOptions& call) override {
    return OnOwner(args.name,
                   [&](ShardConnection& shard) { return shard.Pull(args, dtype, out, call); });
  }
  absl::StatusOr<Tensor> Gather(const std::string& name, const std::vector<int64_t>& indices,
                                const CallOptions& call) override {
    return OnOwner(name, [&](ShardConnection& shard) { return shard.Gather(name, indices, call); });
  }
  absl::StatusOr<TrainingState> DescribeTraining(const std::string& name,
                                                 const CallOptions& call) override {
    return OnOwner(name,
                   [&](ShardConnection& shard) { return shard.DescribeTraining(name, call); });
  }
  absl::StatusOr<uint64_t> WaitVersion(const std::string& name, uint64_t version,
                                       absl::Duration timeout, const CallOptions& call) override {
    return OnOwner(name, [&](ShardConnection& shard) {
      return shard.WaitVersion(name, version, timeout, call);
    });
  }
  std::future<absl::StatusOr<PullResult>> PullAsync(const PullArgs& args, DataType dtype,
                                                    absl::Span<uint8_t> out,
                                                    const CallOptions& call) override {
    std::shared_ptr<const Route> route = CurrentRoute();
    return route->shards[route->table.OwnerOf(args.name)]->PullAsync(args, dtype, out, call);
  }

  // ---- Calls about several variables: split by shard. ----
  absl::StatusOr<std::vector<Tensor>> PullMany(const std::vector<std::string>& names,
                                               const CallOptions& call) override {
    std::shared_ptr<const Route> route = CurrentRoute();
    std::map<int, std::vector<size_t>> by_shard;
    for (size_t i = 0; i < names.size(); ++i) {
      by_shard[route->table.OwnerOf(names[i])].push_back(i);
    }
    std::vector<Tensor> out(names.size());
    for (const auto& [shard, positions] : by_shard) {
      std::vector<std::string> part;
      for (size_t i : positions) part.push_back(names[i]);
      absl::StatusOr<std::vector<Tensor>> got = route->shards[shard]->PullMany(part, call);
      if (!got.ok()) return got.status();
      for (size_t k = 0; k < positions.size() && k < got->size(); ++k) {
        out[positions[k]] = std::move((*got)[k]);
      }
    }
    return out;
  }

  absl::StatusOr<std::vector<UpdateResult>> Push(const std::vector<PushItem>& items,
                                                 const CallOptions& call) override {
    bool refreshed = false;
    for (int attempt = 0;; ++attempt) {
      absl::StatusOr<std::vector<UpdateResult>> result = PushAsync(items, call).get();
      if (!refreshed && TopologyChanged(result.status()) && Refresh().ok()) {
        refreshed = true;
        continue;
      }
      // A streamed push that began while a cluster checkpoint paused its
      // shard was refused before anything applied: try again shortly.
      if (ErrorReason(result.status()) == "CLUSTER_CUT" && attempt < kCutRetries) {
        absl::SleepFor(absl::Milliseconds(5) * (attempt + 1));
        continue;
      }
      return result;
    }
  }

  std::future<absl::StatusOr<std::vector<UpdateResult>>> PushAsync(
      const std::vector<PushItem>& items, const CallOptions& call) override {
    std::shared_ptr<const Route> route = CurrentRoute();
    auto promise = std::make_shared<std::promise<absl::StatusOr<std::vector<UpdateResult>>>>();
    auto future = promise->get_future();
    std::vector<int> owners;
    for (const PushItem& item : items) owners.push_back(route->table.OwnerOf(item.name));
    // Variables of several shards go to one shard's front, which splits
    // them: so a cluster checkpoint's cut holds all of the push or none of
    // it (the shards drain the pushes their fronts took). The first owner
    // takes it; the other parts take one hop.
    const int shard = owners.empty() ? 0 : owners[0];
    route->shards[shard]->StartPush(
        items, call, [promise](absl::StatusOr<std::vector<UpdateResult>> r) {
          promise->set_value(std::move(r));
        });
    return future;
  }

  absl::StatusOr<std::vector<TrainingState>> SetOptimizer(
      const std::vector<std::string>& names, const std::optional<OptimizerConfig>& optimizer,
      int replicas, const CallOptions& call) override {
    // Split by the first owner's front, as pushes are (see PushAsync).
    return OnOwner(names.empty() ? std::string() : names[0], [&](ShardConnection& shard) {
      return shard.SetOptimizer(names, optimizer, replicas, call);
    });
  }

 private:
  std::shared_ptr<const Route> CurrentRoute() {
    absl::MutexLock lock(&mu_);
    return route_;
  }

  // Fetches the topology again (a shard said the client's is stale).
  absl::Status Refresh() {
    absl::StatusOr<Topology> topology = entry_->GetTopology({});
    if (!topology.ok()) return topology.status();
    return Adopt(*topology);
  }

  // Runs `f` on the shard owning `name`; once more on a fresh topology if
  // that shard says the client's is stale.
  template <typename F>
  auto OnOwner(const std::string& name, F f) -> decltype(f(std::declval<ShardConnection&>())) {
    for (int attempt = 0;; ++attempt) {
      std::shared_ptr<const Route> route = CurrentRoute();
      auto result = f(*route->shards[route->table.OwnerOf(name)]);
      if (attempt == 0 && TopologyChanged(result.status()) && Refresh().ok()) continue;
      return result;
    }
  }

  const std::shared_ptr<ShardConnection> entry_;
  const ConnectionOptions options_;
  const int64_t group_;  // shares TCP connections with the entry's channel
  absl::Mutex mu_;
  std::shared_ptr<const Route> route_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::StatusOr<std::shared_ptr<Connection>> MakeClusterConnection(
    std::shared_ptr<ShardConnection> entry, Topology topology, ConnectionOptions options,
    int64_t group) {
  auto cluster =
      std::make_shared<ClusterConnection>(std::move(entry), std::move(options), group);
  if (absl::Status s = cluster->Adopt(topology); !s.ok()) return s;
  return std::shared_ptr<Connection>(std::move(cluster));
}

}  // namespace varscope::internal
