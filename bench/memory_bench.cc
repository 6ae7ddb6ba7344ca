// Push storm, then rest: does the daemon give memory back? --clients
// clients (one connection each) push --bytes tensors to their own
// variable for --seconds, then the bench waits --settle_seconds and reads
// the daemon's RSS. Prints "key value" lines:
//   storm_stored_mib, storm_rss_peak_mib, storm_rss_settled_mib
//
//   memory_bench --server=127.0.0.1:P --server_pid=PID --bytes=16777216
//       --op=assign|gradient [--clients=4] [--seconds=3] [--settle_seconds=60]
//
// `gradient` pushes ApplyGradient to Adam variables: the stored bytes then
// count the variable and its two slots (m and v).
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "report.h"
#include "varscope/client.h"

ABSL_FLAG(std::string, server, "127.0.0.1:50051", "varscoped address");
ABSL_FLAG(int, server_pid, 0, "varscoped's pid, for RSS");
ABSL_FLAG(int64_t, bytes, int64_t{16} << 20, "tensor size (a multiple of 4)");
ABSL_FLAG(std::string, op, "assign", "assign or gradient");
ABSL_FLAG(int, clients, 4, "concurrent clients, one connection each");
ABSL_FLAG(double, seconds, 3.0, "length of the storm");
ABSL_FLAG(double, settle_seconds, 60.0, "rest before RSS is read");

namespace {

using Clock = std::chrono::steady_clock;
using varscope::bench::Report;
using varscope::bench::RssKiB;

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int64_t bytes = absl::GetFlag(FLAGS_bytes);
  const int pid = absl::GetFlag(FLAGS_server_pid);
  const bool gradient = absl::GetFlag(FLAGS_op) == "gradient";
  const int clients = absl::GetFlag(FLAGS_clients);
  const std::string tag = absl::StrCat(absl::GetFlag(FLAGS_op), "_", bytes);

  std::atomic<bool> failed{false};
  std::atomic<bool> stop{false};
  int64_t peak = 0;
  std::thread sampler([&] {
    while (!stop) {
      if (pid > 0) peak = std::max(peak, RssKiB(pid));
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  std::vector<std::thread> pool;
  for (int c = 0; c < clients; ++c) {
    pool.emplace_back([&, c] {
      varscope::ClientOptions options;
      options.connection.rpc_timeout = absl::Minutes(5);
      auto client = varscope::Client::Connect(absl::GetFlag(FLAGS_server), options);
      const std::string name = absl::StrCat("storm/", tag, "_", c);
      varscope::VariableOptions shape;
      shape.shape = {bytes / 4};
      shape.dtype = varscope::DataType::kFloat;
      shape.initializer = varscope::Initializer::Zeros();
      if (!client.ok() || !(*client)->GetVariable(name, shape).ok() ||
          (gradient && !(*client)
                            ->SetOptimizer({name}, varscope::OptimizerConfig::Adam(0.001))
                            .ok())) {
        failed = true;
        return;
      }
      std::vector<float> values(bytes / 4, 0.5f);
      const auto op = gradient ? varscope::UpdateOp::kApplyGradient
                               : varscope::UpdateOp::kAssign;
      const auto start = Clock::now();
      while (std::chrono::duration<double>(Clock::now() - start).count() <
             absl::GetFlag(FLAGS_seconds)) {
        auto r = (*client)->Push(
            name, op, varscope::DataType::kFloat,
            {reinterpret_cast<const uint8_t*>(values.data()), static_cast<size_t>(bytes)});
        if (!r.ok()) {
          std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
          failed = true;
          return;
        }
      }
    });
  }
  for (auto& t : pool) t.join();
  stop = true;
  sampler.join();
  if (failed) return 1;
  std::this_thread::sleep_for(
      std::chrono::duration<double>(absl::GetFlag(FLAGS_settle_seconds)));
  const double stored = static_cast<double>(bytes) * clients * (gradient ? 3 : 1);
  Report(absl::StrCat("storm_", tag, "_stored_mib"), stored / 1048576.0);
  if (pid > 0) {
    Report(absl::StrCat("storm_", tag, "_rss_peak_mib"), peak / 1024.0);
    Report(absl::StrCat("storm_", tag, "_rss_settled_mib"), RssKiB(pid) / 1024.0);
  }
  return 0;
}
