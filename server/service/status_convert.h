// File: status_convert.h
// The one place where absl::Status becomes grpc::Status. Both follow
// google.rpc.Code, so the code maps by value. A core error-reason payload
// (unknown session / scope handle) becomes the trailing metadata key
// `varscope-error-reason`, which clients use to re-open their session.
#ifndef VARSCOPE_SERVER_SERVICE_STATUS_CONVERT_H_
#define VARSCOPE_SERVER_SERVICE_STATUS_CONVERT_H_

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"

namespace varscope::service {

inline constexpr char kErrorReasonMetadataKey[] = "varscope-error-reason";

// `context` may be null (no trailing metadata is added then).
grpc::Status ToGrpcStatus(const absl::Status& status,
                          grpc::ServerContextBase* context);

}  // namespace varscope::service

#endif  // VARSCOPE_SERVER_SERVICE_STATUS_CONVERT_H_
