#include "server/core/namespace/variable_store.h"

#include <algorithm>
#include <limits>
#include <new>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/core/base/error_info.h"
#include "server/core/base/status_macros.h"
#include "server/core/namespace/names.h"

namespace varscope::core {

// A stored variable. Metadata is constant once inserted; the fields below
// it change under the store's mutex.
struct VariableStore::Entry {
  std::string name;
  DType dtype = DType::kInvalid;
  Shape shape;
  bool trainable = true;
  std::vector<std::string> collections;
  InitializerSpec initializer;
  std::optional<PartSlice> slice;
  int64_t num_bytes = 0;

  // Guarded by VariableStore::mu_.
  bool ready = false;     // published: value set, visible to everyone
  bool settled = false;   // published or abandoned; waiters stop waiting
  bool deleting = false;  // a deletion is being logged
  // Value and version; set once at publication.
  std::shared_ptr<VariableCell> cell;
  // A part staged for another shard's creation (StagePart): its creation,
  // when, its initial value once computed, and whether it is being
  // published.
  uint64_t staged_txn = 0;
  absl::Time staged_at;
  std::shared_ptr<TensorBuffer> staged_value;
  bool publishing = false;
};

// A partitioned variable: its description (constant once inserted) plus
// the publication flags.
struct VariableStore::Partitioned : PartitionedState {
  // Guarded by VariableStore::mu_.
  bool ready = false;
  bool settled = false;
  bool deleting = false;
};

// Variables to create together: one, the parts of a partitioned variable,
// or the tensors of an import.
struct VariableStore::CreationPlan {
  std::vector<std::shared_ptr<Entry>> entries;
  std::shared_ptr<Partitioned> partitioned;  // null unless partitioned
  std::vector<PartContext> part_contexts;    // parallel to entries if set
  std::vector<int> remote_parts;  // parts another shard owns (no entry)
  int64_t bytes = 0;
};

// One part of a partitioned variable, as PlanParts and StagePart make it.
struct VariableStore::PartPlan {
  std::shared_ptr<Entry> entry;  // not inserted
  PartContext context;
};

const PartitionedState& VariableStore::RemoteCreation::whole() const {
  return *plan_->partitioned;
}
const std::vector<int>& VariableStore::RemoteCreation::remote_parts() const {
  return plan_->remote_parts;
}

struct VariableStore::Decision {
  enum class What { kDone, kWait, kCreate };
  What what = What::kDone;
  absl::StatusOr<VariableInfo> result = absl::UnknownError("undecided");
  const bool* wait_until = nullptr;  // kWait: an entry's `settled` flag
  std::shared_ptr<const void> keep;  // kWait: keeps that entry alive
  CreationPlan plan;

  static Decision Done(absl::StatusOr<VariableInfo> result) {
    Decision d;
    d.result = std::move(result);
    return d;
  }
  template <typename E>
  static Decision Wait(const std::shared_ptr<E>& entry) {
    Decision d;
    d.what = What::kWait;
    d.wait_until = &entry->settled;
    d.keep = entry;
    return d;
  }
  static Decision Create(CreationPlan plan) {
    Decision d;
    d.what = What::kCreate;
    d.plan = std::move(plan);
    return d;
  }
};

// The request's arguments with the scope's defaults applied.
struct VariableStore::Resolved {
  Reuse reuse = Reuse::kInherit;
  std::optional<InitializerSpec> initializer;
  bool from_value = false;      // the initializer is a tensor value
  DType explicit_dtype = DType::kInvalid;  // compared on reuse when set
  DType create_dtype = DType::kFloat;
  std::optional<PartitionerSpec> partitioner;
};

namespace {

// Trainable flag and collection list for a new variable (TF_SEMANTICS §4.7).
absl::StatusOr<std::pair<bool, std::vector<std::string>>> ResolveCollections(
    const GetVariableRequest& request) {
  if (request.local && request.trainable.value_or(false)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "variable ", request.name,
        ": a local variable cannot be trainable; drop trainable or local"));
  }
  const bool trainable = request.local ? false : request.trainable.value_or(true);
  // get_variable defaults to the global collection; get_local_variable to
  // none (then "local_variables" is added): TF_SEMANTICS §4.7.
  std::vector<std::string> collections;
  if (request.collections.has_value()) {
    collections = *request.collections;
  } else if (!request.local) {
    collections.push_back(kGlobalVariables);
  }
  for (const std::string& c : collections) {
    VARSCOPE_RETURN_IF_ERROR(ValidateCollectionName(c));
  }
  auto add = [&](const char* key) {
    if (std::find(collections.begin(), collections.end(), key) ==
        collections.end()) {
      collections.push_back(key);
    }
  };
  if (request.local) add(kLocalVariables);
  if (trainable) add(kTrainableVariables);
  // Drop repeats, keeping the first occurrence.
  std::vector<std::string> unique;
  for (std::string& c : collections) {
    if (std::find(unique.begin(), unique.end(), c) == unique.end()) {
      unique.push_back(std::move(c));
    }
  }
  return std::make_pair(trainable, std::move(unique));
}

// What TensorFlow's reuse table (TF_SEMANTICS §3.1, §7.4) says for one
// name, the same for single and partitioned variables.
enum class ReuseAction { kCreate, kReturnExisting };

struct VariableKind {
  absl::string_view exists;   // "Variable " / "Partitioned variable with name "
  absl::string_view missing;  // "Variable " / "PartitionedVariable "
  absl::string_view share;    // "share variable" / "reuse partitioned variable"
};
constexpr VariableKind kSingle{"Variable ", "Variable ", "share variable"};
constexpr VariableKind kPartitioned{"Partitioned variable with name ",
                                    "PartitionedVariable ",
                                    "reuse partitioned variable"};

absl::StatusOr<ReuseAction> ReuseTable(const VariableKind& kind, Reuse reuse,
                                       bool exists, absl::string_view name) {
  if (exists) {
    if (reuse == Reuse::kInherit) {
      return WithReason(
          absl::AlreadyExistsError(absl::StrCat(
              kind.exists, name,
              " already exists, disallowed; set reuse to REUSE or AUTO_REUSE "
              "on the scope")),
          kVariableExists, {{"variable", std::string(name)}});
    }
    return ReuseAction::kReturnExisting;
  }
  if (reuse == Reuse::kReuse) {
    return WithReason(
        absl::NotFoundError(absl::StrCat(
            kind.missing, name,
            " does not exist; open the scope with INHERIT or AUTO_REUSE to "
            "create it")),
        kVariableNotFound, {{"variable", std::string(name)}});
  }
  return ReuseAction::kCreate;
}

// On reuse: the requested shape must be compatible and an explicit dtype
// equal (TF_SEMANTICS §4.3; an omitted dtype matches any, §10.1).
absl::Status CheckShareable(const VariableKind& kind, absl::string_view name,
                            const ShapeSpec& wanted, DType explicit_dtype,
                            const Shape& found_shape, DType found_dtype) {
  if (!IsCompatible(wanted, found_shape)) {
    return WithReason(
        absl::InvalidArgumentError(absl::StrCat(
            "Trying to ", kind.share, " ", name, ", but specified shape ",
            ShapeSpecToString(wanted), " and found shape ",
            ShapeToString(found_shape))),
        kShapeMismatch,
        {{"variable", std::string(name)},
         {"requested_shape", ShapeSpecToString(wanted)},
         {"found_shape", ShapeToString(found_shape)}});
  }
  if (explicit_dtype != DType::kInvalid && explicit_dtype != found_dtype) {
    return WithReason(
        absl::InvalidArgumentError(absl::StrCat(
            "Trying to ", kind.share, " ", name, ", but specified dtype ",
            DTypeName(explicit_dtype), " and found dtype ",
            DTypeName(found_dtype))),
        kDTypeMismatch,
        {{"variable", std::string(name)},
         {"requested_dtype", std::string(DTypeName(explicit_dtype))},
         {"found_dtype", std::string(DTypeName(found_dtype))}});
  }
  return absl::OkStatus();
}

absl::Status CheckBytes(int64_t bytes, int64_t limit, absl::string_view name,
                        DType dtype, const Shape& shape) {
  if (bytes > limit) {
    return WithReason(
        absl::ResourceExhaustedError(absl::StrCat(
            "variable ", name, " (", DTypeName(dtype), " ",
            ShapeToString(shape), ") needs ", bytes,
            " bytes; the server's --max_variable_bytes is ", limit)),
        kQuotaExceeded,
        {{"variable", std::string(name)}, {"flag", "--max_variable_bytes"}});
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ScopeContext> ScopeContextForPath(absl::string_view path,
                                                 Reuse reuse) {
  if (!path.empty()) {
    VARSCOPE_RETURN_IF_ERROR(ValidateName(path, NamePosition::kRoot, "scope"));
  }
  ScopeContext context;
  context.name = std::string(path);
  context.reuse = reuse;
  return context;
}

VariableStore::VariableStore(StoreOptions options)
    : options_(std::move(options)),
      buffers_(BufferPool::Create(options_.buffer_pool)) {}

VariableStore::~VariableStore() = default;

void VariableStore::set_log(StoreLog* log) {
  log_ = log;
  clock_.SetReserver(log, /*block=*/uint64_t{1} << 20);
}

absl::Status VariableStore::MakeRoomForRevisions() {
  // The ceiling's record and its effect are one change: a checkpoint sees
  // both or neither (lock_order.h, level 3).
  absl::ReaderMutexLock barrier(&barrier_);
  return clock_.MakeRoom();
}

// ---------------------------------------------------------------------------
// GetVariable: decide, reserve, initialize, log, publish.

absl::StatusOr<std::string> VariableStore::FullNameOf(
    const ScopeContext& scope, const GetVariableRequest& request) const {
  if (request.name.empty()) {
    return absl::InvalidArgumentError("GetVariable needs a variable name");
  }
  std::string full_name = JoinName(scope.name, request.name);
  VARSCOPE_RETURN_IF_ERROR(ValidateFullName(full_name));
  if (request.check_name) VARSCOPE_RETURN_IF_ERROR(request.check_name(full_name));
  return full_name;
}

absl::StatusOr<VariableInfo> VariableStore::GetVariable(
    const ScopeContext& scope, const GetVariableRequest& request) {
  VARSCOPE_ASSIGN_OR_RETURN(const std::string full_name, FullNameOf(scope, request));
  return Run(scope, request, full_name, /*create_only=*/false);
}

absl::StatusOr<VariableStore::Begun> VariableStore::BeginGetVariable(
    const ScopeContext& scope, const GetVariableRequest& request) {
  VARSCOPE_ASSIGN_OR_RETURN(const std::string full_name, FullNameOf(scope, request));
  Begun begun;
  VARSCOPE_ASSIGN_OR_RETURN(VariableInfo info,
                            Run(scope, request, full_name, /*create_only=*/false, &begun));
  if (begun.creation == nullptr) begun.result = std::move(info);
  return begun;
}

absl::StatusOr<VariableInfo> VariableStore::FinishCreation(
    std::unique_ptr<RemoteCreation> creation) {
  absl::StatusOr<VariableInfo> result;
  if (absl::Status room = MakeRoomForRevisions(); !room.ok()) {
    AbandonPlan(*creation->plan_);
    return room;
  }
  {
    absl::ReaderMutexLock barrier(&barrier_);
    result = Execute(std::move(*creation->plan_));
  }
  feed_.Deliver();
  return result;
}

void VariableStore::AbandonCreation(std::unique_ptr<RemoteCreation> creation) {
  AbandonPlan(*creation->plan_);
}

absl::StatusOr<VariableInfo> VariableStore::CreateVariable(
    const std::string& full_name, const GetVariableRequest& request,
    const ScopeContext& scope) {
  VARSCOPE_RETURN_IF_ERROR(ValidateFullName(full_name));
  if (request.check_name) VARSCOPE_RETURN_IF_ERROR(request.check_name(full_name));
  return Run(scope, request, full_name, /*create_only=*/true);
}

absl::StatusOr<VariableInfo> VariableStore::Run(
    const ScopeContext& scope, const GetVariableRequest& request,
    const std::string& full_name, bool create_only, Begun* begun) {
  VARSCOPE_RETURN_IF_ERROR(ValidateShapeSpec(request.shape, "requested shape"));
  VARSCOPE_RETURN_IF_ERROR(MakeRoomForRevisions());
  absl::StatusOr<VariableInfo> result;
  for (;;) {
    Decision decision;
    {
      absl::ReaderMutexLock barrier(&barrier_);
      {
        absl::MutexLock lock(&mu_);
        decision = Decide(scope, request, full_name, create_only);
        if (decision.what == Decision::What::kDone) return decision.result;
        if (decision.what == Decision::What::kCreate) ReservePlan(decision.plan);
      }
      if (decision.what == Decision::What::kCreate) {
        CreationPlan& plan = decision.plan;
        if (!plan.remote_parts.empty()) {
          // The remote parts are staged with no lock held (network waits);
          // the reservation keeps the names taken meanwhile.
          if (begun == nullptr) {
            AbandonPlan(plan);
            return absl::InternalError(absl::StrCat(
                "partitioned variable ", full_name,
                " has parts on other shards; only the cluster service can create it"));
          }
          begun->creation = std::make_unique<RemoteCreation>();
          begun->creation->plan_ = std::make_shared<CreationPlan>(std::move(plan));
          return VariableInfo{};
        }
        result = Execute(std::move(plan));
        break;
      }
    }
    // Another caller is creating this name: wait for it with the barrier
    // released (finishing a creation may need the barrier again, behind a
    // checkpoint waiting for it), then decide again.
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(decision.wait_until));
  }
  feed_.Deliver();  // no lock held: listeners may call back
  return result;
}

absl::StatusOr<std::vector<VariableInfo>> VariableStore::CreateVariables(
    const std::vector<GetVariableRequest>& requests) {
  if (requests.empty()) return std::vector<VariableInfo>{};
  for (const GetVariableRequest& request : requests) {
    VARSCOPE_RETURN_IF_ERROR(ValidateFullName(request.name));
  }
  VARSCOPE_RETURN_IF_ERROR(MakeRoomForRevisions());
  std::vector<VariableInfo> out;
  absl::StatusOr<VariableInfo> created;
  for (;;) {
    Decision waited;  // set when another caller holds one of the names
    {
      absl::ReaderMutexLock barrier(&barrier_);
      CreationPlan plan;
      {
        absl::MutexLock lock(&mu_);
        for (const GetVariableRequest& request : requests) {
          Decision d = Decide(ScopeContext{}, request, request.name,
                              /*create_only=*/true);
          if (d.what == Decision::What::kWait) {
            waited = std::move(d);
            break;
          }
          if (d.what == Decision::What::kDone) {
            return d.result.ok()
                       ? WithReason(absl::AlreadyExistsError(absl::StrCat(
                                        "variable ", request.name, " exists")),
                                    kVariableExists, {{"variable", request.name}})
                       : d.result.status();
          }
          for (auto& entry : d.plan.entries) {
            for (const auto& other : plan.entries) {
              if (other->name == entry->name) {
                return absl::InvalidArgumentError(absl::StrCat(
                    "variable ", entry->name, " is named twice"));
              }
            }
            plan.entries.push_back(std::move(entry));
          }
          plan.bytes += d.plan.bytes;
        }
        if (waited.wait_until == nullptr) {
          VARSCOPE_RETURN_IF_ERROR(CheckMemory(plan.bytes, requests.front().name));
          ReservePlan(plan);
        }
      }
      if (waited.wait_until == nullptr) {
        created = Execute(std::move(plan), &out);
        break;
      }
    }
    // As in Run: wait with the barrier released, then decide again.
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(waited.wait_until));
  }
  if (!created.ok()) return created.status();
  feed_.Deliver();
  return out;
}

VariableStore::Decision VariableStore::Decide(const ScopeContext& scope,
                                              const GetVariableRequest& request,
                                              const std::string& full_name,
                                              bool create_only) const {
  Resolved r;
  r.initializer =
      request.initializer.has_value() ? request.initializer : scope.initializer;
  r.from_value = r.initializer.has_value() &&
                 r.initializer->kind == InitializerSpec::Kind::kValue;
  // TF checks an explicit dtype against a value initializer before any lookup.
  if (request.initializer.has_value() &&
      request.initializer->kind == InitializerSpec::Kind::kValue &&
      request.dtype != DType::kInvalid &&
      request.dtype != request.initializer->value.dtype) {
    return Decision::Done(absl::InvalidArgumentError(absl::StrCat(
        "Initializer type '", DTypeName(request.initializer->value.dtype),
        "' and explicit dtype '", DTypeName(request.dtype), "' don't match")));
  }
  r.explicit_dtype =
      request.dtype != DType::kInvalid ? request.dtype : scope.dtype;
  if (r.from_value && r.explicit_dtype == DType::kInvalid) {
    r.explicit_dtype = r.initializer->value.dtype;
  }
  r.create_dtype =
      r.explicit_dtype != DType::kInvalid ? r.explicit_dtype : DType::kFloat;
  r.partitioner =
      request.partitioner.has_value() ? request.partitioner : scope.partitioner;
  r.reuse = create_only ? Reuse::kInherit : scope.reuse;

  const bool scalar = request.shape.known && request.shape.dims.empty();
  if (r.partitioner.has_value() && !scalar) {
    return DecidePartitioned(request, full_name, r);
  }
  // Reuse without a partitioner returns a partitioned variable only under
  // REUSE (TF_SEMANTICS §7.4).
  if (r.reuse == Reuse::kReuse) {
    if (auto it = partitioned_.find(full_name); it != partitioned_.end()) {
      const Partitioned& p = *it->second;
      if (!p.settled) return Decision::Wait(it->second);
      if (p.ready) {
        absl::Status shareable =
            CheckShareable(kPartitioned, full_name, request.shape,
                           r.explicit_dtype, p.shape, p.dtype);
        if (!shareable.ok()) return Decision::Done(shareable);
        return Decision::Done(InfoOf(p));
      }
    }
  }
  if (vars_.count(full_name + "/part_0") > 0) {
    return Decision::Done(WithReason(
        absl::InvalidArgumentError(absl::StrCat(
            "No partitioner was provided, but a partitioned version of the "
            "variable was found: ",
            full_name,
            "/part_0. Perhaps a variable of the same name was already created "
            "with partitioning? Pass the partitioner, or fetch it under "
            "REUSE")),
        kPartitionMismatch, {{"variable", full_name}}));
  }
  return DecideSingle(request, full_name, r);
}

VariableStore::Decision VariableStore::DecideSingle(
    const GetVariableRequest& request, const std::string& full_name,
    const Resolved& r) const {
  if (r.from_value && request.initializer.has_value() && request.shape.known) {
    return Decision::Done(absl::InvalidArgumentError(absl::StrCat(
        "variable ", full_name,
        ": if initializer is a constant value, do not specify shape (the "
        "value's shape is used)")));
  }
  auto collections = ResolveCollections(request);
  if (!collections.ok()) return Decision::Done(collections.status());

  const Entry* existing = nullptr;
  if (auto it = vars_.find(full_name); it != vars_.end()) {
    if (!it->second->settled) return Decision::Wait(it->second);
    if (it->second->ready) existing = it->second.get();
  }
  absl::StatusOr<ReuseAction> action =
      ReuseTable(kSingle, r.reuse, existing != nullptr, full_name);
  if (!action.ok()) return Decision::Done(action.status());
  if (*action == ReuseAction::kReturnExisting) {
    const ShapeSpec wanted =
        r.from_value ? ShapeSpec::Of(r.initializer->value.shape) : request.shape;
    absl::Status shareable = CheckShareable(kSingle, full_name, wanted,
                                            r.explicit_dtype, existing->shape,
                                            existing->dtype);
    if (!shareable.ok()) return Decision::Done(shareable);
    return Decision::Done(InfoOf(*existing));
  }
  if (partitioned_.count(full_name) > 0) {
    return Decision::Done(WithReason(
        absl::AlreadyExistsError(absl::StrCat(
            "A partitioned variable named ", full_name,
            " exists; pass its partitioner to fetch it")),
        kPartitionMismatch, {{"variable", full_name}}));
  }

  // Create: a fully defined shape, a size within limits, a valid
  // initializer.
  DType dtype = r.create_dtype;
  Shape shape;
  if (r.from_value) {
    dtype = r.initializer->value.dtype;
    shape = r.initializer->value.shape;
  } else if (!request.shape.known) {
    return Decision::Done(absl::InvalidArgumentError(absl::StrCat(
        "variable ", full_name,
        " does not exist and no shape was given to create it; pass shape (or "
        "scalar for a scalar)")));
  } else if (!request.shape.IsFullyDefined()) {
    return Decision::Done(absl::InvalidArgumentError(absl::StrCat(
        "Shape of a new variable ", full_name,
        " must be fully defined, but instead was ",
        ShapeSpecToString(request.shape))));
  } else {
    shape = request.shape.dims;
  }
  const InitializerSpec init =
      r.initializer.has_value() ? *r.initializer : DefaultInitializer(dtype);
  auto bytes = NumBytes(dtype, shape);
  if (!bytes.ok()) return Decision::Done(bytes.status());
  if (absl::Status s = CheckBytes(*bytes, options_.max_variable_bytes,
                                  full_name, dtype, shape);
      !s.ok()) {
    return Decision::Done(s);
  }
  if (absl::Status s = ValidateInitializer(init, dtype, shape, full_name);
      !s.ok()) {
    return Decision::Done(s);
  }
  if (absl::Status s = CheckMemory(*bytes, full_name); !s.ok()) {
    return Decision::Done(s);
  }
  auto entry = std::make_shared<Entry>();
  entry->name = full_name;
  entry->dtype = dtype;
  entry->shape = std::move(shape);
  entry->trainable = collections->first;
  entry->collections = std::move(collections->second);
  entry->initializer = init;
  entry->num_bytes = *bytes;
  CreationPlan plan;
  plan.entries.push_back(std::move(entry));
  plan.bytes = *bytes;
  return Decision::Create(std::move(plan));
}

VariableStore::Decision VariableStore::DecidePartitioned(
    const GetVariableRequest& request, const std::string& full_name,
    const Resolved& r) const {
  if (vars_.count(full_name) > 0) {
    return Decision::Done(WithReason(
        absl::InvalidArgumentError(absl::StrCat(
            "A partitioner was provided, but an unpartitioned version of the "
            "variable was found: ",
            full_name,
            ". Perhaps a variable of the same name was already created "
            "without partitioning?")),
        kPartitionMismatch, {{"variable", full_name}}));
  }
  // The partitioner needs the full shape, also on reuse (TF_SEMANTICS §7.2).
  ShapeSpec shape_spec = request.shape;
  if (r.from_value) {
    if (!IsCompatible(shape_spec, r.initializer->value.shape)) {
      return Decision::Done(absl::InvalidArgumentError(absl::StrCat(
          "variable ", full_name, ": shape ", ShapeSpecToString(shape_spec),
          " does not match the initial value's shape ",
          ShapeToString(r.initializer->value.shape))));
    }
    shape_spec = ShapeSpec::Of(r.initializer->value.shape);
  }
  if (!shape_spec.IsFullyDefined()) {
    return Decision::Done(absl::InvalidArgumentError(absl::StrCat(
        "Shape of a new partitioned variable ", full_name,
        " must be fully defined, but instead was ",
        ShapeSpecToString(shape_spec),
        " (a partitioner needs the full shape, also on reuse)")));
  }
  const DType dtype = r.from_value ? r.initializer->value.dtype : r.create_dtype;
  auto partitions =
      ComputePartitions(*r.partitioner, dtype, shape_spec.dims, full_name);
  if (!partitions.ok()) return Decision::Done(partitions.status());

  const Partitioned* existing = nullptr;
  if (auto it = partitioned_.find(full_name); it != partitioned_.end()) {
    if (!it->second->settled) return Decision::Wait(it->second);
    if (it->second->ready) existing = it->second.get();
  }
  absl::StatusOr<ReuseAction> action =
      ReuseTable(kPartitioned, r.reuse, existing != nullptr, full_name);
  if (!action.ok()) return Decision::Done(action.status());
  if (*action == ReuseAction::kReturnExisting) {
    absl::Status shareable =
        CheckShareable(kPartitioned, full_name, shape_spec, r.explicit_dtype,
                       existing->shape, existing->dtype);
    if (!shareable.ok()) return Decision::Done(shareable);
    if (*partitions != existing->partitions) {
      return Decision::Done(WithReason(
          absl::InvalidArgumentError(absl::StrCat(
              "Trying to reuse partitioned variable ", full_name,
              ", but specified partitions [", absl::StrJoin(*partitions, ", "),
              "] and found partitions [",
              absl::StrJoin(existing->partitions, ", "), "]")),
          kPartitionMismatch,
          {{"variable", full_name},
           {"requested_partitions", absl::StrJoin(*partitions, ",")},
           {"found_partitions", absl::StrJoin(existing->partitions, ",")}}));
    }
    return Decision::Done(InfoOf(*existing));
  }
  return PlanParts(request, full_name, r, shape_spec.dims,
                   *std::move(partitions));
}

// Validates every part before anything is reserved (TF notices a bad part
// only after creating the earlier ones, TF_SEMANTICS §7.3).
VariableStore::Decision VariableStore::PlanParts(
    const GetVariableRequest& request, const std::string& full_name,
    const Resolved& r, const Shape& shape,
    std::vector<int64_t> partitions) const {
  const DType dtype = r.from_value ? r.initializer->value.dtype : r.create_dtype;
  auto collections = ResolveCollections(request);
  if (!collections.ok()) return Decision::Done(collections.status());
  const InitializerSpec init =
      r.initializer.has_value() ? *r.initializer : DefaultInitializer(dtype);
  if (absl::Status s = ValidateInitializer(init, dtype, shape, full_name);
      !s.ok()) {
    return Decision::Done(s);
  }
  const std::vector<PartLayout> layouts = SplitShape(shape, partitions);
  CreationPlan plan;
  auto p = std::make_shared<Partitioned>();
  p->name = full_name;
  p->dtype = dtype;
  p->shape = shape;
  p->partitions = std::move(partitions);
  p->trainable = collections->first;
  p->collections = collections->second;
  p->initializer = init;
  for (size_t i = 0; i < layouts.size(); ++i) {
    const std::string part_name = absl::StrCat(full_name, "/part_", i);
    if (absl::Status s = ValidateVariableName(part_name); !s.ok()) {
      return Decision::Done(s);
    }
    const bool here = Owns(part_name);
    if (here && vars_.count(part_name) > 0) {
      return Decision::Done(WithReason(
          absl::AlreadyExistsError(absl::StrCat(
              "variable ", part_name, " already exists, so partitioned variable ",
              full_name, " cannot be created")),
          kVariableExists, {{"variable", part_name}}));
    }
    if (init.kind == InitializerSpec::Kind::kConstant) {
      if (absl::Status s = ValidateInitializer(init, dtype, layouts[i].shape,
                                               part_name);
          !s.ok()) {
        return Decision::Done(s);
      }
    }
    auto bytes = NumBytes(dtype, layouts[i].shape);
    if (!bytes.ok()) return Decision::Done(bytes.status());
    if (absl::Status s = CheckBytes(*bytes, options_.max_variable_bytes,
                                    part_name, dtype, layouts[i].shape);
        !s.ok()) {
      return Decision::Done(s);
    }
    p->part_names.push_back(part_name);
    if (!here) {  // its shard checks the name and its memory
      plan.remote_parts.push_back(static_cast<int>(i));
      continue;
    }
    auto entry = std::make_shared<Entry>();
    entry->name = part_name;
    entry->dtype = dtype;
    entry->shape = layouts[i].shape;
    entry->trainable = p->trainable;
    entry->collections = p->collections;
    entry->initializer = init;
    entry->slice = PartSlice{full_name, shape, layouts[i].offset,
                             static_cast<int>(i)};
    entry->num_bytes = *bytes;
    plan.bytes += *bytes;
    plan.part_contexts.push_back(
        PartContext{shape, layouts[i].offset, static_cast<int>(i)});
    plan.entries.push_back(std::move(entry));
  }
  if (absl::Status s = CheckMemory(plan.bytes, full_name); !s.ok()) {
    return Decision::Done(s);
  }
  plan.partitioned = std::move(p);
  return Decision::Create(std::move(plan));
}

void VariableStore::ReservePlan(const CreationPlan& plan) {
  for (const auto& entry : plan.entries) vars_.emplace(entry->name, entry);
  if (plan.partitioned) {
    partitioned_.emplace(plan.partitioned->name, plan.partitioned);
  }
  total_bytes_ += plan.bytes;
}

void VariableStore::AbandonPlan(const CreationPlan& plan) {
  absl::MutexLock lock(&mu_);
  // Waiters re-decide once `settled` is set.
  for (const auto& entry : plan.entries) {
    entry->settled = true;
    vars_.erase(entry->name);
  }
  if (plan.partitioned) {
    plan.partitioned->settled = true;
    partitioned_.erase(plan.partitioned->name);
  }
  total_bytes_ -= plan.bytes;
}

absl::StatusOr<VariableInfo> VariableStore::Execute(
    CreationPlan plan, std::vector<VariableInfo>* each) {
  // Initialize outside the lock: a large tensor must not stall every other
  // caller of the store.
  std::vector<std::shared_ptr<TensorBuffer>> values;
  try {
    for (size_t i = 0; i < plan.entries.size(); ++i) {
      const Entry& entry = *plan.entries[i];
      const PartContext* part =
          plan.partitioned ? &plan.part_contexts[i] : nullptr;
      // Parts share the partitioned variable's name seed; the part index
      // decorrelates them.
      const std::string& seed_name =
          plan.partitioned ? plan.partitioned->name : entry.name;
      values.push_back(RunInitializer(entry.initializer, entry.dtype,
                                      entry.shape, part, NameSeed(seed_name)));
    }
  } catch (const std::bad_alloc&) {
    AbandonPlan(plan);
    return absl::ResourceExhaustedError(
        "out of memory while initializing the variable");
  }

  // Log the creation (with its initial values) before anyone can see it:
  // once published, pushes to it may be logged after it.
  const uint64_t revision = clock_.Next();
  if (log_ != nullptr) {
    CreationRecord record;
    record.revision = revision;
    for (size_t i = 0; i < plan.entries.size(); ++i) {
      const Entry& e = *plan.entries[i];
      VariableState state;
      state.info.name = e.name;
      state.info.dtype = e.dtype;
      state.info.shape = e.shape;
      state.info.version = revision;
      state.info.trainable = e.trainable;
      state.info.collections = e.collections;
      state.info.initializer = e.initializer;
      state.info.initializer.value.buffer.reset();  // the value is the data
      state.info.slice = e.slice;
      state.value = values[i];
      record.variables.push_back(std::move(state));
    }
    if (plan.partitioned) record.partitioned = *plan.partitioned;
    if (absl::Status logged = log_->LogCreation(record); !logged.ok()) {
      AbandonPlan(plan);
      return logged;
    }
  }

  absl::MutexLock lock(&mu_);
  std::vector<ChangeEvent> events;
  for (size_t i = 0; i < plan.entries.size(); ++i) {
    Entry& entry = *plan.entries[i];
    entry.cell = std::make_shared<VariableCell>(std::move(values[i]), revision);
    entry.ready = true;
    entry.settled = true;
    events.push_back({entry.name, revision, ChangeKind::kCreated});
    AddToCollections(entry.name, entry.collections);
    if (each != nullptr) {
      each->push_back(InfoOf(entry));
      each->back().created = true;
    }
  }
  if (plan.partitioned && !plan.remote_parts.empty() && plan.remote_parts.front() == 0) {
    // Part 0's event comes from its own shard; a GetVariable waiting here
    // for the partitioned variable (wait_ms) is woken by its own name.
    events.push_back({plan.partitioned->name, revision, ChangeKind::kCreated});
  }
  VariableInfo info;
  if (plan.partitioned) {
    plan.partitioned->ready = true;
    plan.partitioned->settled = true;
    info = InfoOf(*plan.partitioned);
    for (VariableInfo& part : info.parts) part.created = true;
  } else {
    info = InfoOf(*plan.entries.front());
  }
  info.created = true;
  // Queued before anyone can change the new variables: events stay in
  // commit order (change_feed.h).
  feed_.Enqueue(std::move(events));
  return info;
}

// ---------------------------------------------------------------------------
// Slots.

absl::StatusOr<std::vector<PendingSlot>> VariableStore::ReserveSlots(
    const VariableHandle& var,
    const std::vector<std::pair<std::string, double>>& missing) {
  std::vector<PendingSlot> slots;
  if (missing.empty()) return slots;
  const int64_t bytes = var.num_bytes * static_cast<int64_t>(missing.size());
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [name, initial] : missing) {
      if (vars_.count(name) > 0 || partitioned_.count(name) > 0) {
        return WithReason(
            absl::AbortedError(absl::StrCat(
                "slot variable ", name,
                " is being created by another call; retry")),
            kVersionConflict, {{"variable", name}});
      }
    }
    VARSCOPE_RETURN_IF_ERROR(CheckMemory(
        bytes, absl::StrCat("the optimizer slots of ", var.name)));
    for (const auto& [name, initial] : missing) {
      auto entry = std::make_shared<Entry>();
      entry->name = name;
      entry->dtype = var.dtype;
      entry->shape = var.shape;
      entry->trainable = false;
      entry->collections = {kGlobalVariables};
      entry->initializer = InitializerSpec::Of(InitializerSpec::Kind::kConstant);
      entry->initializer.values = {initial};
      entry->num_bytes = var.num_bytes;
      vars_.emplace(name, std::move(entry));
    }
    total_bytes_ += bytes;
  }
  try {
    for (const auto& [name, initial] : missing) {
      InitializerSpec init = InitializerSpec::Of(InitializerSpec::Kind::kConstant);
      init.values = {initial};
      slots.push_back(
          {name, RunInitializer(init, var.dtype, var.shape, nullptr, 0)});
    }
  } catch (const std::bad_alloc&) {
    std::vector<PendingSlot> all;
    for (const auto& [name, initial] : missing) all.push_back({name, nullptr});
    AbandonSlots(all);
    return absl::ResourceExhaustedError(absl::StrCat(
        "out of memory creating the optimizer slots of ", var.name));
  }
  return slots;
}

void VariableStore::CommitSlots(std::vector<PendingSlot> slots,
                                uint64_t revision) {
  absl::MutexLock lock(&mu_);
  std::vector<ChangeEvent> events;
  for (PendingSlot& slot : slots) {
    auto it = vars_.find(slot.name);
    Entry& entry = *it->second;
    entry.cell = std::make_shared<VariableCell>(std::move(slot.value), revision);
    entry.ready = true;
    entry.settled = true;
    AddToCollections(entry.name, entry.collections);
    events.push_back({entry.name, revision, ChangeKind::kCreated});
  }
  feed_.Enqueue(std::move(events));
}

void VariableStore::AbandonSlots(const std::vector<PendingSlot>& slots) {
  absl::MutexLock lock(&mu_);
  for (const PendingSlot& slot : slots) {
    auto it = vars_.find(slot.name);
    if (it == vars_.end() || it->second->ready) continue;
    it->second->settled = true;
    total_bytes_ -= it->second->num_bytes;
    vars_.erase(it);
  }
}

// ---------------------------------------------------------------------------
// Lookups.

absl::Status VariableStore::ValidateFullName(absl::string_view full_name) const {
  VARSCOPE_RETURN_IF_ERROR(ValidateVariableName(full_name));
  if (full_name.size() > options_.max_name_bytes) {
    return WithReason(
        absl::InvalidArgumentError(absl::StrCat(
            "name '", full_name.substr(0, 64), "...' is ", full_name.size(),
            " bytes; the server's --max_name_bytes is ",
            options_.max_name_bytes)),
        kInvalidName, {{"flag", "--max_name_bytes"}});
  }
  return absl::OkStatus();
}

absl::Status VariableStore::CheckRoomFor(int64_t bytes,
                                         absl::string_view what) const {
  absl::ReaderMutexLock lock(&mu_);
  return CheckMemory(bytes, what);
}

absl::Status VariableStore::CheckMemory(int64_t bytes,
                                        absl::string_view name) const {
  const int64_t limit = options_.max_memory_bytes;
  if (limit > 0 && total_bytes_ + bytes > limit) {
    return WithReason(
        absl::ResourceExhaustedError(absl::StrCat(
            "creating ", name, " (", bytes,
            " bytes) would bring tensor storage to ", total_bytes_ + bytes,
            " bytes, above the server's --max_memory_bytes of ", limit,
            "; delete variables or raise the limit")),
        kQuotaExceeded, {{"flag", "--max_memory_bytes"}});
  }
  return absl::OkStatus();
}

VariableInfo VariableStore::InfoOf(const Entry& entry) const {
  VariableInfo info;
  info.name = entry.name;
  info.dtype = entry.dtype;
  info.shape = entry.shape;
  info.version = entry.cell ? entry.cell->version() : 0;
  info.trainable = entry.trainable;
  info.collections = entry.collections;
  info.initializer = entry.initializer;
  info.slice = entry.slice;
  info.num_bytes = entry.num_bytes;
  return info;
}

VariableInfo VariableStore::InfoOf(const Partitioned& p) const {
  VariableInfo info;
  info.name = p.name;
  info.dtype = p.dtype;
  info.shape = p.shape;
  info.trainable = p.trainable;
  info.collections = p.collections;
  info.initializer = p.initializer;
  info.partitioned = true;
  info.partitions = p.partitions;
  std::vector<PartLayout> layouts;
  for (size_t i = 0; i < p.part_names.size(); ++i) {
    const std::string& part_name = p.part_names[i];
    if (auto it = vars_.find(part_name); it != vars_.end()) {
      info.parts.push_back(InfoOf(*it->second));
    } else if (!Owns(part_name)) {
      // On its own shard: described from the layout; its version is
      // that shard's to tell (Describe the part there).
      if (layouts.empty()) layouts = SplitShape(p.shape, p.partitions);
      if (i >= layouts.size()) continue;
      VariableInfo part;
      part.name = part_name;
      part.dtype = p.dtype;
      part.shape = layouts[i].shape;
      part.trainable = p.trainable;
      part.collections = p.collections;
      part.initializer = p.initializer;
      part.slice = PartSlice{p.name, p.shape, layouts[i].offset, static_cast<int>(i)};
      part.num_bytes = NumBytes(p.dtype, part.shape).value_or(0);
      info.parts.push_back(std::move(part));
    } else {
      continue;
    }
    info.version = std::max(info.version, info.parts.back().version);
    info.num_bytes += info.parts.back().num_bytes;  // the whole's bytes
  }
  return info;
}

void VariableStore::AddToCollections(
    const std::string& name, const std::vector<std::string>& collections) {
  const uint64_t seq = next_collection_seq_++;
  for (const std::string& c : collections) collections_[c].emplace(seq, name);
}

void VariableStore::RemoveFromCollections(const std::string& name) {
  for (auto& [key, names] : collections_) {
    for (auto it = names.begin(); it != names.end();) {
      it = it->second == name ? names.erase(it) : std::next(it);
    }
  }
}

bool VariableStore::NameInUse(const std::string& full_name) const {
  absl::ReaderMutexLock lock(&mu_);
  return vars_.count(full_name) > 0 ||
         vars_.count(full_name + "/part_0") > 0 ||
         partitioned_.count(full_name) > 0;
}

absl::StatusOr<VariableInfo> VariableStore::Describe(
    absl::string_view name) const {
  name = StripTensorSuffix(name);
  absl::ReaderMutexLock lock(&mu_);
  if (auto it = partitioned_.find(name);
      it != partitioned_.end() && it->second->ready) {
    return InfoOf(*it->second);
  }
  if (auto it = vars_.find(name); it != vars_.end() && it->second->ready) {
    return InfoOf(*it->second);
  }
  return WithReason(
      absl::NotFoundError(absl::StrCat("variable ", name, " does not exist")),
      kVariableNotFound, {{"variable", std::string(name)}});
}

ListPage VariableStore::List(const ListOptions& options) const {
  absl::ReaderMutexLock lock(&mu_);
  ListPage page;
  const ListCursor* after = options.after ? &*options.after : nullptr;
  // Adds one variable; false once the page is full (`next` is then set).
  auto add = [&](VariableInfo info, ListCursor cursor) {
    if (options.limit > 0 && page.variables.size() == options.limit) {
      page.next = page.next.value_or(ListCursor{});
      return false;
    }
    page.variables.push_back(std::move(info));
    page.next = std::move(cursor);
    return true;
  };
  bool full = false;
  if (after == nullptr || !after->partitioned) {
    if (!options.collection.empty() && !options.collection_in_name_order) {
      auto it = collections_.find(options.collection);
      if (it != collections_.end()) {
        const std::map<uint64_t, std::string>& names = it->second;
        // Resume after the cursor's sequence number: deletions and
        // re-creations meanwhile never shift it.
        auto at = after != nullptr ? names.upper_bound(after->index) : names.begin();
        for (; at != names.end() && !full; ++at) {
          const std::string& name = at->second;
          if (!IsUnderPrefix(name, options.prefix)) continue;
          auto var = vars_.find(name);
          if (var == vars_.end() || !var->second->ready) continue;
          full = !add(InfoOf(*var->second), ListCursor{false, name, at->first});
        }
      }
    } else {
      auto it = after != nullptr ? vars_.upper_bound(after->name)
                                 : vars_.lower_bound(options.prefix);
      for (; it != vars_.end() && !full &&
             it->first.compare(0, options.prefix.size(), options.prefix) == 0;
           ++it) {
        const Entry& entry = *it->second;
        const bool member =
            options.collection.empty() ||
            std::find(entry.collections.begin(), entry.collections.end(),
                      options.collection) != entry.collections.end();
        if (entry.ready && member && IsUnderPrefix(it->first, options.prefix)) {
          full = !add(InfoOf(entry), ListCursor{false, it->first, 0});
        }
      }
    }
  }
  if (options.include_partitioned && !full) {
    auto it = after != nullptr && after->partitioned
                  ? partitioned_.upper_bound(after->name)
                  : partitioned_.begin();
    for (; it != partitioned_.end() && !full; ++it) {
      const Partitioned& p = *it->second;
      if (p.ready && IsUnderPrefix(p.name, options.prefix) &&
          (options.collection.empty() ||
           std::find(p.collections.begin(), p.collections.end(),
                     options.collection) != p.collections.end())) {
        full = !add(InfoOf(p), ListCursor{true, p.name, 0});
      }
    }
  }
  if (!full) page.next.reset();
  return page;
}

absl::StatusOr<std::shared_ptr<const TensorBuffer>> VariableStore::ReadValue(
    absl::string_view name) const {
  VARSCOPE_ASSIGN_OR_RETURN(VariableHandle handle, Find(name));
  return handle.cell->Read().value;
}

absl::StatusOr<VariableHandle> VariableStore::Find(
    absl::string_view name) const {
  name = StripTensorSuffix(name);
  absl::ReaderMutexLock lock(&mu_);
  auto it = vars_.find(name);
  if (it == vars_.end() || !it->second->ready) {
    if (partitioned_.count(name) > 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, " is a partitioned variable; address its parts (", name,
          "/part_0, ...) one by one"));
    }
    return WithReason(
        absl::NotFoundError(absl::StrCat("variable ", name, " does not exist")),
        kVariableNotFound, {{"variable", std::string(name)}});
  }
  const Entry& entry = *it->second;
  VariableHandle handle;
  handle.name = entry.name;
  handle.dtype = entry.dtype;
  handle.shape = entry.shape;
  handle.num_bytes = entry.num_bytes;
  handle.cell = entry.cell;
  return handle;
}

// ---------------------------------------------------------------------------
// Deletion: mark (store lock), log (no store lock), remove (store lock).

absl::StatusOr<std::vector<std::string>> VariableStore::Delete(
    absl::string_view name, bool foreign_part, std::optional<uint64_t> version) {
  name = StripTensorSuffix(name);
  std::vector<std::string> removed;
  {
    absl::ReaderMutexLock barrier(&barrier_);
    {
      absl::MutexLock lock(&mu_);
      if (version.has_value()) {
        auto it = vars_.find(name);
        if (it != vars_.end() && it->second->ready &&
            it->second->cell->version() != *version) {
          return absl::AbortedError(absl::StrCat(name, " changed since it was checked"));
        }
      }
      VARSCOPE_RETURN_IF_ERROR(MarkDeleting(name, true, foreign_part));
    }
    if (log_ != nullptr) {
      if (absl::Status logged = log_->LogDeletion(name); !logged.ok()) {
        absl::MutexLock lock(&mu_);
        (void)MarkDeleting(name, false, foreign_part);
        return logged;
      }
    }
    absl::MutexLock lock(&mu_);
    removed = DeleteLocked(name);
    std::vector<ChangeEvent> events;
    for (const std::string& n : removed) {
      // Parts on other shards are deleted (and announced) there.
      if (Owns(n)) events.push_back({n, 0, ChangeKind::kDeleted});
    }
    feed_.Enqueue(std::move(events));
  }
  feed_.Deliver();
  return removed;
}

absl::Status VariableStore::MarkDeleting(absl::string_view name,
                                         bool deleting, bool foreign_part) {
  auto busy = [&](absl::string_view what) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, " ", name, " is being ",
                     deleting ? "created or deleted" : "deleted", "; retry"));
  };
  if (auto it = partitioned_.find(name); it != partitioned_.end()) {
    Partitioned& p = *it->second;
    if (deleting && (!p.ready || p.deleting)) return busy("partitioned variable");
    p.deleting = deleting;
    for (const std::string& part : p.part_names) {
      if (auto var = vars_.find(part); var != vars_.end()) {
        var->second->deleting = deleting;
      }
    }
    return absl::OkStatus();
  }
  auto it = vars_.find(name);
  if (it == vars_.end()) {
    return WithReason(
        absl::NotFoundError(absl::StrCat("variable ", name, " does not exist")),
        kVariableNotFound, {{"variable", std::string(name)}});
  }
  Entry& entry = *it->second;
  if (deleting && (!entry.ready || entry.deleting)) return busy("variable");
  if (entry.slice.has_value() &&
      !(foreign_part && partitioned_.count(entry.slice->full_name) == 0)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "variable ", name, " is part of partitioned variable ",
        entry.slice->full_name, "; delete that instead"));
  }
  entry.deleting = deleting;
  return absl::OkStatus();
}

std::vector<std::string> VariableStore::DeleteLocked(absl::string_view name) {
  std::vector<std::string> removed;
  if (auto it = partitioned_.find(name); it != partitioned_.end()) {
    for (const std::string& part : it->second->part_names) {
      if (auto var = vars_.find(part); var != vars_.end()) {
        total_bytes_ -= var->second->num_bytes;
        vars_.erase(var);
      }
      RemoveFromCollections(part);
      removed.push_back(part);
    }
    removed.push_back(std::string(name));
    partitioned_.erase(it);
    return removed;
  }
  auto it = vars_.find(name);
  total_bytes_ -= it->second->num_bytes;
  vars_.erase(it);
  RemoveFromCollections(std::string(name));
  removed.push_back(std::string(name));
  return removed;
}

// ---------------------------------------------------------------------------
// Snapshots, restore, replay.

StoreSnapshot VariableStore::Snapshot() const {
  absl::MutexLock barrier(&barrier_);
  return SnapshotLocked();
}

StoreSnapshot VariableStore::SnapshotLocked() const {
  std::vector<std::shared_ptr<Entry>> entries;
  StoreSnapshot out;
  {
    absl::ReaderMutexLock lock(&mu_);
    for (const auto& [name, entry] : vars_) {
      if (entry->ready) entries.push_back(entry);
    }
    for (const auto& [name, p] : partitioned_) {
      if (p->ready) out.partitioned.push_back(static_cast<const PartitionedState&>(*p));
    }
  }
  // A restart continues above everything handed out or reserved.
  out.revision = clock_.current();
  if (clock_.ceiling() != std::numeric_limits<uint64_t>::max()) {
    out.revision = std::max(out.revision, clock_.ceiling());
  }
  // With the barrier held exclusively no change is in progress, so these
  // cell locks are only held against readers, briefly.
  for (const auto& entry : entries) {
    VariableState state;
    state.info.name = entry->name;
    state.info.dtype = entry->dtype;
    state.info.shape = entry->shape;
    state.info.trainable = entry->trainable;
    state.info.collections = entry->collections;
    state.info.initializer = entry->initializer;
    state.info.slice = entry->slice;
    state.info.num_bytes = entry->num_bytes;
    VariableCell& cell = *entry->cell;
    {
      absl::MutexLock lock(cell.writer_mu());
      if (cell.training.optimizer) {
        state.optimizer = cell.training.optimizer->spec;
      }
      state.optimizer_steps = cell.training.optimizer_steps;
      state.replicas_to_aggregate = cell.training.replicas_to_aggregate;
      state.sync_step = cell.training.sync_step;
      state.stale_dropped = cell.training.stale_dropped;
    }
    const VariableCell::Snapshot value = cell.Read();
    state.value = value.value;
    state.info.version = value.version;
    out.variables.push_back(std::move(state));
  }
  return out;
}

// Entries built from a snapshot, not yet in the store.
struct VariableStore::Built {
  std::map<std::string, std::shared_ptr<Entry>, std::less<>> vars;
  std::map<std::string, std::shared_ptr<Partitioned>, std::less<>> partitioned;
  int64_t total_bytes = 0;
};

absl::StatusOr<VariableStore::Built> VariableStore::Build(
    StoreSnapshot snapshot, std::optional<uint64_t> revision) const {
  Built built;
  for (VariableState& v : snapshot.variables) {
    VARSCOPE_RETURN_IF_ERROR(ValidateName(v.info.name, NamePosition::kRoot, "variable"));
    VARSCOPE_ASSIGN_OR_RETURN(int64_t bytes, NumBytes(v.info.dtype, v.info.shape));
    if (v.value == nullptr || static_cast<int64_t>(v.value->size()) != bytes) {
      return absl::DataLossError(absl::StrCat(
          "variable ", v.info.name, ": the value does not match ",
          DTypeName(v.info.dtype), " ", ShapeToString(v.info.shape)));
    }
    std::optional<ResolvedOptimizer> optimizer;
    if (v.optimizer) {
      absl::StatusOr<ResolvedOptimizer> opt = ResolveOptimizer(*v.optimizer);
      if (!opt.ok()) {
        return absl::DataLossError(absl::StrCat("variable ", v.info.name,
                                                ": ", opt.status().message()));
      }
      optimizer = *std::move(opt);
    }
    auto entry = std::make_shared<Entry>();
    entry->name = v.info.name;
    entry->dtype = v.info.dtype;
    entry->shape = v.info.shape;
    entry->trainable = v.info.trainable;
    entry->collections = v.info.collections;
    entry->initializer = v.info.initializer;
    entry->slice = v.info.slice;
    entry->num_bytes = bytes;
    entry->ready = entry->settled = true;
    entry->cell = std::make_shared<VariableCell>(
        std::move(v.value),
        revision.has_value() ? *revision : std::max<uint64_t>(1, v.info.version));
    {
      // A new cell nobody else can see: its lock is uncontended.
      VariableCell& cell = *entry->cell;
      absl::MutexLock lock(cell.writer_mu());
      cell.training.optimizer = std::move(optimizer);
      cell.training.optimizer_steps = v.optimizer_steps;
      cell.training.replicas_to_aggregate = v.replicas_to_aggregate;
      cell.training.sync_step = v.sync_step;
      cell.training.stale_dropped = v.stale_dropped;
    }
    if (!built.vars.emplace(entry->name, entry).second) {
      return absl::DataLossError(absl::StrCat("variable ", v.info.name, " appears twice"));
    }
    built.total_bytes += bytes;
  }
  for (PartitionedState& p : snapshot.partitioned) {
    auto entry = std::make_shared<Partitioned>();
    static_cast<PartitionedState&>(*entry) = std::move(p);
    entry->ready = entry->settled = true;
    for (const std::string& part : entry->part_names) {
      if (built.vars.count(part) == 0 && Owns(part)) {
        return absl::DataLossError(absl::StrCat(
            "partitioned variable ", entry->name, " lacks its part ", part));
      }
    }
    built.partitioned.emplace(entry->name, std::move(entry));
  }
  return built;
}

absl::Status VariableStore::Restore(StoreSnapshot snapshot,
                                   const RestoreOptions& options) {
  VARSCOPE_RETURN_IF_ERROR(MakeRoomForRevisions());
  std::vector<ChangeEvent> events;
  {
    // Exclusively: no change is in progress, and every version handed out
    // so far is below the restore's revision.
    absl::MutexLock barrier(&barrier_);
    std::optional<uint64_t> revision;
    if (options.keep_versions) {
      clock_.AdvanceTo(snapshot.revision);
      for (const VariableState& v : snapshot.variables) {
        clock_.AdvanceTo(v.info.version);
      }
    } else if (options.revision.has_value()) {
      revision = options.revision;
      clock_.AdvanceTo(*revision);
    } else {
      revision = clock_.Next();
    }
    VARSCOPE_ASSIGN_OR_RETURN(Built built, Build(std::move(snapshot), revision));
    if (options_.max_memory_bytes > 0 &&
        built.total_bytes > options_.max_memory_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "the checkpoint holds ", built.total_bytes,
          " bytes of tensors, above the server's --max_memory_bytes of ",
          options_.max_memory_bytes, "; raise the limit to restore it"));
    }
    absl::flat_hash_map<std::string, std::map<uint64_t, std::string>> collections;
    uint64_t seq = 0;
    for (const auto& [name, entry] : built.vars) {
      ++seq;
      for (const std::string& c : entry->collections) collections[c].emplace(seq, name);
    }
    {
      absl::ReaderMutexLock lock(&mu_);
      for (const auto& [name, entry] : vars_) {
        // A staged part (another shard's creation, not yet published) is
        // dropped by the restore; its owner stages it again if it still
        // has the record.
        if (!entry->ready && (entry->staged_txn == 0 || entry->publishing)) {
          return absl::FailedPreconditionError(absl::StrCat(
              "variable ", name, " is being created; restore again"));
        }
      }
      for (const auto& [name, p] : partitioned_) {
        if (!p->ready) {
          return absl::FailedPreconditionError(absl::StrCat(
              "partitioned variable ", name, " is being created; restore again"));
        }
      }
    }
    if (options.before_swap) {
      VARSCOPE_RETURN_IF_ERROR(options.before_swap(
          revision.has_value() ? *revision : clock_.current()));
    }
    absl::MutexLock lock(&mu_);
    for (const auto& [name, entry] : vars_) {
      if (!entry->ready) {
        entry->settled = true;  // a staged part: its waiters decide again
        continue;
      }
      if (built.vars.count(name) == 0) events.push_back({name, 0, ChangeKind::kDeleted});
    }
    for (const auto& [name, entry] : built.vars) {
      const uint64_t version = entry->cell->version();
      events.push_back({name, version,
                        vars_.count(name) > 0 ? ChangeKind::kUpdated
                                              : ChangeKind::kCreated});
    }
    vars_.swap(built.vars);
    partitioned_.swap(built.partitioned);
    collections_.swap(collections);
    next_collection_seq_ = seq + 1;
    total_bytes_ = built.total_bytes;
    feed_.Enqueue(std::move(events));
  }
  feed_.Deliver();
  return absl::OkStatus();
}

absl::Status VariableStore::Insert(StoreSnapshot snapshot) {
  std::vector<ChangeEvent> events;
  {
    absl::ReaderMutexLock barrier(&barrier_);
    VARSCOPE_ASSIGN_OR_RETURN(Built built, Build(std::move(snapshot), std::nullopt));
    absl::MutexLock lock(&mu_);
    for (auto& [name, entry] : built.vars) {
      if (vars_.count(name) > 0) continue;
      clock_.AdvanceTo(entry->cell->version());
      AddToCollections(name, entry->collections);
      total_bytes_ += entry->num_bytes;
      events.push_back({name, entry->cell->version(), ChangeKind::kCreated});
      vars_.emplace(name, std::move(entry));
    }
    for (auto& [name, p] : built.partitioned) {
      if (partitioned_.count(name) == 0) partitioned_.emplace(name, std::move(p));
    }
    feed_.Enqueue(std::move(events));
  }
  feed_.Deliver();
  return absl::OkStatus();
}

void VariableStore::BumpAllVersions() {
  std::vector<ChangeEvent> events;
  {
    absl::MutexLock barrier(&barrier_);
    std::vector<std::shared_ptr<Entry>> entries;
    {
      absl::ReaderMutexLock lock(&mu_);
      for (const auto& [name, entry] : vars_) {
        if (entry->ready) entries.push_back(entry);
      }
    }
    const uint64_t revision = clock_.Next();
    for (const auto& entry : entries) {
      VariableCell& cell = *entry->cell;
      absl::MutexLock writer(cell.writer_mu());
      absl::MutexLock value(cell.value_mu());
      cell.SetVersion(revision);
      events.push_back({entry->name, revision, ChangeKind::kUpdated});
    }
    feed_.Enqueue(std::move(events));
  }
  feed_.Deliver();
}

size_t VariableStore::num_variables() const {
  absl::ReaderMutexLock lock(&mu_);
  size_t n = 0;
  for (const auto& [name, entry] : vars_) n += entry->ready ? 1 : 0;
  return n;
}

int64_t VariableStore::total_bytes() const {
  absl::ReaderMutexLock lock(&mu_);
  return total_bytes_;
}

// ---------------------------------------------------------------------------
// A cluster: parts on other shards (cluster/spread_parts.h).

void VariableStore::set_placement(std::function<bool(absl::string_view)> owns) {
  owns_ = std::move(owns);
}

absl::StatusOr<VariableStore::PartPlan> VariableStore::PlanOfPart(
    const PartitionedState& whole, int index) const {
  VARSCOPE_RETURN_IF_ERROR(ValidateFullName(whole.name));
  VARSCOPE_RETURN_IF_ERROR(NumBytes(whole.dtype, whole.shape).status());
  if (whole.partitions.size() != whole.shape.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "partitioned variable ", whole.name, ": ", whole.partitions.size(),
        " partition counts for a shape of rank ", whole.shape.size()));
  }
  constexpr int64_t kMaxParts = int64_t{1} << 20;  // a sanity bound
  int64_t parts = 1;
  for (size_t d = 0; d < whole.shape.size(); ++d) {
    const int64_t p = whole.partitions[d];
    if (p < 1 || p > std::max<int64_t>(1, whole.shape[d]) || parts > kMaxParts / p) {
      return absl::InvalidArgumentError(absl::StrCat(
          "partitioned variable ", whole.name, ": bad partition count ", p,
          " for dimension ", d));
    }
    parts *= p;
  }
  if (index < 0 || index >= parts) {
    return absl::InvalidArgumentError(absl::StrCat(
        "partitioned variable ", whole.name, " has no part ", index));
  }
  VARSCOPE_RETURN_IF_ERROR(
      ValidateInitializer(whole.initializer, whole.dtype, whole.shape, whole.name));
  const PartLayout layout = SplitShape(whole.shape, whole.partitions)[index];
  PartPlan plan;
  plan.entry = std::make_shared<Entry>();
  Entry& entry = *plan.entry;
  entry.name = absl::StrCat(whole.name, "/part_", index);
  VARSCOPE_RETURN_IF_ERROR(ValidateFullName(entry.name));
  entry.dtype = whole.dtype;
  entry.shape = layout.shape;
  entry.trainable = whole.trainable;
  entry.collections = whole.collections;
  entry.initializer = whole.initializer;
  entry.slice = PartSlice{whole.name, whole.shape, layout.offset, index};
  VARSCOPE_ASSIGN_OR_RETURN(entry.num_bytes, NumBytes(whole.dtype, layout.shape));
  VARSCOPE_RETURN_IF_ERROR(CheckBytes(entry.num_bytes, options_.max_variable_bytes,
                                      entry.name, whole.dtype, layout.shape));
  plan.context = PartContext{whole.shape, layout.offset, index};
  return plan;
}

namespace {

}  // namespace

// Whether `have` is exactly the part `want` describes (same record).
bool VariableStore::SamePart(const Entry& have, const Entry& want) {
  return have.slice.has_value() && want.slice.has_value() &&
         have.slice->full_name == want.slice->full_name &&
         have.slice->full_shape == want.slice->full_shape &&
         have.slice->offset == want.slice->offset && have.slice->index == want.slice->index &&
         have.dtype == want.dtype && have.shape == want.shape &&
         have.trainable == want.trainable && have.collections == want.collections &&
         have.initializer.kind == want.initializer.kind;
}

namespace {

absl::Status PartTaken(absl::string_view part, absl::string_view whole) {
  return WithReason(
      absl::AlreadyExistsError(absl::StrCat(
          "variable ", part, " already exists, so partitioned variable ", whole,
          " cannot be created")),
      kVariableExists, {{"variable", std::string(part)}});
}

}  // namespace

absl::Status VariableStore::StagePart(const PartitionedState& whole, int index,
                                      uint64_t txn) {
  VARSCOPE_ASSIGN_OR_RETURN(PartPlan plan, PlanOfPart(whole, index));
  const std::shared_ptr<Entry>& entry = plan.entry;
  std::shared_ptr<Entry> replaced;  // freed after the lock (waiters read it)
  {
    absl::MutexLock lock(&mu_);
    if (auto it = vars_.find(entry->name); it != vars_.end()) {
      Entry& have = *it->second;
      const bool of_whole = have.slice.has_value() && have.slice->full_name == whole.name;
      if (!have.ready && have.staged_txn != 0 && SamePart(have, *entry)) {
        return absl::OkStatus();  // staged already
      }
      if (!have.ready && have.staged_txn != 0 && of_whole && !have.publishing) {
        // Staged by an earlier attempt with another shape: only the owner
        // stages parts of this name, and it has moved on.
        have.settled = true;
        total_bytes_ -= have.num_bytes;
        replaced = it->second;
        vars_.erase(it);
      } else if (have.ready && of_whole) {
        // A part of an earlier partitioned variable of this name (its
        // owner only stages names it has no record of): the keeper asks
        // the owner and drops it; the caller retries.
        return WithReason(
            absl::UnavailableError(absl::StrCat(
                "part ", entry->name, " of an earlier ", whole.name,
                " is still held on its shard; it is being removed, retry")),
            kVariableExists, {{"variable", entry->name}});
      } else {
        return PartTaken(entry->name, whole.name);
      }
    }
    if (partitioned_.count(entry->name) > 0) return PartTaken(entry->name, whole.name);
    VARSCOPE_RETURN_IF_ERROR(CheckMemory(entry->num_bytes, entry->name));
    entry->staged_txn = txn;
    entry->staged_at = absl::Now();
    vars_.emplace(entry->name, entry);
    total_bytes_ += entry->num_bytes;
  }
  std::shared_ptr<TensorBuffer> value;
  try {
    // The seed of the partitioned variable's name, as on one server.
    value = RunInitializer(entry->initializer, entry->dtype, entry->shape, &plan.context,
                           NameSeed(whole.name));
  } catch (const std::bad_alloc&) {
    DropPart(entry->name, txn);
    return absl::ResourceExhaustedError(
        absl::StrCat("out of memory while initializing ", entry->name));
  }
  absl::MutexLock lock(&mu_);
  auto it = vars_.find(entry->name);
  if (it == vars_.end() || it->second != entry) {
    return absl::AbortedError(absl::StrCat(entry->name, " was given back while staged"));
  }
  entry->staged_value = std::move(value);
  return absl::OkStatus();
}

absl::Status VariableStore::PublishPart(const PartitionedState& whole, int index,
                                        uint64_t txn) {
  VARSCOPE_ASSIGN_OR_RETURN(PartPlan plan, PlanOfPart(whole, index));
  const std::string& name = plan.entry->name;
  std::shared_ptr<Entry> entry;
  for (int attempt = 0; entry == nullptr; ++attempt) {
    {
      absl::MutexLock lock(&mu_);
      if (auto it = vars_.find(name); it != vars_.end()) {
        Entry& have = *it->second;
        if (have.ready && SamePart(have, *plan.entry)) {
          return absl::OkStatus();  // published already
        }
        // A part staged for this record, also by an earlier attempt (the
        // owner restarted since): only the owner of the record stages it.
        if (have.ready || have.staged_txn == 0 || !SamePart(have, *plan.entry)) {
          return PartTaken(name, whole.name);
        }
        if (have.publishing || have.staged_value == nullptr) {
          return absl::UnavailableError(absl::StrCat(name, " is being staged; retry"));
        }
        have.publishing = true;
        entry = it->second;
        break;
      }
      if (attempt > 0) {
        return absl::AbortedError(absl::StrCat(name, " was given back while staged"));
      }
    }
    // This shard lost the staged part (a restart): stage it again.
    VARSCOPE_RETURN_IF_ERROR(StagePart(whole, index, txn));
  }
  auto unmark = [&] {
    absl::MutexLock lock(&mu_);
    entry->publishing = false;
  };
  if (absl::Status room = MakeRoomForRevisions(); !room.ok()) {
    unmark();
    return room;
  }
  {
    absl::ReaderMutexLock barrier(&barrier_);
    {
      // A restore (barrier held exclusively) may have replaced the store
      // since the part was taken: then it is not this store's any more.
      absl::MutexLock lock(&mu_);
      auto it = vars_.find(name);
      if (it == vars_.end() || it->second != entry) {
        return absl::AbortedError(absl::StrCat(name, " was replaced by a restore; retry"));
      }
    }
    const uint64_t revision = clock_.Next();
    if (log_ != nullptr) {
      CreationRecord record;
      record.revision = revision;
      VariableState state;
      state.info.name = entry->name;
      state.info.dtype = entry->dtype;
      state.info.shape = entry->shape;
      state.info.version = revision;
      state.info.trainable = entry->trainable;
      state.info.collections = entry->collections;
      state.info.initializer = entry->initializer;
      state.info.initializer.value.buffer.reset();  // the value is the data
      state.info.slice = entry->slice;
      state.value = entry->staged_value;
      record.variables.push_back(std::move(state));
      if (absl::Status logged = log_->LogCreation(record); !logged.ok()) {
        unmark();
        return logged;
      }
    }
    absl::MutexLock lock(&mu_);
    entry->cell = std::make_shared<VariableCell>(std::move(entry->staged_value), revision);
    entry->ready = entry->settled = true;
    entry->staged_txn = 0;
    entry->publishing = false;
    AddToCollections(entry->name, entry->collections);
    feed_.Enqueue({{entry->name, revision, ChangeKind::kCreated}});
  }
  feed_.Deliver();
  return absl::OkStatus();
}

void VariableStore::DropPart(absl::string_view name, uint64_t txn) {
  std::shared_ptr<Entry> dropped;  // freed after the lock: waiters read it
  absl::MutexLock lock(&mu_);
  auto it = vars_.find(name);
  if (it == vars_.end()) return;
  Entry& entry = *it->second;
  if (entry.ready || entry.publishing || entry.staged_txn != txn) return;
  entry.settled = true;  // waiters decide again
  total_bytes_ -= entry.num_bytes;
  dropped = it->second;
  vars_.erase(it);
}

std::vector<std::string> VariableStore::DropStagedBefore(absl::Time cutoff) {
  std::vector<std::string> dropped;
  std::vector<std::shared_ptr<Entry>> freed;  // after the lock: waiters read them
  absl::MutexLock lock(&mu_);
  for (auto it = vars_.begin(); it != vars_.end();) {
    Entry& entry = *it->second;
    if (entry.ready || entry.publishing || entry.staged_txn == 0 ||
        entry.staged_at >= cutoff) {
      ++it;
      continue;
    }
    entry.settled = true;
    total_bytes_ -= entry.num_bytes;
    dropped.push_back(it->first);
    freed.push_back(it->second);
    it = vars_.erase(it);
  }
  return dropped;
}

std::vector<VariableStore::ForeignPart> VariableStore::ForeignParts() const {
  std::vector<ForeignPart> out;
  absl::ReaderMutexLock lock(&mu_);
  for (const auto& [name, entry] : vars_) {
    if (entry->ready && entry->slice.has_value() &&
        partitioned_.count(entry->slice->full_name) == 0) {
      out.push_back({name, *entry->slice, entry->cell->version()});
    }
  }
  return out;
}

absl::Status VariableStore::DeleteForeignPart(absl::string_view name, uint64_t version) {
  absl::StatusOr<std::vector<std::string>> removed =
      Delete(name, /*foreign_part=*/true, version);
  return removed.ok() || absl::IsNotFound(removed.status()) ? absl::OkStatus()
                                                            : removed.status();
}

std::vector<std::string> VariableStore::MisplacedParts() const {
  std::vector<std::string> out;
  absl::ReaderMutexLock lock(&mu_);
  for (const auto& [name, entry] : vars_) {
    if (entry->ready && entry->slice.has_value() && !Owns(name)) out.push_back(name);
  }
  return out;
}

std::vector<PartitionedState> VariableStore::SpreadRecords() const {
  std::vector<PartitionedState> out;
  absl::ReaderMutexLock lock(&mu_);
  for (const auto& [name, p] : partitioned_) {
    if (!p->ready) continue;
    for (const std::string& part : p->part_names) {
      if (!Owns(part)) {
        out.push_back(static_cast<const PartitionedState&>(*p));
        break;
      }
    }
  }
  return out;
}

}  // namespace varscope::core
