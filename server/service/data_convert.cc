#include "server/service/data_convert.h"

#include "absl/strings/str_cat.h"
#include "server/core/base/status_macros.h"

namespace varscope::service {

absl::StatusOr<core::OptimizerSpec> FromProto(
    const pb::OptimizerConfig& config) {
  core::OptimizerSpec spec;
  switch (config.kind()) {
    case pb::SGD: spec.kind = core::OptimizerKind::kSgd; break;
    case pb::MOMENTUM: spec.kind = core::OptimizerKind::kMomentum; break;
    case pb::ADAGRAD: spec.kind = core::OptimizerKind::kAdagrad; break;
    case pb::ADAM: spec.kind = core::OptimizerKind::kAdam; break;
    case pb::RMSPROP: spec.kind = core::OptimizerKind::kRmsProp; break;
    case pb::FTRL: spec.kind = core::OptimizerKind::kFtrl; break;
    case pb::OPTIMIZER_UNSPECIFIED:
      spec.kind = core::OptimizerKind::kNone;
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unknown optimizer kind ", config.kind()));
  }
  spec.hyperparameters.insert(config.hyperparameters().begin(),
                              config.hyperparameters().end());
  return spec;
}

absl::StatusOr<core::Update> FromProto(const pb::Update& update) {
  core::Update out;
  out.name = update.name();
  switch (update.op()) {
    case pb::ASSIGN: out.op = core::UpdateOp::kAssign; break;
    case pb::ADD: out.op = core::UpdateOp::kAdd; break;
    case pb::SUB: out.op = core::UpdateOp::kSub; break;
    case pb::APPLY_GRADIENT: out.op = core::UpdateOp::kApplyGradient; break;
    case pb::UPDATE_OP_UNSPECIFIED:
      return absl::InvalidArgumentError(absl::StrCat(
          "update of ", update.name(),
          ": set op to ASSIGN, ADD, SUB or APPLY_GRADIENT"));
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "update of ", update.name(), ": unknown op ", update.op()));
  }
  VARSCOPE_ASSIGN_OR_RETURN(
      out.dtype, core::DTypeFromNumber(static_cast<int>(update.dtype())));
  if (out.dtype == core::DType::kInvalid) {
    return absl::InvalidArgumentError(absl::StrCat(
        "update of ", update.name(), ": set dtype to the variable's dtype"));
  }
  if (update.has_rows()) {
    out.rows = core::RowRange{update.rows().start(), update.rows().count()};
  }
  if (update.indices_size() > 0) {
    out.indices.emplace(update.indices().begin(), update.indices().end());
  }
  out.data = update.data();
  if (update.has_expected_version()) {
    out.expected_version = update.expected_version();
  }
  if (update.has_optimizer() &&
      update.optimizer().kind() != pb::OPTIMIZER_UNSPECIFIED) {
    VARSCOPE_ASSIGN_OR_RETURN(out.optimizer, FromProto(update.optimizer()));
  } else if (update.has_optimizer() &&
             !update.optimizer().hyperparameters().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "update of ", update.name(),
        ": optimizer hyperparameters given without optimizer.kind"));
  }
  if (update.has_step()) out.step = update.step();
  return out;
}

core::ReadRequest FromProto(const pb::Selector& selector) {
  core::ReadRequest read;
  read.name = selector.name();
  if (selector.has_rows()) {
    read.rows = core::RowRange{selector.rows().start(), selector.rows().count()};
  }
  read.if_newer_than = selector.if_newer_than();
  return read;
}

void ToProto(const core::UpdateResult& result, pb::UpdateResult* out) {
  out->set_name(result.name);
  out->set_version(result.version);
  out->set_applied(result.applied);
  out->set_stale(result.stale);
  out->set_accumulated(result.accumulated);
  out->set_sync_step(result.sync_step);
  out->set_stale_dropped(result.stale_dropped);
}

void ToProto(const core::TrainingInfo& info, absl::string_view name,
             pb::TrainingState* out) {
  out->set_name(std::string(name));
  out->set_optimizer(info.optimizer);
  for (const std::string& slot : info.slots) out->add_slots(slot);
  out->set_optimizer_steps(info.optimizer_steps);
  out->set_replicas_to_aggregate(info.replicas_to_aggregate);
  out->set_sync_step(info.sync_step);
  out->set_accumulated(info.accumulated);
  out->set_stale_dropped(info.stale_dropped);
}

pb::WatchEvent::Kind ToProto(core::ChangeKind kind) {
  switch (kind) {
    case core::ChangeKind::kCreated: return pb::WatchEvent::CREATED;
    case core::ChangeKind::kUpdated: return pb::WatchEvent::UPDATED;
    case core::ChangeKind::kDeleted: return pb::WatchEvent::DELETED;
  }
  return pb::WatchEvent::KIND_UNSPECIFIED;
}

}  // namespace varscope::service
