// The case that motivates variable sharing: an RNN unrolled for T steps.
// Its cell opens the same variable scope at every step and reuses the
// weights after step 0, exactly like
//
//   with tf.variable_scope("rnn") as scope:
//     for t in range(T):
//       if t > 0: scope.reuse_variables()
//       h = cell(x[t], h)   # cell: tf.variable_scope("cell"), get_variable
//
// The store ends with one set of cell variables. Exits 1 otherwise.
//
// Usage: rnn_shared_weights --server=127.0.0.1:50051
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "varscope/client.h"

ABSL_FLAG(std::string, server, "127.0.0.1:50051", "varscoped address");
ABSL_FLAG(int, steps, 8, "time steps to unroll");

namespace {

constexpr int kInput = 3;
constexpr int kHidden = 5;

int Fail(const absl::Status& s, const char* what) {
  std::fprintf(stderr, "%s: %s\n", what, s.ToString().c_str());
  return 1;
}

// One cell application: h' = tanh(x W_xh + h W_hh + b), with the weights
// fetched by name in the current scope (created at step 0, reused later).
absl::StatusOr<std::vector<float>> Cell(varscope::Client& client,
                                        const std::vector<float>& x,
                                        const std::vector<float>& h,
                                        std::vector<std::string>* names) {
  varscope::VariableScope cell(client, "cell");
  auto w_xh = client.GetVariable("w_xh", {kInput, kHidden}, varscope::DataType::kFloat);
  auto w_hh = client.GetVariable("w_hh", {kHidden, kHidden}, varscope::DataType::kFloat);
  varscope::VariableOptions zeros;
  zeros.shape = {kHidden};
  zeros.dtype = varscope::DataType::kFloat;
  zeros.initializer = varscope::Initializer::Zeros();
  auto b = client.GetVariable("b", zeros);
  if (!w_xh.ok()) return w_xh.status();
  if (!w_hh.ok()) return w_hh.status();
  if (!b.ok()) return b.status();
  names->push_back(w_xh->name() + (w_xh->created() ? " (created)" : " (reused)"));
  auto wx = w_xh->Pull<float>();
  auto wh = w_hh->Pull<float>();
  auto bias = b->Pull<float>();
  if (!wx.ok()) return wx.status();
  if (!wh.ok()) return wh.status();
  if (!bias.ok()) return bias.status();
  std::vector<float> out(kHidden);
  for (int j = 0; j < kHidden; ++j) {
    float z = (*bias)[j];
    for (int i = 0; i < kInput; ++i) z += x[i] * (*wx)[i * kHidden + j];
    for (int i = 0; i < kHidden; ++i) z += h[i] * (*wh)[i * kHidden + j];
    out[j] = std::tanh(z);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  auto client = varscope::Client::Connect(absl::GetFlag(FLAGS_server));
  if (!client.ok()) return Fail(client.status(), "connect");
  std::vector<float> h(kHidden, 0.f);
  std::vector<std::string> names;
  {
    auto rnn = varscope::VariableScope::Open(**client, "rnn");
    if (!rnn.ok()) return Fail(rnn.status(), "open rnn");
    for (int t = 0; t < absl::GetFlag(FLAGS_steps); ++t) {
      if (t == 1) {
        if (absl::Status s = rnn->ReuseVariables(); !s.ok()) {
          return Fail(s, "reuse_variables");
        }
      }
      std::vector<float> x = {std::sin(0.5f * t), std::cos(0.5f * t), 1.f};
      auto next = Cell(**client, x, h, &names);
      if (!next.ok()) return Fail(next.status(), "cell");
      h = *next;
      std::printf("t=%d %s h[0]=%.4f\n", t, names.back().c_str(), h[0]);
    }
  }
  auto vars = (*client)->ListVariables("rnn");
  if (!vars.ok()) return Fail(vars.status(), "list");
  std::printf("variables under rnn/:\n");
  for (const varscope::Variable& v : *vars) std::printf("  %s\n", v.name().c_str());
  if (vars->size() != 3) {
    std::fprintf(stderr, "expected one set of 3 cell variables, found %zu\n",
                 vars->size());
    return 1;
  }
  return 0;
}
