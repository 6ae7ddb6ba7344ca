#include "server/core/tensor/optimizer.h"

#include <cmath>
#include <set>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace varscope::core {
namespace {

struct ParamInfo {
  const char* name;
  double default_value;
  bool required;
};

std::vector<ParamInfo> ParamsOf(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::kSgd:
      return {{"learning_rate", 0, true}};
    case OptimizerKind::kMomentum:
      return {{"learning_rate", 0, true},
              {"momentum", 0, true},
              {"use_nesterov", 0, false}};
    case OptimizerKind::kAdagrad:
      return {{"learning_rate", 0, true},
              {"initial_accumulator_value", 0.1, false}};
    case OptimizerKind::kAdam:
      return {{"learning_rate", 0.001, false},
              {"beta1", 0.9, false},
              {"beta2", 0.999, false},
              {"epsilon", 1e-8, false}};
    case OptimizerKind::kRmsProp:
      return {{"learning_rate", 0, true},
              {"decay", 0.9, false},
              {"momentum", 0.0, false},
              {"epsilon", 1e-10, false},
              {"centered", 0, false}};
    case OptimizerKind::kFtrl:
      return {{"learning_rate", 0, true},
              {"learning_rate_power", -0.5, false},
              {"initial_accumulator_value", 0.1, false},
              {"l1_regularization_strength", 0.0, false},
              {"l2_regularization_strength", 0.0, false},
              {"l2_shrinkage_regularization_strength", 0.0, false}};
    case OptimizerKind::kNone:
      break;
  }
  return {};
}

absl::Status RangeError(const OptimizerSpec& spec, absl::string_view param,
                        double value, absl::string_view rule) {
  return absl::InvalidArgumentError(
      absl::StrCat(OptimizerName(spec.kind), " hyperparameter ", param, " = ",
                   value, " is out of range: it must be ", rule));
}

// Per-step constants shared by all elements.
struct StepConstants {
  double adam_lr = 0.0;  // Adam's bias-corrected learning rate
};

// One element's update in double precision. `s` holds the slots in
// ResolvedOptimizer::slots order.
inline void UpdateElement(const ResolvedOptimizer& o, const StepConstants& c,
                          double g, double& w, double* s) {
  switch (o.kind) {
    case OptimizerKind::kSgd:
      w -= o.learning_rate * g;
      return;
    case OptimizerKind::kMomentum: {
      double& accum = s[0];
      accum = accum * o.momentum + g;
      if (o.use_nesterov) {
        w -= g * o.learning_rate + accum * o.momentum * o.learning_rate;
      } else {
        w -= o.learning_rate * accum;
      }
      return;
    }
    case OptimizerKind::kAdagrad: {
      double& accum = s[0];
      accum += g * g;
      w -= o.learning_rate * g / std::sqrt(accum);
      return;
    }
    case OptimizerKind::kAdam: {
      double& m = s[0];
      double& v = s[1];
      m += (g - m) * (1 - o.beta1);
      v += (g * g - v) * (1 - o.beta2);
      w -= c.adam_lr * m / (std::sqrt(v) + o.epsilon);
      return;
    }
    case OptimizerKind::kRmsProp: {
      double& ms = s[0];
      ms += (g * g - ms) * (1 - o.decay);
      double denominator = ms + o.epsilon;
      double* mom = &s[1];
      if (o.centered) {
        double& mg = s[1];
        mg += (g - mg) * (1 - o.decay);
        denominator = ms - mg * mg + o.epsilon;
        mom = &s[2];
      }
      *mom = *mom * o.momentum + o.learning_rate * g / std::sqrt(denominator);
      w -= *mom;
      return;
    }
    case OptimizerKind::kFtrl: {
      double& accum = s[0];
      double& linear = s[1];
      const double p = -o.learning_rate_power;
      const double g_shrunk = g + 2 * o.l2_shrinkage * w;
      const double new_accum = accum + g * g;
      const double new_pow = p == 0.5 ? std::sqrt(new_accum)
                                      : std::pow(new_accum, p);
      const double old_pow = p == 0.5 ? std::sqrt(accum) : std::pow(accum, p);
      linear += g_shrunk - (new_pow - old_pow) / o.learning_rate * w;
      const double quadratic = new_pow / o.learning_rate + 2 * o.l2;
      w = std::abs(linear) > o.l1
              ? ((linear > 0 ? o.l1 : -o.l1) - linear) / quadratic
              : 0.0;
      accum = new_accum;
      return;
    }
    case OptimizerKind::kNone:
      return;
  }
}

StepConstants ConstantsFor(const ResolvedOptimizer& o, int64_t step) {
  StepConstants c;
  if (o.kind == OptimizerKind::kAdam) {
    const double t = static_cast<double>(step);
    c.adam_lr = o.learning_rate * std::sqrt(1 - std::pow(o.beta2, t)) /
                (1 - std::pow(o.beta1, t));
  }
  return c;
}

// Updates element `i` of var and slots stored as T, with gradient g.
template <typename T>
inline void UpdateAt(const ResolvedOptimizer& o, const StepConstants& c,
                     T* var, const std::vector<T*>& slots, int64_t i,
                     double g) {
  double s[3] = {0, 0, 0};
  for (size_t k = 0; k < slots.size(); ++k) s[k] = slots[k][i];
  double w = var[i];
  UpdateElement(o, c, g, w, s);
  var[i] = static_cast<T>(w);
  for (size_t k = 0; k < slots.size(); ++k) slots[k][i] = static_cast<T>(s[k]);
}

template <typename T>
std::vector<T*> Typed(const std::vector<uint8_t*>& slots) {
  std::vector<T*> out;
  for (uint8_t* s : slots) out.push_back(reinterpret_cast<T*>(s));
  return out;
}

template <typename T>
void DenseLoop(const ResolvedOptimizer& o, int64_t step, uint8_t* var,
               const std::vector<uint8_t*>& slots, const uint8_t* grad,
               int64_t n) {
  const StepConstants c = ConstantsFor(o, step);
  T* v = reinterpret_cast<T*>(var);
  const T* g = reinterpret_cast<const T*>(grad);
  const std::vector<T*> s = Typed<T>(slots);
  for (int64_t i = 0; i < n; ++i) UpdateAt(o, c, v, s, i, g[i]);
}

template <typename T>
void SparseLoop(const ResolvedOptimizer& o, int64_t step, uint8_t* var,
                const std::vector<uint8_t*>& slots, int64_t num_rows,
                int64_t row_elements, const std::vector<int64_t>& rows,
                const std::vector<double>& grad) {
  const StepConstants c = ConstantsFor(o, step);
  T* v = reinterpret_cast<T*>(var);
  const std::vector<T*> s = Typed<T>(slots);
  if (o.kind == OptimizerKind::kAdam) {
    // TF 1.x Adam on IndexedSlices: m and v decay on every row, and every
    // row moves; untouched rows see a zero gradient.
    absl::flat_hash_map<int64_t, size_t> position;
    for (size_t i = 0; i < rows.size(); ++i) position[rows[i]] = i;
    for (int64_t r = 0; r < num_rows; ++r) {
      auto it = position.find(r);
      for (int64_t j = 0; j < row_elements; ++j) {
        const double g =
            it == position.end() ? 0.0 : grad[it->second * row_elements + j];
        UpdateAt(o, c, v, s, r * row_elements + j, g);
      }
    }
    return;
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    for (int64_t j = 0; j < row_elements; ++j) {
      UpdateAt(o, c, v, s, rows[i] * row_elements + j,
               grad[i * row_elements + j]);
    }
  }
}

}  // namespace

absl::string_view OptimizerName(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::kSgd: return "GradientDescent";
    case OptimizerKind::kMomentum: return "Momentum";
    case OptimizerKind::kAdagrad: return "Adagrad";
    case OptimizerKind::kAdam: return "Adam";
    case OptimizerKind::kRmsProp: return "RMSProp";
    case OptimizerKind::kFtrl: return "Ftrl";
    case OptimizerKind::kNone: break;
  }
  return "none";
}

absl::StatusOr<ResolvedOptimizer> ResolveOptimizer(const OptimizerSpec& spec) {
  const std::vector<ParamInfo> params = ParamsOf(spec.kind);
  if (params.empty()) {
    return absl::InvalidArgumentError(
        "no optimizer given: set one of optimizer's sgd, momentum, adagrad, "
        "adam, rmsprop or ftrl, or store one with SetOptimizer");
  }
  std::vector<std::string> known;
  for (const ParamInfo& p : params) known.push_back(p.name);
  std::map<std::string, double> value;
  for (const ParamInfo& p : params) value[p.name] = p.default_value;
  for (const auto& [name, v] : spec.hyperparameters) {
    if (value.count(name) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown ", OptimizerName(spec.kind), " hyperparameter '", name,
          "'; known: ", absl::StrJoin(known, ", ")));
    }
    if (!std::isfinite(v)) return RangeError(spec, name, v, "finite");
    value[name] = v;
  }
  for (const ParamInfo& p : params) {
    if (p.required && spec.hyperparameters.count(p.name) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(OptimizerName(spec.kind), " needs hyperparameter ",
                       p.name, " (as TensorFlow's constructor does)"));
    }
  }
  auto flag = [&](const char* name, bool* out) -> absl::Status {
    const double v = value[name];
    if (v != 0 && v != 1) return RangeError(spec, name, v, "0 or 1");
    *out = v == 1;
    return absl::OkStatus();
  };
  auto at_least = [&](const char* name, double low, double* out) {
    *out = value[name];
    return *out >= low ? absl::OkStatus()
                        : RangeError(spec, name, *out, absl::StrCat(">= ", low));
  };
  ResolvedOptimizer o;
  o.kind = spec.kind;
  o.spec = spec;
  o.learning_rate = value["learning_rate"];
  absl::Status s;
  switch (spec.kind) {
    case OptimizerKind::kSgd:
      break;
    case OptimizerKind::kMomentum:
      s = at_least("momentum", 0, &o.momentum);
      if (s.ok()) s = flag("use_nesterov", &o.use_nesterov);
      o.slots = {{"Momentum", 0.0}};
      break;
    case OptimizerKind::kAdagrad:
      o.initial_accumulator_value = value["initial_accumulator_value"];
      if (o.initial_accumulator_value <= 0) {
        s = RangeError(spec, "initial_accumulator_value",
                       o.initial_accumulator_value, "> 0");
      }
      o.slots = {{"Adagrad", o.initial_accumulator_value}};
      break;
    case OptimizerKind::kAdam:
      o.beta1 = value["beta1"];
      o.beta2 = value["beta2"];
      if (o.beta1 < 0 || o.beta1 >= 1) {
        s = RangeError(spec, "beta1", o.beta1, "in [0, 1)");
      } else if (o.beta2 < 0 || o.beta2 >= 1) {
        s = RangeError(spec, "beta2", o.beta2, "in [0, 1)");
      } else {
        s = at_least("epsilon", 0, &o.epsilon);
      }
      o.slots = {{"Adam", 0.0}, {"Adam_1", 0.0}};
      break;
    case OptimizerKind::kRmsProp:
      s = at_least("decay", 0, &o.decay);
      if (s.ok()) s = at_least("momentum", 0, &o.momentum);
      if (s.ok()) s = at_least("epsilon", 0, &o.epsilon);
      if (s.ok()) s = flag("centered", &o.centered);
      // TF creates "rms" (ones), then "mg" if centered, then "momentum"; the
      // slot names are uniquified in that order.
      o.slots = {{"RMSProp", 1.0}};
      if (o.centered) o.slots.push_back({"RMSProp_1", 0.0});
      o.slots.push_back({o.centered ? "RMSProp_2" : "RMSProp_1", 0.0});
      break;
    case OptimizerKind::kFtrl:
      o.learning_rate_power = value["learning_rate_power"];
      o.initial_accumulator_value = value["initial_accumulator_value"];
      if (o.learning_rate_power > 0) {
        s = RangeError(spec, "learning_rate_power", o.learning_rate_power,
                       "<= 0");
      } else if (o.initial_accumulator_value < 0) {
        s = RangeError(spec, "initial_accumulator_value",
                       o.initial_accumulator_value, ">= 0");
      } else {
        s = at_least("l1_regularization_strength", 0, &o.l1);
        if (s.ok()) s = at_least("l2_regularization_strength", 0, &o.l2);
        if (s.ok()) {
          s = at_least("l2_shrinkage_regularization_strength", 0,
                       &o.l2_shrinkage);
        }
      }
      o.slots = {{"Ftrl", o.initial_accumulator_value}, {"Ftrl_1", 0.0}};
      break;
    case OptimizerKind::kNone:
      break;
  }
  if (!s.ok()) return s;
  if (o.learning_rate <= 0) {
    return RangeError(spec, "learning_rate", o.learning_rate, "> 0");
  }
  return o;
}

absl::Status CheckOptimizerDType(DType dtype, absl::string_view variable) {
  if (dtype == DType::kFloat || dtype == DType::kDouble) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "variable ", variable, " is ", DTypeName(dtype),
      "; server-side optimizers update float32 and float64 variables only"));
}

void ApplyDense(const ResolvedOptimizer& opt, int64_t step, DType dtype,
                uint8_t* var, const std::vector<uint8_t*>& slots,
                const uint8_t* grad, int64_t n) {
  if (dtype == DType::kDouble) {
    DenseLoop<double>(opt, step, var, slots, grad, n);
  } else {
    DenseLoop<float>(opt, step, var, slots, grad, n);
  }
}

void ApplySparse(const ResolvedOptimizer& opt, int64_t step, DType dtype,
                 uint8_t* var, const std::vector<uint8_t*>& slots,
                 int64_t num_rows, int64_t row_elements,
                 const std::vector<int64_t>& rows,
                 const std::vector<double>& grad) {
  if (dtype == DType::kDouble) {
    SparseLoop<double>(opt, step, var, slots, num_rows, row_elements, rows,
                       grad);
  } else {
    SparseLoop<float>(opt, step, var, slots, num_rows, row_elements, rows,
                      grad);
  }
}

}  // namespace varscope::core
