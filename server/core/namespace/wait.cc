#include "server/core/namespace/wait.h"

#include <utility>

namespace varscope::core {

// The feed's handle on a wait: holds it weakly, so a wait whose owner let
// go is simply not poked.
class Wait::Listener : public ChangeListener {
 public:
  explicit Listener(std::weak_ptr<Wait> wait) : wait_(std::move(wait)) {}
  void OnChange(const ChangeEvent&) override {
    if (std::shared_ptr<Wait> wait = wait_.lock()) wait->Poke();
  }

 private:
  const std::weak_ptr<Wait> wait_;
};

Wait::Wait(ChangeFeed* feed, Attempt attempt, OnEnd on_end)
    : feed_(feed), attempt_(std::move(attempt)), on_end_(std::move(on_end)) {}

Wait::~Wait() {
  if (subscription_ != 0) feed_->Unsubscribe(subscription_);
}

std::shared_ptr<Wait> Wait::Start(ChangeFeed* feed, ChangeMatch match,
                                  Attempt attempt, OnEnd on_end) {
  std::shared_ptr<Wait> wait(
      new Wait(feed, std::move(attempt), std::move(on_end)));
  wait->subscription_ =
      feed->Subscribe(std::move(match), std::make_shared<Listener>(wait));
  wait->Poke();
  return wait;
}

void Wait::Poke() {
  {
    absl::MutexLock lock(&mu_);
    if (ended_) return;
    if (running_) {  // the attempt in progress (perhaps ours) re-runs
      again_ = true;
      return;
    }
    running_ = true;
    again_ = false;
  }
  // Keeps this wait alive through on_end, which may let the owner go.
  const std::shared_ptr<Wait> self = shared_from_this();
  for (;;) {
    const bool done = attempt_();
    std::optional<End> end;
    {
      absl::MutexLock lock(&mu_);
      if (done) {
        end = End::kDone;
      } else if (stop_.has_value()) {
        end = stop_;
      } else if (again_) {
        again_ = false;
        continue;
      } else {
        running_ = false;
        return;
      }
      ended_ = true;
      running_ = false;
    }
    Finish(*end);
    return;
  }
}

void Wait::Stop(End why) {
  {
    absl::MutexLock lock(&mu_);
    if (ended_) return;
    if (running_) {  // the attempt in progress decides
      stop_ = why;
      return;
    }
    ended_ = true;
  }
  const std::shared_ptr<Wait> self = shared_from_this();
  Finish(why);
}

void Wait::Finish(End why) {
  feed_->Unsubscribe(subscription_);
  on_end_(why);
}

}  // namespace varscope::core
