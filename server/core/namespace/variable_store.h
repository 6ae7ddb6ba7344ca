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
// Creation is atomic across callers: the first caller inserts a pending
// entry under the lock, fills it outside the lock, then publishes it. Racing
// callers wait for the publication and then get the same variable with
// created = false; nobody sees a half-initialized variable.
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
#include "server/core/namespace/change_feed.h"
#include "server/core/tensor/initializer.h"
#include "server/core/storage/journal.h"
#include "server/core/namespace/names.h"
#include "server/core/namespace/partitioner.h"
#include "server/core/tensor/tensor.h"
#include "server/core/tensor/types.h"
#include "server/core/tensor/variable_cell.h"

namespace varscope::core {

inline constexpr char kGlobalVariables[] = "variables";
inline constexpr char kTrainableVariables[] = "trainable_variables";
inline constexpr char kLocalVariables[] = "local_variables";

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
  std::vector<std::string> collections;  // empty = ["variables"]
  std::optional<PartitionerSpec> partitioner;
  bool local = false;               // get_local_variable
  // The caller's veto on the resolved full name, asked before anything is
  // looked up or created (the service checks a token's scope prefixes
  // here). Null = everything allowed.
  std::function<absl::Status(absl::string_view full_name)> check_name;
};

// Where a part sits inside its partitioned variable.
struct PartSlice {
  std::string full_name;
  Shape full_shape;
  Shape offset;
  int index = 0;
};

// A snapshot of a variable's (or partitioned variable's) description.
struct VariableInfo {
  std::string name;                 // full name, no ":0"
  DType dtype = DType::kInvalid;
  Shape shape;
  uint64_t version = 0;
  bool trainable = true;
  std::vector<std::string> collections;
  InitializerSpec initializer;
  std::optional<PartSlice> slice;
  bool partitioned = false;
  std::vector<int64_t> partitions;
  std::vector<VariableInfo> parts;  // for a partitioned variable
  int64_t num_bytes = 0;
  bool created = false;             // this call created it
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

// A stored variable with everything a checkpoint keeps.
struct VariableState {
  VariableInfo info;  // name, dtype, shape, version, trainable,
                      // collections, initializer, slice
  std::shared_ptr<const TensorBuffer> value;
  std::optional<OptimizerSpec> optimizer;
  int64_t optimizer_steps = 0;
  int replicas_to_aggregate = 0;
  int64_t sync_step = 0;
  int64_t stale_dropped = 0;
};

struct PartitionedState {
  std::string name;
  DType dtype = DType::kInvalid;
  Shape shape;
  std::vector<int64_t> partitions;
  std::vector<std::string> part_names;
  bool trainable = true;
  std::vector<std::string> collections;
  InitializerSpec initializer;
};

// The whole store at one moment per variable (each value is a consistent
// copy-on-write snapshot; writes go on meanwhile).
struct StoreSnapshot {
  std::vector<VariableState> variables;  // sorted by name
  std::vector<PartitionedState> partitioned;
};

struct ListOptions {
  std::string prefix;       // literal scope prefix; "" = all
  std::string collection;   // "" = all variables, sorted by name
  bool include_partitioned = false;
};

class VariableStore {
 public:
  explicit VariableStore(StoreOptions options);
  VariableStore(const VariableStore&) = delete;
  VariableStore& operator=(const VariableStore&) = delete;
  ~VariableStore();

  // tf.get_variable in `scope`: creates or returns per the reuse table.
  absl::StatusOr<VariableInfo> GetVariable(const ScopeContext& scope,
                                           const GetVariableRequest& request);

  // Creates `full_name` unless any variable, part or partitioned variable by
  // that name exists (then ALREADY_EXISTS). Used by tf.Variable-style
  // NewVariable, which picks the name first.
  absl::StatusOr<VariableInfo> CreateVariable(const std::string& full_name,
                                              const GetVariableRequest& request,
                                              const ScopeContext& scope);

  // True when `full_name` is taken by a variable, a part prefix
  // (`full_name/part_0`) or a partitioned variable.
  bool NameInUse(const std::string& full_name) const;

  // Describes a variable or partitioned variable (":0" suffix accepted).
  absl::StatusOr<VariableInfo> Describe(absl::string_view name) const;
  // Variables under a prefix / in a collection, ready ones only.
  std::vector<VariableInfo> List(const ListOptions& options) const;
  // Deletes a variable, or a partitioned variable with all its parts; a
  // single part cannot be deleted on its own. Returns the removed names.
  absl::StatusOr<std::vector<std::string>> Delete(absl::string_view name);

  // The current value of a (non-partitioned) variable; shared read-only.
  absl::StatusOr<std::shared_ptr<const TensorBuffer>> ReadValue(
      absl::string_view name) const;
  // A published variable (":0" accepted). NOT_FOUND when absent;
  // INVALID_ARGUMENT for a partitioned variable's own name.
  absl::StatusOr<VariableHandle> Find(absl::string_view name) const
      ABSL_LOCKS_EXCLUDED(mu_);

  // Creation and deletion events (updates are published by DataPlane).
  ChangeFeed& feed() { return feed_; }
  // Logs every creation and deletion to `journal` before it takes effect
  // (null = no log). Set before serving; not owned.
  void set_journal(Journal* journal) { journal_ = journal; }
  Journal* journal() const { return journal_; }
  // Adds the variables of `snapshot` that do not exist yet (log replay).
  absl::Status Insert(StoreSnapshot snapshot) ABSL_LOCKS_EXCLUDED(mu_);

  // Recycles large buffers between writes (see buffer_pool.h).
  BufferPool* buffers() const { return buffers_.get(); }

  // Everything, for a checkpoint. Values are shared, not copied.
  StoreSnapshot Snapshot() const ABSL_LOCKS_EXCLUDED(mu_);
  // Replaces the whole store with `snapshot` (all or nothing): validates
  // names, sizes, optimizers and parts first. Publishes a CREATED event per
  // restored variable.
  absl::Status Restore(StoreSnapshot snapshot) ABSL_LOCKS_EXCLUDED(mu_);

  const StoreOptions& options() const { return options_; }
  // RESOURCE_EXHAUSTED when `bytes` more tensor storage for `what` would
  // pass max_memory_bytes (a pre-check for multi-variable creations).
  absl::Status CheckRoomFor(int64_t bytes, absl::string_view what) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // The grammar of ValidateVariableName plus --max_name_bytes.
  absl::Status ValidateFullName(absl::string_view full_name) const;
  size_t num_variables() const;
  int64_t total_bytes() const;

 private:
  struct Entry;
  struct Partitioned;
  struct CreationPlan;
  struct Built;
  static absl::StatusOr<Built> Build(StoreSnapshot snapshot);

  // One pass of the decision procedure under mu_. Either finishes (returns
  // a result or error), asks the caller to wait for a pending entry, or
  // returns a creation plan whose entries it has inserted as pending.
  struct Decision;
  Decision Decide(const ScopeContext& scope, const GetVariableRequest& request,
                  const std::string& full_name, bool create_only)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Decision DecideSingle(const GetVariableRequest& request,
                        const std::string& full_name, Reuse reuse,
                        DType explicit_dtype, DType create_dtype,
                        const std::optional<InitializerSpec>& initializer)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Decision DecidePartitioned(const GetVariableRequest& request,
                             const std::string& full_name, Reuse reuse,
                             DType explicit_dtype, DType create_dtype,
                             const std::optional<InitializerSpec>& initializer,
                             const std::optional<PartitionerSpec>& partitioner)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<VariableInfo> Run(const ScopeContext& scope,
                                   const GetVariableRequest& request,
                                   const std::string& full_name,
                                   bool create_only) ABSL_LOCKS_EXCLUDED(mu_);
  // Fills the plan's pending entries outside the lock, then publishes them.
  absl::StatusOr<VariableInfo> Execute(CreationPlan plan)
      ABSL_LOCKS_EXCLUDED(mu_);

  VariableInfo InfoOf(const Entry& entry) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  VariableInfo InfoOf(const Partitioned& partitioned) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  std::string CreationRecord(
      const CreationPlan& plan,
      const std::vector<std::shared_ptr<TensorBuffer>>& values) const;
  absl::Status CheckDeletable(absl::string_view name) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // RESOURCE_EXHAUSTED when `bytes` more would pass max_memory_bytes.
  absl::Status CheckMemory(int64_t bytes, absl::string_view name) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::vector<std::string>> DeleteLocked(absl::string_view name)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AddToCollections(const std::string& name,
                        const std::vector<std::string>& collections)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveFromCollections(const std::string& name)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after construction.
  const StoreOptions options_;
  ChangeFeed feed_;  // thread-safe on its own
  const std::shared_ptr<BufferPool> buffers_;  // thread-safe on its own
  Journal* journal_ = nullptr;  // Not owned; set before serving.

  mutable absl::Mutex mu_;
  // Ordered by name, so listings are sorted and prefix scans are ranges.
  std::map<std::string, std::shared_ptr<Entry>, std::less<>> vars_
      ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<Partitioned>, std::less<>>
      partitioned_ ABSL_GUARDED_BY(mu_);
  // Collection key -> names in creation order.
  absl::flat_hash_map<std::string, std::vector<std::string>> collections_
      ABSL_GUARDED_BY(mu_);
  int64_t total_bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_NAMESPACE_VARIABLE_STORE_H_
