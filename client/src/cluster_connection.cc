// ClusterConnection: one client over a cluster of shards (DESIGN §6).
// Namespace and admin calls go to the entry shard, where the client's
// session lives (it forwards what other shards own). Calls about a
// variable go straight to the shard that owns it: no hop on the hot path.
// Each carries the slot table's version; a shard with another table
// answers TOPOLOGY_CHANGED, and the call is retried once on a fresh
// topology. Pushes and SetOptimizer calls naming variables of several
// shards are split: each shard applies its part atomically, and a mixed
// outcome is ABORTED, reason PARTIALLY_APPLIED, saying what applied.
#include <future>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
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

// What a change split over shards reports when some parts failed.
absl::Status PartialOutcome(const std::vector<std::string>& names,
                            const std::vector<int>& owners,
                            const std::map<int, absl::Status>& by_shard,
                            const std::vector<std::string>& addresses) {
  std::vector<std::string> applied, not_applied, causes;
  const absl::Status* first_failure = nullptr;
  for (size_t i = 0; i < names.size(); ++i) {
    (by_shard.at(owners[i]).ok() ? applied : not_applied).push_back(names[i]);
  }
  for (const auto& [shard, status] : by_shard) {
    if (status.ok()) continue;
    if (first_failure == nullptr) first_failure = &status;
    causes.push_back(absl::StrCat("shard ", shard, " (", addresses[shard], "): ",
                                  status.message()));
  }
  if (applied.empty()) return *first_failure;
  return WithErrorReason(
      absl::AbortedError(absl::StrCat(
          "applied on some shards only (each shard applies its variables atomically): "
          "applied to ", absl::StrJoin(applied, ", "), "; not applied to ",
          absl::StrJoin(not_applied, ", "), ": ", absl::StrJoin(causes, "; "))),
      "PARTIALLY_APPLIED",
      {{"applied", absl::StrJoin(applied, ",")}, {"not_applied", absl::StrJoin(not_applied, ",")}});
}

class ClusterConnection final : public Connection {
 public:
  ClusterConnection(std::shared_ptr<ShardConnection> entry, ConnectionOptions options)
      : entry_(std::move(entry)), options_(std::move(options)) {}

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
          MakeShardConnection(address, options_, {{kTopologyKey, version}});
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
    for (int attempt = 0;; ++attempt) {
      absl::StatusOr<std::vector<UpdateResult>> result = PushAsync(items, call).get();
      if (attempt == 0 && TopologyChanged(result.status()) && Refresh().ok()) continue;
      return result;
    }
  }

  std::future<absl::StatusOr<std::vector<UpdateResult>>> PushAsync(
      const std::vector<PushItem>& items, const CallOptions& call) override {
    std::shared_ptr<const Route> route = CurrentRoute();
    auto promise = std::make_shared<std::promise<absl::StatusOr<std::vector<UpdateResult>>>>();
    auto future = promise->get_future();
    std::map<int, std::vector<size_t>> by_shard;
    std::vector<std::string> names;
    std::vector<int> owners;
    for (size_t i = 0; i < items.size(); ++i) {
      names.push_back(items[i].name);
      owners.push_back(route->table.OwnerOf(items[i].name));
      by_shard[owners.back()].push_back(i);
    }
    if (by_shard.size() <= 1) {
      const int shard = owners.empty() ? 0 : owners[0];
      route->shards[shard]->StartPush(
          items, call, [promise](absl::StatusOr<std::vector<UpdateResult>> r) {
            promise->set_value(std::move(r));
          });
      return future;
    }
    // One push per shard, joined by the last to finish (no thread waits).
    struct Join {
      absl::Mutex mu;
      size_t left ABSL_GUARDED_BY(mu);
      std::map<int, absl::Status> status ABSL_GUARDED_BY(mu);
      std::vector<UpdateResult> results ABSL_GUARDED_BY(mu);
    };
    auto join = std::make_shared<Join>();
    {
      absl::MutexLock lock(&join->mu);
      join->left = by_shard.size();
      join->results.resize(items.size());
    }
    auto addresses = route->addresses;
    for (const auto& [shard, positions] : by_shard) {
      std::vector<PushItem> part;
      for (size_t i : positions) part.push_back(items[i]);
      route->shards[shard]->StartPush(
          part, call,
          [join, promise, shard = shard, positions = positions, names, owners, addresses](
              absl::StatusOr<std::vector<UpdateResult>> r) {
            absl::MutexLock lock(&join->mu);
            join->status[shard] = r.status();
            if (r.ok()) {
              for (size_t k = 0; k < positions.size() && k < r->size(); ++k) {
                join->results[positions[k]] = std::move((*r)[k]);
              }
            }
            if (--join->left > 0) return;
            bool all_ok = true;
            for (const auto& [s, status] : join->status) all_ok = all_ok && status.ok();
            if (all_ok) {
              promise->set_value(std::move(join->results));
            } else {
              promise->set_value(PartialOutcome(names, owners, join->status, addresses));
            }
          });
    }
    return future;
  }

  absl::StatusOr<std::vector<TrainingState>> SetOptimizer(
      const std::vector<std::string>& names, const std::optional<OptimizerConfig>& optimizer,
      int replicas, const CallOptions& call) override {
    std::shared_ptr<const Route> route = CurrentRoute();
    std::map<int, std::vector<size_t>> by_shard;
    std::vector<int> owners;
    for (size_t i = 0; i < names.size(); ++i) {
      owners.push_back(route->table.OwnerOf(names[i]));
      by_shard[owners.back()].push_back(i);
    }
    if (by_shard.size() <= 1) {
      return OnOwner(names.empty() ? std::string() : names[0], [&](ShardConnection& shard) {
        return shard.SetOptimizer(names, optimizer, replicas, call);
      });
    }
    std::vector<TrainingState> out(names.size());
    std::map<int, absl::Status> outcome;
    for (const auto& [shard, positions] : by_shard) {
      std::vector<std::string> part;
      for (size_t i : positions) part.push_back(names[i]);
      absl::StatusOr<std::vector<TrainingState>> got =
          route->shards[shard]->SetOptimizer(part, optimizer, replicas, call);
      outcome[shard] = got.status();
      if (!got.ok()) continue;
      for (size_t k = 0; k < positions.size() && k < got->size(); ++k) {
        out[positions[k]] = std::move((*got)[k]);
      }
    }
    for (const auto& [shard, status] : outcome) {
      if (!status.ok()) return PartialOutcome(names, owners, outcome, route->addresses);
    }
    return out;
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
  absl::Mutex mu_;
  std::shared_ptr<const Route> route_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::StatusOr<std::shared_ptr<Connection>> MakeClusterConnection(
    std::shared_ptr<ShardConnection> entry, Topology topology, ConnectionOptions options) {
  auto cluster = std::make_shared<ClusterConnection>(std::move(entry), std::move(options));
  if (absl::Status s = cluster->Adopt(topology); !s.ok()) return s;
  return std::shared_ptr<Connection>(std::move(cluster));
}

}  // namespace varscope::internal
