#include "server/service/waiting_reactor.h"

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace varscope::service {

// Shared between the reactor, the feed subscription and the alarm, so a
// late event or alarm after Finish finds `finished` set and does nothing.
class WaitingReactor::State : public core::ChangeListener {
 public:
  State(Filter filter, Attempt attempt, std::function<grpc::Status()> timeout)
      : filter_(std::move(filter)),
        attempt_(std::move(attempt)),
        on_timeout_(std::move(timeout)) {}

  void set_reactor(WaitingReactor* reactor) {
    absl::MutexLock lock(&mu_);
    reactor_ = reactor;
  }

  void OnChange(const core::ChangeEvent& event) override {
    if (filter_(event)) TryAttempt();
  }

  void TryAttempt() {
    WaitingReactor* reactor = nullptr;
    std::optional<grpc::Status> status;
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      status = attempt_();
      if (!status) return;
      finished_ = true;
      reactor = reactor_;
    }
    reactor->Finish(*status);
  }

  void FinishWith(const std::function<grpc::Status()>& make_status) {
    WaitingReactor* reactor = nullptr;
    grpc::Status status;
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      finished_ = true;
      status = make_status();
      reactor = reactor_;
    }
    reactor->Finish(status);
  }

  void TimedOut() { FinishWith(on_timeout_); }

 private:
  const Filter filter_;
  absl::Mutex mu_;
  Attempt attempt_ ABSL_GUARDED_BY(mu_);
  std::function<grpc::Status()> on_timeout_;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  WaitingReactor* reactor_ ABSL_GUARDED_BY(mu_) = nullptr;
};

WaitingReactor::WaitingReactor(core::ChangeFeed* feed,
                               std::shared_ptr<State> state)
    : feed_(feed), state_(std::move(state)) {}

grpc::ServerUnaryReactor* WaitingReactor::Start(
    grpc::CallbackServerContext* ctx, core::ChangeFeed* feed,
    std::string prefix, absl::Duration timeout, Filter filter, Attempt attempt,
    std::function<grpc::Status()> on_timeout) {
  (void)ctx;
  auto state = std::make_shared<State>(std::move(filter), std::move(attempt),
                                       std::move(on_timeout));
  auto* reactor = new WaitingReactor(feed, state);
  state->set_reactor(reactor);
  // Subscribe before the first attempt, so a change between the two is not
  // lost.
  reactor->subscription_ = feed->Subscribe(std::move(prefix), state);
  state->TryAttempt();
  reactor->alarm_.Set(
      gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                   gpr_time_from_millis(absl::ToInt64Milliseconds(timeout),
                                        GPR_TIMESPAN)),
      [state](bool fired) {
        if (fired) state->TimedOut();
      });
  return reactor;
}

void WaitingReactor::OnCancel() {
  state_->FinishWith([] {
    return grpc::Status(grpc::StatusCode::CANCELLED, "the client cancelled");
  });
}

void WaitingReactor::OnDone() {
  feed_->Unsubscribe(subscription_);
  delete this;
}

}  // namespace varscope::service
