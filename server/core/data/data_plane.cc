#include "server/core/data/data_plane.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "server/core/base/status_macros.h"
#include "server/core/data/push_internal.h"
#include "server/core/namespace/names.h"

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

}  // namespace

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


int64_t PushTarget::TouchedBytes() const {
  const bool dense_all = action == Action::kAggregateAndApply ||
                         (update.op == UpdateOp::kApplyGradient &&
                          optimizer.kind == OptimizerKind::kAdam &&
                          update.indices.has_value());
  if (dense_all || WholeAssign()) return var.num_bytes;
  return update.indices ? static_cast<int64_t>(update.data.size())
                        : count * DTypeSize(var.dtype);
}

void ComputeUpdate(const PushTarget& t, uint8_t* dst,
                   const std::vector<uint8_t*>& slot_data, int64_t step) {
  const DType dtype = t.var.dtype;
  const int64_t elem = DTypeSize(dtype);
  const Update& u = t.update;
  if (t.action == PushTarget::Action::kAggregateAndApply) {
    // The mean of the replicas' gradients, applied once to the whole tensor.
    ApplyDense(t.optimizer, step, dtype, dst, slot_data, t.mean.data(),
               t.var.num_bytes / elem);
    return;
  }
  const uint8_t* src = reinterpret_cast<const uint8_t*>(u.data.data());
  if (u.op == UpdateOp::kApplyGradient) {
    if (u.indices) {
      std::vector<int64_t> rows;
      std::vector<double> sums;
      SumDuplicates(dtype, *u.indices, src, t.row_elements, &rows, &sums);
      ApplySparse(t.optimizer, step, dtype, dst, slot_data, t.num_rows,
                  t.row_elements, rows, sums);
    } else {
      std::vector<uint8_t*> slots;
      for (uint8_t* s : slot_data) slots.push_back(s + t.begin * elem);
      ApplyDense(t.optimizer, step, dtype, dst + t.begin * elem, slots, src,
                 t.count);
    }
  } else if (u.indices) {
    const int64_t row_bytes = t.row_elements * elem;
    for (size_t r = 0; r < u.indices->size(); ++r) {
      uint8_t* row = dst + (*u.indices)[r] * row_bytes;
      if (u.op == UpdateOp::kAssign) {
        std::memcpy(row, src + r * row_bytes, row_bytes);
      } else {
        AddInto(dtype, row, src + r * row_bytes, t.row_elements,
                u.op == UpdateOp::kSub);
      }
    }
  } else if (u.op == UpdateOp::kAssign) {
    std::memcpy(dst + t.begin * elem, src, t.count * elem);
  } else {
    AddInto(dtype, dst + t.begin * elem, src, t.count, u.op == UpdateOp::kSub);
  }
}

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
  counters_.bytes_read.fetch_add(out.length, std::memory_order_relaxed);
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
  counters_.bytes_read.fetch_add(static_cast<int64_t>(indices.size()) * row_bytes,
                                 std::memory_order_relaxed);
  return out;
}

absl::StatusOr<int64_t> DataPlane::DataBytes(const Update& update) const {
  Update header = update;
  header.data = {};
  header.owned_value.reset();
  VARSCOPE_ASSIGN_OR_RETURN(PushTarget t, Check(std::move(header), false));
  return t.expected_bytes;
}

absl::StatusOr<PushTarget> DataPlane::Check(Update update,
                                            bool check_data) const {
  PushTarget t;
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

}  // namespace varscope::core
