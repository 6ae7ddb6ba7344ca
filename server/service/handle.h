// File: handle.h
// The one-line body of every unary handler: run the core call, log a
// failure once at debug level, finish with the mapped status.
//
// Example:
//   return Handle(ctx, "Push", [&]() -> absl::Status { ...; return s; });
#ifndef VARSCOPE_SERVER_SERVICE_HANDLE_H_
#define VARSCOPE_SERVER_SERVICE_HANDLE_H_

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <string>

#include "absl/status/status.h"
#include "server/service/status_convert.h"

namespace varscope::service {

inline void LogFailure(const char* method, const absl::Status& status) {
  if (!status.ok()) {
    spdlog::debug("{} failed: {}: {}", method,
                  absl::StatusCodeToString(status.code()),
                  std::string(status.message()));
  }
}

template <typename Body>
grpc::ServerUnaryReactor* Handle(grpc::CallbackServerContext* ctx,
                                 const char* method, Body&& body) {
  const absl::Status status = body();
  LogFailure(method, status);
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status, ctx));
  return reactor;
}

}  // namespace varscope::service

#endif  // VARSCOPE_SERVER_SERVICE_HANDLE_H_
