// DataPlane: pull/push, row ranges, sparse rows, every optimizer against an
// independent double-precision reference, atomic multi-variable pushes,
// compare-and-set, synchronous aggregation, and change events.
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <thread>

#include "absl/time/clock.h"
#include "server/core/base/clock.h"
#include "server/core/data/data_plane.h"
#include "server/core/namespace/variable_store.h"
#include "server/core/tensor/idle_trim.h"
#include "server/core/tensor/tensor_memory.h"
#include "tests/test_util.h"

namespace varscope::core {
namespace {

template <typename T>
std::string Bytes(const std::vector<double>& values) {
  std::string out(values.size() * sizeof(T), '\0');
  for (size_t i = 0; i < values.size(); ++i) {
    const T v = static_cast<T>(values[i]);
    std::memcpy(&out[i * sizeof(T)], &v, sizeof(T));
  }
  return out;
}

// An update borrowing `data`, which must outlive the push.
Update Borrowing(const std::string& name, UpdateOp op, const std::string& data,
                 DType dtype) {
  Update u;
  u.name = name;
  u.op = op;
  u.dtype = dtype;
  u.data = data;
  return u;
}

class DataPlaneTest : public ::testing::Test {
 protected:
  // Creates `name` with the given shape and initial values.
  void Make(const std::string& name, Shape shape,
            const std::vector<double>& values, DType dtype = DType::kDouble) {
    GetVariableRequest req;
    req.name = name;
    req.shape = ShapeSpec::Of(shape);
    req.dtype = dtype;
    InitializerSpec init = InitializerSpec::Of(InitializerSpec::Kind::kConstant);
    init.values = values;
    req.initializer = init;
    ASSERT_OK(store_.GetVariable(ScopeContext{}, req));
  }
  std::vector<double> Values(const std::string& name) {
    auto var = store_.Find(name);
    EXPECT_OK(var);
    if (!var.ok()) return {};
    auto value = var->cell->Read().value;
    std::vector<double> out(var->num_bytes / DTypeSize(var->dtype));
    for (size_t i = 0; i < out.size(); ++i) {
      out[i] = LoadElement(var->dtype, value->data(), i);
    }
    return out;
  }
  uint64_t Version(const std::string& name) {
    return store_.Find(name)->cell->version();
  }
  Update Op(const std::string& name, UpdateOp op, const std::string& data,
            DType dtype = DType::kDouble) {
    Update u;
    u.name = name;
    u.op = op;
    u.dtype = dtype;
    kept_.push_back(data);  // Update borrows its bytes
    u.data = kept_.back();
    return u;
  }

  std::deque<std::string> kept_;

  VariableStore store_{StoreOptions{}};
  DataPlane data_{&store_};
};

void ExpectNear(const std::vector<double>& got, const std::vector<double>& want,
                double tolerance, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_NEAR(got[i], want[i], tolerance * std::max(1.0, std::abs(want[i])))
        << what << " element " << i;
  }
}

TEST_F(DataPlaneTest, AssignAddSubWholeAndRows) {
  Make("w", {3, 2}, {0});
  const std::string ones = Bytes<double>({1, 1, 1, 1, 1, 1});
  ASSERT_OK(data_.Push({Op("w", UpdateOp::kAdd, ones)}));
  ASSERT_OK(data_.Push({Op("w", UpdateOp::kAdd, ones)}));
  const std::string row = Bytes<double>({5, 6});
  Update sub = Op("w", UpdateOp::kSub, row);
  sub.rows = RowRange{1, 1};
  ASSERT_OK_AND_ASSIGN(auto r, data_.Push({sub}));
  EXPECT_EQ(r[0].version, 4u);
  EXPECT_EQ(Values("w"), (std::vector<double>{2, 2, -3, -4, 2, 2}));
  const std::string two_rows = Bytes<double>({7, 8, 9, 10});
  Update assign = Op("w", UpdateOp::kAssign, two_rows);
  assign.rows = RowRange{1, 2};
  ASSERT_OK(data_.Push({assign}));
  EXPECT_EQ(Values("w"), (std::vector<double>{2, 2, 7, 8, 9, 10}));

  ASSERT_OK_AND_ASSIGN(ReadResult rows, data_.Read({"w:0", RowRange{2, 1}, 0}));
  EXPECT_EQ(rows.data_shape, (Shape{1, 2}));
  EXPECT_EQ(rows.length, 16);
  double got[2];
  std::memcpy(got, rows.buffer->data() + rows.offset, 16);
  EXPECT_EQ(got[0], 9);
  EXPECT_EQ(got[1], 10);
  ASSERT_OK_AND_ASSIGN(ReadResult same, data_.Read({"w", std::nullopt, 5}));
  EXPECT_TRUE(same.unchanged);
  EXPECT_EQ(same.buffer, nullptr);
  ASSERT_OK_AND_ASSIGN(ReadResult newer, data_.Read({"w", std::nullopt, 4}));
  EXPECT_FALSE(newer.unchanged);
  EXPECT_EQ(newer.length, 48);
}

TEST_F(DataPlaneTest, IntegerAndHalfArithmetic) {
  Make("i", {3}, {1, 2, 3}, DType::kInt32);
  ASSERT_OK(data_.Push({Op("i", UpdateOp::kAdd, Bytes<int32_t>({10, 20, 30}),
                           DType::kInt32)}));
  EXPECT_EQ(Values("i"), (std::vector<double>{11, 22, 33}));
  Make("h", {2}, {1.5, -2}, DType::kHalf);
  std::string half(4, '\0');
  const uint16_t h[2] = {FloatToHalf(0.25f), FloatToHalf(1.0f)};
  std::memcpy(half.data(), h, 4);
  ASSERT_OK(data_.Push({Op("h", UpdateOp::kSub, half, DType::kHalf)}));
  EXPECT_EQ(Values("h"), (std::vector<double>{1.25, -3}));
}

TEST_F(DataPlaneTest, BadInputsLeaveVariableUnchanged) {
  Make("w", {4, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  Make("u", {2}, {0, 0});
  const auto before = Values("w");
  const uint64_t w_version = Version("w"), u_version = Version("u");
  const std::string row = Bytes<double>({1, 1});
  EXPECT_CODE(data_.Push({Op("w", UpdateOp::kAssign, Bytes<double>({1, 2, 3}))}),
              kInvalidArgument);  // wrong byte length
  EXPECT_CODE(data_.Push({Op("w", UpdateOp::kAdd,
                             Bytes<float>({1, 2, 3, 4, 5, 6, 7, 8}),
                             DType::kFloat)}),
              kInvalidArgument);  // dtype mismatch
  Update out_of_range = Op("w", UpdateOp::kAdd, row + row);
  out_of_range.indices = std::vector<int64_t>{1, 4};
  auto s = data_.Push({out_of_range});
  EXPECT_CODE(s, kInvalidArgument);
  EXPECT_NE(std::string(s.status().message()).find("index 4 is out of range"),
            std::string::npos);
  Update bad_rows = Op("w", UpdateOp::kAdd, row + row);
  bad_rows.rows = RowRange{3, 2};
  EXPECT_CODE(data_.Push({bad_rows}), kOutOfRange);
  EXPECT_CODE(data_.Read({"w", RowRange{-1, 1}, 0}), kOutOfRange);
  Update unknown_param =
      Op("w", UpdateOp::kApplyGradient, Bytes<double>(std::vector<double>(8, 1)));
  unknown_param.optimizer = OptimizerSpec{
      OptimizerKind::kSgd, {{"learning_rate", 0.1}, {"lerning_rate", 1}}};
  s = data_.Push({unknown_param});
  EXPECT_CODE(s, kInvalidArgument);
  EXPECT_NE(std::string(s.status().message()).find("lerning_rate"),
            std::string::npos);
  Update no_optimizer =
      Op("w", UpdateOp::kApplyGradient, Bytes<double>(std::vector<double>(8, 1)));
  EXPECT_CODE(data_.Push({no_optimizer}), kFailedPrecondition);
  // An atomic push: the good first update is not applied either.
  EXPECT_CODE(data_.Push({Op("u", UpdateOp::kAdd, Bytes<double>({1, 1})),
                          Op("w", UpdateOp::kAdd, Bytes<double>({1}))}),
              kInvalidArgument);
  EXPECT_CODE(data_.Push({Op("u", UpdateOp::kAdd, Bytes<double>({1, 1})),
                          Op("u:0", UpdateOp::kAdd, Bytes<double>({1, 1}))}),
              kInvalidArgument);  // same variable twice
  EXPECT_CODE(data_.Push({Op("nope", UpdateOp::kAdd, row)}), kNotFound);
  EXPECT_EQ(Values("w"), before);
  EXPECT_EQ(Values("u"), (std::vector<double>{0, 0}));
  EXPECT_EQ(Version("w"), w_version);
  EXPECT_EQ(Version("u"), u_version);
  EXPECT_EQ(store_.num_variables(), 2u);  // no slots were created
}

TEST_F(DataPlaneTest, CompareAndSet) {
  Make("c", {1}, {0});
  Update first = Op("c", UpdateOp::kAdd, Bytes<double>({1}));
  first.expected_version = 1;
  ASSERT_OK(data_.Push({first}));
  Update stale = first;
  stale.data = first.data;
  auto conflict = data_.Push({stale});
  EXPECT_CODE(conflict, kAborted);
  EXPECT_EQ(Values("c"), (std::vector<double>{1}));
  stale.expected_version = 2;
  EXPECT_OK(data_.Push({stale}));
  EXPECT_EQ(Values("c"), (std::vector<double>{2}));
}

TEST_F(DataPlaneTest, ConcurrentAddsSumExactlyAndCasDetectsConflicts) {
  Make("sum", {4}, {0}, DType::kInt64);
  Make("cas", {}, {0}, DType::kInt64);
  const std::string ones = Bytes<int64_t>({1, 1, 1, 1});
  const std::string one = Bytes<int64_t>({1});
  std::atomic<int> cas_wins{0}, cas_conflicts{0};
  absl::Mutex mu;
  std::vector<uint64_t> sum_versions;  // one new version per push
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        ASSERT_OK_AND_ASSIGN(
            auto pushed,
            data_.Push({Borrowing("sum", UpdateOp::kAdd, ones, DType::kInt64)}));
        {
          absl::MutexLock lock(&mu);
          sum_versions.push_back(pushed[0].version);
        }
        // Read-modify-write with CAS: an increment that loses a race is
        // reported, never lost silently.
        const uint64_t seen = Version("cas");
        Update inc = Borrowing("cas", UpdateOp::kAdd, one, DType::kInt64);
        inc.expected_version = seen;
        auto r = data_.Push({inc});
        if (r.ok()) {
          ++cas_wins;
        } else {
          ASSERT_EQ(r.status().code(), absl::StatusCode::kAborted);
          ++cas_conflicts;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(Values("sum"), (std::vector<double>{8000, 8000, 8000, 8000}));
  EXPECT_EQ(Values("cas"), (std::vector<double>{double(cas_wins.load())}));
  EXPECT_EQ(cas_wins + cas_conflicts, 8000);
  std::sort(sum_versions.begin(), sum_versions.end());
  EXPECT_EQ(std::unique(sum_versions.begin(), sum_versions.end()),
            sum_versions.end());
  EXPECT_EQ(Version("sum"), sum_versions.back());
}

// ---- Optimizers against an independent double-precision reference. ----

// The reference keeps var and slots as plain doubles and follows the update
// equations of TensorFlow 1.x's optimizer docs, one element at a time.
struct Reference {
  OptimizerKind kind;
  std::map<std::string, double> p;
  std::vector<double> var;
  std::vector<std::vector<double>> slots;
  int t = 0;

  double P(const std::string& k, double d) const {
    auto it = p.find(k);
    return it == p.end() ? d : it->second;
  }
  void Init() {
    const size_t n = var.size();
    switch (kind) {
      case OptimizerKind::kMomentum: slots = {std::vector<double>(n, 0)}; break;
      case OptimizerKind::kAdagrad:
        slots = {std::vector<double>(n, P("initial_accumulator_value", 0.1))};
        break;
      case OptimizerKind::kAdam: slots = {std::vector<double>(n, 0), std::vector<double>(n, 0)}; break;
      case OptimizerKind::kRmsProp:
        slots = {std::vector<double>(n, 1.0)};
        if (P("centered", 0)) slots.push_back(std::vector<double>(n, 0));
        slots.push_back(std::vector<double>(n, 0));
        break;
      case OptimizerKind::kFtrl:
        slots = {std::vector<double>(n, P("initial_accumulator_value", 0.1)),
                 std::vector<double>(n, 0)};
        break;
      default: break;
    }
  }
  // One element i with gradient g.
  void Element(size_t i, double g) {
    const double lr = P("learning_rate", 0.001);
    double& x = var[i];
    switch (kind) {
      case OptimizerKind::kSgd: x = x - lr * g; break;
      case OptimizerKind::kMomentum: {
        const double mu = P("momentum", 0);
        slots[0][i] = mu * slots[0][i] + g;
        x = P("use_nesterov", 0) ? x - lr * (g + mu * slots[0][i])
                                 : x - lr * slots[0][i];
        break;
      }
      case OptimizerKind::kAdagrad:
        slots[0][i] = slots[0][i] + g * g;
        x = x - lr * g / std::sqrt(slots[0][i]);
        break;
      case OptimizerKind::kAdam: {
        const double b1 = P("beta1", 0.9), b2 = P("beta2", 0.999),
                     eps = P("epsilon", 1e-8);
        slots[0][i] = b1 * slots[0][i] + (1 - b1) * g;
        slots[1][i] = b2 * slots[1][i] + (1 - b2) * g * g;
        const double alpha =
            lr * std::sqrt(1 - std::pow(b2, t)) / (1 - std::pow(b1, t));
        x = x - alpha * slots[0][i] / (std::sqrt(slots[1][i]) + eps);
        break;
      }
      case OptimizerKind::kRmsProp: {
        const double rho = P("decay", 0.9), mu = P("momentum", 0),
                     eps = P("epsilon", 1e-10);
        const bool centered = P("centered", 0) != 0;
        auto& ms = slots[0];
        auto& mom = slots[centered ? 2 : 1];
        ms[i] = rho * ms[i] + (1 - rho) * g * g;
        double denom = ms[i] + eps;
        if (centered) {
          slots[1][i] = rho * slots[1][i] + (1 - rho) * g;
          denom = ms[i] - slots[1][i] * slots[1][i] + eps;
        }
        mom[i] = mu * mom[i] + lr * g / std::sqrt(denom);
        x = x - mom[i];
        break;
      }
      case OptimizerKind::kFtrl: {
        const double power = P("learning_rate_power", -0.5);
        const double l1 = P("l1_regularization_strength", 0);
        const double l2 = P("l2_regularization_strength", 0);
        const double shrink = P("l2_shrinkage_regularization_strength", 0);
        double& n = slots[0][i];
        double& z = slots[1][i];
        const double n_new = n + g * g;
        const double sigma =
            (std::pow(n_new, -power) - std::pow(n, -power)) / lr;
        z = z + (g + 2 * shrink * x) - sigma * x;
        n = n_new;
        x = std::abs(z) <= l1
                ? 0.0
                : -(z - (z > 0 ? 1 : -1) * l1) /
                      (std::pow(n_new, -power) / lr + 2 * l2);
        break;
      }
      default: break;
    }
  }
  void Dense(const std::vector<double>& g) {
    ++t;
    for (size_t i = 0; i < var.size(); ++i) Element(i, g[i]);
  }
  // Sparse: duplicate indices summed first; Adam moves every row.
  void Sparse(const std::vector<int64_t>& idx, const std::vector<double>& g,
              size_t cols) {
    ++t;
    std::map<int64_t, std::vector<double>> sum;
    for (size_t k = 0; k < idx.size(); ++k) {
      auto& row = sum[idx[k]];
      row.resize(cols, 0);
      for (size_t j = 0; j < cols; ++j) row[j] += g[k * cols + j];
    }
    const size_t rows = var.size() / cols;
    for (size_t r = 0; r < rows; ++r) {
      auto it = sum.find(r);
      if (it == sum.end() && kind != OptimizerKind::kAdam) continue;
      for (size_t j = 0; j < cols; ++j) {
        Element(r * cols + j, it == sum.end() ? 0.0 : it->second[j]);
      }
    }
  }
};

struct OptimizerCase {
  const char* label;
  OptimizerKind kind;
  std::map<std::string, double> params;
  std::vector<std::string> slot_suffixes;
};

std::vector<OptimizerCase> AllOptimizers() {
  return {
      {"Sgd", OptimizerKind::kSgd, {{"learning_rate", 0.1}}, {}},
      {"Momentum", OptimizerKind::kMomentum,
       {{"learning_rate", 0.05}, {"momentum", 0.9}}, {"Momentum"}},
      {"Nesterov", OptimizerKind::kMomentum,
       {{"learning_rate", 0.05}, {"momentum", 0.9}, {"use_nesterov", 1}},
       {"Momentum"}},
      {"Adagrad", OptimizerKind::kAdagrad,
       {{"learning_rate", 0.3}, {"initial_accumulator_value", 0.2}}, {"Adagrad"}},
      {"Adam", OptimizerKind::kAdam,
       {{"learning_rate", 0.01}, {"beta1", 0.8}}, {"Adam", "Adam_1"}},
      {"RmsProp", OptimizerKind::kRmsProp,
       {{"learning_rate", 0.01}, {"momentum", 0.5}}, {"RMSProp", "RMSProp_1"}},
      {"RmsPropCentered", OptimizerKind::kRmsProp,
       {{"learning_rate", 0.01}, {"momentum", 0.5}, {"centered", 1}},
       {"RMSProp", "RMSProp_1", "RMSProp_2"}},
      {"Ftrl", OptimizerKind::kFtrl,
       {{"learning_rate", 0.5}, {"l1_regularization_strength", 0.01},
        {"l2_regularization_strength", 0.02},
        {"l2_shrinkage_regularization_strength", 0.01}},
       {"Ftrl", "Ftrl_1"}},
      {"FtrlPower", OptimizerKind::kFtrl,
       {{"learning_rate", 0.5}, {"learning_rate_power", -0.7}},
       {"Ftrl", "Ftrl_1"}},
  };
}

class OptimizerTest : public DataPlaneTest,
                      public ::testing::WithParamInterface<OptimizerCase> {};

double Grad(int step, size_t i) {
  return std::sin(1.7 * step + 0.3 * i) * (1 + 0.1 * i);
}

TEST_P(OptimizerTest, DenseMatchesReferenceForSixSteps) {
  const OptimizerCase& c = GetParam();
  const std::vector<double> init = {0.5, -1.0, 2.0, 0.25, -0.75, 1.5};
  Make("v", {2, 3}, init);
  Reference ref{c.kind, c.params, init, {}, 0};
  ref.Init();
  for (int step = 1; step <= 6; ++step) {
    std::vector<double> g(6);
    for (size_t i = 0; i < 6; ++i) g[i] = Grad(step, i);
    const std::string bytes = Bytes<double>(g);
    Update u = Op("v", UpdateOp::kApplyGradient, bytes);
    u.optimizer = OptimizerSpec{c.kind, c.params};
    ASSERT_OK(data_.Push({u}));
    ref.Dense(g);
    ExpectNear(Values("v"), ref.var, 1e-12, absl::StrCat(c.label, " step ", step));
    for (size_t s = 0; s < c.slot_suffixes.size(); ++s) {
      ExpectNear(Values("v/" + c.slot_suffixes[s]), ref.slots[s], 1e-12,
                 absl::StrCat(c.label, " slot ", c.slot_suffixes[s]));
    }
  }
  // Slots are real, non-trainable variables named as TensorFlow names them.
  ListOptions trainable;
  trainable.collection = kTrainableVariables;
  EXPECT_EQ(store_.List(trainable).variables.size(), 1u);
  EXPECT_EQ(store_.num_variables(), 1 + c.slot_suffixes.size());
}

TEST_P(OptimizerTest, SparseMatchesReferenceForSixSteps) {
  const OptimizerCase& c = GetParam();
  const size_t rows = 5, cols = 2;
  std::vector<double> init(rows * cols);
  for (size_t i = 0; i < init.size(); ++i) init[i] = 0.1 * i - 0.4;
  Make("emb", {5, 2}, init);
  Reference ref{c.kind, c.params, init, {}, 0};
  ref.Init();
  // Store the optimizer on the variable this time.
  TrainingConfig config;
  config.optimizer = OptimizerSpec{c.kind, c.params};
  ASSERT_OK(data_.SetTraining({"emb"}, config));
  for (int step = 1; step <= 6; ++step) {
    const std::vector<int64_t> idx = {step % 5, 3, (step * 2) % 5, 3};
    std::vector<double> g(idx.size() * cols);
    for (size_t i = 0; i < g.size(); ++i) g[i] = Grad(step, i);
    const std::string bytes = Bytes<double>(g);
    Update u = Op("emb", UpdateOp::kApplyGradient, bytes);
    u.indices = idx;
    ASSERT_OK(data_.Push({u}));
    ref.Sparse(idx, g, cols);
    ExpectNear(Values("emb"), ref.var, 1e-12,
               absl::StrCat(c.label, " sparse step ", step));
    for (size_t s = 0; s < c.slot_suffixes.size(); ++s) {
      ExpectNear(Values("emb/" + c.slot_suffixes[s]), ref.slots[s], 1e-12,
                 absl::StrCat(c.label, " sparse slot ", c.slot_suffixes[s]));
    }
  }
  ASSERT_OK_AND_ASSIGN(TrainingInfo info, data_.DescribeTraining("emb"));
  EXPECT_EQ(info.optimizer_steps, 6);
  EXPECT_EQ(info.slots.size(), c.slot_suffixes.size());
}

TEST_P(OptimizerTest, Float32FollowsReference) {
  const OptimizerCase& c = GetParam();
  const std::vector<double> init = {0.5, -1.0, 2.0};
  Make("f", {3}, init, DType::kFloat);
  Reference ref{c.kind, c.params, init, {}, 0};
  ref.Init();
  for (int step = 1; step <= 5; ++step) {
    std::vector<double> g = {Grad(step, 0), Grad(step, 1), Grad(step, 2)};
    const std::string bytes = Bytes<float>(g);
    for (double& x : g) x = static_cast<float>(x);
    Update u = Op("f", UpdateOp::kApplyGradient, bytes, DType::kFloat);
    u.optimizer = OptimizerSpec{c.kind, c.params};
    ASSERT_OK(data_.Push({u}));
    ref.Dense(g);
  }
  ExpectNear(Values("f"), ref.var, 1e-4, c.label);
}

INSTANTIATE_TEST_SUITE_P(All, OptimizerTest,
                         ::testing::ValuesIn(AllOptimizers()),
                         [](const auto& info) { return info.param.label; });

TEST(OptimizerValidation, RejectsBadHyperparameters) {
  EXPECT_CODE(ResolveOptimizer({OptimizerKind::kSgd, {}}), kInvalidArgument);
  EXPECT_CODE(ResolveOptimizer({OptimizerKind::kNone, {}}), kInvalidArgument);
  EXPECT_CODE(ResolveOptimizer({OptimizerKind::kMomentum, {{"learning_rate", 1}}}),
              kInvalidArgument);  // momentum is required
  EXPECT_CODE(ResolveOptimizer({OptimizerKind::kAdam, {{"beta1", 1.0}}}),
              kInvalidArgument);
  EXPECT_CODE(ResolveOptimizer({OptimizerKind::kAdam, {{"epsilon", NAN}}}),
              kInvalidArgument);
  EXPECT_CODE(ResolveOptimizer({OptimizerKind::kFtrl,
                                {{"learning_rate", 1}, {"learning_rate_power", 0.5}}}),
              kInvalidArgument);
  EXPECT_CODE(ResolveOptimizer({OptimizerKind::kAdagrad,
                                {{"learning_rate", 1}, {"initial_accumulator_value", 0}}}),
              kInvalidArgument);
  EXPECT_CODE(ResolveOptimizer({OptimizerKind::kMomentum,
                                {{"learning_rate", 1}, {"momentum", 0.9}, {"use_nesterov", 2}}}),
              kInvalidArgument);
  EXPECT_OK(ResolveOptimizer({OptimizerKind::kAdam, {}}));
}

TEST_F(DataPlaneTest, OptimizerNeedsFloatingVariable) {
  Make("i", {2}, {1, 2}, DType::kInt32);
  Update u = Op("i", UpdateOp::kApplyGradient, Bytes<int32_t>({1, 1}), DType::kInt32);
  u.optimizer = OptimizerSpec{OptimizerKind::kSgd, {{"learning_rate", 0.1}}};
  EXPECT_CODE(data_.Push({u}), kInvalidArgument);
}

// ---- Synchronous aggregation (SyncReplicasOptimizer). ----

TEST_F(DataPlaneTest, SyncAggregatesFourReplicasAndDropsStale) {
  Make("w", {2}, {1.0, 2.0});
  TrainingConfig config;
  config.optimizer = OptimizerSpec{OptimizerKind::kSgd, {{"learning_rate", 0.5}}};
  config.replicas_to_aggregate = 4;
  ASSERT_OK(data_.SetTraining({"w"}, config));
  const uint64_t initial = Version("w");
  auto grad = [&](int64_t step, double a, double b) {
    Update u = Op("w", UpdateOp::kApplyGradient, Bytes<double>({a, b}));
    u.step = step;
    return data_.Push({u});
  };
  // Step 0: three gradients wait, the fourth applies the mean once.
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK_AND_ASSIGN(auto r, grad(0, i, 10 * i));
    EXPECT_FALSE(r[0].applied);
    EXPECT_EQ(r[0].accumulated, i + 1);
    EXPECT_EQ(Version("w"), initial);
  }
  ASSERT_OK_AND_ASSIGN(auto applied, grad(0, 3, 30));
  EXPECT_TRUE(applied[0].applied);
  EXPECT_EQ(applied[0].sync_step, 1);
  EXPECT_GT(applied[0].version, initial);
  EXPECT_EQ(Version("w"), applied[0].version);
  // mean = (1.5, 15) -> w - 0.5 * mean
  EXPECT_EQ(Values("w"), (std::vector<double>{1.0 - 0.75, 2.0 - 7.5}));
  // A straggler's gradient for step 0 is stale: dropped and counted.
  ASSERT_OK_AND_ASSIGN(auto stale, grad(0, 100, 100));
  EXPECT_TRUE(stale[0].stale);
  EXPECT_FALSE(stale[0].applied);
  EXPECT_EQ(stale[0].stale_dropped, 1);
  EXPECT_EQ(Values("w"), (std::vector<double>{0.25, -5.5}));
  // Without a step the push is refused.
  EXPECT_CODE(data_.Push({Op("w", UpdateOp::kApplyGradient, Bytes<double>({1, 1}))}),
              kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(TrainingInfo info, data_.DescribeTraining("w"));
  EXPECT_EQ(info.sync_step, 1);
  EXPECT_EQ(info.stale_dropped, 1);
  EXPECT_EQ(info.accumulated, 0);
}

// ---- Change events. ----

class Recorder : public ChangeListener {
 public:
  void OnChange(const ChangeEvent& e) override {
    absl::MutexLock lock(&mu);
    events.push_back(e);
  }
  absl::Mutex mu;
  std::vector<ChangeEvent> events;
};

TEST_F(DataPlaneTest, FeedReportsCreateUpdateDeleteUnderPrefix) {
  auto rec = std::make_shared<Recorder>();
  const uint64_t id = store_.feed().Subscribe(ChangeMatch::Under("a"), rec);
  Make("a/w", {1}, {0});
  Make("ab", {1}, {0});  // not under "a/"
  ASSERT_OK_AND_ASSIGN(auto pushed,
                       data_.Push({Op("a/w", UpdateOp::kAdd, Bytes<double>({1}))}));
  ASSERT_OK(store_.Delete("a/w"));
  store_.feed().Unsubscribe(id);
  Make("a/x", {1}, {0});
  absl::MutexLock lock(&rec->mu);
  ASSERT_EQ(rec->events.size(), 3u);
  EXPECT_EQ(rec->events[0].kind, ChangeKind::kCreated);
  EXPECT_EQ(rec->events[1].kind, ChangeKind::kUpdated);
  EXPECT_EQ(rec->events[1].version, pushed[0].version);
  EXPECT_EQ(rec->events[2].kind, ChangeKind::kDeleted);
  EXPECT_EQ(rec->events[2].name, "a/w");
}

TEST_F(DataPlaneTest, GatherAndScatter) {
  Make("emb", {4, 2}, {0, 1, 2, 3, 4, 5, 6, 7});
  ASSERT_OK_AND_ASSIGN(GatherResult g, data_.Gather("emb", {3, 0, 3}));
  EXPECT_EQ(g.shape, (Shape{3, 2}));
  std::vector<double> got(6);
  std::memcpy(got.data(), g.buffer->data(), 48);
  EXPECT_EQ(got, (std::vector<double>{6, 7, 0, 1, 6, 7}));
  EXPECT_CODE(data_.Gather("emb", {4}), kInvalidArgument);
  Update add = Op("emb", UpdateOp::kAdd, Bytes<double>({1, 1, 10, 10, 1, 1}));
  add.indices = std::vector<int64_t>{1, 2, 1};
  ASSERT_OK(data_.Push({add}));
  EXPECT_EQ(Values("emb"), (std::vector<double>{0, 1, 4, 5, 14, 15, 6, 7}));
  Update assign = Op("emb", UpdateOp::kAssign, Bytes<double>({9, 9}));
  assign.indices = std::vector<int64_t>{0};
  ASSERT_OK(data_.Push({assign}));
  EXPECT_EQ(Values("emb")[0], 9);
}

TEST_F(DataPlaneTest, ReadersKeepTheirSnapshotAcrossWrites) {
  Make("big", {1 << 18}, {1});  // 2 MiB: above the in-place limit
  Make("small", {4}, {1});
  for (const char* name : {"big", "small"}) {
    ASSERT_OK_AND_ASSIGN(ReadResult before, data_.Read({name, std::nullopt, 0}));
    const std::string add(before.length, '\0');  // adds 0.0
    std::string twos = Bytes<double>(
        std::vector<double>(before.length / sizeof(double), 2.0));
    ASSERT_OK(data_.Push({Op(name, UpdateOp::kAdd, twos)}));
    double first;
    std::memcpy(&first, before.buffer->data(), sizeof first);
    EXPECT_EQ(first, 1.0) << name << ": a held snapshot must never change";
    EXPECT_EQ(Values(name)[0], 3.0);
  }
}

}  // namespace
}  // namespace varscope::core

namespace varscope::core {
namespace {

TEST(BufferPool, RecyclesWarmBuffersAndTrimsIdleOnes) {
  BufferPoolOptions options;
  options.min_bytes = 1024;
  options.max_cached_bytes = 10 * 4096;
  options.keep = absl::Milliseconds(50);
  FakeClock clock;
  options.clock = &clock;
  auto pool = BufferPool::Create(options);
  const uint8_t* first;
  {
    auto a = TensorBuffer::Allocate(4096, pool.get());
    first = a->data();
  }
  EXPECT_EQ(pool->cached_bytes(), 4096u);
  auto b = TensorBuffer::Allocate(4096, pool.get());
  EXPECT_EQ(b->data(), first);  // the same block, warm
  EXPECT_EQ(pool->cached_bytes(), 0u);
  b.reset();
  { auto other_size = TensorBuffer::Allocate(8192, pool.get()); }
  EXPECT_EQ(pool->cached_bytes(), 4096u + 8192u);
  pool->Trim();  // not yet
  EXPECT_EQ(pool->cached_bytes(), 4096u + 8192u);
  clock.Advance(absl::Milliseconds(60));
  pool->Trim();
  EXPECT_EQ(pool->cached_bytes(), 0u);
  // Never more than the cap, and small buffers bypass the pool.
  for (int i = 0; i < 20; ++i) TensorBuffer::Allocate(4096, pool.get());
  EXPECT_LE(pool->cached_bytes(), options.max_cached_bytes);
  { auto small = TensorBuffer::Allocate(100, pool.get()); }
  EXPECT_LE(pool->cached_bytes(), options.max_cached_bytes);
}

int64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}


TEST(TensorMemory, LargeBuffersAreAlignedZeroedAndGoBackWhenFreed) {
  // Sanitizer builds keep large tensors on their allocator (ASan holds
  // freed memory in quarantine), so RSS says nothing there.
  const bool check_rss = kLargeTensorsMapped;
  int64_t before = ResidentBytes();
  // Through malloc, freeing the 24 MiB buffer would raise glibc's mmap
  // threshold, and the 16 MiB ones would then stay resident in the heap
  // after being freed.
  for (size_t size : {size_t{24} << 20, size_t{16} << 20, size_t{16} << 20,
                      (size_t{16} << 20) + 4096}) {
    uint8_t* p = AllocateTensorBytes(size);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % (size_t{2} << 20), 0u);
    EXPECT_EQ(p[0], 0);
    EXPECT_EQ(p[size - 1], 0);
    std::memset(p, 1, size);
    FreeTensorBytes(p, size);
  }
  if (check_rss) {
    EXPECT_LT(ResidentBytes() - before, int64_t{4} << 20);
  }
  // Small sizes (malloc's: any allocator may keep what they free)...
  for (size_t size : {size_t{0}, size_t{100}, kMappedBytes - 1}) {
    uint8_t* p = AllocateTensorBytes(size);
    ASSERT_NE(p, nullptr);
    std::memset(p, 2, size);
    FreeTensorBytes(p, size);
  }
  // ...then page-mapped and huge-page-mapped sizes at their edges: a free
  // of the wrong length would leave pages behind.
  before = ResidentBytes();
  for (int repeat = 0; repeat < 4; ++repeat) {
    for (size_t size : {kMappedBytes, kMappedBytes + 1, (size_t{2} << 20) - 1,
                        size_t{2} << 20, (size_t{2} << 20) + 1}) {
      uint8_t* p = AllocateTensorBytes(size);
      std::memset(p, 2, size);
      FreeTensorBytes(p, size);
    }
  }
  if (check_rss) {
    EXPECT_LT(ResidentBytes() - before, int64_t{1} << 20);
  }
  EXPECT_THROW(AllocateTensorBytes(SIZE_MAX - 10), std::bad_alloc);
}

TEST(IdleTrim, TrimsOnceAfterTrafficStopsAndOnAPeriod) {
  int trims = 0;
  IdleTrimOptions options;
  options.idle = absl::Seconds(2);  // 10 s by default; 2 keeps the test short
  options.period = absl::Seconds(30);
  options.trim = [&] { ++trims; };
  IdleTrim trim(options);
  absl::Time t = absl::FromUnixSeconds(1000);
  const auto tick = [&](int64_t activity) {
    t += absl::Seconds(1);
    return trim.Tick(t, activity);
  };
  EXPECT_TRUE(tick(0));  // the first periodic trim
  EXPECT_FALSE(tick(0));
  // Traffic: no trim while it flows, one trim 2 s after it stops.
  EXPECT_FALSE(tick(10));
  EXPECT_FALSE(tick(20));
  EXPECT_FALSE(tick(20));
  EXPECT_TRUE(tick(20));
  for (int i = 0; i < 20; ++i) EXPECT_FALSE(tick(20));
  EXPECT_EQ(trims, 2);
  // Busy for longer than the period: the periodic trim still comes.
  int busy_trims = 0;
  for (int i = 0; i < 30; ++i) busy_trims += tick(100 + i) ? 1 : 0;
  EXPECT_EQ(busy_trims, 1);
}

TEST(BufferPool, BuffersOutliveTheirPool) {
  auto pool = BufferPool::Create({});
  auto buffer = TensorBuffer::Allocate(2 << 20, pool.get());
  pool.reset();  // the buffer keeps the pool alive
  buffer.reset();
}

}  // namespace
}  // namespace varscope::core
