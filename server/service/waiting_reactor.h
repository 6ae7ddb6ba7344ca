// File: waiting_reactor.h
// A unary reactor for calls that wait for the store to change without
// holding a thread: WaitVersion, and GetVariable with wait_ms. The waiting
// itself is a core::Wait (its matching rule and attempts); this adds the
// deadline alarm, client cancellation, and the RPC's Finish.
//
// Example:
//   return WaitingReactor::Start(ctx, &store->feed(),
//       core::ChangeMatch::Names({"model/w"}), timeout,
//       [=]() -> std::optional<grpc::Status> { ...; return std::nullopt; },
//       [] { return grpc::Status(grpc::DEADLINE_EXCEEDED, "..."); });
//
// Thread-safety: attempts run one at a time (core::Wait), on the caller's
// or a writer's thread, with no core lock held; they must be short. The
// reactor deletes itself in OnDone.
#ifndef VARSCOPE_SERVER_SERVICE_WAITING_REACTOR_H_
#define VARSCOPE_SERVER_SERVICE_WAITING_REACTOR_H_

#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <optional>

#include "absl/time/time.h"
#include "server/core/namespace/change_feed.h"
#include "server/core/namespace/wait.h"

namespace varscope::service {

class WaitingReactor : public grpc::ServerUnaryReactor {
 public:
  // Returns a final status, or nullopt to keep waiting.
  using Attempt = std::function<std::optional<grpc::Status>()>;

  static grpc::ServerUnaryReactor* Start(grpc::CallbackServerContext* ctx,
                                         core::ChangeFeed* feed,
                                         core::ChangeMatch match,
                                         absl::Duration timeout, Attempt attempt,
                                         std::function<grpc::Status()> on_timeout);

  void OnCancel() override;
  void OnDone() override;

 private:
  WaitingReactor() = default;

  std::shared_ptr<core::Wait> wait_;
  grpc::Alarm alarm_;
};

}  // namespace varscope::service

#endif  // VARSCOPE_SERVER_SERVICE_WAITING_REACTOR_H_
