// File: spread_parts.h
// Partitioned variables whose parts live on several shards (DESIGN.md §6):
// each part is placed by its own name, so an embedding's parts spread over
// the cluster, and a partitioned variable is still fully visible or not at
// all.
//
// The shard owning the partitioned variable's name (its owner) creates it:
//   1. reserve the name and its own parts (VariableStore::BeginGetVariable);
//   2. stage the other parts on their shards (Peer.StageParts: reserved,
//      initialized, invisible; racing callers of a part's name wait);
//      any failure drops them and creates nothing;
//   3. log the record and its own parts, make them visible;
//   4. publish the staged parts (Peer.PublishParts: logged, visible).
// A publish that fails (the shard went down) is retried by the keeper
// until it succeeds; after a restart or a restore the owner publishes the
// parts of every record again (idempotent), so a part lost on the way is
// created from the record. A part staged by an owner that never came back
// is dropped after kStagedLifetime. Deleting a partitioned variable deletes
// its record first, then its parts on their shards (retried); a shard that
// restarts or restores asks each partitioned variable's owner about the
// parts it holds and drops those no record claims.
//
// Thread-safety: thread-safe. The keeper runs on its own thread and makes
// blocking peer calls there; creations and deletions never block a gRPC
// thread on a peer.
#ifndef VARSCOPE_SERVER_CLUSTER_SPREAD_PARTS_H_
#define VARSCOPE_SERVER_CLUSTER_SPREAD_PARTS_H_

#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/cluster/routing.h"
#include "server/core/namespace/variable_store.h"
#include "varscope/v1/cluster.pb.h"
#include "varscope/v1/variable_store.pb.h"

namespace varscope::cluster {

// A staged part whose creation neither published nor dropped it in this
// long is dropped: its owner failed before logging the record.
inline constexpr absl::Duration kStagedLifetime = absl::Minutes(1);

class PartSpreader {
 public:
  // Not owned; both must outlive the spreader.
  PartSpreader(core::VariableStore* store, const Routing* routing);
  PartSpreader(const PartSpreader&) = delete;
  PartSpreader& operator=(const PartSpreader&) = delete;
  ~PartSpreader();

  // Starts the keeper, with a reconciliation (see Reconcile) queued: call
  // once recovery is done.
  void Start() ABSL_LOCKS_EXCLUDED(mu_);
  // Stops the keeper (it may be in a peer call: up to its deadline).
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);
  // After this shard's store was replaced (a restore): publish the remote
  // parts of every record here again, and check every foreign part held
  // here with its owner.
  void Reconcile() ABSL_LOCKS_EXCLUDED(mu_);

  // GetVariable at the owner of the resolved name, when a partitioner is in
  // effect; finishes `reactor`. `call` (the admission) is held until then.
  void GetVariable(grpc::ServerUnaryReactor* reactor, std::shared_ptr<service::Admission> call,
                   const core::ScopeContext& scope, core::GetVariableRequest request,
                   v1::GetVariableResponse* response, absl::Time deadline)
      ABSL_LOCKS_EXCLUDED(mu_);
  // DeleteVariable at the owner of the name; finishes `reactor`.
  void DeleteVariable(grpc::ServerUnaryReactor* reactor,
                      std::shared_ptr<service::Admission> call, const std::string& name,
                      v1::DeleteVariableResponse* response, absl::Time deadline)
      ABSL_LOCKS_EXCLUDED(mu_);

  // The Peer.*Parts calls, on the shard owning the parts.
  absl::Status Stage(const v1::PartsRequest& request);
  absl::Status Publish(const v1::PartsRequest& request);
  absl::Status Drop(const v1::PartsRequest& request);
  absl::Status Delete(const v1::PartsRequest& request);

 private:
  // Peer calls for `parts` of `whole`, one per owning shard.
  std::vector<std::pair<int, v1::PartsRequest>> CallsFor(const core::PartitionedState& whole,
                                                         const std::vector<int>& parts,
                                                         uint64_t txn) const;
  // Indices of the parts of `whole` other shards own.
  std::vector<int> RemoteParts(const core::PartitionedState& whole) const;
  // Drops staged parts (best effort: what fails expires on its shard).
  void DropStaged(const core::PartitionedState& whole, const std::vector<int>& parts,
                  uint64_t txn) const;
  // The second half of a creation: publishes the staged parts, answers.
  void Publish(std::shared_ptr<core::VariableStore::RemoteCreation> creation, uint64_t txn,
               grpc::ServerUnaryReactor* reactor, std::shared_ptr<service::Admission> call,
               v1::GetVariableResponse* response, absl::Time deadline);

  void KeepLoop() ABSL_LOCKS_EXCLUDED(mu_);
  bool Stopping() ABSL_LOCKS_EXCLUDED(mu_);
  // Whether this shard has the partitioned variable `name`'s record.
  bool HasRecord(const std::string& name) const;
  // One pass of the keeper; false when something is left to retry.
  bool PublishUnconfirmed() ABSL_LOCKS_EXCLUDED(mu_);
  bool RetryDeletes() ABSL_LOCKS_EXCLUDED(mu_);
  bool CheckForeignParts();

  core::VariableStore* const store_;  // Not owned.
  const Routing* const routing_;      // Not owned.

  absl::Mutex mu_;
  // Records whose remote parts may not all be published, by name.
  std::map<std::string, core::PartitionedState> unconfirmed_ ABSL_GUARDED_BY(mu_);
  // Deletions of parts on other shards still to be made, by the
  // partitioned variable's name: a creation of that name waits for them.
  std::map<std::string, std::vector<std::pair<int, v1::PartsRequest>>> deletes_
      ABSL_GUARDED_BY(mu_);
  bool check_foreign_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread keeper_;
};

// The record a peer needs, and back.
void ToProto(const core::PartitionedState& whole, v1::PartitionedRecord* out);
absl::StatusOr<core::PartitionedState> FromProto(const v1::PartitionedRecord& record);

}  // namespace varscope::cluster

#endif  // VARSCOPE_SERVER_CLUSTER_SPREAD_PARTS_H_
