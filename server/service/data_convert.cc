#include "server/service/data_convert.h"

#include "absl/strings/str_cat.h"
#include "server/core/base/status_macros.h"

namespace varscope::service {

absl::StatusOr<core::OptimizerSpec> FromProto(const pb::OptimizerConfig& config) {
  core::OptimizerSpec spec;
  auto& h = spec.hyperparameters;
  // TensorFlow's hyperparameter names; an unset optional keeps its default.
  auto opt = [&h](const char* name, bool has, double value) {
    if (has) h[name] = value;
  };
  switch (config.kind_case()) {
    case pb::OptimizerConfig::kSgd:
      spec.kind = core::OptimizerKind::kSgd;
      h["learning_rate"] = config.sgd().learning_rate();
      break;
    case pb::OptimizerConfig::kMomentum:
      spec.kind = core::OptimizerKind::kMomentum;
      h["learning_rate"] = config.momentum().learning_rate();
      h["momentum"] = config.momentum().momentum();
      h["use_nesterov"] = config.momentum().use_nesterov() ? 1 : 0;
      break;
    case pb::OptimizerConfig::kAdagrad: {
      const pb::Adagrad& a = config.adagrad();
      spec.kind = core::OptimizerKind::kAdagrad;
      h["learning_rate"] = a.learning_rate();
      opt("initial_accumulator_value", a.has_initial_accumulator_value(),
          a.initial_accumulator_value());
      break;
    }
    case pb::OptimizerConfig::kAdam: {
      const pb::Adam& a = config.adam();
      spec.kind = core::OptimizerKind::kAdam;
      opt("learning_rate", a.has_learning_rate(), a.learning_rate());
      opt("beta1", a.has_beta1(), a.beta1());
      opt("beta2", a.has_beta2(), a.beta2());
      opt("epsilon", a.has_epsilon(), a.epsilon());
      break;
    }
    case pb::OptimizerConfig::kRmsprop: {
      const pb::RmsProp& r = config.rmsprop();
      spec.kind = core::OptimizerKind::kRmsProp;
      h["learning_rate"] = r.learning_rate();
      opt("decay", r.has_decay(), r.decay());
      opt("momentum", r.has_momentum(), r.momentum());
      opt("epsilon", r.has_epsilon(), r.epsilon());
      h["centered"] = r.centered() ? 1 : 0;
      break;
    }
    case pb::OptimizerConfig::kFtrl: {
      const pb::Ftrl& f = config.ftrl();
      spec.kind = core::OptimizerKind::kFtrl;
      h["learning_rate"] = f.learning_rate();
      opt("learning_rate_power", f.has_learning_rate_power(), f.learning_rate_power());
      opt("initial_accumulator_value", f.has_initial_accumulator_value(),
          f.initial_accumulator_value());
      opt("l1_regularization_strength", f.has_l1_regularization_strength(),
          f.l1_regularization_strength());
      opt("l2_regularization_strength", f.has_l2_regularization_strength(),
          f.l2_regularization_strength());
      opt("l2_shrinkage_regularization_strength",
          f.has_l2_shrinkage_regularization_strength(),
          f.l2_shrinkage_regularization_strength());
      break;
    }
    case pb::OptimizerConfig::KIND_NOT_SET:
      return absl::InvalidArgumentError(
          "the optimizer message is set but names no optimizer; set one of "
          "sgd, momentum, adagrad, adam, rmsprop, ftrl");
  }
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
  if (update.has_optimizer()) {
    VARSCOPE_ASSIGN_OR_RETURN(out.optimizer, FromProto(update.optimizer()));
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
