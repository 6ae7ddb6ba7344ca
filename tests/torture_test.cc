// Concurrency torture against the real daemon, in relaxed and strict
// durability: clients push pairs of variables together (ADD, and
// APPLY_GRADIENT with Adam slots), create under AUTO_REUSE with and without
// wait_ms, delete and re-create, wait, watch, pull, gather and SetOptimizer
// while checkpoints run every 50 ms and Save, Import and Restore run. It
// checks invariants, not just "no error":
//   - no abort and no hang (a watchdog ends a stuck run with a report);
//   - variables pushed together are equal in the live store, in every
//     checkpoint, after every Restore and after a kill -9 and restart;
//   - counters are exact (strict: across the kill -9 too);
//   - versions only grow: per watcher, per waiter, across restore and
//     restart.
// Work is a fixed number of operations per thread, so the result does not
// depend on timing. VARSCOPE_TORTURE_ROUNDS scales it (default 300).
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "tests/daemon.h"
#include "tests/test_util.h"
#include "varscope/client.h"
#include "varscope/v1/admin.grpc.pb.h"
#include "varscope/v1/variable_store.grpc.pb.h"

namespace varscope::testing {
namespace {

constexpr int kPairs = 4;        // ADD pairs; odd ones big (copy-on-write)
constexpr int kSmall = 16;
constexpr int kBig = 1 << 16;
constexpr int kGradPairs = 2;    // APPLY_GRADIENT pairs with Adam
constexpr int kGradSize = 8;

int Rounds() {
  const char* env = std::getenv("VARSCOPE_TORTURE_ROUNDS");
  return env != nullptr ? std::max(10, std::atoi(env)) : 300;
}

int PairSize(int i) { return i % 2 == 0 ? kSmall : kBig; }
std::string A(int i) { return absl::StrCat("pair/", i, "/a"); }
std::string B(int i) { return absl::StrCat("pair/", i, "/b"); }
std::string GA(int i) { return absl::StrCat("grad/", i, "/a"); }
std::string GB(int i) { return absl::StrCat("grad/", i, "/b"); }

// Failures from any thread; only listed codes are tolerated per call.
class Failures {
 public:
  void Check(const std::string& what, const absl::Status& status,
             std::vector<absl::StatusCode> allowed = {}) {
    if (status.ok()) return;
    for (absl::StatusCode code : allowed) {
      if (status.code() == code) return;
    }
    Add(what + ": " + status.ToString());
  }
  void Add(const std::string& failure) {
    absl::MutexLock lock(&mu_);
    if (list_.size() < 20) list_.push_back(failure);
    ++count_;
  }
  std::string Report() const {
    absl::MutexLock lock(&mu_);
    std::string out = absl::StrCat(count_, " failures\n");
    for (const std::string& f : list_) out += f + "\n";
    return out;
  }
  int count() const {
    absl::MutexLock lock(&mu_);
    return count_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::string> list_ ABSL_GUARDED_BY(mu_);
  int count_ ABSL_GUARDED_BY(mu_) = 0;
};

// Ends a hung run: after `limit` it aborts the daemon (its stacks go to its
// log) and fails the test with what is known.
class Watchdog {
 public:
  Watchdog(const Daemon* daemon, absl::Duration limit) {
    thread_ = std::thread([this, daemon, limit] {
      if (done_.WaitForNotificationWithTimeout(limit)) return;
      kill(daemon->pid(), SIGABRT);
      ADD_FAILURE() << "torture watchdog: no progress within "
                    << absl::FormatDuration(limit) << "; daemon log:\n"
                    << daemon->log();
      std::abort();
    });
  }
  ~Watchdog() {
    done_.Notify();
    thread_.join();
  }

 private:
  absl::Notification done_;
  std::thread thread_;
};

std::unique_ptr<Client> Connect(const std::string& address, const std::string& who) {
  ClientOptions options;
  options.client_name = who;
  options.connection.rpc_timeout = absl::Seconds(60);
  auto client = Client::Connect(address, options);
  EXPECT_OK(client);
  return client.ok() ? *std::move(client) : nullptr;
}

// A safetensors file with one F32 tensor "t" of `n` elements, all `value`.
std::string WriteSafetensors(const std::string& dir, int n, float value) {
  const std::string header = absl::StrCat(
      R"({"t":{"dtype":"F32","shape":[)", n, R"(],"data_offsets":[0,)", n * 4, "]}}");
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  out += header;
  std::vector<float> values(n, value);
  out.append(reinterpret_cast<const char*>(values.data()), n * 4);
  const std::string path = dir + "/import.safetensors";
  std::ofstream(path, std::ios::binary) << out;
  return path;
}

class TortureTest : public ::testing::TestWithParam<const char*> {
 protected:
  std::vector<std::string> DaemonArgs() const {
    return {"--data_dir=" + data_, "--checkpoint_interval=0.05s",
            absl::StrCat("--durability=", GetParam()), "--log_level=info",
            "--keep_checkpoints=3"};
  }
  bool strict() const { return std::string(GetParam()) == "strict"; }

  void SetUp() override {
    char dir_template[] = "/tmp/varscope_torture_XXXXXX";
    data_ = mkdtemp(dir_template);
  }
  void TearDown() override { std::system(("rm -rf " + data_).c_str()); }

  void CreateModel(Client& client) {
    for (int i = 0; i < kPairs; ++i) {
      for (const std::string& name : {A(i), B(i)}) {
        VariableOptions o;
        o.shape = {PairSize(i)};
        o.initializer = Initializer::Zeros();
        ASSERT_OK(client.GetVariable(name, o));
      }
    }
    std::vector<std::string> grads;
    for (int i = 0; i < kGradPairs; ++i) {
      for (const std::string& name : {GA(i), GB(i)}) {
        VariableOptions o;
        o.shape = {kGradSize};
        o.initializer = Initializer::Ones();
        ASSERT_OK(client.GetVariable(name, o));
        grads.push_back(name);
      }
    }
    ASSERT_OK(client.SetOptimizer(grads, OptimizerConfig::Adam(0.01)));
    VariableOptions emb;
    emb.shape = {64, 4};
    ASSERT_OK(client.GetVariable("emb", emb));
  }

  // Pair values (first element) and gradient pairs, checked equal.
  void ExpectPairsEqual(Client& client, const std::string& where,
                        std::vector<float>* firsts = nullptr) {
    for (int i = 0; i < kPairs; ++i) {
      auto a = client.DescribeVariable(A(i));
      auto b = client.DescribeVariable(B(i));
      ASSERT_OK(a);
      ASSERT_OK(b);
      auto va = a->Pull<float>();
      auto vb = b->Pull<float>();
      ASSERT_OK(va);
      ASSERT_OK(vb);
      EXPECT_EQ(*va, *vb) << where << ": pair " << i << " was half pushed";
      EXPECT_TRUE(std::all_of(va->begin(), va->end(),
                              [&](float x) { return x == va->front(); }))
          << where << ": pair " << i << " is not uniform";
      if (firsts != nullptr) firsts->push_back(va->front());
    }
    for (int i = 0; i < kGradPairs; ++i) {
      auto a = client.DescribeVariable(GA(i))->Pull<float>();
      auto b = client.DescribeVariable(GB(i))->Pull<float>();
      ASSERT_OK(a);
      ASSERT_OK(b);
      EXPECT_EQ(*a, *b) << where << ": gradient pair " << i << " diverged";
      for (const char* slot : {"/Adam", "/Adam_1"}) {
        auto sa = client.DescribeVariable(GA(i) + slot)->Pull<float>();
        auto sb = client.DescribeVariable(GB(i) + slot)->Pull<float>();
        ASSERT_OK(sa);
        ASSERT_OK(sb);
        EXPECT_EQ(*sa, *sb) << where << ": slot " << slot << " of pair " << i;
      }
    }
  }

  std::string data_;
};

// Pushes +1 to both variables of pair `i`, `rounds` times; counts them.
void PairPusher(Client& client, int i, int rounds, std::atomic<int64_t>* count,
                Failures* failures) {
  std::vector<float> ones(PairSize(i), 1.0f);
  for (int r = 0; r < rounds; ++r) {
    PushItem a = PushItem::Of(A(i), UpdateOp::kAdd, ones);
    PushItem b = a;
    b.name = B(i);
    auto pushed = client.PushMany({a, b});
    failures->Check("push pair", pushed.status());
    if (pushed.ok()) {
      ++*count;
      if ((*pushed)[0].version != (*pushed)[1].version) {
        failures->Add("a pair's push got two versions");
      }
    }
  }
}

void GradientPusher(Client& client, int i, int rounds, Failures* failures) {
  for (int r = 0; r < rounds; ++r) {
    std::vector<float> g(kGradSize, 0.001f * (r % 7 + 1));
    PushItem a = PushItem::Of(GA(i), UpdateOp::kApplyGradient, g);
    PushItem b = a;
    b.name = GB(i);
    failures->Check("gradient pair", client.PushMany({a, b}).status());
  }
}

// AUTO_REUSE creations with and without wait_ms (one-shot form), session
// GetVariable, and deletes, on a small set of names.
void Churner(Client& client, v1::VariableStore::Stub& store, int seed, int rounds,
             Failures* failures) {
  for (int r = 0; r < rounds; ++r) {
    const std::string name = absl::StrCat("x", (r * 7 + seed) % 5);
    v1::GetVariableRequest request;
    request.set_scope("churn");
    request.set_name(name);
    request.mutable_shape()->add_dims(4);
    request.set_reuse(v1::AUTO_REUSE);
    if (r % 2 == 0) request.set_wait_ms(2000);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    v1::GetVariableResponse created;
    grpc::Status s = store.GetVariable(&ctx, request, &created);
    if (!s.ok()) failures->Add("one-shot GetVariable: " + s.error_message());
    if (r % 3 == 0) {
      failures->Check("delete", client.DeleteVariable("churn/" + name),
                      {absl::StatusCode::kNotFound, absl::StatusCode::kFailedPrecondition});
    }
    if (r % 5 == 0) {
      VariableOptions o;
      o.shape = {4};
      ScopeOptions auto_reuse;
      auto_reuse.reuse = Reuse::kAutoReuse;
      VariableScope scope(client, "churn", auto_reuse);
      failures->Check("session GetVariable", client.GetVariable(name, o).status());
    }
  }
}

TEST_P(TortureTest, InvariantsHoldUnderConcurrentLoad) {
  const int rounds = Rounds();
  std::atomic<int64_t> counts[kPairs] = {};
  uint64_t served_before_crash = 0;
  std::vector<float> acknowledged;  // pair values before the kill -9
  {
    Daemon daemon(DaemonArgs());
    ASSERT_NE(daemon.port(), 0) << daemon.log();
    Watchdog watchdog(&daemon, absl::Minutes(4));
    auto main_client = Connect(daemon.address(), "main");
    ASSERT_NE(main_client, nullptr);
    CreateModel(*main_client);
    auto channel = grpc::CreateChannel(daemon.address(),
                                       grpc::InsecureChannelCredentials());
    auto admin = v1::Admin::NewStub(channel);
    auto store = v1::VariableStore::NewStub(channel);
    const std::string import_file = WriteSafetensors(daemon.dir(), 32, 3.0f);
    Failures failures;
    std::vector<std::string> saved;

    // ---- Phase 1: everything at once, except Restore. ----
    {
      std::atomic<bool> pushing_done{false};
      std::vector<std::thread> threads;
      for (int t = 0; t < 6; ++t) {
        threads.emplace_back([&, t] {
          auto c = Connect(daemon.address(), absl::StrCat("pusher-", t));
          if (c == nullptr) return;  // Connect reported why
          PairPusher(*c, t % kPairs, rounds, &counts[t % kPairs], &failures);
        });
      }
      for (int t = 0; t < kGradPairs; ++t) {
        threads.emplace_back([&, t] {
          auto c = Connect(daemon.address(), absl::StrCat("grad-", t));
          if (c == nullptr) return;  // Connect reported why
          GradientPusher(*c, t, rounds / 2, &failures);
        });
      }
      for (int t = 0; t < 2; ++t) {
        threads.emplace_back([&, t] {
          auto c = Connect(daemon.address(), absl::StrCat("churn-", t));
          if (c == nullptr) return;  // Connect reported why
          Churner(*c, *store, t, rounds / 4, &failures);
        });
      }
      // A watcher: per name, versions only grow (a RESYNC restarts it).
      std::unique_ptr<WatchStream> watch = main_client->Watch("pair", true, 64);
      std::thread watcher([&] {
        std::map<std::string, uint64_t> last;
        WatchEvent event;
        while (watch->Next(&event)) {
          if (event.kind == WatchEvent::Kind::kResync) {
            last.clear();
            continue;
          }
          uint64_t& seen = last[event.name];
          if (event.version <= seen && event.kind != WatchEvent::Kind::kDeleted) {
            failures.Add(absl::StrCat("watch: ", event.name, " went from version ",
                                      seen, " to ", event.version));
          }
          seen = event.version;
        }
      });
      // A waiter, a puller and a gatherer, until the pushers are done.
      threads.emplace_back([&] {
        auto c = Connect(daemon.address(), "reader");
        if (c == nullptr) return;  // Connect reported why
        uint64_t seen = 0;
        std::vector<int64_t> rows = {0, 5, 5, 63};
        while (!pushing_done) {
          auto v = c->WaitVersion(A(0), seen, absl::Milliseconds(200));
          failures.Check("wait", v.status(), {absl::StatusCode::kDeadlineExceeded});
          if (v.ok()) {
            if (*v <= seen) failures.Add("WaitVersion returned an old version");
            seen = *v;
          }
          failures.Check("pull many", c->PullMany({A(1), B(1), GA(0)}).status());
          failures.Check("gather", c->Gather("emb", rows).status());
        }
      });
      // SetOptimizer again and again (idempotent on the gradient pairs).
      threads.emplace_back([&] {
        auto c = Connect(daemon.address(), "optimizer");
        if (c == nullptr) return;  // Connect reported why
        const OptimizerConfig adam = OptimizerConfig::Adam(0.01);
        for (int r = 0; r < rounds / 10; ++r) {
          failures.Check("set optimizer",
                         c->SetOptimizer({GA(r % kGradPairs), GB(r % kGradPairs)}, adam)
                             .status());
          failures.Check("set optimizer (churn)",
                         c->SetOptimizer({"churn/x0"}, adam).status(),
                         {absl::StatusCode::kNotFound, absl::StatusCode::kAborted});
        }
      });
      // Admin: named saves and imports.
      threads.emplace_back([&] {
        for (int r = 0; r < 6; ++r) {
          grpc::ClientContext ctx;
          v1::SaveRequest request;
          request.set_name(absl::StrCat("t", r));
          v1::CheckpointInfo info;
          grpc::Status s = admin->Save(&ctx, request, &info);
          if (s.ok()) {
            saved.push_back(info.name());
          } else {
            failures.Add("save: " + s.error_message());
          }
          grpc::ClientContext ictx;
          v1::ImportRequest import;
          import.set_path(import_file);
          import.set_scope(absl::StrCat("imported/", r));
          v1::ImportResponse imported;
          s = admin->Import(&ictx, import, &imported);
          if (!s.ok()) failures.Add("import: " + s.error_message());
        }
      });
      for (size_t t = 0; t < 6 + kGradPairs + 2; ++t) threads[t].join();
      pushing_done = true;
      for (size_t t = 6 + kGradPairs + 2; t < threads.size(); ++t) threads[t].join();
      watch->Cancel();
      watcher.join();
    }
    ASSERT_EQ(failures.count(), 0) << failures.Report() << daemon.log();
    // Exact counters, equal pairs.
    std::vector<float> firsts;
    ExpectPairsEqual(*main_client, "after phase 1", &firsts);
    for (int i = 0; i < kPairs; ++i) {
      EXPECT_EQ(firsts[i], static_cast<float>(counts[i].load())) << "pair " << i;
    }
    ASSERT_EQ(saved.size(), 6u);

    // ---- Phase 2: Restore each saved checkpoint while pushes go on. ----
    {
      std::vector<std::thread> threads;
      std::atomic<int64_t> ignored[kPairs] = {};
      for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
          auto c = Connect(daemon.address(), absl::StrCat("phase2-", t));
          if (c == nullptr) return;  // Connect reported why
          PairPusher(*c, t % kPairs, rounds / 3, &ignored[t % kPairs], &failures);
        });
      }
      uint64_t before = main_client->DescribeVariable(A(0))->version();
      for (const std::string& name : saved) {
        grpc::ClientContext ctx;
        v1::RestoreRequest request;
        request.set_name(name);
        v1::RestoreResponse response;
        grpc::Status s = admin->Restore(&ctx, request, &response);
        if (!s.ok()) failures.Add("restore " + name + ": " + s.error_message());
        const uint64_t after = main_client->DescribeVariable(A(0))->version();
        if (after <= before) failures.Add("a restore took a version back");
        before = after;
      }
      for (auto& t : threads) t.join();
    }
    ASSERT_EQ(failures.count(), 0) << failures.Report() << daemon.log();
    ExpectPairsEqual(*main_client, "after restores");

    // ---- Phase 3: quiesce, then kill -9. ----
    ExpectPairsEqual(*main_client, "before the crash", &acknowledged);
    served_before_crash = main_client->DescribeVariable(A(0))->version();
    main_client.reset();
    daemon.Crash();
  }
  Daemon again(DaemonArgs());
  ASSERT_NE(again.port(), 0) << again.log();
  auto client = Connect(again.address(), "after-restart");
  ASSERT_NE(client, nullptr);
  std::vector<float> recovered;
  ExpectPairsEqual(*client, "after kill -9 and restart", &recovered);
  if (strict()) {
    EXPECT_EQ(recovered, acknowledged) << "strict durability lost an acknowledged push";
  } else {
    for (int i = 0; i < kPairs; ++i) EXPECT_LE(recovered[i], acknowledged[i]);
  }
  EXPECT_GT(client->DescribeVariable(A(0))->version(), served_before_crash)
      << "a version went back across the restart";
  const int status = again.Terminate();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << again.log();
  EXPECT_EQ(again.log().find("Potential Mutex deadlock"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Durability, TortureTest,
                         ::testing::Values("relaxed", "strict"));

}  // namespace
}  // namespace varscope::testing
