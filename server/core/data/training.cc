// DataPlane::SetTraining: an optimizer and/or a synchronous replica count
// for several variables, with their slot variables, all or none, in the
// same steps as a push: plan, lock, decide (reserve slots), log, apply.
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/core/base/status_macros.h"
#include "server/core/data/data_plane.h"
#include "server/core/data/ordered_locks.h"
#include "server/core/data/push_internal.h"
#include "server/core/namespace/names.h"

namespace varscope::core {

absl::Status DataPlane::SetTraining(const std::vector<std::string>& names,
                                    const TrainingConfig& config) {
  return RunTraining(names, config, std::nullopt);
}

absl::Status DataPlane::ReplayTraining(const std::vector<std::string>& names,
                                       const TrainingConfig& config,
                                       uint64_t revision) {
  return RunTraining(names, config, revision);
}

absl::Status DataPlane::RunTraining(const std::vector<std::string>& names,
                                    const TrainingConfig& config,
                                    std::optional<uint64_t> revision) {
  if (config.replicas_to_aggregate < 0) {
    return absl::InvalidArgumentError(
        "replicas_to_aggregate must be >= 0 (0 = asynchronous)");
  }
  std::optional<ResolvedOptimizer> optimizer;
  if (config.optimizer.has_value()) {
    VARSCOPE_ASSIGN_OR_RETURN(optimizer, ResolveOptimizer(*config.optimizer));
  }
  VARSCOPE_RETURN_IF_ERROR(store_->MakeRoomForRevisions());
  for (int attempt = 0; attempt < 4; ++attempt) {
    // Plan: each variable as a target whose slots are those of `optimizer`.
    PushPlan plan;
    std::vector<std::string> canonical;
    for (const std::string& name : names) {
      PushTarget t;
      VARSCOPE_ASSIGN_OR_RETURN(t.var, store_->Find(name));
      if (!plan.cells.emplace(t.var.name, t.var.cell.get()).second) continue;
      if (optimizer) {
        VARSCOPE_RETURN_IF_ERROR(CheckOptimizerDType(t.var.dtype, t.var.name));
        t.call_optimizer = optimizer;
        VARSCOPE_RETURN_IF_ERROR(PlanSlots(t));
        for (const SlotRef& s : t.slots) {
          if (s.cell != nullptr) plan.cells.emplace(s.name, s.cell.get());
        }
      }
      canonical.push_back(t.var.name);
      plan.targets.push_back(std::move(t));
    }
    {
      absl::ReaderMutexLock barrier(store_->update_barrier());
      OrderedLocks writers(plan.cells, &VariableCell::writer_mu);
      // Decide: the slots planned still stand; reserve the missing ones.
      bool replan = false;
      for (const PushTarget& t : plan.targets) {
        for (const SlotRef& slot : t.slots) {
          absl::StatusOr<VariableHandle> now = store_->Find(slot.name);
          if ((now.ok() ? now->cell.get() : nullptr) != slot.cell.get()) {
            replan = true;
          }
        }
      }
      if (replan) continue;
      for (PushTarget& t : plan.targets) {
        std::vector<std::pair<std::string, double>> missing;
        for (const SlotRef& slot : t.slots) {
          if (slot.cell == nullptr) {
            missing.emplace_back(slot.name, slot.initial_value);
          }
        }
        absl::StatusOr<std::vector<PendingSlot>> reserved =
            store_->ReserveSlots(t.var, missing);
        if (!reserved.ok()) {
          AbandonSlots(plan);
          return reserved.status();
        }
        t.pending = *std::move(reserved);
      }
      const uint64_t r =
          revision.has_value() ? *revision : store_->revisions().Next();
      if (log_ != nullptr) {
        TrainingRecord record{r, canonical, config};
        if (absl::Status logged = log_->LogTraining(record); !logged.ok()) {
          AbandonSlots(plan);
          return logged;
        }
      }
      // Apply.
      for (PushTarget& t : plan.targets) {
        if (!t.pending.empty()) {
          store_->CommitSlots(std::move(t.pending), r);
          t.pending.clear();
        }
        VariableCell& cell = *t.var.cell;
        cell.writer_mu()->AssertHeld();
        if (optimizer) cell.training.optimizer = optimizer;
        if (cell.training.replicas_to_aggregate != config.replicas_to_aggregate) {
          cell.training.replicas_to_aggregate = config.replicas_to_aggregate;
          cell.training.accumulated.clear();
          cell.training.accumulated_count = 0;
        }
      }
    }
    store_->feed().Deliver();
    return absl::OkStatus();
  }
  return absl::AbortedError(
      "the optimizer slots of these variables kept changing; retry");
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
