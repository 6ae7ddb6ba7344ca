#include "cli/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace varscope::cli {

bool Progress::Enabled() {
  const char* term = std::getenv("TERM");
  return isatty(STDERR_FILENO) == 1 && (term == nullptr || std::string(term) != "dumb");
}

Progress::Progress(std::string label, int64_t total)
    : label_(std::move(label)), total_(total), enabled_(Enabled()), start_(absl::Now()) {
  if (!enabled_) return;
  // Redraw a few times a second, so an operation that reports nothing
  // still shows it is alive.
  ticker_ = std::thread([this] {
    absl::MutexLock lock(&mu_);
    while (!finished_) {
      Draw();
      mu_.AwaitWithTimeout(absl::Condition(&finished_), absl::Milliseconds(200));
    }
  });
}

void Progress::Update(int64_t done) {
  absl::MutexLock lock(&mu_);
  done_ = done;
}

void Progress::Draw() {
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start_);
  std::string line;
  if (total_ > 0) {
    constexpr int kWidth = 30;
    const double fraction = std::min(1.0, static_cast<double>(done_) / total_);
    const int filled = static_cast<int>(fraction * kWidth);
    line = absl::StrFormat("%s [%s%s] %3.0f%% %.1f/%.1f MiB %.1f s", label_,
                           std::string(filled, '#'), std::string(kWidth - filled, '-'),
                           fraction * 100, done_ / 1048576.0, total_ / 1048576.0, seconds);
  } else {
    line = absl::StrFormat("%s ... %.1f s", label_, seconds);
  }
  std::fprintf(stderr, "\r%s\033[K", line.c_str());
  std::fflush(stderr);
}

void Progress::Finish() {
  {
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    finished_ = true;
  }
  if (ticker_.joinable()) ticker_.join();
  if (enabled_) {
    std::fprintf(stderr, "\r\033[K");  // leave the terminal as it was
    std::fflush(stderr);
  }
}

}  // namespace varscope::cli
