#include <utility>

#include "absl/strings/str_cat.h"
#include "server/core/base/status_macros.h"
#include "server/core/storage/json_forms_internal.h"

namespace varscope::core {
namespace {

using nlohmann::json;

// The on-disk name of every enum value. Add new values at the end of a
// table with a new name; never rename or reuse one.
template <typename E>
struct Named {
  E value;
  const char* name;
};

constexpr Named<DType> kDTypes[] = {
    {DType::kFloat, "float32"},   {DType::kDouble, "float64"},
    {DType::kInt32, "int32"},     {DType::kUInt8, "uint8"},
    {DType::kInt16, "int16"},     {DType::kInt8, "int8"},
    {DType::kInt64, "int64"},     {DType::kBool, "bool"},
    {DType::kBFloat16, "bfloat16"}, {DType::kHalf, "float16"},
};

using Kind = InitializerSpec::Kind;
constexpr Named<Kind> kInitializers[] = {
    {Kind::kZeros, "zeros"},
    {Kind::kOnes, "ones"},
    {Kind::kConstant, "constant"},
    {Kind::kRandomUniform, "random_uniform"},
    {Kind::kRandomNormal, "random_normal"},
    {Kind::kTruncatedNormal, "truncated_normal"},
    {Kind::kUniformUnitScaling, "uniform_unit_scaling"},
    {Kind::kVarianceScaling, "variance_scaling"},
    {Kind::kGlorotUniform, "glorot_uniform"},
    {Kind::kGlorotNormal, "glorot_normal"},
    {Kind::kLecunUniform, "lecun_uniform"},
    {Kind::kLecunNormal, "lecun_normal"},
    {Kind::kHeUniform, "he_uniform"},
    {Kind::kHeNormal, "he_normal"},
    {Kind::kOrthogonal, "orthogonal"},
    {Kind::kIdentity, "identity"},
    {Kind::kValue, "value"},
};

constexpr Named<InitializerSpec::FanMode> kFanModes[] = {
    {InitializerSpec::FanMode::kFanIn, "fan_in"},
    {InitializerSpec::FanMode::kFanOut, "fan_out"},
    {InitializerSpec::FanMode::kFanAvg, "fan_avg"},
};

constexpr Named<InitializerSpec::Distribution> kDistributions[] = {
    {InitializerSpec::Distribution::kTruncatedNormal, "truncated_normal"},
    {InitializerSpec::Distribution::kUntruncatedNormal, "untruncated_normal"},
    {InitializerSpec::Distribution::kUniform, "uniform"},
};

constexpr Named<OptimizerKind> kOptimizers[] = {
    {OptimizerKind::kSgd, "sgd"},         {OptimizerKind::kMomentum, "momentum"},
    {OptimizerKind::kAdagrad, "adagrad"}, {OptimizerKind::kAdam, "adam"},
    {OptimizerKind::kRmsProp, "rmsprop"}, {OptimizerKind::kFtrl, "ftrl"},
};

template <typename E, size_t N>
const char* NameOf(const Named<E> (&table)[N], E value) {
  for (const Named<E>& n : table) {
    if (n.value == value) return n.name;
  }
  return "?";
}

template <typename E, size_t N>
absl::StatusOr<E> ValueOf(const Named<E> (&table)[N], const json& j,
                          absl::string_view what) {
  if (!j.is_string()) {
    return absl::DataLossError(absl::StrCat(what, " is not a name"));
  }
  const std::string name = j.get<std::string>();
  for (const Named<E>& n : table) {
    if (name == n.name) return n.value;
  }
  return absl::DataLossError(absl::StrCat("unknown ", what, " '", name, "'"));
}

absl::StatusOr<InitializerSpec> InitializerFromJsonOrThrow(const json& j) {
  InitializerSpec s;
  VARSCOPE_ASSIGN_OR_RETURN(s.kind, ValueOf(kInitializers, j.at("kind"), "initializer"));
  s.values = j.value("values", std::vector<double>{});
  s.verify_shape = j.value("verify_shape", false);
  s.minval = j.value("minval", 0.0);
  if (j.contains("maxval")) s.maxval = j["maxval"].get<double>();
  s.mean = j.value("mean", 0.0);
  s.stddev = j.value("stddev", 1.0);
  s.scale = j.value("scale", 1.0);
  VARSCOPE_ASSIGN_OR_RETURN(s.mode, ValueOf(kFanModes, j.at("mode"), "fan mode"));
  VARSCOPE_ASSIGN_OR_RETURN(
      s.distribution, ValueOf(kDistributions, j.at("distribution"), "distribution"));
  s.seed = j.value("seed", uint64_t{0});
  if (s.kind == Kind::kValue) {
    VARSCOPE_ASSIGN_OR_RETURN(s.value.dtype, DTypeFromJson(j.at("value_dtype")));
    s.value.shape = j.at("value_shape").get<Shape>();
  }
  return s;
}

absl::StatusOr<OptimizerSpec> OptimizerFromJsonOrThrow(const json& j) {
  OptimizerSpec spec;
  VARSCOPE_ASSIGN_OR_RETURN(spec.kind, ValueOf(kOptimizers, j.at("kind"), "optimizer"));
  spec.hyperparameters = j.at("hyperparameters").get<std::map<std::string, double>>();
  return spec;
}

absl::StatusOr<VariableState> VariableStateFromJsonOrThrow(const json& v) {
  VariableState state;
  state.info.name = v.at("name").get<std::string>();
  VARSCOPE_ASSIGN_OR_RETURN(state.info.dtype, DTypeFromJson(v.at("dtype")));
  state.info.shape = v.at("shape").get<Shape>();
  state.info.version = v.at("version").get<uint64_t>();
  state.info.trainable = v.at("trainable").get<bool>();
  state.info.collections = v.at("collections").get<std::vector<std::string>>();
  VARSCOPE_ASSIGN_OR_RETURN(state.info.initializer,
                            InitializerFromJsonOrThrow(v.at("initializer")));
  if (v.contains("partition")) {
    const json& p = v["partition"];
    PartSlice slice;
    slice.full_name = p.at("full_name").get<std::string>();
    slice.full_shape = p.at("full_shape").get<Shape>();
    slice.offset = p.at("offset").get<Shape>();
    slice.index = p.at("index").get<int>();
    state.info.slice = slice;
  }
  if (v.contains("optimizer")) {
    VARSCOPE_ASSIGN_OR_RETURN(state.optimizer, OptimizerFromJsonOrThrow(v["optimizer"]));
  }
  state.optimizer_steps = v.value("optimizer_steps", int64_t{0});
  state.replicas_to_aggregate = v.value("replicas_to_aggregate", 0);
  state.sync_step = v.value("sync_step", int64_t{0});
  state.stale_dropped = v.value("stale_dropped", int64_t{0});
  return state;
}

absl::StatusOr<PartitionedState> PartitionedStateFromJsonOrThrow(const json& p) {
  PartitionedState state;
  state.name = p.at("name").get<std::string>();
  VARSCOPE_ASSIGN_OR_RETURN(state.dtype, DTypeFromJson(p.at("dtype")));
  state.shape = p.at("shape").get<Shape>();
  state.partitions = p.at("partitions").get<std::vector<int64_t>>();
  state.part_names = p.at("parts").get<std::vector<std::string>>();
  state.trainable = p.at("trainable").get<bool>();
  state.collections = p.at("collections").get<std::vector<std::string>>();
  VARSCOPE_ASSIGN_OR_RETURN(state.initializer,
                            InitializerFromJsonOrThrow(p.at("initializer")));
  return state;
}

// The StatusOr API must not throw: a damaged file is DATA_LOSS, not a crash.
template <typename F>
auto Guard(absl::string_view what, F f) -> decltype(f()) {
  try {
    return f();
  } catch (const json::exception& e) {
    return absl::DataLossError(absl::StrCat("malformed ", what, ": ", e.what()));
  }
}

}  // namespace

std::string DTypeToJson(DType dtype) { return NameOf(kDTypes, dtype); }

absl::StatusOr<DType> DTypeFromJson(const json& j) {
  return ValueOf(kDTypes, j, "dtype");
}

json InitializerToJson(const InitializerSpec& s) {
  json j = {{"kind", NameOf(kInitializers, s.kind)},
            {"values", s.values},
            {"verify_shape", s.verify_shape},
            {"minval", s.minval},
            {"mean", s.mean},
            {"stddev", s.stddev},
            {"scale", s.scale},
            {"mode", NameOf(kFanModes, s.mode)},
            {"distribution", NameOf(kDistributions, s.distribution)},
            {"seed", s.seed}};
  if (s.maxval) j["maxval"] = *s.maxval;
  if (s.kind == Kind::kValue) {
    j["value_dtype"] = DTypeToJson(s.value.dtype);
    j["value_shape"] = s.value.shape;
  }
  return j;
}

absl::StatusOr<InitializerSpec> InitializerFromJson(const json& j) {
  return Guard("initializer", [&] { return InitializerFromJsonOrThrow(j); });
}

json OptimizerToJson(const OptimizerSpec& spec) {
  return {{"kind", NameOf(kOptimizers, spec.kind)},
          {"hyperparameters", spec.hyperparameters}};
}

absl::StatusOr<OptimizerSpec> OptimizerFromJson(const json& j) {
  return Guard("optimizer", [&] { return OptimizerFromJsonOrThrow(j); });
}

json VariableStateToJson(const VariableState& v) {
  json var = {{"name", v.info.name},
              {"dtype", DTypeToJson(v.info.dtype)},
              {"shape", v.info.shape},
              {"version", v.info.version},
              {"trainable", v.info.trainable},
              {"collections", v.info.collections},
              {"initializer", InitializerToJson(v.info.initializer)},
              {"optimizer_steps", v.optimizer_steps},
              {"replicas_to_aggregate", v.replicas_to_aggregate},
              {"sync_step", v.sync_step},
              {"stale_dropped", v.stale_dropped}};
  if (v.optimizer) var["optimizer"] = OptimizerToJson(*v.optimizer);
  if (v.info.slice) {
    var["partition"] = {{"full_name", v.info.slice->full_name},
                        {"full_shape", v.info.slice->full_shape},
                        {"offset", v.info.slice->offset},
                        {"index", v.info.slice->index}};
  }
  return var;
}

absl::StatusOr<VariableState> VariableStateFromJson(const json& v) {
  return Guard("variable state", [&] { return VariableStateFromJsonOrThrow(v); });
}

json PartitionedStateToJson(const PartitionedState& p) {
  return {{"name", p.name},
          {"dtype", DTypeToJson(p.dtype)},
          {"shape", p.shape},
          {"partitions", p.partitions},
          {"parts", p.part_names},
          {"trainable", p.trainable},
          {"collections", p.collections},
          {"initializer", InitializerToJson(p.initializer)}};
}

absl::StatusOr<PartitionedState> PartitionedStateFromJson(const json& p) {
  return Guard("partitioned variable state",
               [&] { return PartitionedStateFromJsonOrThrow(p); });
}

}  // namespace varscope::core
