#include "server/service/proto_convert.h"

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/core/namespace/names.h"
#include "server/core/base/status_macros.h"

namespace varscope::service {
namespace {

using Kind = core::InitializerSpec::Kind;

absl::Status UnknownEnum(absl::string_view field, int value) {
  return absl::InvalidArgumentError(
      absl::StrCat("unknown ", field, " value ", value));
}

// An unset Shape is "not given"; a set one with no dims, a scalar.
template <typename Request>
core::ShapeSpec ShapeFrom(const Request& request) {
  if (!request.has_shape()) return core::ShapeSpec::Unknown();
  return core::ShapeSpec::Of(
      {request.shape().dims().begin(), request.shape().dims().end()});
}

template <typename Request>
std::optional<std::vector<std::string>> CollectionsFrom(const Request& request) {
  if (!request.has_collections()) return std::nullopt;
  return std::vector<std::string>(request.collections().names().begin(),
                                  request.collections().names().end());
}

void SetShape(const core::Shape& shape,
              google::protobuf::RepeatedField<int64_t>* out) {
  out->Assign(shape.begin(), shape.end());
}

}  // namespace

absl::StatusOr<core::DType> FromProto(pb::DataType dtype) {
  return core::DTypeFromNumber(static_cast<int>(dtype));
}

absl::StatusOr<core::Reuse> FromProto(pb::Reuse reuse) {
  switch (reuse) {
    case pb::REUSE_UNSPECIFIED:
      return core::Reuse::kInherit;
    case pb::REUSE:
      return core::Reuse::kReuse;
    case pb::AUTO_REUSE:
      return core::Reuse::kAutoReuse;
    default:
      return UnknownEnum("reuse", reuse);
  }
}

absl::StatusOr<core::ScopeKind> FromProto(pb::ScopeKind kind) {
  switch (kind) {
    case pb::SCOPE_KIND_UNSPECIFIED:
    case pb::VARIABLE_SCOPE:
      return core::ScopeKind::kVariableScope;
    case pb::NAME_SCOPE:
      return core::ScopeKind::kNameScope;
    default:
      return UnknownEnum("kind", kind);
  }
}

absl::StatusOr<core::TensorValue> FromProto(const pb::TensorValue& value) {
  core::TensorValue out;
  VARSCOPE_ASSIGN_OR_RETURN(out.dtype, FromProto(value.dtype()));
  if (out.dtype == core::DType::kInvalid) {
    return absl::InvalidArgumentError("the tensor value needs a dtype");
  }
  const core::ShapeSpec spec = core::ShapeSpec::Of(
      {value.shape().begin(), value.shape().end()});
  VARSCOPE_RETURN_IF_ERROR(core::ValidateShapeSpec(spec, "value shape"));
  out.shape = spec.dims;
  VARSCOPE_ASSIGN_OR_RETURN(const int64_t bytes,
                            core::NumBytes(out.dtype, out.shape));
  if (static_cast<int64_t>(value.data().size()) != bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the tensor value has ", value.data().size(), " bytes of data, but ",
        core::DTypeName(out.dtype), " ", core::ShapeToString(out.shape),
        " needs ", bytes));
  }
  out.buffer = core::TensorBuffer::CopyOf(value.data().data(),
                                          value.data().size());
  return out;
}

absl::StatusOr<core::InitializerSpec> FromProto(const pb::Initializer& init) {
  core::InitializerSpec spec;
  auto seeded = [&spec](Kind kind, uint64_t seed) {
    spec.kind = kind;
    spec.seed = seed;
  };
  switch (init.kind_case()) {
    case pb::Initializer::kZeros:
      spec.kind = Kind::kZeros;
      break;
    case pb::Initializer::kOnes:
      spec.kind = Kind::kOnes;
      break;
    case pb::Initializer::kConstant:
      spec.kind = Kind::kConstant;
      spec.values.assign(init.constant().values().begin(),
                         init.constant().values().end());
      spec.verify_shape = init.constant().verify_shape();
      break;
    case pb::Initializer::kRandomUniform:
      seeded(Kind::kRandomUniform, init.random_uniform().seed());
      spec.minval = init.random_uniform().minval();
      if (init.random_uniform().has_maxval()) {
        spec.maxval = init.random_uniform().maxval();
      }
      break;
    case pb::Initializer::kRandomNormal:
      seeded(Kind::kRandomNormal, init.random_normal().seed());
      spec.mean = init.random_normal().mean();
      spec.stddev = init.random_normal().has_stddev()
                        ? init.random_normal().stddev()
                        : 1.0;
      break;
    case pb::Initializer::kTruncatedNormal:
      seeded(Kind::kTruncatedNormal, init.truncated_normal().seed());
      spec.mean = init.truncated_normal().mean();
      spec.stddev = init.truncated_normal().has_stddev()
                        ? init.truncated_normal().stddev()
                        : 1.0;
      break;
    case pb::Initializer::kUniformUnitScaling:
      seeded(Kind::kUniformUnitScaling, init.uniform_unit_scaling().seed());
      spec.scale = init.uniform_unit_scaling().has_factor()
                       ? init.uniform_unit_scaling().factor()
                       : 1.0;
      break;
    case pb::Initializer::kVarianceScaling: {
      const pb::VarianceScaling& vs = init.variance_scaling();
      seeded(Kind::kVarianceScaling, vs.seed());
      spec.scale = vs.has_scale() ? vs.scale() : 1.0;
      switch (vs.mode()) {
        case pb::VarianceScaling::MODE_UNSPECIFIED:
        case pb::VarianceScaling::FAN_IN:
          spec.mode = core::InitializerSpec::FanMode::kFanIn;
          break;
        case pb::VarianceScaling::FAN_OUT:
          spec.mode = core::InitializerSpec::FanMode::kFanOut;
          break;
        case pb::VarianceScaling::FAN_AVG:
          spec.mode = core::InitializerSpec::FanMode::kFanAvg;
          break;
        default:
          return UnknownEnum("variance_scaling.mode", vs.mode());
      }
      switch (vs.distribution()) {
        case pb::VarianceScaling::DISTRIBUTION_UNSPECIFIED:
        case pb::VarianceScaling::TRUNCATED_NORMAL:
          spec.distribution =
              core::InitializerSpec::Distribution::kTruncatedNormal;
          break;
        case pb::VarianceScaling::UNTRUNCATED_NORMAL:
          spec.distribution =
              core::InitializerSpec::Distribution::kUntruncatedNormal;
          break;
        case pb::VarianceScaling::UNIFORM:
          spec.distribution = core::InitializerSpec::Distribution::kUniform;
          break;
        default:
          return UnknownEnum("variance_scaling.distribution",
                             vs.distribution());
      }
      break;
    }
    case pb::Initializer::kGlorotUniform:
      seeded(Kind::kGlorotUniform, init.glorot_uniform().seed());
      break;
    case pb::Initializer::kGlorotNormal:
      seeded(Kind::kGlorotNormal, init.glorot_normal().seed());
      break;
    case pb::Initializer::kLecunUniform:
      seeded(Kind::kLecunUniform, init.lecun_uniform().seed());
      break;
    case pb::Initializer::kLecunNormal:
      seeded(Kind::kLecunNormal, init.lecun_normal().seed());
      break;
    case pb::Initializer::kHeUniform:
      seeded(Kind::kHeUniform, init.he_uniform().seed());
      break;
    case pb::Initializer::kHeNormal:
      seeded(Kind::kHeNormal, init.he_normal().seed());
      break;
    case pb::Initializer::kOrthogonal:
      seeded(Kind::kOrthogonal, init.orthogonal().seed());
      spec.scale =
          init.orthogonal().has_gain() ? init.orthogonal().gain() : 1.0;
      break;
    case pb::Initializer::kIdentity:
      spec.kind = Kind::kIdentity;
      spec.scale = init.identity().has_gain() ? init.identity().gain() : 1.0;
      break;
    case pb::Initializer::kValue: {
      spec.kind = Kind::kValue;
      VARSCOPE_ASSIGN_OR_RETURN(spec.value, FromProto(init.value()));
      break;
    }
    case pb::Initializer::KIND_NOT_SET:
      return absl::InvalidArgumentError(
          "the initializer message is set but names no initializer; set one "
          "of zeros, ones, constant, random_uniform, ..., value");
  }
  return spec;
}

absl::StatusOr<core::PartitionerSpec> FromProto(const pb::Partitioner& part) {
  using PK = core::PartitionerSpec::Kind;
  core::PartitionerSpec spec;
  switch (part.kind_case()) {
    case pb::Partitioner::kFixedSize:
      spec.kind = PK::kFixedSize;
      spec.num_shards = part.fixed_size().num_shards();
      spec.axis = part.fixed_size().axis();
      break;
    case pb::Partitioner::kMinMax: {
      const pb::MinMaxPartitioner& mm = part.min_max();
      spec.kind = PK::kMinMax;
      spec.axis = mm.axis();
      if (mm.has_max_partitions()) spec.max_partitions = mm.max_partitions();
      if (mm.has_min_slice_size()) spec.min_slice_size = mm.min_slice_size();
      if (mm.has_bytes_per_string_element()) {
        spec.bytes_per_string_element = mm.bytes_per_string_element();
      }
      break;
    }
    case pb::Partitioner::kVariableAxisSize: {
      const pb::VariableAxisSizePartitioner& va = part.variable_axis_size();
      spec.kind = PK::kVariableAxisSize;
      spec.axis = va.axis();
      spec.max_shard_bytes = va.max_shard_bytes();
      if (va.has_bytes_per_string_element()) {
        spec.bytes_per_string_element = va.bytes_per_string_element();
      }
      if (va.has_max_shards()) spec.max_shards = va.max_shards();
      break;
    }
    case pb::Partitioner::kExplicitPartitions:
      spec.kind = PK::kExplicit;
      spec.partitions.assign(part.explicit_partitions().partitions().begin(),
                             part.explicit_partitions().partitions().end());
      break;
    case pb::Partitioner::KIND_NOT_SET:
      return absl::InvalidArgumentError(
          "the partitioner message is set but names no partitioner; set "
          "fixed_size, min_max, variable_axis_size or explicit_partitions");
  }
  VARSCOPE_RETURN_IF_ERROR(core::ValidatePartitionerArgs(spec));
  return spec;
}

absl::StatusOr<core::OpenScopeRequest> FromProto(
    const pb::OpenScopeRequest& request) {
  core::OpenScopeRequest out;
  out.parent = request.parent_scope_id();
  out.default_name = request.default_name();
  switch (request.target_case()) {
    case pb::OpenScopeRequest::kName:
      // Empty means the same as unset (a NAME_SCOPE: back to the root name
      // scope, as tf.name_scope("")).
      out.name = request.name();
      break;
    case pb::OpenScopeRequest::kReenterScopeId:
      out.reenter = request.reenter_scope_id();
      break;
    case pb::OpenScopeRequest::TARGET_NOT_SET:
      break;
  }
  VARSCOPE_ASSIGN_OR_RETURN(out.kind, FromProto(request.kind()));
  VARSCOPE_ASSIGN_OR_RETURN(out.reuse, FromProto(request.reuse()));
  if (request.has_initializer()) {
    VARSCOPE_ASSIGN_OR_RETURN(out.initializer,
                              FromProto(request.initializer()));
  }
  VARSCOPE_ASSIGN_OR_RETURN(out.dtype, FromProto(request.dtype()));
  if (request.has_partitioner()) {
    VARSCOPE_ASSIGN_OR_RETURN(out.partitioner,
                              FromProto(request.partitioner()));
  }
  out.auxiliary_name_scope =
      !request.has_auxiliary_name_scope() || request.auxiliary_name_scope();
  return out;
}

absl::StatusOr<core::GetVariableRequest> FromProto(
    const pb::GetVariableRequest& request) {
  if (request.session_id() == 0 && request.scope_id() != 0) {
    return absl::InvalidArgumentError(
        "scope_id needs a session_id; without a session pass the scope path "
        "in `scope`");
  }
  if (request.session_id() != 0 &&
      (!request.scope().empty() || request.reuse() != pb::REUSE_UNSPECIFIED)) {
    return absl::InvalidArgumentError(
        "`scope` and `reuse` are for the one-shot form without a session; "
        "with a session_id use scope_id");
  }
  core::GetVariableRequest out;
  out.name = request.name();
  out.shape = ShapeFrom(request);
  VARSCOPE_ASSIGN_OR_RETURN(out.dtype, FromProto(request.dtype()));
  if (request.has_initializer()) {
    VARSCOPE_ASSIGN_OR_RETURN(out.initializer,
                              FromProto(request.initializer()));
  }
  if (request.has_trainable()) out.trainable = request.trainable();
  out.collections = CollectionsFrom(request);
  if (request.has_partitioner()) {
    VARSCOPE_ASSIGN_OR_RETURN(out.partitioner,
                              FromProto(request.partitioner()));
  }
  out.local = request.local();
  return out;
}

absl::StatusOr<core::NewVariableRequest> FromProto(
    const pb::NewVariableRequest& request) {
  core::NewVariableRequest out;
  out.name = request.name();
  if (request.has_value() == request.has_initializer()) {
    return absl::InvalidArgumentError(
        "NewVariable needs exactly one of value (an initial tensor) or "
        "initializer (with shape and dtype)");
  }
  core::GetVariableRequest& var = out.variable;
  if (request.has_value()) {
    if (request.has_shape() || request.dtype() != pb::DT_UNSPECIFIED) {
      return absl::InvalidArgumentError(
          "with an initial value, do not send shape or dtype: the value's "
          "are used");
    }
    core::InitializerSpec spec;
    spec.kind = Kind::kValue;
    VARSCOPE_ASSIGN_OR_RETURN(spec.value, FromProto(request.value()));
    var.initializer = std::move(spec);
  } else {
    VARSCOPE_ASSIGN_OR_RETURN(var.initializer,
                              FromProto(request.initializer()));
    // Same form as GetVariable; creating needs a shape (no dims: scalar).
    if (!request.has_shape()) {
      return absl::InvalidArgumentError(
          "NewVariable with an initializer needs a shape (an empty shape is "
          "a scalar)");
    }
    var.shape = ShapeFrom(request);
    VARSCOPE_ASSIGN_OR_RETURN(var.dtype, FromProto(request.dtype()));
  }
  if (request.has_trainable()) var.trainable = request.trainable();
  var.collections = CollectionsFrom(request);
  return out;
}

absl::StatusOr<core::ScopeDefaultsUpdate> FromProto(
    const pb::UpdateScopeRequest& request) {
  core::ScopeDefaultsUpdate out;
  if (request.update_mask().paths().empty()) {
    return absl::InvalidArgumentError(
        "update_mask names no field; give \"initializer\", \"dtype\" and/or "
        "\"partitioner\"");
  }
  for (const std::string& path : request.update_mask().paths()) {
    if (path == "initializer") {
      out.initializer.emplace();
      if (request.has_initializer()) {
        VARSCOPE_ASSIGN_OR_RETURN(*out.initializer, FromProto(request.initializer()));
      }
    } else if (path == "dtype") {
      VARSCOPE_ASSIGN_OR_RETURN(out.dtype, FromProto(request.dtype()));
    } else if (path == "partitioner") {
      out.partitioner.emplace();
      if (request.has_partitioner()) {
        VARSCOPE_ASSIGN_OR_RETURN(*out.partitioner, FromProto(request.partitioner()));
      }
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "update_mask path '", path,
          "' is not a scope default; use initializer, dtype or partitioner"));
    }
  }
  return out;
}

pb::DataType ToProto(core::DType dtype) {
  return static_cast<pb::DataType>(static_cast<int>(dtype));
}

pb::Reuse ToProto(core::Reuse reuse) {
  switch (reuse) {
    case core::Reuse::kInherit:
      return pb::REUSE_UNSPECIFIED;
    case core::Reuse::kReuse:
      return pb::REUSE;
    case core::Reuse::kAutoReuse:
      return pb::AUTO_REUSE;
  }
  return pb::REUSE_UNSPECIFIED;
}

void ToProto(const core::InitializerSpec& spec, pb::Initializer* out) {
  using FM = core::InitializerSpec::FanMode;
  using D = core::InitializerSpec::Distribution;
  switch (spec.kind) {
    case Kind::kZeros:
      out->mutable_zeros();
      break;
    case Kind::kOnes:
      out->mutable_ones();
      break;
    case Kind::kConstant:
      out->mutable_constant()->mutable_values()->Assign(spec.values.begin(),
                                                        spec.values.end());
      out->mutable_constant()->set_verify_shape(spec.verify_shape);
      break;
    case Kind::kRandomUniform:
      out->mutable_random_uniform()->set_minval(spec.minval);
      if (spec.maxval) out->mutable_random_uniform()->set_maxval(*spec.maxval);
      out->mutable_random_uniform()->set_seed(spec.seed);
      break;
    case Kind::kRandomNormal:
      out->mutable_random_normal()->set_mean(spec.mean);
      out->mutable_random_normal()->set_stddev(spec.stddev);
      out->mutable_random_normal()->set_seed(spec.seed);
      break;
    case Kind::kTruncatedNormal:
      out->mutable_truncated_normal()->set_mean(spec.mean);
      out->mutable_truncated_normal()->set_stddev(spec.stddev);
      out->mutable_truncated_normal()->set_seed(spec.seed);
      break;
    case Kind::kUniformUnitScaling:
      out->mutable_uniform_unit_scaling()->set_factor(spec.scale);
      out->mutable_uniform_unit_scaling()->set_seed(spec.seed);
      break;
    case Kind::kVarianceScaling: {
      pb::VarianceScaling* vs = out->mutable_variance_scaling();
      vs->set_scale(spec.scale);
      vs->set_mode(spec.mode == FM::kFanIn    ? pb::VarianceScaling::FAN_IN
                   : spec.mode == FM::kFanOut ? pb::VarianceScaling::FAN_OUT
                                              : pb::VarianceScaling::FAN_AVG);
      vs->set_distribution(
          spec.distribution == D::kTruncatedNormal
              ? pb::VarianceScaling::TRUNCATED_NORMAL
          : spec.distribution == D::kUntruncatedNormal
              ? pb::VarianceScaling::UNTRUNCATED_NORMAL
              : pb::VarianceScaling::UNIFORM);
      vs->set_seed(spec.seed);
      break;
    }
    case Kind::kGlorotUniform:
      out->mutable_glorot_uniform()->set_seed(spec.seed);
      break;
    case Kind::kGlorotNormal:
      out->mutable_glorot_normal()->set_seed(spec.seed);
      break;
    case Kind::kLecunUniform:
      out->mutable_lecun_uniform()->set_seed(spec.seed);
      break;
    case Kind::kLecunNormal:
      out->mutable_lecun_normal()->set_seed(spec.seed);
      break;
    case Kind::kHeUniform:
      out->mutable_he_uniform()->set_seed(spec.seed);
      break;
    case Kind::kHeNormal:
      out->mutable_he_normal()->set_seed(spec.seed);
      break;
    case Kind::kOrthogonal:
      out->mutable_orthogonal()->set_gain(spec.scale);
      out->mutable_orthogonal()->set_seed(spec.seed);
      break;
    case Kind::kIdentity:
      out->mutable_identity()->set_gain(spec.scale);
      break;
    case Kind::kValue: {
      // Describe the value without echoing its bytes back.
      pb::TensorValue* value = out->mutable_value();
      value->set_dtype(ToProto(spec.value.dtype));
      SetShape(spec.value.shape, value->mutable_shape());
      break;
    }
  }
}

void ToProto(const core::PartitionerSpec& spec, pb::Partitioner* out) {
  using PK = core::PartitionerSpec::Kind;
  switch (spec.kind) {
    case PK::kFixedSize:
      out->mutable_fixed_size()->set_num_shards(
          static_cast<int32_t>(spec.num_shards));
      out->mutable_fixed_size()->set_axis(spec.axis);
      break;
    case PK::kMinMax:
      out->mutable_min_max()->set_max_partitions(
          static_cast<int32_t>(spec.max_partitions));
      out->mutable_min_max()->set_axis(spec.axis);
      out->mutable_min_max()->set_min_slice_size(spec.min_slice_size);
      out->mutable_min_max()->set_bytes_per_string_element(
          spec.bytes_per_string_element);
      break;
    case PK::kVariableAxisSize:
      out->mutable_variable_axis_size()->set_max_shard_bytes(
          spec.max_shard_bytes);
      out->mutable_variable_axis_size()->set_axis(spec.axis);
      out->mutable_variable_axis_size()->set_bytes_per_string_element(
          spec.bytes_per_string_element);
      if (spec.max_shards) {
        out->mutable_variable_axis_size()->set_max_shards(
            static_cast<int32_t>(*spec.max_shards));
      }
      break;
    case PK::kExplicit:
      for (int64_t p : spec.partitions) {
        out->mutable_explicit_partitions()->add_partitions(
            static_cast<int32_t>(p));
      }
      break;
  }
}

void ToProto(const core::ScopeInfo& scope, pb::Scope* out) {
  out->set_scope_id(scope.id);
  out->set_parent_scope_id(scope.parent);
  out->set_kind(scope.kind == core::ScopeKind::kNameScope ? pb::NAME_SCOPE
                                                          : pb::VARIABLE_SCOPE);
  out->set_name(scope.name);
  out->set_name_scope(scope.name_scope);
  out->set_original_name_scope(scope.original_name_scope);
  out->set_reuse(ToProto(scope.reuse));
  if (scope.initializer) ToProto(*scope.initializer, out->mutable_initializer());
  out->set_dtype(ToProto(scope.dtype));
  if (scope.partitioner) ToProto(*scope.partitioner, out->mutable_partitioner());
  out->set_open(scope.open);
  out->set_root(scope.root);
}

void ToProto(const core::VariableInfo& info, pb::Variable* out) {
  out->set_name(info.name);
  out->set_tensor_name(info.partitioned ? info.name : absl::StrCat(info.name, ":0"));
  out->set_dtype(ToProto(info.dtype));
  SetShape(info.shape, out->mutable_shape());
  out->set_version(info.version);
  out->set_trainable(info.trainable);
  for (const std::string& c : info.collections) out->add_collections(c);
  if (info.slice) {
    pb::PartitionSlice* slice = out->mutable_slice();
    slice->set_full_name(info.slice->full_name);
    SetShape(info.slice->full_shape, slice->mutable_full_shape());
    SetShape(info.slice->offset, slice->mutable_offset());
    slice->set_part_index(info.slice->index);
  }
  out->set_partitioned(info.partitioned);
  for (int64_t p : info.partitions) {
    out->add_partitions(static_cast<int32_t>(p));
  }
  for (const core::VariableInfo& part : info.parts) {
    ToProto(part, out->add_parts());
  }
  ToProto(info.initializer, out->mutable_initializer());
  out->set_num_bytes(info.num_bytes);
}

void ToProto(const core::ScopeNode& node, pb::ScopeNode* out) {
  out->set_name(node.name);
  out->set_variables(static_cast<int64_t>(node.variables.size()));
  out->set_total_variables(node.total_variables);
}

}  // namespace varscope::service
