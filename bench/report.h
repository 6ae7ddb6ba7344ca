// Helpers the bench/ load generators share: one "key value" line per
// figure (bench/run and summarize.py read them), and a process's RSS.
#ifndef VARSCOPE_BENCH_REPORT_H_
#define VARSCOPE_BENCH_REPORT_H_

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

namespace varscope::bench {

inline void Report(const std::string& key, double value) {
  std::printf("%s %.6g\n", key.c_str(), value);
  std::fflush(stdout);
}

// VmRSS of process `pid` in KiB (-1 if it cannot be read).
inline int64_t RssKiB(int pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6);
  }
  return -1;
}

}  // namespace varscope::bench

#endif  // VARSCOPE_BENCH_REPORT_H_
