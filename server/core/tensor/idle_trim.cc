#include "server/core/tensor/idle_trim.h"

#include <malloc.h>

#include <utility>

namespace varscope::core {

void KeepGrpcBuffersWarm() {
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
}

IdleTrim::IdleTrim(IdleTrimOptions options) : options_(std::move(options)) {
  if (!options_.trim) options_.trim = [] { malloc_trim(0); };
}

bool IdleTrim::Tick(absl::Time now, int64_t activity) {
  if (activity != last_activity_) {
    if (last_activity_ >= 0) trimmed_since_change_ = false;
    last_activity_ = activity;
    changed_ = now;
  }
  const bool quiet = !trimmed_since_change_ && now - changed_ >= options_.idle;
  const bool due = now - trimmed_ >= options_.period;
  if (!quiet && !due) return false;
  options_.trim();
  trimmed_ = now;
  trimmed_since_change_ = true;
  return true;
}

}  // namespace varscope::core
