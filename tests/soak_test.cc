// Soak: 64 concurrent clients run a mixed workload against the real daemon
// for VARSCOPE_SOAK_SECONDS (default 60): scopes with AUTO_REUSE, creates,
// dense and sparse pushes, optimizer steps, pulls, gathers, listings and
// session churn, with a checkpoint every few seconds. Passes when no call
// fails, the shared counter holds exactly the sum of all ADDs, the daemon's
// RSS stays within 10 % of its level after warm-up, and no session is left
// once the clients are gone.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "tests/daemon.h"
#include "tests/test_util.h"
#include "varscope/client.h"
#include "varscope/v1/admin.grpc.pb.h"

namespace varscope::testing {
namespace {

constexpr int kClients = 64;
constexpr int kEmbRows = 1000;
constexpr int kEmbDim = 16;

int64_t RssBytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6) * 1024;
  }
  return 0;
}

absl::Duration SoakDuration() {
  const char* env = std::getenv("VARSCOPE_SOAK_SECONDS");
  return absl::Seconds(env != nullptr ? std::max(5, std::atoi(env)) : 60);
}

ClientOptions Options(int i) {
  ClientOptions options;
  options.client_name = absl::StrCat("soak-", i);
  options.connection.rpc_timeout = absl::Seconds(30);
  return options;
}

class Errors {
 public:
  void Add(const std::string& what, const absl::Status& status) {
    if (status.ok()) return;
    absl::MutexLock lock(&mu_);
    if (first_.size() < 10) first_.push_back(what + ": " + status.ToString());
    ++count_;
  }
  int count() const {
    absl::MutexLock lock(&mu_);
    return count_;
  }
  std::string first() const {
    absl::MutexLock lock(&mu_);
    std::string out;
    for (const std::string& e : first_) out += e + "\n";
    return out;
  }

 private:
  mutable absl::Mutex mu_;
  int count_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::string> first_ ABSL_GUARDED_BY(mu_);
};

void Worker(int index, const std::string& address, absl::Time deadline,
            Errors* errors, std::atomic<int64_t>* adds, std::atomic<int64_t>* calls) {
  std::mt19937 rng(index);
  auto connect = [&]() -> std::unique_ptr<Client> {
    auto client = Client::Connect(address, Options(index));
    errors->Add("connect", client.status());
    return client.ok() ? *std::move(client) : nullptr;
  };
  std::unique_ptr<Client> client = connect();
  const std::string scope_name = absl::StrCat("worker_", index % 16);
  const std::vector<double> one = {1.0};
  std::vector<float> ones(64, 1.0f);
  std::vector<float> dense(256 * 256);
  int iteration = 0;
  while (client != nullptr && absl::Now() < deadline) {
    ++iteration;
    ++*calls;
    switch (rng() % 7) {
      case 0: {  // a scope of its own, AUTO_REUSE, create-or-get, push, pull
        ScopeOptions scope_options;
        scope_options.reuse = Reuse::kAutoReuse;
        auto scope = VariableScope::Open(*client, scope_name, scope_options);
        errors->Add("open scope", scope.status());
        if (!scope.ok()) break;
        auto w = client->GetVariable(absl::StrCat("w", index % 4), {64}, DataType::kFloat);
        errors->Add("get variable", w.status());
        if (!w.ok()) break;
        errors->Add("push", w->Push(UpdateOp::kAdd, ones).status());
        errors->Add("pull", w->Pull<float>().status());
        break;
      }
      case 1: {
        auto r = client->Push("shared/counter", UpdateOp::kAdd, DataType::kDouble, AsBytes(one.data(),
                              sizeof(double)));
        errors->Add("counter add", r.status());
        if (r.ok()) ++*adds;
        break;
      }
      case 2: {
        std::vector<int64_t> rows = {static_cast<int64_t>(rng() % kEmbRows),
                                     static_cast<int64_t>(rng() % kEmbRows)};
        errors->Add("gather", client->Gather("shared/emb", rows).status());
        break;
      }
      case 3: {  // a sparse SGD step on the shared embedding
        std::vector<float> grads(2 * kEmbDim, 0.01f);
        PushOptions options;
        options.indices = {static_cast<int64_t>(rng() % kEmbRows),
                           static_cast<int64_t>(rng() % kEmbRows)};
        errors->Add("sparse step",
                    client->Push("shared/emb", UpdateOp::kApplyGradient, DataType::kFloat,
                                 AsBytes(grads.data(), grads.size() * sizeof(float)), options)
                        .status());
        break;
      }
      case 4:
        errors->Add("pull dense", client->Pull("shared/dense", DataType::kFloat,
                                               AsWritableBytes(dense.data(), dense.size() * sizeof(float)))
                                      .status());
        break;
      case 5:
        errors->Add("list", client->ListVariables(scope_name).status());
        break;
      case 6:
        errors->Add("describe", client->DescribeVariable("shared/emb").status());
        break;
    }
    if (iteration % 150 == 0) {  // session churn: close and reconnect
      client.reset();
      client = connect();
    }
  }
}

TEST(Soak, SixtyFourClientsMixedWorkload) {
  char dir_template[] = "/tmp/varscope_soak_XXXXXX";
  const std::string data_dir = mkdtemp(dir_template);
  Daemon daemon({"--data_dir=" + data_dir, "--checkpoint_interval=5s",
                 "--log_level=info"});
  ASSERT_NE(daemon.port(), 0) << daemon.log();
  const std::string address = daemon.address();
  {
    ClientOptions options;
    ASSERT_OK_AND_ASSIGN(auto chief, Client::Connect(address, options));
    VariableOptions counter;
    counter.shape = {1};
    counter.dtype = DataType::kDouble;
    counter.initializer = Initializer::Zeros();
    ASSERT_OK(chief->GetVariable("shared/counter", counter));
    ASSERT_OK(chief->GetVariable("shared/emb", {kEmbRows, kEmbDim}, DataType::kFloat));
    ASSERT_OK(chief->GetVariable("shared/dense", {256, 256}, DataType::kFloat));
    ASSERT_OK(chief->SetOptimizer({"shared/emb"}, OptimizerConfig::Sgd(0.1)));
  }

  const absl::Duration duration = SoakDuration();
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + duration;
  Errors errors;
  std::atomic<int64_t> adds{0};
  std::atomic<int64_t> calls{0};
  std::atomic<bool> done{false};
  std::vector<std::pair<double, int64_t>> rss;  // (seconds, bytes)
  std::thread sampler([&] {
    while (!done) {
      rss.emplace_back(absl::ToDoubleSeconds(absl::Now() - start),
                       RssBytes(daemon.pid()));
      absl::SleepFor(absl::Milliseconds(500));
    }
  });
  std::vector<std::thread> workers;
  for (int i = 0; i < kClients; ++i) {
    workers.emplace_back(Worker, i, address, deadline, &errors, &adds, &calls);
  }
  for (std::thread& t : workers) t.join();
  done = true;
  sampler.join();

  EXPECT_EQ(errors.count(), 0) << errors.first();
  EXPECT_GT(calls.load(), 64 * 10);

  // Warm-up is the first quarter; after it RSS stays within 10 %.
  const double warm = absl::ToDoubleSeconds(duration) / 4;
  int64_t baseline = 0;
  int64_t peak = 0;
  for (const auto& [t, bytes] : rss) {
    if (t < warm) continue;
    if (baseline == 0) baseline = bytes;
    peak = std::max(peak, bytes);
  }
  ASSERT_GT(baseline, 0);
  std::printf("soak: %lld calls by %d clients in %.0f s; RSS after warm-up "
              "%.1f MiB, peak %.1f MiB (%.1f%%)\n",
              static_cast<long long>(calls.load()), kClients,
              absl::ToDoubleSeconds(duration), baseline / 1048576.0,
              peak / 1048576.0, 100.0 * (peak - baseline) / baseline);
  EXPECT_LE(peak, baseline * 11 / 10) << "RSS grew after warm-up";

  // Every ADD landed exactly once, and no session outlived its client.
  ClientOptions options;
  options.keep_alive = false;
  ASSERT_OK_AND_ASSIGN(auto checker, Client::Connect(address, options));
  std::vector<double> counter(1);
  ASSERT_OK(checker->Pull("shared/counter", DataType::kDouble, AsWritableBytes(counter.data(),
                          sizeof(double))));
  EXPECT_EQ(counter[0], static_cast<double>(adds.load()));
  checker.reset();
  auto stub = v1::Admin::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  v1::ServerStats stats;
  ASSERT_TRUE(stub->GetStats(&ctx, v1::GetStatsRequest(), &stats).ok());
  EXPECT_EQ(stats.sessions(), 0);
  EXPECT_EQ(daemon.Terminate(), 0);
  std::system(("rm -rf " + data_dir).c_str());
}

}  // namespace
}  // namespace varscope::testing
