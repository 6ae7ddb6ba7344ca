// One client, one variable of --bytes float32s, Pull into (or Push ASSIGN
// from) one preallocated buffer for --seconds after a warm-up; prints
// "<op>_mib_per_s <figure>". The C++ side of bench/python_compare (its
// Python twin is bench/python_pullpush.py, doing the same calls).
//
//   pullpush_bench --server=127.0.0.1:50051 --bytes=1048576 --op=pull
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "varscope/client.h"

ABSL_FLAG(std::string, server, "127.0.0.1:50051", "varscoped address");
ABSL_FLAG(int64_t, bytes, 1 << 20, "tensor size (a multiple of 4)");
ABSL_FLAG(std::string, op, "pull", "pull or push");
ABSL_FLAG(double, seconds, 1.0, "time measured");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  using Clock = std::chrono::steady_clock;
  const int64_t bytes = absl::GetFlag(FLAGS_bytes);
  const bool pull = absl::GetFlag(FLAGS_op) == "pull";
  auto client = varscope::Client::Connect(absl::GetFlag(FLAGS_server));
  if (!client.ok()) {
    std::fprintf(stderr, "%s\n", client.status().ToString().c_str());
    return 1;
  }
  varscope::VariableOptions options;
  options.shape = {bytes / 4};
  options.initializer = varscope::Initializer::Zeros();
  const std::string name = absl::StrCat("bench/pullpush_", bytes);
  varscope::ScopeOptions auto_reuse;  // whichever side runs first creates it
  auto_reuse.reuse = varscope::Reuse::kAutoReuse;
  auto root = varscope::VariableScope::Reenter(**client, (*client)->RootScope(), auto_reuse);
  if (!root.ok()) {
    std::fprintf(stderr, "%s\n", root.status().ToString().c_str());
    return 1;
  }
  auto variable = (*client)->GetVariable(name, options);
  if (!variable.ok()) {
    std::fprintf(stderr, "%s\n", variable.status().ToString().c_str());
    return 1;
  }
  std::vector<uint8_t> buffer(static_cast<size_t>(bytes), 1);
  auto once = [&]() -> absl::Status {
    if (pull) {
      return (*client)->Pull(name, varscope::DataType::kFloat, absl::MakeSpan(buffer)).status();
    }
    return (*client)->Push(name, varscope::UpdateOp::kAssign, varscope::DataType::kFloat,
                           absl::MakeConstSpan(buffer)).status();
  };
  for (int i = 0; i < 3; ++i) {  // warm-up: connection, server buffers
    if (absl::Status s = once(); !s.ok()) {
      std::fprintf(stderr, "%s\n", s.ToString().c_str());
      return 1;
    }
  }
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration<double>(absl::GetFlag(FLAGS_seconds));
  int64_t calls = 0;
  while (Clock::now() < end) {
    if (absl::Status s = once(); !s.ok()) {
      std::fprintf(stderr, "%s\n", s.ToString().c_str());
      return 1;
    }
    ++calls;
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("%s_mib_per_s %.6g\n", pull ? "pull" : "push",
              calls * static_cast<double>(bytes) / elapsed / (1 << 20));
  return 0;
}
