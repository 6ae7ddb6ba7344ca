// File: status_util.h (internal)
// grpc::Status to absl::Status for the client library (the codes share
// their numbers).
#ifndef VARSCOPE_CLIENT_SRC_STATUS_UTIL_H_
#define VARSCOPE_CLIENT_SRC_STATUS_UTIL_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace varscope::internal {

inline absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

}  // namespace varscope::internal

#endif  // VARSCOPE_CLIENT_SRC_STATUS_UTIL_H_
