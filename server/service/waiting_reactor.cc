#include "server/service/waiting_reactor.h"

#include <utility>

namespace varscope::service {

grpc::ServerUnaryReactor* WaitingReactor::Start(
    grpc::CallbackServerContext* ctx, core::ChangeFeed* feed,
    core::ChangeMatch match, absl::Duration timeout, Attempt attempt,
    std::function<grpc::Status()> on_timeout) {
  (void)ctx;
  auto* reactor = new WaitingReactor();
  // The successful attempt's status, read once the wait has ended.
  auto result = std::make_shared<grpc::Status>();
  reactor->wait_ = core::Wait::Start(
      feed, std::move(match),
      [attempt = std::move(attempt), result]() {
        std::optional<grpc::Status> status = attempt();
        if (!status.has_value()) return false;
        *result = *std::move(status);
        return true;
      },
      [reactor, result, on_timeout = std::move(on_timeout)](core::Wait::End why) {
        switch (why) {
          case core::Wait::End::kDone:
            return reactor->Finish(*result);
          case core::Wait::End::kTimedOut:
            return reactor->Finish(on_timeout());
          case core::Wait::End::kCancelled:
            return reactor->Finish(grpc::Status(grpc::StatusCode::CANCELLED,
                                                "the client cancelled"));
        }
      });
  reactor->alarm_.Set(
      gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                   gpr_time_from_millis(absl::ToInt64Milliseconds(timeout),
                                        GPR_TIMESPAN)),
      [wait = reactor->wait_](bool fired) {
        if (fired) wait->Stop(core::Wait::End::kTimedOut);
      });
  return reactor;
}

void WaitingReactor::OnCancel() { wait_->Stop(core::Wait::End::kCancelled); }

void WaitingReactor::OnDone() { delete this; }

}  // namespace varscope::service
