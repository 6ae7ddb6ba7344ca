#include "server/core/storage/state_json.h"

#include "absl/strings/str_cat.h"
#include "server/core/base/status_macros.h"

namespace varscope::core {

using nlohmann::json;

json InitializerToJson(const InitializerSpec& s) {
  json j = {{"kind", static_cast<int>(s.kind)},
            {"name", InitializerName(s)},
            {"values", s.values},
            {"verify_shape", s.verify_shape},
            {"minval", s.minval},
            {"mean", s.mean},
            {"stddev", s.stddev},
            {"scale", s.scale},
            {"mode", static_cast<int>(s.mode)},
            {"distribution", static_cast<int>(s.distribution)},
            {"seed", s.seed}};
  if (s.maxval) j["maxval"] = *s.maxval;
  if (s.kind == InitializerSpec::Kind::kValue) {
    j["value_dtype"] = static_cast<int>(s.value.dtype);
    j["value_shape"] = s.value.shape;
  }
  return j;
}

InitializerSpec InitializerFromJson(const json& j) {
  InitializerSpec s;
  s.kind = static_cast<InitializerSpec::Kind>(j.value("kind", 0));
  s.values = j.value("values", std::vector<double>{});
  s.verify_shape = j.value("verify_shape", false);
  s.minval = j.value("minval", 0.0);
  if (j.contains("maxval")) s.maxval = j["maxval"].get<double>();
  s.mean = j.value("mean", 0.0);
  s.stddev = j.value("stddev", 1.0);
  s.scale = j.value("scale", 1.0);
  s.mode = static_cast<InitializerSpec::FanMode>(j.value("mode", 0));
  s.distribution =
      static_cast<InitializerSpec::Distribution>(j.value("distribution", 0));
  s.seed = j.value("seed", uint64_t{0});
  if (s.kind == InitializerSpec::Kind::kValue) {
    s.value.dtype = static_cast<DType>(j.value("value_dtype", 0));
    s.value.shape = j.value("value_shape", Shape{});
  }
  return s;
}

json OptimizerToJson(const OptimizerSpec& spec) {
  return {{"kind", static_cast<int>(spec.kind)},
          {"name", std::string(OptimizerName(spec.kind))},
          {"hyperparameters", spec.hyperparameters}};
}

OptimizerSpec OptimizerFromJson(const json& j) {
  OptimizerSpec spec;
  spec.kind = static_cast<OptimizerKind>(j.at("kind").get<int>());
  spec.hyperparameters = j.at("hyperparameters").get<std::map<std::string, double>>();
  return spec;
}

json VariableStateToJson(const VariableState& v) {
  json var = {{"name", v.info.name},
              {"dtype", std::string(DTypeName(v.info.dtype))},
              {"dtype_enum", static_cast<int>(v.info.dtype)},
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

absl::StatusOr<VariableState> VariableStateFromJsonOrThrow(const json& v) {
  VariableState state;
  state.info.name = v.at("name").get<std::string>();
  VARSCOPE_ASSIGN_OR_RETURN(state.info.dtype,
                            DTypeFromNumber(v.at("dtype_enum").get<int>()));
  state.info.shape = v.at("shape").get<Shape>();
  state.info.version = v.at("version").get<uint64_t>();
  state.info.trainable = v.at("trainable").get<bool>();
  state.info.collections = v.at("collections").get<std::vector<std::string>>();
  state.info.initializer = InitializerFromJson(v.at("initializer"));
  if (v.contains("partition")) {
    const json& p = v["partition"];
    PartSlice slice;
    slice.full_name = p.at("full_name").get<std::string>();
    slice.full_shape = p.at("full_shape").get<Shape>();
    slice.offset = p.at("offset").get<Shape>();
    slice.index = p.at("index").get<int>();
    state.info.slice = slice;
  }
  if (v.contains("optimizer")) state.optimizer = OptimizerFromJson(v["optimizer"]);
  state.optimizer_steps = v.value("optimizer_steps", int64_t{0});
  state.replicas_to_aggregate = v.value("replicas_to_aggregate", 0);
  state.sync_step = v.value("sync_step", int64_t{0});
  state.stale_dropped = v.value("stale_dropped", int64_t{0});
  return state;
}

json PartitionedStateToJson(const PartitionedState& p) {
  return {{"name", p.name},
          {"dtype_enum", static_cast<int>(p.dtype)},
          {"shape", p.shape},
          {"partitions", p.partitions},
          {"parts", p.part_names},
          {"trainable", p.trainable},
          {"collections", p.collections},
          {"initializer", InitializerToJson(p.initializer)}};
}

absl::StatusOr<PartitionedState> PartitionedStateFromJsonOrThrow(const json& p) {
  PartitionedState state;
  state.name = p.at("name").get<std::string>();
  VARSCOPE_ASSIGN_OR_RETURN(state.dtype, DTypeFromNumber(p.at("dtype_enum").get<int>()));
  state.shape = p.at("shape").get<Shape>();
  state.partitions = p.at("partitions").get<std::vector<int64_t>>();
  state.part_names = p.at("parts").get<std::vector<std::string>>();
  state.trainable = p.at("trainable").get<bool>();
  state.collections = p.at("collections").get<std::vector<std::string>>();
  state.initializer = InitializerFromJson(p.at("initializer"));
  return state;
}

// The StatusOr API must not throw: a damaged file is DATA_LOSS, not a crash.
absl::StatusOr<VariableState> VariableStateFromJson(const json& v) {
  try {
    return VariableStateFromJsonOrThrow(v);
  } catch (const json::exception& e) {
    return absl::DataLossError(absl::StrCat("malformed variable state: ", e.what()));
  }
}

absl::StatusOr<PartitionedState> PartitionedStateFromJson(const json& p) {
  try {
    return PartitionedStateFromJsonOrThrow(p);
  } catch (const json::exception& e) {
    return absl::DataLossError(
        absl::StrCat("malformed partitioned variable state: ", e.what()));
  }
}

}  // namespace varscope::core
