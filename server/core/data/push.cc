// DataPlane::Push in its named phases (see data_plane.h): plan, lock,
// decide, prepare, log, apply, publish.
#include <algorithm>
#include <cstring>
#include <new>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/core/base/error_info.h"
#include "server/core/base/status_macros.h"
#include "server/core/data/data_plane.h"
#include "server/core/data/ordered_locks.h"
#include "server/core/data/push_internal.h"
#include "server/core/namespace/names.h"

namespace varscope::core {
namespace {

// A push re-plans when a slot appeared or an optimizer changed between
// planning and locking; that settles after a round or two.
constexpr int kMaxPlans = 4;

bool SameSlots(const ResolvedOptimizer& a, const ResolvedOptimizer& b) {
  if (a.slots.size() != b.slots.size()) return false;
  for (size_t i = 0; i < a.slots.size(); ++i) {
    if (a.slots[i].suffix != b.slots[i].suffix) return false;
  }
  return true;
}

// The cells of a target's group (the variable and its existing slots).
std::vector<VariableCell*> GroupCells(const PushTarget& t) {
  std::vector<VariableCell*> cells = {t.var.cell.get()};
  for (const SlotRef& s : t.slots) {
    if (s.cell != nullptr) cells.push_back(s.cell.get());
  }
  return cells;
}

}  // namespace

absl::StatusOr<std::vector<UpdateResult>> DataPlane::Push(
    std::vector<Update> updates) {
  int64_t bytes = 0;
  for (const Update& u : updates) {
    bytes += static_cast<int64_t>(u.owned_value ? u.owned_value->size() : u.data.size());
  }
  absl::StatusOr<std::vector<UpdateResult>> results =
      RunPush(std::move(updates), std::nullopt);
  if (results.ok()) {
    // Counted here, not while applying, so that log replay after a restart
    // does not count old drops again.
    counters_.bytes_pushed.fetch_add(bytes, std::memory_order_relaxed);
    for (const UpdateResult& r : *results) {
      if (r.stale) counters_.stale_dropped.fetch_add(1, std::memory_order_relaxed);
    }
  }
  return results;
}

absl::StatusOr<std::vector<UpdateResult>> DataPlane::ReplayPush(
    std::vector<Update> updates, uint64_t revision) {
  return RunPush(std::move(updates), revision);
}

absl::StatusOr<std::vector<UpdateResult>> DataPlane::RunPush(
    std::vector<Update> updates, std::optional<uint64_t> revision) {
  VARSCOPE_RETURN_IF_ERROR(store_->MakeRoomForRevisions());
  for (int attempt = 0; attempt < kMaxPlans; ++attempt) {
    VARSCOPE_ASSIGN_OR_RETURN(PushPlan plan, PlanPush(updates));
    {
      absl::ReaderMutexLock barrier(store_->update_barrier());
      OrderedLocks writers(plan.cells, &VariableCell::writer_mu);
      bool replan = false;
      absl::Status decided = DecidePush(plan, &replan);
      if (replan) continue;
      VARSCOPE_RETURN_IF_ERROR(decided);
      plan.revision = revision.has_value() ? *revision
                                           : store_->revisions().Next();
      if (absl::Status s = PreparePush(plan); !s.ok()) {
        AbandonSlots(plan);
        return s;
      }
      if (absl::Status s = LogPush(plan); !s.ok()) {
        AbandonSlots(plan);
        return s;
      }
      ApplyPush(plan);
    }
    store_->feed().Deliver();  // no lock held: listeners may call back
    std::vector<UpdateResult> results;
    results.reserve(plan.targets.size());
    for (PushTarget& t : plan.targets) results.push_back(std::move(t.result));
    return results;
  }
  return absl::AbortedError(
      "the optimizer slots of the pushed variables kept changing; retry");
}

// ---- Phase 1: plan (no locks). ----
absl::StatusOr<PushPlan> DataPlane::PlanPush(std::vector<Update> updates) const {
  PushPlan plan;
  plan.targets.reserve(updates.size());
  for (const Update& update : updates) {
    VARSCOPE_ASSIGN_OR_RETURN(PushTarget t, Check(update));
    if (!plan.cells.emplace(t.var.name, t.var.cell.get()).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          "variable ", t.var.name,
          " appears twice in one push; merge the updates"));
    }
    plan.targets.push_back(std::move(t));
  }
  for (PushTarget& t : plan.targets) {
    if (t.update.op != UpdateOp::kApplyGradient) continue;
    VARSCOPE_RETURN_IF_ERROR(PlanSlots(t));
    for (const SlotRef& slot : t.slots) {
      if (slot.cell != nullptr) plan.cells.emplace(slot.name, slot.cell.get());
    }
  }
  return plan;
}

absl::Status DataPlane::PlanSlots(PushTarget& t) const {
  std::optional<ResolvedOptimizer> optimizer = t.call_optimizer;
  if (!optimizer) {
    absl::MutexLock lock(t.var.cell->writer_mu());
    optimizer = t.var.cell->training.optimizer;
  }
  if (!optimizer) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no optimizer for ", t.var.name,
        ": pass one with the gradient or store one with SetOptimizer"));
  }
  t.optimizer = *std::move(optimizer);
  t.slots.clear();
  for (const SlotSpec& spec : t.optimizer.slots) {
    SlotRef slot;
    slot.name = JoinName(t.var.name, spec.suffix);
    slot.initial_value = spec.initial_value;
    absl::StatusOr<VariableHandle> found = store_->Find(slot.name);
    if (found.ok()) {
      if (found->dtype != t.var.dtype || found->shape != t.var.shape) {
        return absl::FailedPreconditionError(absl::StrCat(
            "slot variable ", slot.name, " is ", DTypeName(found->dtype), " ",
            ShapeToString(found->shape), " but ", t.var.name, " is ",
            DTypeName(t.var.dtype), " ", ShapeToString(t.var.shape),
            "; delete the stale slot"));
      }
      slot.cell = found->cell;
    } else if (!absl::IsNotFound(found.status())) {
      return found.status();
    }
    t.slots.push_back(std::move(slot));
  }
  return absl::OkStatus();
}

// ---- Phase 3: decide (barrier shared, writer locks). Nothing changes. ----
absl::Status DataPlane::DecidePush(PushPlan& plan, bool* replan) {
  for (PushTarget& t : plan.targets) {
    VariableCell& cell = *t.var.cell;
    cell.writer_mu()->AssertHeld();
    t.version_before = cell.version();
    if (t.update.expected_version.has_value() &&
        t.version_before != *t.update.expected_version) {
      return WithReason(
          absl::AbortedError(absl::StrCat(
              "version conflict on ", t.var.name, ": it is at version ",
              t.version_before, ", the push expected ",
              *t.update.expected_version, "; pull and retry")),
          kVersionConflict,
          {{"variable", t.var.name},
           {"version", absl::StrCat(t.version_before)},
           {"expected_version", absl::StrCat(*t.update.expected_version)}});
    }
    if (t.update.op != UpdateOp::kApplyGradient) continue;
    // The optimizer and slots planned without locks must still hold.
    if (!t.call_optimizer) {
      if (!cell.training.optimizer.has_value()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "no optimizer for ", t.var.name,
            ": pass one with the gradient or store one with SetOptimizer"));
      }
      if (!SameSlots(*cell.training.optimizer, t.optimizer)) {
        *replan = true;
        return absl::OkStatus();
      }
      t.optimizer = *cell.training.optimizer;
    }
    for (const SlotRef& slot : t.slots) {
      absl::StatusOr<VariableHandle> now = store_->Find(slot.name);
      const VariableCell* now_cell = now.ok() ? now->cell.get() : nullptr;
      if (now_cell != slot.cell.get()) {
        *replan = true;
        return absl::OkStatus();
      }
    }
    cell.writer_mu()->AssertHeld();  // (the analysis forgets across loops)
    const int replicas = cell.training.replicas_to_aggregate;
    if (replicas > 0) {
      if (!t.update.step.has_value()) {
        return absl::InvalidArgumentError(absl::StrCat(
            t.var.name, " aggregates ", replicas,
            " replicas per step; send the worker's step with the gradient"));
      }
      if (*t.update.step < cell.training.sync_step) {
        t.action = PushTarget::Action::kStale;
      } else if (cell.training.accumulated_count + 1 < replicas) {
        t.action = PushTarget::Action::kAccumulate;
      } else {
        t.action = PushTarget::Action::kAggregateAndApply;
      }
    }
  }
  // Reserve the missing slots of every gradient that will be applied, all
  // or none.
  for (PushTarget& t : plan.targets) {
    if (!t.ChangesValue() || t.update.op != UpdateOp::kApplyGradient) continue;
    std::vector<std::pair<std::string, double>> missing;
    for (const SlotRef& slot : t.slots) {
      if (slot.cell == nullptr) missing.emplace_back(slot.name, slot.initial_value);
    }
    absl::StatusOr<std::vector<PendingSlot>> reserved =
        store_->ReserveSlots(t.var, missing);
    if (!reserved.ok()) {
      AbandonSlots(plan);
      return reserved.status();
    }
    t.pending = *std::move(reserved);
    int next = 0;
    for (SlotRef& slot : t.slots) {
      if (slot.cell == nullptr) slot.pending = next++;
    }
  }
  return absl::OkStatus();
}

// ---- Phase 4: prepare. Copy-on-write values are computed into private
// buffers here, with no value lock held; what fails fails before the log.
absl::Status DataPlane::PreparePush(PushPlan& plan) {
  try {
    for (PushTarget& t : plan.targets) {
      VariableCell& cell = *t.var.cell;
      cell.writer_mu()->AssertHeld();
      const bool accumulates = t.action == PushTarget::Action::kAccumulate ||
                               t.action == PushTarget::Action::kAggregateAndApply;
      const int64_t elements = t.var.num_bytes / DTypeSize(t.var.dtype);
      const int64_t step = cell.training.optimizer_steps + 1;
      if (accumulates && cell.training.accumulated.empty()) {
        // An empty accumulator means zeros: sizing it changes nothing.
        cell.training.accumulated.assign(elements, 0.0);
      }
      if (t.action == PushTarget::Action::kAggregateAndApply) {
        // (sum of the others + this gradient) / N, without touching the sum.
        std::vector<double> sum = cell.training.accumulated;
        const int replicas = cell.training.replicas_to_aggregate;
        const uint8_t* src = reinterpret_cast<const uint8_t*>(t.update.data.data());
        if (t.update.indices) {
          for (size_t r = 0; r < t.update.indices->size(); ++r) {
            double* out = sum.data() + (*t.update.indices)[r] * t.row_elements;
            for (int64_t j = 0; j < t.row_elements; ++j) {
              out[j] += LoadElement(t.var.dtype, src, r * t.row_elements + j);
            }
          }
        } else {
          for (int64_t j = 0; j < t.count; ++j) {
            sum[t.begin + j] += LoadElement(t.var.dtype, src, j);
          }
        }
        t.mean.assign(t.var.num_bytes, 0);
        for (int64_t j = 0; j < elements; ++j) {
          StoreElement(t.var.dtype, sum[j] / replicas, t.mean.data(), j);
        }
      }
      if (!t.ChangesValue()) continue;
      // In place only for a small change to buffers nobody reads now; the
      // apply phase checks again under the value locks.
      bool in_place = t.pending.empty() && !t.WholeAssign() &&
                      t.TouchedBytes() <= kMaxInPlaceBytes;
      for (VariableCell* c : GroupCells(t)) {
        if (!in_place) break;
        absl::MutexLock value(c->value_mu());
        in_place = !c->ValueShared();
      }
      t.in_place = in_place;
      if (in_place) continue;
      if (t.WholeAssign() && t.update.owned_value) {
        t.new_value = t.update.owned_value;  // filled by the stream
        continue;
      }
      std::shared_ptr<TensorBuffer> value;
      if (t.WholeAssign()) {
        value = TensorBuffer::Allocate(t.var.num_bytes, store_->buffers());
      } else {
        const std::shared_ptr<const TensorBuffer> old = cell.Read().value;
        value = TensorBuffer::CopyOf(old->data(), old->size(), store_->buffers());
      }
      std::vector<uint8_t*> slot_data;
      t.new_slots.assign(t.slots.size(), nullptr);
      for (size_t k = 0; k < t.slots.size(); ++k) {
        const SlotRef& slot = t.slots[k];
        if (slot.cell == nullptr) {  // reserved: private already
          slot_data.push_back(t.pending[slot.pending].value->data());
          continue;
        }
        const std::shared_ptr<const TensorBuffer> old = slot.cell->Read().value;
        t.new_slots[k] =
            TensorBuffer::CopyOf(old->data(), old->size(), store_->buffers());
        slot_data.push_back(t.new_slots[k]->data());
      }
      ComputeUpdate(t, value->data(), slot_data, step);
      t.new_value = std::move(value);
    }
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(
        "out of memory preparing the push; nothing was applied");
  }
  return absl::OkStatus();
}

// ---- Phase 5: log (strict durability). ----
absl::Status DataPlane::LogPush(const PushPlan& plan) {
  if (!log_pushes_ || log_ == nullptr) return absl::OkStatus();
  PushRecord record;
  record.revision = plan.revision;
  for (const PushTarget& t : plan.targets) {
    record.updates.push_back({&t.update, t.var.name, t.version_before});
  }
  return log_->LogPush(record);
}

// ---- Phase 6: apply. Nothing below can fail. ----
void DataPlane::ApplyPush(PushPlan& plan) {
  std::vector<ChangeEvent> events;
  // Training state that does not touch values.
  for (PushTarget& t : plan.targets) {
    VariableCell& cell = *t.var.cell;
    cell.writer_mu()->AssertHeld();
    TrainingState& train = cell.training;
    if (t.action == PushTarget::Action::kStale) {
      ++train.stale_dropped;
      t.result.applied = false;
      t.result.stale = true;
    } else if (t.action == PushTarget::Action::kAccumulate) {
      const uint8_t* src = reinterpret_cast<const uint8_t*>(t.update.data.data());
      if (t.update.indices) {
        for (size_t r = 0; r < t.update.indices->size(); ++r) {
          double* out = train.accumulated.data() +
                        (*t.update.indices)[r] * t.row_elements;
          for (int64_t j = 0; j < t.row_elements; ++j) {
            out[j] += LoadElement(t.var.dtype, src, r * t.row_elements + j);
          }
        }
      } else {
        for (int64_t j = 0; j < t.count; ++j) {
          train.accumulated[t.begin + j] += LoadElement(t.var.dtype, src, j);
        }
      }
      ++train.accumulated_count;
      t.result.applied = false;
    }
  }
  // New slots become visible (store lock, level 5) before any value lock.
  for (PushTarget& t : plan.targets) {
    if (t.pending.empty()) continue;
    store_->CommitSlots(std::move(t.pending), plan.revision);
    t.pending.clear();
  }
  // Values: every changed cell's value lock, in name order.
  std::map<std::string, VariableCell*> changed;
  for (const PushTarget& t : plan.targets) {
    if (!t.ChangesValue()) continue;
    changed.emplace(t.var.name, t.var.cell.get());
    for (const SlotRef& s : t.slots) {
      if (s.cell != nullptr) changed.emplace(s.name, s.cell.get());
    }
  }
  std::vector<std::shared_ptr<const TensorBuffer>> replaced;  // freed unlocked
  for (;;) {
    OrderedLocks values(changed, &VariableCell::value_mu);
    // A reader may have taken a buffer planned for an in-place change
    // since the prepare phase: that target copies after all.
    bool shared = false;
    for (PushTarget& t : plan.targets) {
      if (!t.ChangesValue() || !t.in_place) continue;
      for (VariableCell* c : GroupCells(t)) {
        c->value_mu()->AssertHeld();
        if (c->ValueShared()) t.in_place = false;
      }
      if (!t.in_place) shared = true;
    }
    if (shared) {
      values.Release();
      for (PushTarget& t : plan.targets) {
        if (!t.ChangesValue() || t.in_place || t.new_value != nullptr) continue;
        // Copy outside the locks. Out of memory here (after the log) waits
        // for the readers to let go and tries again, in place or copying.
        PushPlan one;
        one.targets.push_back(std::move(t));
        while (!PreparePush(one).ok()) absl::SleepFor(absl::Milliseconds(1));
        t = std::move(one.targets.front());
      }
      continue;
    }
    for (PushTarget& t : plan.targets) {
      if (!t.ChangesValue()) continue;
      VariableCell& cell = *t.var.cell;
      cell.writer_mu()->AssertHeld();
      cell.value_mu()->AssertHeld();
      if (t.in_place) {
        std::vector<uint8_t*> slot_data;
        for (const SlotRef& s : t.slots) {
          s.cell->writer_mu()->AssertHeld();
          s.cell->value_mu()->AssertHeld();
          slot_data.push_back(s.cell->MutableValue());
        }
        cell.writer_mu()->AssertHeld();
        cell.value_mu()->AssertHeld();
        ComputeUpdate(t, cell.MutableValue(), slot_data,
                      cell.training.optimizer_steps + 1);
      } else {
        replaced.push_back(cell.Swap(std::move(t.new_value)));
        for (size_t k = 0; k < t.slots.size(); ++k) {
          const SlotRef& s = t.slots[k];
          if (s.cell == nullptr) continue;
          s.cell->writer_mu()->AssertHeld();
          s.cell->value_mu()->AssertHeld();
          replaced.push_back(s.cell->Swap(std::move(t.new_slots[k])));
        }
      }
      cell.SetVersion(plan.revision);
      events.push_back({t.var.name, plan.revision, ChangeKind::kUpdated});
      for (const SlotRef& s : t.slots) {
        if (s.cell == nullptr) continue;
        s.cell->writer_mu()->AssertHeld();
        s.cell->value_mu()->AssertHeld();
        s.cell->SetVersion(plan.revision);
        events.push_back({s.name, plan.revision, ChangeKind::kUpdated});
      }
    }
    break;
  }
  replaced.clear();
  // Queued while the writer locks still order this variable's changes.
  store_->feed().Enqueue(std::move(events));
  // Training state that follows a value change, and the results.
  for (PushTarget& t : plan.targets) {
    VariableCell& cell = *t.var.cell;
    cell.writer_mu()->AssertHeld();
    TrainingState& train = cell.training;
    if (t.ChangesValue() && t.update.op == UpdateOp::kApplyGradient) {
      ++train.optimizer_steps;
    }
    if (t.action == PushTarget::Action::kAggregateAndApply) {
      train.accumulated.clear();
      train.accumulated.shrink_to_fit();
      train.accumulated_count = 0;
      ++train.sync_step;
      t.result.applied = true;
    }
    t.result.version = t.ChangesValue() ? plan.revision : t.version_before;
    t.result.accumulated = train.accumulated_count;
    t.result.sync_step = train.sync_step;
    t.result.stale_dropped = train.stale_dropped;
  }
}

void DataPlane::AbandonSlots(PushPlan& plan) {
  for (PushTarget& t : plan.targets) {
    if (t.pending.empty()) continue;
    store_->AbandonSlots(t.pending);
    t.pending.clear();
  }
}

}  // namespace varscope::core
