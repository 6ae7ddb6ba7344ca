// File: progress.h
// A progress line on stderr for long pulls, pushes, saves and restores,
// drawn only when stderr is a terminal (scripts and pipes see nothing).
// With a known total it is a bar; without one (a single RPC that reports
// nothing until it ends) it shows the elapsed time, redrawn by a ticker.
//
//   Progress bar("pull emb", total_bytes);
//   bar.Update(done_bytes);
//   bar.Finish();  // also on destruction; clears the line
//
// Thread-safety: Update from one thread; the ticker is internal.
#ifndef VARSCOPE_CLI_PROGRESS_H_
#define VARSCOPE_CLI_PROGRESS_H_

#include <cstdint>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace varscope::cli {

class Progress {
 public:
  // total 0 = unknown: an elapsed-time line.
  Progress(std::string label, int64_t total);
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  ~Progress() { Finish(); }

  void Update(int64_t done) ABSL_LOCKS_EXCLUDED(mu_);
  void Finish() ABSL_LOCKS_EXCLUDED(mu_);

  // Whether stderr is a terminal (and NO_COLOR-style opt-outs aside).
  static bool Enabled();

 private:
  void Draw() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string label_;
  const int64_t total_;
  const bool enabled_;
  const absl::Time start_;
  std::thread ticker_;
  absl::Mutex mu_;
  int64_t done_ ABSL_GUARDED_BY(mu_) = 0;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace varscope::cli

#endif  // VARSCOPE_CLI_PROGRESS_H_
