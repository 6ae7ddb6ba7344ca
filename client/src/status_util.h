// File: status_util.h (internal)
// grpc::Status to absl::Status for the client library. The codes share
// their numbers; the server's rich-error detail (a google.rpc.Status with a
// google.rpc.ErrorInfo in grpc-status-details-bin) is kept on the absl
// status as a payload, read back by varscope::ErrorReason().
#ifndef VARSCOPE_CLIENT_SRC_STATUS_UTIL_H_
#define VARSCOPE_CLIENT_SRC_STATUS_UTIL_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace varscope::internal {

// The payload's type URL; its value is a serialized google.rpc.ErrorInfo.
inline constexpr char kErrorInfoUrl[] = "type.googleapis.com/google.rpc.ErrorInfo";

absl::Status FromGrpc(const grpc::Status& status);

}  // namespace varscope::internal

#endif  // VARSCOPE_CLIENT_SRC_STATUS_UTIL_H_
