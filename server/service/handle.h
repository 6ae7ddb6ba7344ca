// File: handle.h
// The one-line body of every unary handler: admit the call (token, role,
// in-flight slot; see call_gate.h), run the core call, log a failure once
// at debug level, finish with the mapped status.
//
// Example:
//   return Handle(ctx, gate_, "varscope.v1.VariableData.Push",
//                 [&](const Admission& call) -> absl::Status { ... });
#ifndef VARSCOPE_SERVER_SERVICE_HANDLE_H_
#define VARSCOPE_SERVER_SERVICE_HANDLE_H_

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "server/service/call_gate.h"
#include "server/service/status_convert.h"

namespace varscope::service {

inline void LogFailure(absl::string_view method, const absl::Status& status) {
  if (!status.ok()) {
    spdlog::debug("{} failed: {}: {}", std::string(ShortMethod(method)),
                  absl::StatusCodeToString(status.code()),
                  std::string(status.message()));
  }
}

// Finishes a unary call with `status` (logged once if it failed).
inline grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* ctx,
                                        absl::string_view full_method,
                                        const absl::Status& status) {
  LogFailure(full_method, status);
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

template <typename Body>
grpc::ServerUnaryReactor* Handle(grpc::CallbackServerContext* ctx,
                                 CallGate* gate, const char* full_method,
                                 Body&& body) {
  absl::StatusOr<Admission> call = gate->Admit(*ctx, full_method);
  return Finish(ctx, full_method, call.ok() ? body(*call) : call.status());
}

// A streaming reactor that fails at once (refused admission, bad request).
template <typename Reactor>
class Rejected final : public Reactor {
 public:
  explicit Rejected(const absl::Status& status) {
    this->Finish(ToGrpcStatus(status));
  }
  void OnDone() override { delete this; }
};

}  // namespace varscope::service

#endif  // VARSCOPE_SERVER_SERVICE_HANDLE_H_
