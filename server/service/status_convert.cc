#include "server/service/status_convert.h"

#include <string>

#include "absl/strings/ascii.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "server/core/base/error_info.h"

namespace varscope::service {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  google::rpc::ErrorInfo info;
  info.set_domain(core::kErrorDomain);
  if (std::optional<core::ErrorInfo> core_info = core::GetErrorInfo(status)) {
    info.set_reason(core_info->reason);
    for (const auto& [key, value] : core_info->metadata) {
      (*info.mutable_metadata())[key] = value;
    }
  } else {
    // "INVALID_ARGUMENT" for absl::StatusCode::kInvalidArgument.
    info.set_reason(absl::AsciiStrToUpper(absl::StatusCodeToString(status.code())));
  }
  google::rpc::Status details;
  details.set_code(static_cast<int>(status.code()));
  details.set_message(std::string(status.message()));
  details.add_details()->PackFrom(info);
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()), details.SerializeAsString());
}

}  // namespace varscope::service
