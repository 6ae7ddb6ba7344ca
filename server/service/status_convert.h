// File: status_convert.h
// The one place where absl::Status becomes grpc::Status. Both follow
// google.rpc.Code, so the code maps by value. Every error also carries the
// standard rich-error detail: a google.rpc.Status with one
// google.rpc.ErrorInfo (domain "varscope.dev") in the
// `grpc-status-details-bin` trailer, whose reason is the core's (see
// server/core/base/error_info.h) or, when the core gave none, the code's
// name ("INVALID_ARGUMENT", ...).
#ifndef VARSCOPE_SERVER_SERVICE_STATUS_CONVERT_H_
#define VARSCOPE_SERVER_SERVICE_STATUS_CONVERT_H_

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"

namespace varscope::service {

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace varscope::service

#endif  // VARSCOPE_SERVER_SERVICE_STATUS_CONVERT_H_
