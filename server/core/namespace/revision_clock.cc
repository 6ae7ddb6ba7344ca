#include "server/core/namespace/revision_clock.h"

#include <algorithm>

namespace varscope::core {

void RevisionClock::AdvanceTo(uint64_t floor) {
  uint64_t now = next_.load(std::memory_order_relaxed);
  while (now < floor &&
         !next_.compare_exchange_weak(now, floor, std::memory_order_relaxed)) {
  }
}

void RevisionClock::SetReserver(Reserver* reserver, uint64_t block) {
  absl::MutexLock lock(&reserve_mu_);
  reserver_ = reserver;
  half_block_.store(std::max<uint64_t>(block, 2) / 2, std::memory_order_relaxed);
  // Nothing is reserved yet: the first MakeRoom writes the first ceiling.
  ceiling_.store(reserver == nullptr ? std::numeric_limits<uint64_t>::max()
                                     : current(),
                 std::memory_order_release);
}

bool RevisionClock::HasRoom() const {
  const uint64_t ceiling = ceiling_.load(std::memory_order_acquire);
  const uint64_t now = current();
  return ceiling == std::numeric_limits<uint64_t>::max() ||
         (now < ceiling &&
          ceiling - now > half_block_.load(std::memory_order_relaxed));
}

absl::Status RevisionClock::MakeRoom() {
  if (HasRoom()) return absl::OkStatus();
  absl::MutexLock lock(&reserve_mu_);
  if (reserver_ == nullptr || HasRoom()) return absl::OkStatus();
  const uint64_t raised =
      std::max(ceiling_.load(std::memory_order_acquire), current()) +
      2 * half_block_.load(std::memory_order_relaxed);
  absl::Status reserved = reserver_->ReserveRevisions(raised);
  if (!reserved.ok()) return reserved;
  ceiling_.store(raised, std::memory_order_release);
  return absl::OkStatus();
}

}  // namespace varscope::core
