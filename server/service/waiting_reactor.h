// File: waiting_reactor.h
// A unary reactor for calls that wait for the store to change without
// holding a thread: WaitVersion, and GetVariable with wait_ms. It runs an
// attempt now, again after every matching change event, and gives up at
// the deadline or when the client cancels.
//
// Example:
//   return WaitingReactor::Start(ctx, &store->feed(), "model", timeout,
//       [](const core::ChangeEvent& e) { return e.name == "model/w"; },
//       [=]() -> std::optional<grpc::Status> { ...; return std::nullopt; },
//       [] { return grpc::Status(grpc::DEADLINE_EXCEEDED, "..."); });
//
// Thread-safety: attempts are serialized by the reactor's own mutex and run
// on the writer's thread (after the writer released its locks), so they
// must be short. The reactor deletes itself in OnDone.
#ifndef VARSCOPE_SERVER_SERVICE_WAITING_REACTOR_H_
#define VARSCOPE_SERVER_SERVICE_WAITING_REACTOR_H_

#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "server/core/namespace/change_feed.h"

namespace varscope::service {

class WaitingReactor : public grpc::ServerUnaryReactor {
 public:
  // Returns a final status, or nullopt to keep waiting.
  using Attempt = std::function<std::optional<grpc::Status>()>;
  using Filter = std::function<bool(const core::ChangeEvent&)>;

  static grpc::ServerUnaryReactor* Start(grpc::CallbackServerContext* ctx,
                                         core::ChangeFeed* feed,
                                         std::string prefix,
                                         absl::Duration timeout, Filter filter,
                                         Attempt attempt,
                                         std::function<grpc::Status()> on_timeout);

  void OnCancel() override;
  void OnDone() override;

 private:
  class State;
  WaitingReactor(core::ChangeFeed* feed, std::shared_ptr<State> state);

  core::ChangeFeed* const feed_;  // Not owned.
  std::shared_ptr<State> state_;
  uint64_t subscription_ = 0;
  grpc::Alarm alarm_;
};

}  // namespace varscope::service

#endif  // VARSCOPE_SERVER_SERVICE_WAITING_REACTOR_H_
