#include "server/core/namespace/variable_store.h"

#include <algorithm>
#include <new>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/core/namespace/names.h"
#include "server/core/storage/state_json.h"
#include "server/core/base/status_macros.h"

namespace varscope::core {

// A stored variable. Metadata is constant once inserted; the fields below
// `ready` change under the store's mutex.
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
  bool ready = false;    // published: value set, visible to everyone
  bool settled = false;  // published or abandoned; waiters stop waiting
  // Value and version; set once at publication.
  std::shared_ptr<VariableCell> cell;
};

// A partitioned variable: its description (constant once inserted) plus
// the publication flags.
struct VariableStore::Partitioned : PartitionedState {
  // Guarded by VariableStore::mu_.
  bool ready = false;
  bool settled = false;
};

struct VariableStore::CreationPlan {
  std::vector<std::shared_ptr<Entry>> entries;
  std::shared_ptr<Partitioned> partitioned;  // null for a single variable
  std::vector<PartContext> part_contexts;    // parallel to entries if set
};

struct VariableStore::Decision {
  enum class What { kDone, kWait, kCreate };
  What what = What::kDone;
  absl::StatusOr<VariableInfo> result = absl::UnknownError("undecided");
  const bool* wait_until = nullptr;  // kWait: an entry's `settled` flag
  CreationPlan plan;

  static Decision Done(absl::StatusOr<VariableInfo> result) {
    Decision d;
    d.result = std::move(result);
    return d;
  }
  static Decision Wait(const bool* settled) {
    Decision d;
    d.what = What::kWait;
    d.wait_until = settled;
    return d;
  }
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
  std::vector<std::string> collections = request.collections;
  if (collections.empty()) collections.push_back(kGlobalVariables);
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

absl::Status ShareShapeError(absl::string_view kind, absl::string_view name,
                             const ShapeSpec& requested, const Shape& found) {
  return absl::InvalidArgumentError(absl::StrCat(
      "Trying to ", kind, " ", name, ", but specified shape ",
      ShapeSpecToString(requested), " and found shape ", ShapeToString(found)));
}

absl::Status ShareDTypeError(absl::string_view kind, absl::string_view name,
                             DType requested, DType found) {
  return absl::InvalidArgumentError(absl::StrCat(
      "Trying to ", kind, " ", name, ", but specified dtype ",
      DTypeName(requested), " and found dtype ", DTypeName(found)));
}

absl::Status CheckBytes(int64_t bytes, int64_t limit, absl::string_view name,
                        DType dtype, const Shape& shape) {
  if (bytes > limit) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "variable ", name, " (", DTypeName(dtype), " ", ShapeToString(shape),
        ") needs ", bytes, " bytes; the server's --max_variable_bytes is ",
        limit));
  }
  return absl::OkStatus();
}

std::vector<absl::string_view> ValueViews(
    const std::vector<std::shared_ptr<TensorBuffer>>& values) {
  std::vector<absl::string_view> out;
  for (const auto& v : values) {
    out.emplace_back(reinterpret_cast<const char*>(v->data()), v->size());
  }
  return out;
}

}  // namespace

// The log record of a creation: each entry's description as in a
// checkpoint (version 1), the partitioned variable if any; the initial
// values follow as the record's data, in entry order.
std::string VariableStore::CreationRecord(
    const CreationPlan& plan,
    const std::vector<std::shared_ptr<TensorBuffer>>& values) const {
  nlohmann::json vars = nlohmann::json::array();
  for (size_t i = 0; i < plan.entries.size(); ++i) {
    const Entry& e = *plan.entries[i];
    VariableState state;
    state.info.name = e.name;
    state.info.dtype = e.dtype;
    state.info.shape = e.shape;
    state.info.version = 1;
    state.info.trainable = e.trainable;
    state.info.collections = e.collections;
    state.info.initializer = e.initializer;
    state.info.initializer.value.buffer.reset();  // the value is the data
    state.info.slice = e.slice;
    nlohmann::json j = VariableStateToJson(state);
    j["value_bytes"] = values[i]->size();
    vars.push_back(std::move(j));
  }
  nlohmann::json record = {{"op", "create"}, {"variables", vars}};
  if (plan.partitioned) record["partitioned"] = PartitionedStateToJson(*plan.partitioned);
  return record.dump();
}

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

absl::StatusOr<VariableInfo> VariableStore::GetVariable(
    const ScopeContext& scope, const GetVariableRequest& request) {
  if (request.name.empty()) {
    return absl::InvalidArgumentError("GetVariable needs a variable name");
  }
  const std::string full_name = JoinName(scope.name, request.name);
  VARSCOPE_RETURN_IF_ERROR(ValidateFullName(full_name));
  if (request.check_name) VARSCOPE_RETURN_IF_ERROR(request.check_name(full_name));
  return Run(scope, request, full_name, /*create_only=*/false);
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
    const std::string& full_name, bool create_only) {
  VARSCOPE_RETURN_IF_ERROR(ValidateShapeSpec(request.shape, "requested shape"));
  CreationPlan plan;
  {
    absl::MutexLock lock(&mu_);
    for (;;) {
      Decision decision = Decide(scope, request, full_name, create_only);
      if (decision.what == Decision::What::kDone) return decision.result;
      if (decision.what == Decision::What::kCreate) {
        plan = std::move(decision.plan);
        break;
      }
      // Another caller is creating this name: wait for it, then decide again.
      mu_.Await(absl::Condition(decision.wait_until));
    }
  }
  return Execute(std::move(plan));
}

VariableStore::Decision VariableStore::Decide(const ScopeContext& scope,
                                              const GetVariableRequest& request,
                                              const std::string& full_name,
                                              bool create_only) {
  const std::optional<InitializerSpec>& initializer =
      request.initializer.has_value() ? request.initializer : scope.initializer;
  const bool from_value = initializer.has_value() &&
                          initializer->kind == InitializerSpec::Kind::kValue;
  // TF checks an explicit dtype against a value initializer before any lookup.
  if (request.initializer.has_value() &&
      request.initializer->kind == InitializerSpec::Kind::kValue &&
      request.dtype != DType::kInvalid &&
      request.dtype != request.initializer->value.dtype) {
    return Decision::Done(absl::InvalidArgumentError(absl::StrCat(
        "Initializer type '", DTypeName(request.initializer->value.dtype),
        "' and explicit dtype '", DTypeName(request.dtype), "' don't match")));
  }
  DType explicit_dtype =
      request.dtype != DType::kInvalid ? request.dtype : scope.dtype;
  if (from_value && explicit_dtype == DType::kInvalid) {
    explicit_dtype = initializer->value.dtype;
  }
  const DType create_dtype =
      explicit_dtype != DType::kInvalid ? explicit_dtype : DType::kFloat;
  const std::optional<PartitionerSpec>& partitioner =
      request.partitioner.has_value() ? request.partitioner : scope.partitioner;
  const Reuse reuse = create_only ? Reuse::kInherit : scope.reuse;

  const bool scalar = request.shape.known && request.shape.dims.empty();
  if (partitioner.has_value() && !scalar) {
    return DecidePartitioned(request, full_name, reuse, explicit_dtype,
                             create_dtype, initializer, partitioner);
  }
  if (reuse == Reuse::kReuse && !partitioner.has_value()) {
    auto it = partitioned_.find(full_name);
    if (it != partitioned_.end()) {
      const Partitioned& p = *it->second;
      if (!p.settled) return Decision::Wait(&p.settled);
      if (p.ready) {
        if (!IsCompatible(request.shape, p.shape)) {
          return Decision::Done(ShareShapeError("reuse partitioned variable",
                                                full_name, request.shape,
                                                p.shape));
        }
        if (explicit_dtype != DType::kInvalid && explicit_dtype != p.dtype) {
          return Decision::Done(ShareDTypeError("reuse partitioned variable",
                                                full_name, explicit_dtype,
                                                p.dtype));
        }
        return Decision::Done(InfoOf(p));
      }
    }
  }
  if (vars_.count(full_name + "/part_0") > 0) {
    return Decision::Done(absl::InvalidArgumentError(absl::StrCat(
        "No partitioner was provided, but a partitioned version of the "
        "variable was found: ",
        full_name,
        "/part_0. Perhaps a variable of the same name was already created "
        "with partitioning? Pass the partitioner, or fetch it under REUSE")));
  }
  return DecideSingle(request, full_name, reuse, explicit_dtype, create_dtype,
                      initializer);
}

VariableStore::Decision VariableStore::DecideSingle(
    const GetVariableRequest& request, const std::string& full_name,
    Reuse reuse, DType explicit_dtype, DType create_dtype,
    const std::optional<InitializerSpec>& initializer) {
  const bool from_value = initializer.has_value() &&
                          initializer->kind == InitializerSpec::Kind::kValue;
  if (from_value && request.initializer.has_value() && request.shape.known) {
    return Decision::Done(absl::InvalidArgumentError(absl::StrCat(
        "variable ", full_name,
        ": if initializer is a constant value, do not specify shape (the "
        "value's shape is used)")));
  }
  auto collections = ResolveCollections(request);
  if (!collections.ok()) return Decision::Done(collections.status());

  auto it = vars_.find(full_name);
  if (it != vars_.end()) {
    const Entry& entry = *it->second;
    if (!entry.settled) return Decision::Wait(&entry.settled);
    if (entry.ready) {
      if (reuse == Reuse::kInherit) {
        return Decision::Done(absl::AlreadyExistsError(absl::StrCat(
            "Variable ", full_name,
            " already exists, disallowed; set reuse to REUSE or AUTO_REUSE "
            "on the scope")));
      }
      const ShapeSpec wanted =
          from_value ? ShapeSpec::Of(initializer->value.shape) : request.shape;
      if (!IsCompatible(wanted, entry.shape)) {
        return Decision::Done(
            ShareShapeError("share variable", full_name, wanted, entry.shape));
      }
      if (explicit_dtype != DType::kInvalid && explicit_dtype != entry.dtype) {
        return Decision::Done(ShareDTypeError("share variable", full_name,
                                              explicit_dtype, entry.dtype));
      }
      return Decision::Done(InfoOf(entry));
    }
  }
  if (reuse == Reuse::kReuse) {
    return Decision::Done(absl::NotFoundError(absl::StrCat(
        "Variable ", full_name,
        " does not exist; open the scope with INHERIT or AUTO_REUSE to create "
        "it")));
  }
  if (partitioned_.count(full_name) > 0) {
    return Decision::Done(absl::AlreadyExistsError(absl::StrCat(
        "A partitioned variable named ", full_name,
        " exists; pass its partitioner to fetch it")));
  }

  // Create.
  DType dtype = create_dtype;
  Shape shape;
  if (from_value) {
    dtype = initializer->value.dtype;
    shape = initializer->value.shape;
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
      initializer.has_value() ? *initializer : DefaultInitializer(dtype);
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
  vars_.emplace(full_name, entry);
  total_bytes_ += *bytes;
  Decision decision;
  decision.what = Decision::What::kCreate;
  decision.plan.entries.push_back(std::move(entry));
  return decision;
}

VariableStore::Decision VariableStore::DecidePartitioned(
    const GetVariableRequest& request, const std::string& full_name,
    Reuse reuse, DType explicit_dtype, DType create_dtype,
    const std::optional<InitializerSpec>& initializer,
    const std::optional<PartitionerSpec>& partitioner) {
  if (vars_.count(full_name) > 0) {
    return Decision::Done(absl::InvalidArgumentError(absl::StrCat(
        "A partitioner was provided, but an unpartitioned version of the "
        "variable was found: ",
        full_name,
        ". Perhaps a variable of the same name was already created without "
        "partitioning?")));
  }
  const bool from_value = initializer.has_value() &&
                          initializer->kind == InitializerSpec::Kind::kValue;
  ShapeSpec shape_spec = request.shape;
  if (from_value) {
    if (!IsCompatible(shape_spec, initializer->value.shape)) {
      return Decision::Done(absl::InvalidArgumentError(absl::StrCat(
          "variable ", full_name, ": shape ", ShapeSpecToString(shape_spec),
          " does not match the initial value's shape ",
          ShapeToString(initializer->value.shape))));
    }
    shape_spec = ShapeSpec::Of(initializer->value.shape);
  }
  if (!shape_spec.IsFullyDefined()) {
    return Decision::Done(absl::InvalidArgumentError(absl::StrCat(
        "Shape of a new partitioned variable ", full_name,
        " must be fully defined, but instead was ",
        ShapeSpecToString(shape_spec),
        " (a partitioner needs the full shape, also on reuse)")));
  }
  const Shape shape = shape_spec.dims;
  const DType dtype = from_value ? initializer->value.dtype : create_dtype;
  auto partitions = ComputePartitions(*partitioner, dtype, shape, full_name);
  if (!partitions.ok()) return Decision::Done(partitions.status());
  auto collections = ResolveCollections(request);
  if (!collections.ok()) return Decision::Done(collections.status());

  auto it = partitioned_.find(full_name);
  if (it != partitioned_.end()) {
    const Partitioned& p = *it->second;
    if (!p.settled) return Decision::Wait(&p.settled);
    if (p.ready) {
      if (reuse == Reuse::kInherit) {
        return Decision::Done(absl::AlreadyExistsError(absl::StrCat(
            "Partitioned variable with name ", full_name,
            " already exists, disallowed; set reuse to REUSE or AUTO_REUSE "
            "on the scope")));
      }
      if (!IsCompatible(shape_spec, p.shape)) {
        return Decision::Done(ShareShapeError(
            "reuse partitioned variable", full_name, shape_spec, p.shape));
      }
      if (explicit_dtype != DType::kInvalid && explicit_dtype != p.dtype) {
        return Decision::Done(ShareDTypeError(
            "reuse partitioned variable", full_name, explicit_dtype, p.dtype));
      }
      if (*partitions != p.partitions) {
        return Decision::Done(absl::InvalidArgumentError(absl::StrCat(
            "Trying to reuse partitioned variable ", full_name,
            ", but specified partitions [", absl::StrJoin(*partitions, ", "),
            "] and found partitions [", absl::StrJoin(p.partitions, ", "),
            "]")));
      }
      return Decision::Done(InfoOf(p));
    }
  }
  if (reuse == Reuse::kReuse) {
    return Decision::Done(absl::NotFoundError(absl::StrCat(
        "PartitionedVariable ", full_name,
        " does not exist; open the scope with INHERIT or AUTO_REUSE to create "
        "it")));
  }

  // Create: validate everything before inserting anything.
  const InitializerSpec init =
      initializer.has_value() ? *initializer : DefaultInitializer(dtype);
  if (absl::Status s = ValidateInitializer(init, dtype, shape, full_name);
      !s.ok()) {
    return Decision::Done(s);
  }
  const std::vector<PartLayout> layouts = SplitShape(shape, *partitions);
  CreationPlan plan;
  auto p = std::make_shared<Partitioned>();
  p->name = full_name;
  p->dtype = dtype;
  p->shape = shape;
  p->partitions = *partitions;
  p->trainable = collections->first;
  p->collections = collections->second;
  p->initializer = init;
  int64_t plan_bytes = 0;
  for (size_t i = 0; i < layouts.size(); ++i) {
    const std::string part_name = absl::StrCat(full_name, "/part_", i);
    if (absl::Status s = ValidateVariableName(part_name); !s.ok()) {
      return Decision::Done(s);
    }
    if (vars_.count(part_name) > 0) {
      return Decision::Done(absl::AlreadyExistsError(absl::StrCat(
          "variable ", part_name, " already exists, so partitioned variable ",
          full_name, " cannot be created")));
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
    plan_bytes += *bytes;
    p->part_names.push_back(part_name);
    plan.part_contexts.push_back(
        PartContext{shape, layouts[i].offset, static_cast<int>(i)});
    plan.entries.push_back(std::move(entry));
  }
  if (absl::Status s = CheckMemory(plan_bytes, full_name); !s.ok()) {
    return Decision::Done(s);
  }
  for (const auto& entry : plan.entries) vars_.emplace(entry->name, entry);
  partitioned_.emplace(full_name, p);
  total_bytes_ += plan_bytes;
  plan.partitioned = std::move(p);
  Decision decision;
  decision.what = Decision::What::kCreate;
  decision.plan = std::move(plan);
  return decision;
}

absl::StatusOr<VariableInfo> VariableStore::Execute(CreationPlan plan) {
  // Fill outside the lock: initialization of a large tensor must not stall
  // every other caller of the store.
  std::vector<std::shared_ptr<TensorBuffer>> values;
  bool failed = false;
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
    failed = true;
  }
  absl::Status failure = failed ? absl::ResourceExhaustedError(
                                      "out of memory while initializing the variable")
                                : absl::OkStatus();

  // Log the creation (with its initial values) before anyone can see the
  // variable: once published, pushes to it may be logged after it.
  Journal::Operation journaled(journal_);
  if (failure.ok() && journal_ != nullptr) {
    failure = journal_->Append(CreationRecord(plan, values), ValueViews(values));
  }

  std::vector<ChangeEvent> events;
  absl::ReleasableMutexLock lock(&mu_);
  if (!failure.ok()) {
    // Abandon: remove the pending entries; waiters re-decide.
    for (const auto& entry : plan.entries) {
      entry->settled = true;
      vars_.erase(entry->name);
      total_bytes_ -= entry->num_bytes;
    }
    if (plan.partitioned) {
      plan.partitioned->settled = true;
      partitioned_.erase(plan.partitioned->name);
    }
    return failure;
  }
  for (size_t i = 0; i < plan.entries.size(); ++i) {
    Entry& entry = *plan.entries[i];
    entry.cell = std::make_shared<VariableCell>(std::move(values[i]), 1);
    entry.ready = true;
    events.push_back({entry.name, 1, ChangeKind::kCreated});
    entry.settled = true;
    AddToCollections(entry.name, entry.collections);
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
  lock.Release();
  feed_.Publish(events);
  return info;
}

absl::Status VariableStore::ValidateFullName(absl::string_view full_name) const {
  VARSCOPE_RETURN_IF_ERROR(ValidateVariableName(full_name));
  if (full_name.size() > options_.max_name_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "name '", full_name.substr(0, 64), "...' is ", full_name.size(),
        " bytes; the server's --max_name_bytes is ", options_.max_name_bytes));
  }
  return absl::OkStatus();
}

absl::Status VariableStore::CheckRoomFor(int64_t bytes,
                                         absl::string_view what) const {
  absl::MutexLock lock(&mu_);
  return CheckMemory(bytes, what);
}

absl::Status VariableStore::CheckMemory(int64_t bytes,
                                        absl::string_view name) const {
  const int64_t limit = options_.max_memory_bytes;
  if (limit > 0 && total_bytes_ + bytes > limit) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "creating ", name, " (", bytes, " bytes) would bring tensor storage to ",
        total_bytes_ + bytes, " bytes, above the server's --max_memory_bytes of ",
        limit, "; delete variables or raise the limit"));
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
  for (const std::string& part_name : p.part_names) {
    auto it = vars_.find(part_name);
    if (it == vars_.end()) continue;
    info.parts.push_back(InfoOf(*it->second));
    info.version = std::max(info.version, info.parts.back().version);
  }
  return info;
}

void VariableStore::AddToCollections(
    const std::string& name, const std::vector<std::string>& collections) {
  for (const std::string& c : collections) collections_[c].push_back(name);
}

void VariableStore::RemoveFromCollections(const std::string& name) {
  for (auto& [key, names] : collections_) {
    names.erase(std::remove(names.begin(), names.end(), name), names.end());
  }
}

bool VariableStore::NameInUse(const std::string& full_name) const {
  absl::MutexLock lock(&mu_);
  return vars_.count(full_name) > 0 ||
         vars_.count(full_name + "/part_0") > 0 ||
         partitioned_.count(full_name) > 0;
}

absl::StatusOr<VariableInfo> VariableStore::Describe(
    absl::string_view name) const {
  name = StripTensorSuffix(name);
  absl::MutexLock lock(&mu_);
  if (auto it = partitioned_.find(name);
      it != partitioned_.end() && it->second->ready) {
    return InfoOf(*it->second);
  }
  if (auto it = vars_.find(name); it != vars_.end() && it->second->ready) {
    return InfoOf(*it->second);
  }
  return absl::NotFoundError(
      absl::StrCat("variable ", name, " does not exist"));
}

std::vector<VariableInfo> VariableStore::List(
    const ListOptions& options) const {
  absl::MutexLock lock(&mu_);
  std::vector<VariableInfo> out;
  if (!options.collection.empty()) {
    auto it = collections_.find(options.collection);
    if (it == collections_.end()) return out;
    for (const std::string& name : it->second) {
      if (!IsUnderPrefix(name, options.prefix)) continue;
      auto var = vars_.find(name);
      if (var != vars_.end() && var->second->ready) {
        out.push_back(InfoOf(*var->second));
      }
    }
  } else {
    for (auto it = vars_.lower_bound(options.prefix);
         it != vars_.end() && it->first.compare(0, options.prefix.size(),
                                                options.prefix) == 0;
         ++it) {
      if (it->second->ready && IsUnderPrefix(it->first, options.prefix)) {
        out.push_back(InfoOf(*it->second));
      }
    }
  }
  if (options.include_partitioned) {
    for (const auto& [name, p] : partitioned_) {
      if (p->ready && IsUnderPrefix(name, options.prefix) &&
          (options.collection.empty() ||
           std::find(p->collections.begin(), p->collections.end(),
                     options.collection) != p->collections.end())) {
        out.push_back(InfoOf(*p));
      }
    }
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> VariableStore::Delete(
    absl::string_view name) {
  name = StripTensorSuffix(name);
  absl::StatusOr<std::vector<std::string>> removed;
  {
    Journal::Operation journaled(journal_);
    // Deletes are rare: the store's lock is held across the log write, so
    // nothing can change between the check, the record and the delete.
    absl::MutexLock lock(&mu_);
    VARSCOPE_RETURN_IF_ERROR(CheckDeletable(name));
    if (journal_ != nullptr) {
      VARSCOPE_RETURN_IF_ERROR(journal_->Append(
          nlohmann::json{{"op", "delete"}, {"name", std::string(name)}}.dump(), ""));
    }
    removed = DeleteLocked(name);
  }
  if (removed.ok()) {
    std::vector<ChangeEvent> events;
    for (const std::string& n : *removed) {
      events.push_back({n, 0, ChangeKind::kDeleted});
    }
    feed_.Publish(events);
  }
  return removed;
}

absl::Status VariableStore::CheckDeletable(absl::string_view name) const {
  if (auto it = partitioned_.find(name); it != partitioned_.end()) {
    if (!it->second->ready) {
      return absl::FailedPreconditionError(absl::StrCat(
          "partitioned variable ", name, " is being created; retry"));
    }
    return absl::OkStatus();
  }
  auto it = vars_.find(name);
  if (it == vars_.end()) {
    return absl::NotFoundError(
        absl::StrCat("variable ", name, " does not exist"));
  }
  if (!it->second->ready) {
    return absl::FailedPreconditionError(
        absl::StrCat("variable ", name, " is being created; retry"));
  }
  if (it->second->slice.has_value()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "variable ", name, " is part of partitioned variable ",
        it->second->slice->full_name, "; delete that instead"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> VariableStore::DeleteLocked(
    absl::string_view name) {
  VARSCOPE_RETURN_IF_ERROR(CheckDeletable(name));
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
    return absl::NotFoundError(
        absl::StrCat("variable ", name, " does not exist"));
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

StoreSnapshot VariableStore::Snapshot() const {
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
  // Values and training state outside the store's lock: each cell is read
  // under its own short locks, so writers are never held up for long.
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
      const VariableCell::Snapshot value = cell.Read();
      state.value = value.value;
      state.info.version = value.version;
    }
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

absl::StatusOr<VariableStore::Built> VariableStore::Build(StoreSnapshot snapshot) {
  Built built;
  for (VariableState& v : snapshot.variables) {
    VARSCOPE_RETURN_IF_ERROR(ValidateName(v.info.name, NamePosition::kRoot, "variable"));
    VARSCOPE_ASSIGN_OR_RETURN(int64_t bytes, NumBytes(v.info.dtype, v.info.shape));
    if (v.value == nullptr || static_cast<int64_t>(v.value->size()) != bytes) {
      return absl::DataLossError(absl::StrCat(
          "variable ", v.info.name, ": the value does not match ",
          DTypeName(v.info.dtype), " ", ShapeToString(v.info.shape)));
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
    entry->cell = std::make_shared<VariableCell>(std::move(v.value),
                                                 std::max<uint64_t>(1, v.info.version));
    {
      VariableCell& cell = *entry->cell;
      absl::MutexLock lock(cell.writer_mu());
      if (v.optimizer) {
        absl::StatusOr<ResolvedOptimizer> opt = ResolveOptimizer(*v.optimizer);
        if (!opt.ok()) {
          return absl::DataLossError(absl::StrCat("variable ", v.info.name,
                                                  ": ", opt.status().message()));
        }
        cell.training.optimizer = *std::move(opt);
      }
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
    built.partitioned.emplace(entry->name, std::move(entry));
  }
  return built;
}

absl::Status VariableStore::Restore(StoreSnapshot snapshot) {
  VARSCOPE_ASSIGN_OR_RETURN(Built built, Build(std::move(snapshot)));
  if (options_.max_memory_bytes > 0 &&
      built.total_bytes > options_.max_memory_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the checkpoint holds ", built.total_bytes,
        " bytes of tensors, above the server's --max_memory_bytes of ",
        options_.max_memory_bytes, "; raise the limit to restore it"));
  }
  for (const auto& [name, p] : built.partitioned) {
    for (const std::string& part : p->part_names) {
      if (built.vars.count(part) == 0) {
        return absl::DataLossError(absl::StrCat(
            "partitioned variable ", name, " lacks its part ", part));
      }
    }
  }
  absl::flat_hash_map<std::string, std::vector<std::string>> collections;
  std::vector<ChangeEvent> events;
  for (const auto& [name, entry] : built.vars) {
    for (const std::string& c : entry->collections) collections[c].push_back(name);
    events.push_back({name, entry->cell->version(), ChangeKind::kCreated});
  }
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [name, entry] : vars_) {
      if (!entry->ready) {
        return absl::FailedPreconditionError(absl::StrCat(
            "variable ", name, " is being created; restore again"));
      }
    }
    vars_.swap(built.vars);
    partitioned_.swap(built.partitioned);
    collections_.swap(collections);
    total_bytes_ = built.total_bytes;
  }
  feed_.Publish(events);
  return absl::OkStatus();
}

absl::Status VariableStore::Insert(StoreSnapshot snapshot) {
  VARSCOPE_ASSIGN_OR_RETURN(Built built, Build(std::move(snapshot)));
  std::vector<ChangeEvent> events;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [name, entry] : built.vars) {
      if (vars_.count(name) > 0) continue;
      AddToCollections(name, entry->collections);
      total_bytes_ += entry->num_bytes;
      events.push_back({name, entry->cell->version(), ChangeKind::kCreated});
      vars_.emplace(name, std::move(entry));
    }
    for (auto& [name, p] : built.partitioned) {
      if (partitioned_.count(name) == 0) partitioned_.emplace(name, std::move(p));
    }
  }
  feed_.Publish(events);
  return absl::OkStatus();
}

size_t VariableStore::num_variables() const {
  absl::MutexLock lock(&mu_);
  size_t n = 0;
  for (const auto& [name, entry] : vars_) n += entry->ready ? 1 : 0;
  return n;
}

int64_t VariableStore::total_bytes() const {
  absl::MutexLock lock(&mu_);
  return total_bytes_;
}

}  // namespace varscope::core
