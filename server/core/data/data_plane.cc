#include "server/core/data/data_plane.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <new>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "server/core/namespace/names.h"
#include "server/core/storage/state_json.h"
#include "server/core/base/status_macros.h"

namespace varscope::core {
namespace {

absl::string_view OpName(UpdateOp op) {
  switch (op) {
    case UpdateOp::kAssign: return "ASSIGN";
    case UpdateOp::kAdd: return "ADD";
    case UpdateOp::kSub: return "SUB";
    case UpdateOp::kApplyGradient: return "APPLY_GRADIENT";
  }
  return "?";
}

template <typename T>
void AddTyped(uint8_t* dst, const uint8_t* src, int64_t n, bool subtract) {
  T* d = reinterpret_cast<T*>(dst);
  const T* s = reinterpret_cast<const T*>(src);
  if (subtract) {
    for (int64_t i = 0; i < n; ++i) d[i] = static_cast<T>(d[i] - s[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) d[i] = static_cast<T>(d[i] + s[i]);
  }
}

// dst[i] += src[i] (or -=) for n elements of `dtype`. Integers wrap as in
// TensorFlow's kernels; 16-bit floats compute in float32.
void AddInto(DType dtype, uint8_t* dst, const uint8_t* src, int64_t n,
             bool subtract) {
  switch (dtype) {
    case DType::kFloat: return AddTyped<float>(dst, src, n, subtract);
    case DType::kDouble: return AddTyped<double>(dst, src, n, subtract);
    case DType::kInt32: return AddTyped<uint32_t>(dst, src, n, subtract);
    case DType::kInt64: return AddTyped<uint64_t>(dst, src, n, subtract);
    case DType::kInt16: return AddTyped<uint16_t>(dst, src, n, subtract);
    case DType::kInt8:
    case DType::kUInt8: return AddTyped<uint8_t>(dst, src, n, subtract);
    case DType::kHalf:
    case DType::kBFloat16:
      for (int64_t i = 0; i < n; ++i) {
        const double a = LoadElement(dtype, dst, i);
        const double b = LoadElement(dtype, src, i);
        StoreElement(dtype, subtract ? a - b : a + b, dst, i);
      }
      return;
    case DType::kBool:
    case DType::kInvalid:
      return;
  }
}

}  // namespace

// One validated update and the variables it touches.
struct DataPlane::Target {
  Update update;
  VariableHandle var;
  int64_t num_rows = 0;      // axis-0 size (1 for a scalar)
  int64_t row_elements = 0;  // elements per axis-0 row
  int64_t begin = 0;         // dense region, in elements
  int64_t count = 0;
  int64_t expected_bytes = 0;  // of update.data
  uint64_t version_before = 0;  // read under the writer lock
  std::optional<ResolvedOptimizer> call_optimizer;
  // Filled while locked.
  ResolvedOptimizer optimizer;
  std::vector<VariableHandle> slots;
  enum class Action { kWrite, kStale, kAccumulate, kAggregateAndApply };
  Action action = Action::kWrite;
  std::vector<uint8_t*> slot_data;
  UpdateResult result;
};

DataPlane::DataPlane(VariableStore* store) : store_(store) {}

absl::StatusOr<ReadResult> DataPlane::Read(const ReadRequest& request) const {
  VARSCOPE_ASSIGN_OR_RETURN(VariableHandle var, store_->Find(request.name));
  const VariableCell::Snapshot snapshot = var.cell->Read();
  ReadResult out;
  out.name = var.name;
  out.dtype = var.dtype;
  out.shape = var.shape;
  out.version = snapshot.version;
  if (request.if_newer_than > 0 && snapshot.version <= request.if_newer_than) {
    out.unchanged = true;
    return out;
  }
  out.buffer = snapshot.value;
  out.data_shape = var.shape;
  out.length = var.num_bytes;
  if (request.rows.has_value()) {
    const RowRange rows = *request.rows;
    if (var.shape.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "variable ", var.name, " is a scalar; it has no rows to select"));
    }
    const int64_t dim0 = var.shape[0];
    if (rows.start < 0 || rows.count < 0 || rows.start > dim0 ||
        rows.count > dim0 - rows.start) {
      return absl::OutOfRangeError(absl::StrCat(
          "rows [", rows.start, ", ", rows.start + rows.count, ") are outside ",
          var.name, ", which has ", dim0, " rows"));
    }
    const int64_t row_bytes = dim0 == 0 ? 0 : var.num_bytes / dim0;
    out.row_start = rows.start;
    out.offset = rows.start * row_bytes;
    out.length = rows.count * row_bytes;
    out.data_shape[0] = rows.count;
  }
  return out;
}

absl::StatusOr<GatherResult> DataPlane::Gather(
    absl::string_view name, const std::vector<int64_t>& indices) const {
  VARSCOPE_ASSIGN_OR_RETURN(VariableHandle var, store_->Find(name));
  if (var.shape.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "variable ", var.name, " is a scalar; gather needs rank >= 1"));
  }
  const int64_t dim0 = var.shape[0];
  for (int64_t index : indices) {
    if (index < 0 || index >= dim0) {
      return absl::InvalidArgumentError(
          absl::StrCat("index ", index, " is out of range for ", var.name,
                       ", which has ", dim0, " rows"));
    }
  }
  const int64_t row_bytes = var.num_bytes / dim0;
  if (static_cast<int64_t>(indices.size()) >
      store_->options().max_variable_bytes / std::max<int64_t>(row_bytes, 1)) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "gathering ", indices.size(), " rows of ", var.name,
        " exceeds --max_variable_bytes; gather fewer rows per call"));
  }
  const VariableCell::Snapshot snapshot = var.cell->Read();
  GatherResult out;
  out.name = var.name;
  out.dtype = var.dtype;
  out.shape = var.shape;
  out.shape[0] = static_cast<int64_t>(indices.size());
  out.version = snapshot.version;
  std::shared_ptr<TensorBuffer> rows;
  try {
    rows = TensorBuffer::Allocate(indices.size() * row_bytes, store_->buffers());
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("out of memory gathering rows");
  }
  const uint8_t* table = snapshot.value->data();
  for (size_t i = 0; i < indices.size(); ++i) {
    std::memcpy(rows->data() + i * row_bytes, table + indices[i] * row_bytes,
                row_bytes);
  }
  out.buffer = std::move(rows);
  return out;
}

absl::StatusOr<int64_t> DataPlane::DataBytes(const Update& update) const {
  Update header = update;
  header.data = {};
  header.owned_value.reset();
  VARSCOPE_ASSIGN_OR_RETURN(Target t, Prepare(std::move(header), false));
  return t.expected_bytes;
}

absl::StatusOr<DataPlane::Target> DataPlane::Prepare(Update update,
                                                     bool check_data) const {
  Target t;
  VARSCOPE_ASSIGN_OR_RETURN(t.var, store_->Find(update.name));
  const VariableHandle& var = t.var;
  const std::string where =
      absl::StrCat(OpName(update.op), " to ", var.name, " (",
                   DTypeName(var.dtype), " ", ShapeToString(var.shape), ")");
  if (update.dtype != var.dtype) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": data is ", DTypeName(update.dtype),
                     "; send the variable's dtype"));
  }
  if ((update.op == UpdateOp::kAdd || update.op == UpdateOp::kSub) &&
      var.dtype == DType::kBool) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": bool variables support ASSIGN only"));
  }
  if (update.op == UpdateOp::kApplyGradient) {
    VARSCOPE_RETURN_IF_ERROR(CheckOptimizerDType(var.dtype, var.name));
    if (update.optimizer.has_value()) {
      VARSCOPE_ASSIGN_OR_RETURN(t.call_optimizer,
                                ResolveOptimizer(*update.optimizer));
    }
  } else if (update.optimizer.has_value() || update.step.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": optimizer and step apply to APPLY_GRADIENT only"));
  }
  if (update.rows.has_value() && update.indices.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": give a row range or indices, not both"));
  }
  if (update.owned_value) {
    if (update.op != UpdateOp::kAssign || update.rows || update.indices) {
      return absl::InternalError("owned values are for whole assignments");
    }
    update.data = absl::string_view(
        reinterpret_cast<const char*>(update.owned_value->data()),
        update.owned_value->size());
  }
  const int64_t elem = DTypeSize(var.dtype);
  t.num_rows = var.shape.empty() ? 1 : var.shape[0];
  {
    Shape row_shape(var.shape.empty() ? var.shape.begin()
                                      : var.shape.begin() + 1,
                    var.shape.end());
    VARSCOPE_ASSIGN_OR_RETURN(t.row_elements, NumElements(row_shape));
  }
  const int64_t row_bytes = t.row_elements * elem;
  int64_t expected_bytes = var.num_bytes;
  if (update.rows.has_value() || update.indices.has_value()) {
    if (var.shape.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": a scalar has no rows"));
    }
  }
  if (update.rows.has_value()) {
    const RowRange rows = *update.rows;
    if (rows.start < 0 || rows.count < 0 || rows.start > t.num_rows ||
        rows.count > t.num_rows - rows.start) {
      return absl::OutOfRangeError(
          absl::StrCat(where, ": rows [", rows.start, ", ",
                       rows.start + rows.count, ") are outside its ",
                       t.num_rows, " rows"));
    }
    t.begin = rows.start * t.row_elements;
    t.count = rows.count * t.row_elements;
    expected_bytes = rows.count * row_bytes;
  } else if (update.indices.has_value()) {
    for (int64_t index : *update.indices) {
      if (index < 0 || index >= t.num_rows) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": index ", index, " is out of range [0, ",
                         t.num_rows, "); nothing was applied"));
      }
    }
    const int64_t n = static_cast<int64_t>(update.indices->size());
    if (row_bytes > 0 && n > (int64_t{1} << 62) / row_bytes) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": too many rows"));
    }
    expected_bytes = n * row_bytes;
  } else {
    t.count = var.num_bytes / std::max<int64_t>(elem, 1);
  }
  t.expected_bytes = expected_bytes;
  if (check_data && static_cast<int64_t>(update.data.size()) != expected_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": data has ", update.data.size(), " bytes; expected ",
        expected_bytes, " (", expected_bytes / std::max<int64_t>(elem, 1),
        " elements of ", DTypeName(var.dtype), ")"));
  }
  t.result.name = var.name;
  t.update = std::move(update);
  return t;
}

absl::StatusOr<std::vector<VariableHandle>> DataPlane::EnsureSlots(
    const VariableHandle& var, const ResolvedOptimizer& optimizer) {
  // One lookup per slot; on the usual path (slots exist) that is all.
  std::vector<absl::StatusOr<VariableHandle>> found;
  int64_t missing_bytes = 0;
  for (const SlotSpec& slot : optimizer.slots) {
    found.push_back(store_->Find(JoinName(var.name, slot.suffix)));
    if (absl::IsNotFound(found.back().status())) missing_bytes += var.num_bytes;
  }
  // Room for every missing slot first, so that --max_memory_bytes does not
  // leave an optimizer with half its slots.
  if (missing_bytes > 0) {
    VARSCOPE_RETURN_IF_ERROR(store_->CheckRoomFor(
        missing_bytes, absl::StrCat("the optimizer slots of ", var.name)));
  }
  std::vector<VariableHandle> slots;
  for (size_t i = 0; i < optimizer.slots.size(); ++i) {
    const SlotSpec& slot = optimizer.slots[i];
    const std::string name = JoinName(var.name, slot.suffix);
    absl::StatusOr<VariableHandle>& handle = found[i];
    if (absl::IsNotFound(handle.status())) {
      // TensorFlow's slot_creator: same shape and dtype as the primary, not
      // trainable, in the global variables collection.
      GetVariableRequest create;
      create.name = name;
      create.shape = ShapeSpec::Of(var.shape);
      create.dtype = var.dtype;
      InitializerSpec init = InitializerSpec::Of(InitializerSpec::Kind::kConstant);
      init.values = {slot.initial_value};
      create.initializer = init;
      create.trainable = false;
      absl::StatusOr<VariableInfo> created =
          store_->CreateVariable(name, create, ScopeContext{});
      if (!created.ok() && !absl::IsAlreadyExists(created.status())) {
        return created.status();
      }
      handle = store_->Find(name);
    }
    if (!handle.ok()) return handle.status();
    if (handle->dtype != var.dtype || handle->shape != var.shape) {
      return absl::FailedPreconditionError(absl::StrCat(
          "slot variable ", name, " is ", DTypeName(handle->dtype), " ",
          ShapeToString(handle->shape), " but ", var.name, " is ",
          DTypeName(var.dtype), " ", ShapeToString(var.shape),
          "; delete the stale slot"));
    }
    slots.push_back(*std::move(handle));
  }
  return slots;
}

namespace {

// Locks writer mutexes in name order and unlocks them in reverse.
class OrderedLocks {
 public:
  explicit OrderedLocks(std::map<std::string, VariableCell*> cells)
      ABSL_NO_THREAD_SAFETY_ANALYSIS {
    for (auto& [name, cell] : cells) {
      cell->writer_mu()->Lock();
      held_.push_back(cell);
    }
  }
  ~OrderedLocks() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    for (auto it = held_.rbegin(); it != held_.rend(); ++it) {
      (*it)->writer_mu()->Unlock();
    }
  }
  OrderedLocks(const OrderedLocks&) = delete;
  OrderedLocks& operator=(const OrderedLocks&) = delete;

 private:
  std::vector<VariableCell*> held_;
};

// The optimizer stored on a cell, read under its writer lock.
std::optional<ResolvedOptimizer> StoredOptimizer(VariableCell& cell) {
  absl::MutexLock lock(cell.writer_mu());
  return cell.training.optimizer;
}

bool SameSlots(const ResolvedOptimizer& a, const ResolvedOptimizer& b) {
  if (a.slots.size() != b.slots.size()) return false;
  for (size_t i = 0; i < a.slots.size(); ++i) {
    if (a.slots[i].suffix != b.slots[i].suffix) return false;
  }
  return true;
}

// Unique sorted rows and their summed gradient rows (TensorFlow sums the
// duplicate indices of IndexedSlices before a sparse apply).
void SumDuplicates(DType dtype, const std::vector<int64_t>& indices,
                   const uint8_t* grad, int64_t row_elements,
                   std::vector<int64_t>* rows, std::vector<double>* sums) {
  *rows = indices;
  std::sort(rows->begin(), rows->end());
  rows->erase(std::unique(rows->begin(), rows->end()), rows->end());
  absl::flat_hash_map<int64_t, size_t> position;
  for (size_t i = 0; i < rows->size(); ++i) position[(*rows)[i]] = i;
  sums->assign(rows->size() * row_elements, 0.0);
  for (size_t i = 0; i < indices.size(); ++i) {
    double* out = sums->data() + position[indices[i]] * row_elements;
    for (int64_t j = 0; j < row_elements; ++j) {
      out[j] += LoadElement(dtype, grad, i * row_elements + j);
    }
  }
}

}  // namespace

absl::StatusOr<std::vector<UpdateResult>> DataPlane::Push(
    std::vector<Update> updates) {
  std::vector<Target> targets;
  targets.reserve(updates.size());
  for (Update& update : updates) {
    VARSCOPE_ASSIGN_OR_RETURN(Target t, Prepare(std::move(update)));
    targets.push_back(std::move(t));
  }
  // Slots exist before any writer lock is taken (creating them takes the
  // store's lock, which comes after writer locks in the lock order).
  std::map<std::string, VariableCell*> cells;
  for (Target& t : targets) {
    if (!cells.emplace(t.var.name, t.var.cell.get()).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          "variable ", t.var.name,
          " appears twice in one push; merge the updates"));
    }
  }
  for (Target& t : targets) {
    if (t.update.op != UpdateOp::kApplyGradient) continue;
    std::optional<ResolvedOptimizer> opt = t.call_optimizer;
    if (!opt) opt = StoredOptimizer(*t.var.cell);
    if (!opt) {
      return absl::FailedPreconditionError(absl::StrCat(
          "no optimizer for ", t.var.name,
          ": pass one with the gradient or store one with SetOptimizer"));
    }
    t.optimizer = *opt;
    VARSCOPE_ASSIGN_OR_RETURN(t.slots, EnsureSlots(t.var, t.optimizer));
    for (const VariableHandle& slot : t.slots) {
      cells.emplace(slot.name, slot.cell.get());
    }
  }

  std::vector<ChangeEvent> events;
  {
    // Log operations take the journal's barrier before any writer lock.
    Journal::Operation journaled(log_pushes_ ? journal_ : nullptr);
    OrderedLocks locks(cells);
    // Decide everything before changing anything.
    for (Target& t : targets) {
      VariableCell& cell = *t.var.cell;
      cell.writer_mu()->AssertHeld();
      t.version_before = cell.version();
      if (t.update.expected_version.has_value() &&
          t.version_before != *t.update.expected_version) {
        return absl::AbortedError(absl::StrCat(
            "version conflict on ", t.var.name, ": it is at version ",
            cell.version(), ", the push expected ",
            *t.update.expected_version, "; pull and retry"));
      }
      if (t.update.op != UpdateOp::kApplyGradient) continue;
      if (!t.call_optimizer &&
          !(cell.training.optimizer &&
            SameSlots(*cell.training.optimizer, t.optimizer))) {
        return absl::AbortedError(absl::StrCat(
            "the optimizer of ", t.var.name, " changed during the push; retry"));
      }
      if (!t.call_optimizer) t.optimizer = *cell.training.optimizer;
      if (cell.training.replicas_to_aggregate > 0) {
        if (!t.update.step.has_value()) {
          return absl::InvalidArgumentError(absl::StrCat(
              t.var.name, " aggregates ", cell.training.replicas_to_aggregate,
              " replicas per step; send the worker's step with the gradient"));
        }
        if (*t.update.step < cell.training.sync_step) {
          t.action = Target::Action::kStale;
        } else if (cell.training.accumulated_count + 1 < cell.training.replicas_to_aggregate) {
          t.action = Target::Action::kAccumulate;
        } else {
          t.action = Target::Action::kAggregateAndApply;
        }
      }
    }
    // Allocate everything that can fail; nothing has changed yet.
    std::vector<VariableCell*> begun;
    auto abort_all = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      for (VariableCell* c : begun) c->Abort();
    };
    try {
      for (Target& t : targets) {
        VariableCell& cell = *t.var.cell;
        cell.writer_mu()->AssertHeld();
        const bool accumulates = t.action == Target::Action::kAccumulate ||
                                 t.action == Target::Action::kAggregateAndApply;
        if (accumulates && cell.training.accumulated.empty()) {
          cell.training.accumulated.assign(
              t.var.num_bytes / DTypeSize(t.var.dtype), 0.0);
        }
      }
    } catch (const std::bad_alloc&) {
      return absl::ResourceExhaustedError(
          "out of memory allocating the gradient accumulator");
    }
    // Start every write in name order too: an in-place write holds the
    // cell's value lock until Commit, so value locks follow the same order.
    struct PendingWrite {
      const std::string* name;
      VariableCell* cell;
      int64_t touched;
      bool keep_old;
      uint8_t** out;
    };
    std::vector<uint8_t*> data(targets.size(), nullptr);
    std::vector<PendingWrite> writes;
    for (size_t i = 0; i < targets.size(); ++i) {
      Target& t = targets[i];
      if (t.action == Target::Action::kStale ||
          t.action == Target::Action::kAccumulate) {
        continue;
      }
      const bool whole_assign = t.update.op == UpdateOp::kAssign &&
                                !t.update.rows && !t.update.indices;
      if (whole_assign && t.update.owned_value) continue;  // installed below
      const bool dense_all = t.action == Target::Action::kAggregateAndApply ||
                             (t.update.op == UpdateOp::kApplyGradient &&
                              t.optimizer.kind == OptimizerKind::kAdam &&
                              t.update.indices.has_value());
      int64_t touched = t.var.num_bytes;
      if (!dense_all) {
        touched = t.update.indices
                      ? static_cast<int64_t>(t.update.data.size())
                      : t.count * DTypeSize(t.var.dtype);
      }
      writes.push_back(
          {&t.var.name, t.var.cell.get(), touched, !whole_assign, &data[i]});
      t.slot_data.assign(t.slots.size(), nullptr);
      for (size_t k = 0; k < t.slots.size(); ++k) {
        writes.push_back({&t.slots[k].name, t.slots[k].cell.get(), touched,
                          true, &t.slot_data[k]});
      }
    }
    std::sort(writes.begin(), writes.end(),
              [](const PendingWrite& a, const PendingWrite& b) {
                return *a.name < *b.name;
              });
    for (PendingWrite& w : writes) {
      absl::StatusOr<uint8_t*> p = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
        return w.cell->BeginWrite(w.touched, w.keep_old, store_->buffers());
      }();
      if (!p.ok()) {
        abort_all();
        return p.status();
      }
      begun.push_back(w.cell);
      *w.out = *p;
    }

    // Strict durability: the push is on disk before it takes effect.
    if (log_pushes_ && journal_ != nullptr) {
      std::vector<absl::string_view> data;  // points into the updates
      const std::string header = PushRecord(targets, &data);
      absl::Status logged = journal_->Append(header, data);
      if (!logged.ok()) {
        abort_all();
        return logged;
      }
    }

    // Apply. Nothing below can fail.
    for (size_t i = 0; i < targets.size(); ++i) {
      Target& t = targets[i];
      VariableCell& cell = *t.var.cell;
      cell.writer_mu()->AssertHeld();
      TrainingState& train = cell.training;
      const DType dtype = t.var.dtype;
      const int64_t elem = DTypeSize(dtype);
      const uint8_t* src = reinterpret_cast<const uint8_t*>(t.update.data.data());
      switch (t.action) {
        case Target::Action::kStale:
          ++train.stale_dropped;
          t.result.applied = false;
          t.result.stale = true;
          break;
        case Target::Action::kAccumulate:
        case Target::Action::kAggregateAndApply: {
          // Accumulate into the dense sum (rows and indices land in place).
          if (t.update.indices) {
            for (size_t r = 0; r < t.update.indices->size(); ++r) {
              double* out = train.accumulated.data() +
                            (*t.update.indices)[r] * t.row_elements;
              for (int64_t j = 0; j < t.row_elements; ++j) {
                out[j] += LoadElement(dtype, src, r * t.row_elements + j);
              }
            }
          } else {
            for (int64_t j = 0; j < t.count; ++j) {
              train.accumulated[t.begin + j] += LoadElement(dtype, src, j);
            }
          }
          ++train.accumulated_count;
          t.result.applied = false;
          if (t.action == Target::Action::kAccumulate) break;
          // The mean of the replicas' gradients, applied once.
          const int64_t n = static_cast<int64_t>(train.accumulated.size());
          std::vector<uint8_t> mean(n * elem);
          for (int64_t j = 0; j < n; ++j) {
            StoreElement(dtype,
                         train.accumulated[j] / train.replicas_to_aggregate,
                         mean.data(), j);
          }
          ApplyDense(t.optimizer, ++train.optimizer_steps, dtype, data[i],
                     t.slot_data, mean.data(), n);
          train.accumulated.clear();
          train.accumulated.shrink_to_fit();
          train.accumulated_count = 0;
          ++train.sync_step;
          t.result.applied = true;
          break;
        }
        case Target::Action::kWrite: {
          uint8_t* dst = data[i];
          if (t.update.op == UpdateOp::kApplyGradient) {
            if (t.update.indices) {
              std::vector<int64_t> rows;
              std::vector<double> sums;
              SumDuplicates(dtype, *t.update.indices, src, t.row_elements,
                            &rows, &sums);
              ApplySparse(t.optimizer, ++train.optimizer_steps, dtype, dst,
                          t.slot_data, t.num_rows, t.row_elements, rows, sums);
            } else {
              std::vector<uint8_t*> slots;
              for (uint8_t* s : t.slot_data) slots.push_back(s + t.begin * elem);
              ApplyDense(t.optimizer, ++train.optimizer_steps, dtype,
                         dst + t.begin * elem, slots, src, t.count);
            }
          } else if (t.update.indices) {
            const int64_t row_bytes = t.row_elements * elem;
            for (size_t r = 0; r < t.update.indices->size(); ++r) {
              uint8_t* row = dst + (*t.update.indices)[r] * row_bytes;
              if (t.update.op == UpdateOp::kAssign) {
                std::memcpy(row, src + r * row_bytes, row_bytes);
              } else {
                AddInto(dtype, row, src + r * row_bytes, t.row_elements,
                        t.update.op == UpdateOp::kSub);
              }
            }
          } else if (t.update.op == UpdateOp::kAssign) {
            if (!t.update.owned_value) {
              std::memcpy(dst + t.begin * elem, src, t.count * elem);
            }
          } else {
            AddInto(dtype, dst + t.begin * elem, src, t.count,
                    t.update.op == UpdateOp::kSub);
          }
          break;
        }
      }
    }
    // Publish: end every write first (in-place writes still hold value
    // locks), then read the results.
    for (size_t i = 0; i < targets.size(); ++i) {
      Target& t = targets[i];
      VariableCell& cell = *t.var.cell;
      cell.writer_mu()->AssertHeld();
      if (data[i] == nullptr && t.update.owned_value == nullptr) continue;
      const uint64_t version = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
        return t.update.owned_value ? cell.Install(t.update.owned_value)
                                    : cell.Commit();
      }();
      events.push_back({t.var.name, version, ChangeKind::kUpdated});
      for (const VariableHandle& s : t.slots) {
        const uint64_t v = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
          return s.cell->Commit();
        }();
        events.push_back({s.name, v, ChangeKind::kUpdated});
      }
    }
    for (Target& t : targets) {
      VariableCell& cell = *t.var.cell;
      cell.writer_mu()->AssertHeld();
      t.result.version = cell.version();
      t.result.accumulated = cell.training.accumulated_count;
      t.result.sync_step = cell.training.sync_step;
      t.result.stale_dropped = cell.training.stale_dropped;
    }
  }
  store_->feed().Publish(events);
  std::vector<UpdateResult> results;
  results.reserve(targets.size());
  for (Target& t : targets) results.push_back(std::move(t.result));
  return results;
}

std::string DataPlane::PushRecord(const std::vector<Target>& targets,
                                  std::vector<absl::string_view>* data) const {
  nlohmann::json updates = nlohmann::json::array();
  for (const Target& t : targets) {
    const Update& u = t.update;
    nlohmann::json j = {{"name", t.var.name},
                        {"op", static_cast<int>(u.op)},
                        {"dtype", static_cast<int>(u.dtype)},
                        // Not cell.version(): an in-place write holds the
                        // value lock by now.
                        {"version_before", t.version_before},
                        {"data_bytes", u.data.size()},
                        {"index_count", u.indices ? u.indices->size() : 0}};
    if (u.rows) j["rows"] = {u.rows->start, u.rows->count};
    if (u.optimizer) j["optimizer"] = OptimizerToJson(*u.optimizer);
    if (u.step) j["step"] = *u.step;
    if (u.indices) {
      data->emplace_back(reinterpret_cast<const char*>(u.indices->data()),
                         u.indices->size() * sizeof(int64_t));
    }
    data->push_back(u.data);
    updates.push_back(std::move(j));
  }
  return nlohmann::json{{"op", "push"}, {"updates", updates}}.dump();
}

absl::Status DataPlane::SetTraining(const std::vector<std::string>& names,
                                    const TrainingConfig& config) {
  if (config.replicas_to_aggregate < 0) {
    return absl::InvalidArgumentError(
        "replicas_to_aggregate must be >= 0 (0 = asynchronous)");
  }
  std::optional<ResolvedOptimizer> optimizer;
  if (config.optimizer.has_value()) {
    VARSCOPE_ASSIGN_OR_RETURN(optimizer, ResolveOptimizer(*config.optimizer));
  }
  std::vector<VariableHandle> vars;
  for (const std::string& name : names) {
    VARSCOPE_ASSIGN_OR_RETURN(VariableHandle var, store_->Find(name));
    if (optimizer) {
      VARSCOPE_RETURN_IF_ERROR(CheckOptimizerDType(var.dtype, var.name));
    }
    vars.push_back(std::move(var));
  }
  for (const VariableHandle& var : vars) {
    if (optimizer) {
      VARSCOPE_RETURN_IF_ERROR(EnsureSlots(var, *optimizer).status());
    }
    VariableCell& cell = *var.cell;
    Journal::Operation journaled(journal_);  // before the writer lock
    absl::MutexLock lock(cell.writer_mu());
    if (journal_ != nullptr) {
      nlohmann::json record = {{"op", "training"},
                               {"name", var.name},
                               {"replicas", config.replicas_to_aggregate}};
      if (config.optimizer) record["optimizer"] = OptimizerToJson(*config.optimizer);
      VARSCOPE_RETURN_IF_ERROR(journal_->Append(record.dump(), ""));
    }
    if (optimizer) cell.training.optimizer = optimizer;
    if (cell.training.replicas_to_aggregate != config.replicas_to_aggregate) {
      cell.training.replicas_to_aggregate = config.replicas_to_aggregate;
      cell.training.accumulated.clear();
      cell.training.accumulated_count = 0;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<TrainingInfo> DataPlane::DescribeTraining(
    absl::string_view name) const {
  VARSCOPE_ASSIGN_OR_RETURN(VariableHandle var, store_->Find(name));
  VariableCell& cell = *var.cell;
  absl::MutexLock lock(cell.writer_mu());
  TrainingInfo info;
  if (cell.training.optimizer) {
    info.optimizer = std::string(OptimizerName(cell.training.optimizer->kind));
    for (const SlotSpec& slot : cell.training.optimizer->slots) {
      info.slots.push_back(JoinName(var.name, slot.suffix));
    }
  }
  info.optimizer_steps = cell.training.optimizer_steps;
  info.replicas_to_aggregate = cell.training.replicas_to_aggregate;
  info.sync_step = cell.training.sync_step;
  info.accumulated = cell.training.accumulated_count;
  info.stale_dropped = cell.training.stale_dropped;
  return info;
}

}  // namespace varscope::core
