// The hot path through the client library, against several servers side by
// side: GetVariable of an existing variable, Push and Pull of 4 KiB and
// 1 MiB, and a two-variable push, at 1 call in flight and at 64 (64
// threads sharing one client). Servers are measured in interleaved rounds;
// each figure is the median over rounds with min-max, and every ratio is
// computed within a round against the first server, then its median taken.
//
//   hotpath_bench --servers=before=127.0.0.1:5001,after=127.0.0.1:5002
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "varscope/client.h"

ABSL_FLAG(std::string, servers, "", "label=host:port,... (the first is the baseline)");
ABSL_FLAG(int, rounds, 3, "interleaved rounds");
ABSL_FLAG(double, seconds, 1.0, "time per measurement");
ABSL_FLAG(std::string, only, "", "run only metrics whose name contains this");

namespace {

using Clock = std::chrono::steady_clock;

struct Target {
  std::string label;
  std::unique_ptr<varscope::Client> client;
};

// Calls `call` from `threads` threads for --seconds; returns calls/s.
// `per_thread` runs first on each thread and what it returns lives as long
// as that thread's loop (a scope guard, say).
template <typename Call, typename PerThread>
double Rate(int threads, Call call, PerThread per_thread) {
  std::atomic<int64_t> calls{0};
  std::atomic<bool> failed{false};
  const auto start = Clock::now();
  const auto budget = std::chrono::duration<double>(absl::GetFlag(FLAGS_seconds));
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      [[maybe_unused]] auto held = per_thread();
      while (Clock::now() - start < budget) {
        if (!call(t)) {
          failed = true;
          return;
        }
        ++calls;
      }
    });
  }
  for (auto& th : pool) th.join();
  if (failed) {
    std::fprintf(stderr, "a call failed\n");
    std::exit(1);
  }
  return calls / std::chrono::duration<double>(Clock::now() - start).count();
}

template <typename Call>
double Rate(int threads, Call call) {
  return Rate(threads, call, [] { return 0; });
}

absl::Span<const uint8_t> Bytes(const std::vector<float>& v) {
  return {reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(float)};
}
absl::Span<uint8_t> WritableBytes(std::vector<float>& v) {
  return {reinterpret_cast<uint8_t*>(v.data()), v.size() * sizeof(float)};
}

struct Metric {
  std::string name;
  std::function<double(varscope::Client&)> run;  // calls/s
};

std::vector<Metric> Metrics() {
  std::vector<Metric> out;
  for (int inflight : {1, 64}) {
    out.push_back({absl::StrCat("getvariable_", inflight), [inflight](varscope::Client& c) {
      // Each thread inside its own `with variable_scope("hot", reuse=True)`.
      return Rate(
          inflight, [&](int) { return c.GetVariable("w4k", {1024}).ok(); },
          [&] {
            varscope::ScopeOptions reuse;
            reuse.reuse = varscope::Reuse::kReuse;
            return std::make_unique<varscope::VariableScope>(c, "hot", reuse);
          });
    }});
    for (size_t bytes : {size_t{4} << 10, size_t{1} << 20}) {
      if (inflight == 64 && bytes > (4 << 10)) continue;
      const std::string name = bytes == (4 << 10) ? "hot/w4k" : "hot/w1m";
      const std::string size = bytes == (4 << 10) ? "4k" : "1m";
      out.push_back({absl::StrCat("push", size, "_", inflight),
                     [=](varscope::Client& c) {
        std::vector<float> data(bytes / 4, 1.0f);
        return Rate(inflight, [&](int) {
          return c.Push(name, varscope::UpdateOp::kAdd, varscope::DataType::kFloat,
                        Bytes(data)).ok();
        });
      }});
      out.push_back({absl::StrCat("pull", size, "_", inflight),
                     [=](varscope::Client& c) {
        std::vector<std::vector<float>> buffers(inflight, std::vector<float>(bytes / 4));
        return Rate(inflight, [&](int t) {
          return c.Pull(name, varscope::DataType::kFloat, WritableBytes(buffers[t])).ok();
        });
      }});
    }
    out.push_back({absl::StrCat("pushpair4k_", inflight), [inflight](varscope::Client& c) {
      std::vector<float> data(1024, 1.0f);
      return Rate(inflight, [&](int) {
        auto a = varscope::PushItem::Of("hot/a", varscope::UpdateOp::kAdd, data);
        varscope::PushItem b = a;
        b.name = "hot/b";
        return c.PushMany({a, b}).ok();
      });
    }});
  }
  return out;
}

bool Setup(varscope::Client& c) {
  for (auto [name, elements] : std::vector<std::pair<std::string, int64_t>>{
           {"w4k", 1024}, {"w1m", 1 << 18}, {"a", 1024}, {"b", 1024}}) {
    varscope::ScopeOptions auto_reuse;
    auto_reuse.reuse = varscope::Reuse::kAutoReuse;
    varscope::VariableScope scope(c, "hot", auto_reuse);
    varscope::VariableOptions zeros;
    zeros.shape = {elements};
    zeros.initializer = varscope::Initializer::Zeros();
    if (!c.GetVariable(name, zeros).ok()) return false;
  }
  return true;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  std::vector<Target> targets;
  for (absl::string_view spec : absl::StrSplit(absl::GetFlag(FLAGS_servers), ',')) {
    std::pair<std::string, std::string> kv = absl::StrSplit(spec, '=');
    varscope::ClientOptions options;
    options.connection.rpc_timeout = absl::Minutes(1);
    auto client = varscope::Client::Connect(kv.second, options);
    if (!client.ok() || !Setup(**client)) {
      std::fprintf(stderr, "cannot use %s\n", kv.second.c_str());
      return 1;
    }
    targets.push_back({kv.first, *std::move(client)});
  }
  if (targets.empty()) return 1;
  // rates[metric][label] per round; ratios[metric][label] per round.
  std::map<std::string, std::map<std::string, std::vector<double>>> rates, ratios;
  const std::vector<Metric> metrics = Metrics();
  for (int round = 0; round < absl::GetFlag(FLAGS_rounds); ++round) {
    for (const Metric& m : metrics) {
      if (m.name.find(absl::GetFlag(FLAGS_only)) == std::string::npos) continue;
      double base = 0;
      for (size_t i = 0; i < targets.size(); ++i) {
        const double r = m.run(*targets[i].client);
        rates[m.name][targets[i].label].push_back(r);
        if (i == 0) base = r;
        ratios[m.name][targets[i].label].push_back(r / base);
      }
    }
  }
  std::printf("%-16s", "calls/s");
  for (const Target& t : targets) std::printf(" %28s", t.label.c_str());
  std::printf("  ratio to %s (median of per-round ratios)\n", targets[0].label.c_str());
  for (const Metric& m : metrics) {
    if (rates.count(m.name) == 0) continue;
    std::printf("%-16s", m.name.c_str());
    for (const Target& t : targets) {
      const std::vector<double>& v = rates[m.name][t.label];
      std::printf(" %10.0f (%7.0f-%7.0f)", Median(v), *std::min_element(v.begin(), v.end()),
                  *std::max_element(v.begin(), v.end()));
    }
    for (size_t i = 1; i < targets.size(); ++i) {
      std::printf("  %s %.2f", targets[i].label.c_str(),
                  Median(ratios[m.name][targets[i].label]));
    }
    std::printf("\n");
  }
  return 0;
}
