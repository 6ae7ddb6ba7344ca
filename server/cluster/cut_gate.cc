#include "server/cluster/cut_gate.h"

#include <utility>

namespace varscope::cluster {

std::optional<CutGate::Ticket> CutGate::TryEnter() {
  absl::MutexLock lock(&mu_);
  if (cut_ != 0) return std::nullopt;
  ++in_flight_;
  return Ticket(this);
}

bool CutGate::KeepUntilOpen(std::function<void()> later) {
  absl::MutexLock lock(&mu_);
  if (cut_ == 0) return false;
  kept_.push_back(std::move(later));
  return true;
}

void CutGate::Leave() {
  std::vector<std::function<void()>> drained;
  {
    absl::MutexLock lock(&mu_);
    if (--in_flight_ == 0 && cut_ != 0) drained.swap(drained_);
  }
  for (auto& f : drained) f();
}

absl::Status CutGate::Pause(uint64_t cut_id, absl::Time until,
                            std::function<void()> drained) {
  bool now = false;
  {
    absl::MutexLock lock(&mu_);
    if (cut_ != 0 && cut_ != cut_id) {
      return absl::FailedPreconditionError(
          "another cluster checkpoint or restore holds this shard; try again when it ends");
    }
    if (cut_ == 0) {
      cut_ = cut_id;
      // The callback touches the gate only when the alarm fired: a
      // cancelled alarm (a later pause, or shutdown) may call it after
      // the gate is gone.
      expiry_ = std::make_unique<grpc::Alarm>();
      expiry_->Set(absl::ToChronoTime(until), [this, cut_id](bool fired) {
        if (fired) Reopen(cut_id, /*from_alarm=*/true);
      });
    }
    if (in_flight_ == 0) {
      now = true;
    } else {
      drained_.push_back(std::move(drained));
    }
  }
  if (now) drained();
  return absl::OkStatus();
}

bool CutGate::Resume(uint64_t cut_id) { return Reopen(cut_id, /*from_alarm=*/false); }

bool CutGate::Reopen(uint64_t cut_id, bool from_alarm) {
  std::vector<std::function<void()>> kept, waiting;
  std::unique_ptr<grpc::Alarm> expiry;
  {
    absl::MutexLock lock(&mu_);
    if (cut_ == 0 || cut_ != cut_id) return false;
    cut_ = 0;
    // Pauses still waiting to drain are answered now (the cut is over).
    waiting.swap(drained_);
    kept.swap(kept_);
    // Destroyed below, unlocked, which cancels it; an alarm that fired
    // stays until the next pause replaces it (not inside its own callback).
    if (!from_alarm) expiry = std::move(expiry_);
  }
  expiry.reset();
  for (auto& f : waiting) f();
  for (auto& call : kept) call();
  return true;
}

void CutGate::ReopenAll() {
  uint64_t cut;
  {
    absl::MutexLock lock(&mu_);
    cut = cut_;
  }
  if (cut != 0) Resume(cut);
}

bool CutGate::PausedFor(uint64_t cut_id) const {
  absl::MutexLock lock(&mu_);
  return cut_ != 0 && cut_ == cut_id;
}

}  // namespace varscope::cluster
