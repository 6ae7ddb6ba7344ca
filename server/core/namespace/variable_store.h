// File: variable_store.h
// The global variable store: every variable of a job by full name, the
// partitioned variables, and the collections. It implements TensorFlow's
// get_variable decision procedure (TF_SEMANTICS.md §4, §7) given a resolved
// scope context; sessions and scope handles live in SessionManager.
//
// Example:
//   VariableStore store(StoreOptions{});
//   ScopeContext scope{.name = "scope1", .reuse = Reuse::kAutoReuse};
//   GetVariableRequest request;
//   request.name = "w";
//   request.shape = ShapeSpec::Of({784, 256});
//   absl::StatusOr<VariableInfo> w = store.GetVariable(scope, request);
//   // w->name == "scope1/w", w->created on the first call only.
//
// Creation is atomic across callers and in named steps: decide (under the
// store's lock, pure), reserve (insert invisible pending entries, so the
// names are taken), initialize (outside the lock), log, publish. Racing
// callers wait for the publication and then get the same variable with
// created = false; nobody sees a half-initialized variable. A failure at
// any step removes the pending entries: nothing changed.
//
// Versions are store revisions (revision_clock.h): a creation, a restore
// and every push take the next one, so versions never go back.
//
// Every change holds the update barrier (level 3 of base/lock_order.h)
// shared from its decision until it is visible; a checkpoint snapshot and
// a restore hold it exclusively. Change events are published after every
// lock is released.
//
// Thread-safety: all methods are safe to call concurrently. Returned values
// are snapshots owned by the caller.
#ifndef VARSCOPE_SERVER_CORE_NAMESPACE_VARIABLE_STORE_H_
#define VARSCOPE_SERVER_CORE_NAMESPACE_VARIABLE_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/core/namespace/change_feed.h"
#include "server/core/tensor/initializer.h"
#include "server/core/namespace/names.h"
#include "server/core/namespace/partitioner.h"
#include "server/core/namespace/revision_clock.h"
#include "server/core/namespace/store_log.h"
#include "server/core/namespace/variable_state.h"
#include "server/core/tensor/tensor.h"
#include "server/core/tensor/types.h"
#include "server/core/tensor/variable_cell.h"

namespace varscope::core {

struct StoreOptions {
  // Largest tensor one variable (or one part) may hold.
  int64_t max_variable_bytes = int64_t{4} << 30;
  // All stored tensors together (variables, parts and optimizer slots);
  // 0 = no limit. A creation that would pass it fails with
  // RESOURCE_EXHAUSTED and creates nothing.
  int64_t max_memory_bytes = 0;
  // Longest full variable or scope name (at most kMaxNameBytes).
  size_t max_name_bytes = kMaxNameBytes;
  BufferPoolOptions buffer_pool;
};

// What a variable scope passes to GetVariable (TensorFlow's current
// VariableScope): its name, effective reuse flag and defaults.
struct ScopeContext {
  std::string name;                 // "" at the root
  Reuse reuse = Reuse::kInherit;    // kInherit = not reusing
  std::optional<InitializerSpec> initializer;
  DType dtype = DType::kInvalid;    // kInvalid = no scope default
  std::optional<PartitionerSpec> partitioner;
};

struct GetVariableRequest {
  std::string name;                 // relative to the scope
  ShapeSpec shape;                  // unknown = not given
  DType dtype = DType::kInvalid;    // kInvalid = not given
  std::optional<InitializerSpec> initializer;
  std::optional<bool> trainable;    // unset = true
  // Unset = ["variables"] (nothing for a local variable); set = exactly
  // these. "local_variables" and "trainable_variables" are added as
  // TensorFlow adds them.
  std::optional<std::vector<std::string>> collections;
  std::optional<PartitionerSpec> partitioner;
  bool local = false;               // get_local_variable
  // The caller's veto on the resolved full name, asked before anything is
  // looked up or created (the service checks a token's scope prefixes
  // here). Null = everything allowed.
  std::function<absl::Status(absl::string_view full_name)> check_name;
};

// The context for a one-shot GetVariable (no session): an absolute scope
// path ("scope1/scope2", "" for the root) with an explicit reuse flag.
absl::StatusOr<ScopeContext> ScopeContextForPath(absl::string_view path,
                                                 Reuse reuse);

// A published, non-partitioned variable as the data plane sees it: constant
// metadata plus the shared cell holding its value.
struct VariableHandle {
  std::string name;
  DType dtype = DType::kInvalid;
  Shape shape;
  int64_t num_bytes = 0;
  std::shared_ptr<VariableCell> cell;
};

// Where a listing page ends: the next page starts after it.
struct ListCursor {
  bool partitioned = false;  // in the partitioned variables (listed last)
  std::string name;          // the last name returned
  // Collections: the returned entry's sequence number in the collection
  // (entries only ever get larger numbers, so deletions never shift it).
  uint64_t index = 0;
};

struct ListOptions {
  std::string prefix;       // literal scope prefix; "" = all
  std::string collection;   // "" = all variables, sorted by name
  // A collection's members in name order instead of creation order (a
  // cluster merges every shard's listing by name).
  bool collection_in_name_order = false;
  bool include_partitioned = false;
  std::optional<ListCursor> after;  // paging: continue after this
  size_t limit = 0;                 // most variables; 0 = no limit
};

struct ListPage {
  std::vector<VariableInfo> variables;
  std::optional<ListCursor> next;  // set when more follow
};

// How Restore versions the restored variables and logs itself.
struct RestoreOptions {
  // The versions the snapshot holds (restart recovery; the clock moves
  // above them), or, when unset, `revision` if given (log replay), else
  // one new revision for every variable (an operator's restore).
  bool keep_versions = false;
  std::optional<uint64_t> revision;
  // Called with the restore's revision once everything is checked, with
  // the update barrier held exclusively, right before the swap; an error
  // cancels the restore. The checkpointer logs the restore here.
  std::function<absl::Status(uint64_t revision)> before_swap;
};

// A slot variable a change needs that does not exist yet: reserved (its
// name taken, invisible) with its initial value, until CommitSlots makes it
// visible or AbandonSlots gives the name back. The caller may change
// `value` in between (it is private until committed).
struct PendingSlot {
  std::string name;
  std::shared_ptr<TensorBuffer> value;
};

class VariableStore {
 private:
  struct CreationPlan;

 public:
  // A partitioned variable being created whose parts partly live on other
  // shards (a cluster; see BeginGetVariable): reserved here, invisible,
  // until FinishCreation or AbandonCreation.
  class RemoteCreation {
   public:
    // What the other shards need to create their parts.
    const PartitionedState& whole() const;
    // Indices of the parts this shard does not own.
    const std::vector<int>& remote_parts() const;

   private:
    friend class VariableStore;
    std::shared_ptr<CreationPlan> plan_;
  };
  // BeginGetVariable's answer: the result, or a creation to finish.
  struct Begun {
    std::optional<VariableInfo> result;
    std::unique_ptr<RemoteCreation> creation;
  };
  // A visible part whose partitioned variable lives on another shard.
  struct ForeignPart {
    std::string name;
    PartSlice slice;
    uint64_t version = 0;
  };

  explicit VariableStore(StoreOptions options);
  VariableStore(const VariableStore&) = delete;
  VariableStore& operator=(const VariableStore&) = delete;
  ~VariableStore();

  // tf.get_variable in `scope`: creates or returns per the reuse table.
  absl::StatusOr<VariableInfo> GetVariable(const ScopeContext& scope,
                                           const GetVariableRequest& request)
      ABSL_LOCKS_EXCLUDED(barrier_, mu_);

  // Creates `full_name` unless any variable, part or partitioned variable by
  // that name exists (then ALREADY_EXISTS). Used by tf.Variable-style
  // NewVariable, which picks the name first.
  absl::StatusOr<VariableInfo> CreateVariable(const std::string& full_name,
                                              const GetVariableRequest& request,
                                              const ScopeContext& scope)
      ABSL_LOCKS_EXCLUDED(barrier_, mu_);
  // Creates every variable of `requests` (request.name = full name; value
  // initializers), all or none, at one revision: an import.
  absl::StatusOr<std::vector<VariableInfo>> CreateVariables(
      const std::vector<GetVariableRequest>& requests)
      ABSL_LOCKS_EXCLUDED(barrier_, mu_);

  // True when `full_name` is taken by a variable, a part prefix
  // (`full_name/part_0`) or a partitioned variable.
  bool NameInUse(const std::string& full_name) const ABSL_LOCKS_EXCLUDED(mu_);

  // Describes a variable or partitioned variable (":0" suffix accepted).
  absl::StatusOr<VariableInfo> Describe(absl::string_view name) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // Variables under a prefix / in a collection, ready ones only: sorted by
  // name, or in the collection's creation order; partitioned variables
  // (include_partitioned) after the plain ones, sorted by name. A page ends
  // after `limit` variables with a cursor for the next.
  ListPage List(const ListOptions& options) const ABSL_LOCKS_EXCLUDED(mu_);
  // Deletes a variable, or a partitioned variable with all its parts; a
  // single part cannot be deleted on its own, except (`foreign_part`) a
  // part whose partitioned variable lives on another shard. Returns the
  // removed names, the parts on other shards included (a cluster deletes
  // those there). The store's lock is not held while the deletion is
  // logged.
  // `version`: ABORTED unless the variable is still at it.
  absl::StatusOr<std::vector<std::string>> Delete(absl::string_view name,
                                                  bool foreign_part = false,
                                                  std::optional<uint64_t> version = std::nullopt)
      ABSL_LOCKS_EXCLUDED(barrier_, mu_);

  // The current value of a (non-partitioned) variable; shared read-only.
  absl::StatusOr<std::shared_ptr<const TensorBuffer>> ReadValue(
      absl::string_view name) const;
  // A published variable (":0" accepted). NOT_FOUND when absent;
  // INVALID_ARGUMENT for a partitioned variable's own name.
  absl::StatusOr<VariableHandle> Find(absl::string_view name) const
      ABSL_LOCKS_EXCLUDED(mu_);

  // ---- For the data plane's changes (data/push.cc, data/training.cc). ----
  // The update barrier (level 3): changes hold it shared.
  absl::Mutex* update_barrier() const ABSL_LOCK_RETURNED(barrier_) {
    return &barrier_;
  }
  // Reserves the slots of `var` named in `missing` ("<var>/<suffix>" and
  // its initial value): same dtype and shape as `var`, not trainable, in
  // "variables" (TensorFlow's slot_creator), all or none. ABORTED when
  // another caller is creating one of the names; RESOURCE_EXHAUSTED past
  // --max_memory_bytes.
  absl::StatusOr<std::vector<PendingSlot>> ReserveSlots(
      const VariableHandle& var,
      const std::vector<std::pair<std::string, double>>& missing)
      ABSL_SHARED_LOCKS_REQUIRED(barrier_) ABSL_LOCKS_EXCLUDED(mu_);
  // Makes reserved slots visible with their (possibly changed) values at
  // `revision`, queueing a CREATED event for each (the caller delivers).
  void CommitSlots(std::vector<PendingSlot> slots, uint64_t revision)
      ABSL_SHARED_LOCKS_REQUIRED(barrier_) ABSL_LOCKS_EXCLUDED(mu_);
  void AbandonSlots(const std::vector<PendingSlot>& slots)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Makes sure a revision can be handed out (may log a new ceiling; see
  // revision_clock.h). Call with no lock held, before the change's locks.
  absl::Status MakeRoomForRevisions() ABSL_LOCKS_EXCLUDED(barrier_);

  // ---- A cluster: the parts of a partitioned variable are placed by their
  // own names, so they may live on other shards (cluster/spread_parts.h).
  // The shard owning the partitioned variable's name keeps its record
  // (with every part's name) and its own parts; each other shard keeps
  // its parts as plain variables with a slice.
  // Whether this shard owns `name`. Unset (one server): every name. Set
  // before serving and before recovery.
  void set_placement(std::function<bool(absl::string_view name)> owns);
  // GetVariable for a caller that can create parts on other shards: the
  // result, or (a partitioned variable with parts elsewhere to create) a
  // creation reserved here, for the caller to stage the remote parts
  // (StagePart there) and then FinishCreation (logs it and makes it
  // visible here; then PublishPart there) or AbandonCreation. (In a
  // cluster, a creation whose part 0 lives elsewhere also announces the
  // partitioned variable's own name, for GetVariable calls waiting here.) Plain
  // GetVariable fails with INTERNAL where this would be needed.
  absl::StatusOr<Begun> BeginGetVariable(const ScopeContext& scope,
                                         const GetVariableRequest& request)
      ABSL_LOCKS_EXCLUDED(barrier_, mu_);
  absl::StatusOr<VariableInfo> FinishCreation(
      std::unique_ptr<RemoteCreation> creation) ABSL_LOCKS_EXCLUDED(barrier_, mu_);
  void AbandonCreation(std::unique_ptr<RemoteCreation> creation)
      ABSL_LOCKS_EXCLUDED(mu_);

  // The other side: part `index` of `whole`, owned here, created for the
  // shard owning `whole`. StagePart reserves and initializes it, invisible
  // (creation `txn`); PublishPart logs it and makes it visible (staging it
  // first if this shard lost it, e.g. in a restart). Both are idempotent
  // and succeed when the part already exists as described; ALREADY_EXISTS
  // when the name is taken otherwise. StagePart answers UNAVAILABLE when a
  // part of an earlier partitioned variable of the name is still here
  // (the cluster's keeper asks its owner and removes it); a part staged by
  // an earlier attempt with another shape is replaced.
  absl::Status StagePart(const PartitionedState& whole, int index, uint64_t txn)
      ABSL_LOCKS_EXCLUDED(barrier_, mu_);
  absl::Status PublishPart(const PartitionedState& whole, int index, uint64_t txn)
      ABSL_LOCKS_EXCLUDED(barrier_, mu_);
  // Gives back a part staged by `txn` (not published).
  void DropPart(absl::string_view name, uint64_t txn) ABSL_LOCKS_EXCLUDED(mu_);
  // Gives back every part staged before `cutoff` and not being published
  // (its creator is gone); returns their names.
  std::vector<std::string> DropStagedBefore(absl::Time cutoff)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Visible parts whose partitioned variable lives on another shard.
  std::vector<ForeignPart> ForeignParts() const ABSL_LOCKS_EXCLUDED(mu_);
  // Deletes such a part that no record claims, unless it changed since it
  // was listed at `version`.
  absl::Status DeleteForeignPart(absl::string_view name, uint64_t version)
      ABSL_LOCKS_EXCLUDED(barrier_, mu_);
  // Parts held here that this shard does not own (a data directory written
  // when parts lived with their partitioned variable).
  std::vector<std::string> MisplacedParts() const ABSL_LOCKS_EXCLUDED(mu_);
  // Records of partitioned variables with parts on other shards.
  std::vector<PartitionedState> SpreadRecords() const ABSL_LOCKS_EXCLUDED(mu_);

  // Creation and deletion events (updates are published by DataPlane).
  ChangeFeed& feed() { return feed_; }
  RevisionClock& revisions() { return clock_; }
  // Logs every creation and deletion (and revision ceiling) before it takes
  // effect; null = no log. Set before serving; not owned.
  void set_log(StoreLog* log);

  // Recycles large buffers between writes (see buffer_pool.h).
  BufferPool* buffers() const { return buffers_.get(); }

  // ---- Checkpoints, restore and recovery. ----
  // Everything, at one moment: no change is half in it. Values are shared,
  // not copied. The first form takes the update barrier itself.
  StoreSnapshot Snapshot() const ABSL_LOCKS_EXCLUDED(barrier_, mu_);
  StoreSnapshot SnapshotLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(barrier_)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Replaces the whole store with `snapshot`, all or nothing: validates
  // names, sizes, optimizers and parts first. Versions per `options` (by
  // default one new revision, so clients see a change). Publishes DELETED
  // for names that are gone, UPDATED for names that stay and CREATED for
  // new ones.
  absl::Status Restore(StoreSnapshot snapshot, const RestoreOptions& options = {})
      ABSL_LOCKS_EXCLUDED(barrier_, mu_);
  // Adds the variables of `snapshot` that do not exist yet, keeping their
  // versions (log replay).
  absl::Status Insert(StoreSnapshot snapshot) ABSL_LOCKS_EXCLUDED(barrier_, mu_);
  // Gives every variable one new revision (after a restart that may have
  // lost pushes whose versions were served).
  void BumpAllVersions() ABSL_LOCKS_EXCLUDED(barrier_, mu_);

  const StoreOptions& options() const { return options_; }
  // RESOURCE_EXHAUSTED when `bytes` more tensor storage for `what` would
  // pass max_memory_bytes (a pre-check for multi-variable creations).
  absl::Status CheckRoomFor(int64_t bytes, absl::string_view what) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // The grammar of ValidateVariableName plus --max_name_bytes.
  absl::Status ValidateFullName(absl::string_view full_name) const;
  size_t num_variables() const ABSL_LOCKS_EXCLUDED(mu_);
  int64_t total_bytes() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Entry;
  struct Partitioned;
  struct Built;
  struct PartPlan;
  struct Decision;
  struct Resolved;

  absl::StatusOr<Built> Build(StoreSnapshot snapshot,
                              std::optional<uint64_t> revision) const;

  // The decision procedure (pure: inserts nothing). Either finishes
  // (returns a result or error), asks the caller to wait for a pending
  // entry, or returns a creation plan for ReservePlan.
  Decision Decide(const ScopeContext& scope, const GetVariableRequest& request,
                  const std::string& full_name, bool create_only) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  Decision DecideSingle(const GetVariableRequest& request,
                        const std::string& full_name, const Resolved& r) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  Decision DecidePartitioned(const GetVariableRequest& request,
                             const std::string& full_name,
                             const Resolved& r) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  Decision PlanParts(const GetVariableRequest& request,
                     const std::string& full_name, const Resolved& r,
                     const Shape& shape, std::vector<int64_t> partitions) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // The steps of a creation.
  // `begun` null: a creation with remote parts fails (INTERNAL).
  absl::StatusOr<VariableInfo> Run(const ScopeContext& scope,
                                   const GetVariableRequest& request,
                                   const std::string& full_name,
                                   bool create_only, Begun* begun = nullptr)
      ABSL_LOCKS_EXCLUDED(barrier_, mu_);
  bool Owns(absl::string_view name) const { return !owns_ || owns_(name); }
  // The request's full name in `scope`, checked (and vetted by check_name).
  absl::StatusOr<std::string> FullNameOf(const ScopeContext& scope,
                                         const GetVariableRequest& request) const;
  static bool SamePart(const Entry& have, const Entry& want);
  // Part `index` of `whole`, checked (a peer sent it).
  absl::StatusOr<PartPlan> PlanOfPart(const PartitionedState& whole, int index) const;
  void ReservePlan(const CreationPlan& plan) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AbandonPlan(const CreationPlan& plan) ABSL_LOCKS_EXCLUDED(mu_);
  // Initializes, logs and publishes a reserved plan; on failure abandons
  // it. Queues the CREATED events (the caller delivers them after
  // unlocking), and, if `each` is set, describes every new variable.
  absl::StatusOr<VariableInfo> Execute(CreationPlan plan,
                                       std::vector<VariableInfo>* each = nullptr)
      ABSL_SHARED_LOCKS_REQUIRED(barrier_) ABSL_LOCKS_EXCLUDED(mu_);

  VariableInfo InfoOf(const Entry& entry) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  VariableInfo InfoOf(const Partitioned& partitioned) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Marks `name` (and its parts) as being deleted, or says why it cannot be.
  absl::Status MarkDeleting(absl::string_view name, bool deleting,
                            bool foreign_part)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // RESOURCE_EXHAUSTED when `bytes` more would pass max_memory_bytes.
  absl::Status CheckMemory(int64_t bytes, absl::string_view name) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  std::vector<std::string> DeleteLocked(absl::string_view name)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AddToCollections(const std::string& name,
                        const std::vector<std::string>& collections)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveFromCollections(const std::string& name)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after construction.
  const StoreOptions options_;
  ChangeFeed feed_;  // thread-safe on its own
  RevisionClock clock_;  // thread-safe on its own
  const std::shared_ptr<BufferPool> buffers_;  // thread-safe on its own
  StoreLog* log_ = nullptr;  // Not owned; set before serving.
  std::function<bool(absl::string_view)> owns_;  // Set before serving.

  // Level 3: the update barrier (see the top).
  mutable absl::Mutex barrier_ ABSL_ACQUIRED_BEFORE(mu_);
  // Level 5.
  mutable absl::Mutex mu_;
  // Ordered by name, so listings are sorted and prefix scans are ranges.
  std::map<std::string, std::shared_ptr<Entry>, std::less<>> vars_
      ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<Partitioned>, std::less<>>
      partitioned_ ABSL_GUARDED_BY(mu_);
  // Collection key -> names by sequence number (creation order).
  absl::flat_hash_map<std::string, std::map<uint64_t, std::string>> collections_
      ABSL_GUARDED_BY(mu_);
  uint64_t next_collection_seq_ ABSL_GUARDED_BY(mu_) = 1;
  int64_t total_bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_NAMESPACE_VARIABLE_STORE_H_
