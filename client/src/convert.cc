#include "convert.h"

namespace varscope::internal {

v1::DataType ToProto(DataType dtype) {
  return static_cast<v1::DataType>(static_cast<int>(dtype));  // TF numbers both
}

DataType FromProto(v1::DataType dtype) {
  return static_cast<DataType>(static_cast<int>(dtype));
}

v1::Reuse ToProto(Reuse reuse) {
  switch (reuse) {
    case Reuse::kReuse: return v1::REUSE;
    case Reuse::kAutoReuse: return v1::AUTO_REUSE;
    case Reuse::kInherit: break;
  }
  return v1::REUSE_UNSPECIFIED;
}

Reuse FromProto(v1::Reuse reuse) {
  switch (reuse) {
    case v1::REUSE: return Reuse::kReuse;
    case v1::AUTO_REUSE: return Reuse::kAutoReuse;
    default: return Reuse::kInherit;
  }
}

void ToProto(const Tensor& tensor, v1::TensorValue* out) {
  out->set_dtype(ToProto(tensor.dtype));
  out->mutable_shape()->Assign(tensor.shape.begin(), tensor.shape.end());
  out->set_data(tensor.data);
}

void ToProto(const Initializer& init, v1::Initializer* out) {
  using K = Initializer::Kind;
  switch (init.kind) {
    case K::kZeros: out->mutable_zeros(); break;
    case K::kOnes: out->mutable_ones(); break;
    case K::kConstant:
      out->mutable_constant()->mutable_values()->Assign(init.values.begin(),
                                                        init.values.end());
      out->mutable_constant()->set_verify_shape(init.verify_shape);
      break;
    case K::kRandomUniform:
      out->mutable_random_uniform()->set_minval(init.minval);
      if (init.maxval) out->mutable_random_uniform()->set_maxval(*init.maxval);
      out->mutable_random_uniform()->set_seed(init.seed);
      break;
    case K::kRandomNormal:
      out->mutable_random_normal()->set_mean(init.mean);
      out->mutable_random_normal()->set_stddev(init.stddev);
      out->mutable_random_normal()->set_seed(init.seed);
      break;
    case K::kTruncatedNormal:
      out->mutable_truncated_normal()->set_mean(init.mean);
      out->mutable_truncated_normal()->set_stddev(init.stddev);
      out->mutable_truncated_normal()->set_seed(init.seed);
      break;
    case K::kUniformUnitScaling:
      out->mutable_uniform_unit_scaling()->set_factor(init.scale);
      out->mutable_uniform_unit_scaling()->set_seed(init.seed);
      break;
    case K::kVarianceScaling: {
      v1::VarianceScaling* vs = out->mutable_variance_scaling();
      vs->set_scale(init.scale);
      vs->set_mode(init.mode == Initializer::Mode::kFanIn    ? v1::VarianceScaling::FAN_IN
                   : init.mode == Initializer::Mode::kFanOut ? v1::VarianceScaling::FAN_OUT
                                                             : v1::VarianceScaling::FAN_AVG);
      vs->set_distribution(
          init.distribution == Initializer::Distribution::kTruncatedNormal
              ? v1::VarianceScaling::TRUNCATED_NORMAL
          : init.distribution == Initializer::Distribution::kUntruncatedNormal
              ? v1::VarianceScaling::UNTRUNCATED_NORMAL
              : v1::VarianceScaling::UNIFORM);
      vs->set_seed(init.seed);
      break;
    }
    case K::kGlorotUniform: out->mutable_glorot_uniform()->set_seed(init.seed); break;
    case K::kGlorotNormal: out->mutable_glorot_normal()->set_seed(init.seed); break;
    case K::kLecunUniform: out->mutable_lecun_uniform()->set_seed(init.seed); break;
    case K::kLecunNormal: out->mutable_lecun_normal()->set_seed(init.seed); break;
    case K::kHeUniform: out->mutable_he_uniform()->set_seed(init.seed); break;
    case K::kHeNormal: out->mutable_he_normal()->set_seed(init.seed); break;
    case K::kOrthogonal:
      out->mutable_orthogonal()->set_gain(init.scale);
      out->mutable_orthogonal()->set_seed(init.seed);
      break;
    case K::kIdentity: out->mutable_identity()->set_gain(init.scale); break;
    case K::kValue: ToProto(init.value, out->mutable_value()); break;
  }
}

Initializer FromProto(const v1::Initializer& init) {
  using I = Initializer;
  switch (init.kind_case()) {
    case v1::Initializer::kOnes: return I::Ones();
    case v1::Initializer::kConstant:
      return I::Constant({init.constant().values().begin(), init.constant().values().end()},
                         init.constant().verify_shape());
    case v1::Initializer::kRandomUniform: {
      const auto& r = init.random_uniform();
      return I::RandomUniform(r.minval(),
                              r.has_maxval() ? std::optional<double>(r.maxval())
                                             : std::nullopt,
                              r.seed());
    }
    case v1::Initializer::kRandomNormal:
      return I::RandomNormal(init.random_normal().mean(),
                             init.random_normal().has_stddev() ? init.random_normal().stddev() : 1,
                             init.random_normal().seed());
    case v1::Initializer::kTruncatedNormal:
      return I::TruncatedNormal(
          init.truncated_normal().mean(),
          init.truncated_normal().has_stddev() ? init.truncated_normal().stddev() : 1,
          init.truncated_normal().seed());
    case v1::Initializer::kUniformUnitScaling:
      return I::UniformUnitScaling(init.uniform_unit_scaling().has_factor()
                                       ? init.uniform_unit_scaling().factor()
                                       : 1,
                                   init.uniform_unit_scaling().seed());
    case v1::Initializer::kVarianceScaling: {
      const auto& vs = init.variance_scaling();
      const I::Mode mode = vs.mode() == v1::VarianceScaling::FAN_OUT   ? I::Mode::kFanOut
                           : vs.mode() == v1::VarianceScaling::FAN_AVG ? I::Mode::kFanAvg
                                                                       : I::Mode::kFanIn;
      const I::Distribution d =
          vs.distribution() == v1::VarianceScaling::UNTRUNCATED_NORMAL
              ? I::Distribution::kUntruncatedNormal
          : vs.distribution() == v1::VarianceScaling::UNIFORM
              ? I::Distribution::kUniform
              : I::Distribution::kTruncatedNormal;
      return I::VarianceScaling(vs.has_scale() ? vs.scale() : 1, mode, d, vs.seed());
    }
    case v1::Initializer::kGlorotUniform: return I::GlorotUniform(init.glorot_uniform().seed());
    case v1::Initializer::kGlorotNormal: return I::GlorotNormal(init.glorot_normal().seed());
    case v1::Initializer::kLecunUniform: return I::LecunUniform(init.lecun_uniform().seed());
    case v1::Initializer::kLecunNormal: return I::LecunNormal(init.lecun_normal().seed());
    case v1::Initializer::kHeUniform: return I::HeUniform(init.he_uniform().seed());
    case v1::Initializer::kHeNormal: return I::HeNormal(init.he_normal().seed());
    case v1::Initializer::kOrthogonal:
      return I::Orthogonal(init.orthogonal().has_gain() ? init.orthogonal().gain() : 1,
                           init.orthogonal().seed());
    case v1::Initializer::kIdentity:
      return I::Identity(init.identity().has_gain() ? init.identity().gain() : 1);
    case v1::Initializer::kValue: {
      Tensor t;
      t.dtype = FromProto(init.value().dtype());
      t.shape.assign(init.value().shape().begin(), init.value().shape().end());
      t.data = init.value().data();
      return I::FromValue(std::move(t));
    }
    case v1::Initializer::kZeros:
    case v1::Initializer::KIND_NOT_SET:
      break;
  }
  return I::Zeros();
}

void ToProto(const Partitioner& p, v1::Partitioner* out) {
  switch (p.kind) {
    case Partitioner::Kind::kFixedSize:
      out->mutable_fixed_size()->set_num_shards(static_cast<int32_t>(p.num_shards));
      out->mutable_fixed_size()->set_axis(p.axis);
      break;
    case Partitioner::Kind::kMinMax:
      if (p.max_partitions) {
        out->mutable_min_max()->set_max_partitions(static_cast<int32_t>(*p.max_partitions));
      }
      out->mutable_min_max()->set_axis(p.axis);
      if (p.min_slice_size) out->mutable_min_max()->set_min_slice_size(*p.min_slice_size);
      break;
    case Partitioner::Kind::kVariableAxisSize:
      out->mutable_variable_axis_size()->set_max_shard_bytes(p.max_shard_bytes);
      out->mutable_variable_axis_size()->set_axis(p.axis);
      if (p.max_shards) {
        out->mutable_variable_axis_size()->set_max_shards(static_cast<int32_t>(*p.max_shards));
      }
      break;
    case Partitioner::Kind::kExplicit:
      for (int64_t n : p.partitions) {
        out->mutable_explicit_partitions()->add_partitions(static_cast<int32_t>(n));
      }
      break;
  }
}

Partitioner FromProto(const v1::Partitioner& p) {
  switch (p.kind_case()) {
    case v1::Partitioner::kMinMax: {
      Partitioner out = Partitioner::MinMax(p.min_max().max_partitions(), p.min_max().axis(),
                                            p.min_max().min_slice_size());
      return out;
    }
    case v1::Partitioner::kVariableAxisSize:
      return Partitioner::VariableAxisSize(
          p.variable_axis_size().max_shard_bytes(), p.variable_axis_size().axis(),
          p.variable_axis_size().has_max_shards()
              ? std::optional<int64_t>(p.variable_axis_size().max_shards())
              : std::nullopt);
    case v1::Partitioner::kExplicitPartitions:
      return Partitioner::Explicit({p.explicit_partitions().partitions().begin(),
                                    p.explicit_partitions().partitions().end()});
    case v1::Partitioner::kFixedSize:
    case v1::Partitioner::KIND_NOT_SET:
      break;
  }
  return Partitioner::FixedSize(p.fixed_size().num_shards(), p.fixed_size().axis());
}

void ToProto(const OptimizerConfig& c, v1::OptimizerConfig* out) {
  const double lr = c.learning_rate.value_or(0);
  switch (c.kind) {
    case OptimizerConfig::Kind::kSgd:
      out->mutable_sgd()->set_learning_rate(lr);
      break;
    case OptimizerConfig::Kind::kMomentum:
      out->mutable_momentum()->set_learning_rate(lr);
      out->mutable_momentum()->set_momentum(c.momentum);
      out->mutable_momentum()->set_use_nesterov(c.use_nesterov);
      break;
    case OptimizerConfig::Kind::kAdagrad:
      out->mutable_adagrad()->set_learning_rate(lr);
      if (c.initial_accumulator_value) {
        out->mutable_adagrad()->set_initial_accumulator_value(*c.initial_accumulator_value);
      }
      break;
    case OptimizerConfig::Kind::kAdam: {
      v1::Adam* a = out->mutable_adam();
      if (c.learning_rate) a->set_learning_rate(*c.learning_rate);
      if (c.beta1) a->set_beta1(*c.beta1);
      if (c.beta2) a->set_beta2(*c.beta2);
      if (c.epsilon) a->set_epsilon(*c.epsilon);
      break;
    }
    case OptimizerConfig::Kind::kRmsProp: {
      v1::RmsProp* r = out->mutable_rmsprop();
      r->set_learning_rate(lr);
      if (c.decay) r->set_decay(*c.decay);
      if (c.momentum != 0) r->set_momentum(c.momentum);
      if (c.epsilon) r->set_epsilon(*c.epsilon);
      r->set_centered(c.centered);
      break;
    }
    case OptimizerConfig::Kind::kFtrl: {
      v1::Ftrl* f = out->mutable_ftrl();
      f->set_learning_rate(lr);
      if (c.learning_rate_power) f->set_learning_rate_power(*c.learning_rate_power);
      if (c.initial_accumulator_value) {
        f->set_initial_accumulator_value(*c.initial_accumulator_value);
      }
      if (c.l1) f->set_l1_regularization_strength(*c.l1);
      if (c.l2) f->set_l2_regularization_strength(*c.l2);
      if (c.l2_shrinkage) f->set_l2_shrinkage_regularization_strength(*c.l2_shrinkage);
      break;
    }
  }
}

void ToProto(const OpenScopeArgs& a, v1::OpenScopeRequest* out) {
  out->set_session_id(a.session);
  out->set_parent_scope_id(a.parent);
  if (!a.name.empty()) {
    out->set_name(a.name);
  } else if (a.reenter.has_value()) {
    out->set_reenter_scope_id(*a.reenter);
  }
  out->set_default_name(a.default_name);
  out->set_kind(a.name_scope_only ? v1::NAME_SCOPE : v1::VARIABLE_SCOPE);
  out->set_reuse(ToProto(a.reuse));
  if (a.initializer) ToProto(*a.initializer, out->mutable_initializer());
  out->set_dtype(ToProto(a.dtype));
  if (a.partitioner) ToProto(*a.partitioner, out->mutable_partitioner());
  if (!a.auxiliary_name_scope) out->set_auxiliary_name_scope(false);
}

void ToProto(const GetVariableArgs& a, v1::GetVariableRequest* out) {
  out->set_session_id(a.session);
  out->set_scope_id(a.scope);
  out->set_scope(a.scope_path);
  out->set_reuse(ToProto(a.reuse));
  out->set_name(a.name);
  if (a.shape) out->mutable_shape()->mutable_dims()->Assign(a.shape->begin(), a.shape->end());
  out->set_dtype(ToProto(a.dtype));
  if (a.initializer) ToProto(*a.initializer, out->mutable_initializer());
  if (a.trainable) out->set_trainable(*a.trainable);
  if (a.collections) {
    for (const std::string& c : *a.collections) out->mutable_collections()->add_names(c);
    out->mutable_collections();  // set, also when empty: "no collections"
  }
  if (a.partitioner) ToProto(*a.partitioner, out->mutable_partitioner());
  out->set_local(a.local);
  out->set_wait_ms(absl::ToInt64Milliseconds(a.wait));
}

void ToProto(const NewVariableArgs& a, v1::NewVariableRequest* out) {
  out->set_session_id(a.session);
  out->set_scope_id(a.scope);
  out->set_name(a.name);
  if (a.value) ToProto(*a.value, out->mutable_value());
  if (a.initializer) {
    ToProto(*a.initializer, out->mutable_initializer());
    out->mutable_shape()->mutable_dims()->Assign(a.shape.begin(), a.shape.end());
    out->set_dtype(ToProto(a.dtype));
  }
  if (a.trainable) out->set_trainable(*a.trainable);
  if (a.collections) {
    for (const std::string& c : *a.collections) out->mutable_collections()->add_names(c);
    out->mutable_collections();
  }
}

void ToProto(const PushItem& item, v1::Update* out) {
  out->set_name(item.name);
  out->set_op(static_cast<v1::UpdateOp>(static_cast<int>(item.op)));
  out->set_dtype(ToProto(item.dtype));
  if (item.rows) {
    out->mutable_rows()->set_start(item.rows->start);
    out->mutable_rows()->set_count(item.rows->count);
  }
  out->mutable_indices()->Assign(item.indices.begin(), item.indices.end());
  if (item.expected_version) out->set_expected_version(*item.expected_version);
  if (item.optimizer) ToProto(*item.optimizer, out->mutable_optimizer());
  if (item.step) out->set_step(*item.step);
}

VariableInfo FromProto(const v1::Variable& v) {
  VariableInfo out;
  out.name = v.name();
  out.tensor_name = v.tensor_name();
  out.dtype = FromProto(v.dtype());
  out.shape.assign(v.shape().begin(), v.shape().end());
  out.version = v.version();
  out.trainable = v.trainable();
  out.collections.assign(v.collections().begin(), v.collections().end());
  if (v.has_slice()) {
    PartSlice s;
    s.full_name = v.slice().full_name();
    s.full_shape.assign(v.slice().full_shape().begin(), v.slice().full_shape().end());
    s.offset.assign(v.slice().offset().begin(), v.slice().offset().end());
    s.index = v.slice().part_index();
    out.slice = std::move(s);
  }
  out.partitioned = v.partitioned();
  for (const v1::Variable& part : v.parts()) out.parts.push_back(FromProto(part));
  out.partitions.assign(v.partitions().begin(), v.partitions().end());
  out.num_bytes = v.num_bytes();
  return out;
}

ScopeInfo FromProto(const v1::Scope& s) {
  ScopeInfo out;
  out.id = s.scope_id();
  out.parent = s.parent_scope_id();
  out.name_scope_only = s.kind() == v1::NAME_SCOPE;
  out.name = s.name();
  out.name_scope = s.name_scope();
  out.original_name_scope = s.original_name_scope();
  out.reuse = FromProto(s.reuse());
  if (s.has_initializer()) out.initializer = FromProto(s.initializer());
  out.dtype = FromProto(s.dtype());
  if (s.has_partitioner()) out.partitioner = FromProto(s.partitioner());
  out.open = s.open();
  out.root = s.root();
  return out;
}

UpdateResult FromProto(const v1::UpdateResult& r) {
  UpdateResult out;
  out.name = r.name();
  out.version = r.version();
  out.applied = r.applied();
  out.stale = r.stale();
  out.accumulated = r.accumulated();
  out.sync_step = r.sync_step();
  out.stale_dropped = r.stale_dropped();
  return out;
}

TrainingState FromProto(const v1::TrainingState& s) {
  TrainingState out;
  out.name = s.name();
  out.optimizer = s.optimizer();
  out.slots.assign(s.slots().begin(), s.slots().end());
  out.optimizer_steps = s.optimizer_steps();
  out.replicas_to_aggregate = s.replicas_to_aggregate();
  out.sync_step = s.sync_step();
  out.accumulated = s.accumulated();
  out.stale_dropped = s.stale_dropped();
  return out;
}

WatchEvent FromProto(const v1::WatchEvent& e) {
  WatchEvent out;
  out.name = e.name();
  out.version = e.version();
  switch (e.kind()) {
    case v1::WatchEvent::CREATED: out.kind = WatchEvent::Kind::kCreated; break;
    case v1::WatchEvent::DELETED: out.kind = WatchEvent::Kind::kDeleted; break;
    case v1::WatchEvent::RESYNC: out.kind = WatchEvent::Kind::kResync; break;
    case v1::WatchEvent::EXISTING: out.kind = WatchEvent::Kind::kExisting; break;
    default: out.kind = WatchEvent::Kind::kUpdated; break;
  }
  return out;
}

CheckpointInfo FromProto(const v1::CheckpointInfo& c) {
  CheckpointInfo out;
  out.name = c.name();
  out.path = c.path();
  out.sequence = c.sequence();
  out.bytes = c.bytes();
  out.variables = c.variables();
  out.created = c.created();
  return out;
}

ServerStats FromProto(const v1::ServerStats& s) {
  ServerStats out;
  out.version = s.version();
  out.sessions = s.sessions();
  out.variables = s.variables();
  out.tensor_bytes = s.tensor_bytes();
  out.max_memory_bytes = s.max_memory_bytes();
  out.uptime_seconds = s.uptime_seconds();
  out.auth_enabled = s.auth_enabled();
  out.tls_enabled = s.tls_enabled();
  out.calls_in_flight = s.calls_in_flight();
  return out;
}

SessionSummary FromProto(const v1::SessionSummary& s) {
  SessionSummary out;
  out.id = s.id();
  out.client_name = s.client_name();
  out.owner = s.owner();
  out.lease = absl::Seconds(s.lease_seconds());
  out.expires_in = absl::Seconds(s.expires_in_seconds());
  out.open_scopes = s.open_scopes();
  out.shard = s.shard();
  return out;
}

Tensor FromProto(const v1::Tensor& t) {
  Tensor out;
  out.dtype = FromProto(t.dtype());
  out.shape.assign(t.shape().begin(), t.shape().end());
  out.data = t.data();
  return out;
}

}  // namespace varscope::internal
