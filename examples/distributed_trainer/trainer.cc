// A chief and N workers train softmax regression on a deterministic
// synthetic data set, sharing weights only through varscoped, by name,
// inside the variable scope "softmax".
//
//   chief:   creates softmax/weights and softmax/bias, stores the optimizer
//            (and, in sync mode, the replica count), waits for every worker
//            to finish, then prints the loss on the whole data set.
//   workers: open the scope with REUSE (waiting for the chief to create the
//            variables), then loop: pull weights, compute the gradient of a
//            mini-batch of their shard, push it (APPLY_GRADIENT on both
//            variables in one atomic push). In sync mode the server averages
//            N workers' gradients per step; workers wait for each step.
//
// Usage:
//   trainer --server=127.0.0.1:50051 --role=chief --workers=3 --mode=sync
//   trainer --server=127.0.0.1:50051 --role=worker --task=0 --mode=sync
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "varscope/client.h"

ABSL_FLAG(std::string, server, "127.0.0.1:50051", "varscoped address");
ABSL_FLAG(std::string, role, "worker", "chief or worker");
ABSL_FLAG(int, task, 0, "worker index, 0..workers-1");
ABSL_FLAG(int, workers, 3, "number of worker processes");
ABSL_FLAG(std::string, mode, "async", "async or sync");
ABSL_FLAG(int, steps, 400, "training steps per worker");
ABSL_FLAG(double, learning_rate, 1.0, "SGD learning rate");
ABSL_FLAG(double, max_final_loss, 0.0,
          "chief: exit 1 if the final loss is above this (0 = no check)");

namespace {

constexpr int kFeatures = 16;
constexpr int kClasses = 4;
constexpr int kExamples = 4096;
constexpr int kBatch = 64;

struct Dataset {
  std::vector<float> x;  // kExamples x kFeatures
  std::vector<int> y;
};

// Deterministic: the same on every process. Labels come from a fixed
// "teacher" softmax model plus a little label noise.
Dataset MakeDataset() {
  std::mt19937_64 rng(20261124);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<float> teacher(kFeatures * kClasses);
  for (float& w : teacher) w = normal(rng);
  Dataset d;
  d.x.resize(kExamples * kFeatures);
  d.y.resize(kExamples);
  std::uniform_real_distribution<float> uniform(0.f, 1.f);
  for (int i = 0; i < kExamples; ++i) {
    float best = -1e30f;
    for (int f = 0; f < kFeatures; ++f) d.x[i * kFeatures + f] = normal(rng);
    for (int k = 0; k < kClasses; ++k) {
      float z = 0;
      for (int f = 0; f < kFeatures; ++f) {
        z += d.x[i * kFeatures + f] * teacher[f * kClasses + k];
      }
      if (z > best) {
        best = z;
        d.y[i] = k;
      }
    }
    if (uniform(rng) < 0.05f) d.y[i] = static_cast<int>(rng() % kClasses);
  }
  return d;
}

// Mean cross-entropy over examples [begin, end) in steps of `stride`; adds
// the gradient into gw/gb when given.
double LossAndGradient(const Dataset& d, const std::vector<float>& w,
                       const std::vector<float>& b,
                       const std::vector<int>& rows, std::vector<float>* gw,
                       std::vector<float>* gb) {
  double loss = 0;
  for (int i : rows) {
    double logits[kClasses], max = -1e300, sum = 0;
    for (int k = 0; k < kClasses; ++k) {
      double z = b[k];
      for (int f = 0; f < kFeatures; ++f) {
        z += d.x[i * kFeatures + f] * w[f * kClasses + k];
      }
      logits[k] = z;
      max = std::max(max, z);
    }
    for (double& z : logits) sum += std::exp(z - max);
    loss += -(logits[d.y[i]] - max - std::log(sum));
    if (gw == nullptr) continue;
    for (int k = 0; k < kClasses; ++k) {
      const double p = std::exp(logits[k] - max) / sum;
      const double delta = (p - (k == d.y[i] ? 1.0 : 0.0)) / rows.size();
      (*gb)[k] += static_cast<float>(delta);
      for (int f = 0; f < kFeatures; ++f) {
        (*gw)[f * kClasses + k] += static_cast<float>(delta * d.x[i * kFeatures + f]);
      }
    }
  }
  return loss / rows.size();
}

// A shard restarting (kill -9, then back on its data directory) fails the
// calls it had in flight with UNAVAILABLE, and calls made while it is down
// wait for it (wait_for_ready) until their deadline. The trainer retries
// such calls with backoff for up to two minutes, as a TF1 worker retries
// its session. (A gradient whose first try applied just before the shard
// died may apply twice: harmless for SGD.)
template <typename F>
auto Retry(const char* what, F f) -> decltype(f()) {
  absl::Duration backoff = absl::Milliseconds(20);
  const absl::Time give_up = absl::Now() + absl::Minutes(2);
  for (;;) {
    auto result = f();
    const absl::StatusCode code = result.status().code();
    const bool transient =
        code == absl::StatusCode::kUnavailable || code == absl::StatusCode::kDeadlineExceeded;
    if (result.ok() || !transient || absl::Now() > give_up) return result;
    std::fprintf(stderr, "%s: %s; retrying\n", what, result.status().ToString().c_str());
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, absl::Seconds(1));
  }
}

int Fail(const absl::Status& status, const char* what) {
  std::fprintf(stderr, "%s: %s\n", what, status.ToString().c_str());
  return 1;
}

varscope::OptimizerConfig Sgd() {
  return varscope::OptimizerConfig::Sgd(absl::GetFlag(FLAGS_learning_rate));
}

int RunChief(varscope::Client& client, const Dataset& data) {
  const int workers = absl::GetFlag(FLAGS_workers);
  const bool sync = absl::GetFlag(FLAGS_mode) == "sync";
  varscope::VariableScope scope(client, "softmax");
  varscope::VariableOptions zeros;
  zeros.initializer = varscope::Initializer::Zeros();
  zeros.dtype = varscope::DataType::kFloat;
  zeros.shape = {kFeatures, kClasses};
  auto w = client.GetVariable("weights", zeros);
  zeros.shape = {kClasses};
  auto b = client.GetVariable("bias", zeros);
  if (!w.ok()) return Fail(w.status(), "create weights");
  if (!b.ok()) return Fail(b.status(), "create bias");
  auto set = client.SetOptimizer({"softmax/weights", "softmax/bias"}, Sgd(),
                                 sync ? workers : 0);
  if (!set.ok()) return Fail(set.status(), "SetOptimizer");
  // Workers wait for "workers_done", created last: by then the optimizer is
  // stored and they can push gradients.
  zeros.shape = {};
  zeros.scalar = true;
  zeros.dtype = varscope::DataType::kInt32;
  zeros.trainable = false;
  auto done = client.GetVariable("workers_done", zeros);
  if (!done.ok()) return Fail(done.status(), "create workers_done");
  std::printf("chief: created %s %s, %s training with %d workers\n",
              w->name().c_str(), b->name().c_str(), sync ? "sync" : "async",
              workers);
  // Each worker adds 1 to workers_done when it finishes.
  uint64_t version = done->version();
  for (;;) {
    auto count = Retry("pull workers_done", [&] { return done->Pull<int32_t>(); });
    if (!count.ok()) return Fail(count.status(), "pull workers_done");
    if ((*count)[0] >= workers) break;
    auto v = Retry("wait for workers",
                   [&] { return done->WaitForNewerThan(version, absl::Minutes(5)); });
    if (!v.ok()) return Fail(v.status(), "wait for workers");
    version = *v;
  }
  auto weights = Retry("pull weights", [&] { return w->Pull<float>(); });
  auto bias = Retry("pull bias", [&] { return b->Pull<float>(); });
  if (!weights.ok() || !bias.ok()) return Fail(weights.status(), "pull");
  std::vector<int> all(kExamples);
  for (int i = 0; i < kExamples; ++i) all[i] = i;
  const double loss = LossAndGradient(data, *weights, *bias, all, nullptr, nullptr);
  auto state = Retry("describe", [&] { return client.DescribeTraining("softmax/weights"); });
  std::printf("chief: final loss %.4f after %lld optimizer steps (initial %.4f)\n",
              loss, state.ok() ? static_cast<long long>(state->optimizer_steps) : -1LL,
              std::log(static_cast<double>(kClasses)));
  const double max_loss = absl::GetFlag(FLAGS_max_final_loss);
  if (max_loss > 0 && !(loss <= max_loss)) {
    std::fprintf(stderr, "chief: loss %.4f is above --max_final_loss %.4f\n",
                 loss, max_loss);
    return 1;
  }
  return 0;
}

int RunWorker(varscope::Client& client, const Dataset& data) {
  const int task = absl::GetFlag(FLAGS_task);
  const int workers = absl::GetFlag(FLAGS_workers);
  const bool sync = absl::GetFlag(FLAGS_mode) == "sync";
  varscope::ScopeOptions reuse;
  reuse.reuse = varscope::Reuse::kReuse;
  varscope::VariableScope scope(client, "softmax", reuse);
  varscope::VariableOptions wait;
  wait.wait = absl::Minutes(2);  // the chief may not have started yet
  // workers_done is created last by the chief, after the optimizer is set.
  auto done = client.GetVariable("workers_done", wait);
  auto w = client.GetVariable("weights", wait);
  auto b = client.GetVariable("bias", wait);
  if (!done.ok()) return Fail(done.status(), "get workers_done");
  if (!w.ok()) return Fail(w.status(), "get weights");
  if (!b.ok()) return Fail(b.status(), "get bias");
  // This worker's shard: every workers-th example.
  std::vector<int> shard;
  for (int i = task; i < kExamples; i += workers) shard.push_back(i);
  std::mt19937 rng(1000 + task);
  int64_t step = 0;  // sync: the accumulator step the gradient belongs to
  const int steps = absl::GetFlag(FLAGS_steps);
  for (int s = 0; s < steps; ++s) {
    std::vector<float> weights, bias;
    // The values and their version.
    auto pulled = Retry("pull weights", [&] { return w->PullInto(&weights); });
    if (!pulled.ok()) return Fail(pulled.status(), "pull weights");
    if (auto s = Retry("pull bias", [&] { return b->PullInto(&bias); }); !s.ok()) {
      return Fail(s.status(), "pull bias");
    }
    std::vector<int> batch(kBatch);
    for (int& i : batch) i = shard[rng() % shard.size()];
    std::vector<float> gw(kFeatures * kClasses, 0.f), gb(kClasses, 0.f);
    const double loss = LossAndGradient(data, weights, bias, batch, &gw, &gb);
    auto pw = varscope::PushItem::Of(w->full_name(), varscope::UpdateOp::kApplyGradient, gw);
    auto pb = varscope::PushItem::Of(b->full_name(), varscope::UpdateOp::kApplyGradient, gb);
    if (sync) pw.step = pb.step = step;
    auto results = Retry("push gradients", [&] { return client.PushMany({pw, pb}); });
    if (!results.ok()) return Fail(results.status(), "push gradients");
    if (sync) {
      if ((*results)[0].stale) {
        step = (*results)[0].sync_step;  // fell behind: catch up
        continue;
      }
      // Wait until this step's mean gradient has been applied.
      auto v = Retry("wait for the step",
                     [&] { return w->WaitForNewerThan(pulled->version, absl::Minutes(2)); });
      if (!v.ok()) return Fail(v.status(), "wait for the step");
      ++step;
    }
    if (s % 50 == 0 || s == steps - 1) {
      std::printf("worker %d: step %d batch loss %.4f\n", task, s, loss);
    }
  }
  auto finished = Retry("report done", [&] {
    return done->Push<int32_t>(varscope::UpdateOp::kAdd, std::vector<int32_t>{1});
  });
  if (!finished.ok()) return Fail(finished.status(), "report done");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string role = absl::GetFlag(FLAGS_role);
  // Progress lines reach a log file as they happen (run_cluster_example.sh
  // waits for them).
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  varscope::ClientOptions options;
  options.client_name = absl::StrCat(role, "-", absl::GetFlag(FLAGS_task));
  // A shard that is restarting is waited for (see Retry).
  options.connection.wait_for_ready = true;
  options.connection.rpc_timeout = absl::Seconds(20);
  auto client = varscope::Client::Connect(absl::GetFlag(FLAGS_server), options);
  if (!client.ok()) return Fail(client.status(), "connect");
  const Dataset data = MakeDataset();
  return role == "chief" ? RunChief(**client, data) : RunWorker(**client, data);
}
