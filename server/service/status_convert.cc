#include "server/service/status_convert.h"

#include <string>

#include "server/core/namespace/session_manager.h"

namespace varscope::service {

grpc::Status ToGrpcStatus(const absl::Status& status,
                          grpc::ServerContextBase* context) {
  if (status.ok()) return grpc::Status::OK;
  if (context != nullptr) {
    if (auto reason = status.GetPayload(core::kErrorReasonUrl)) {
      context->AddTrailingMetadata(kErrorReasonMetadataKey,
                                   std::string(*reason));
    }
  }
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

}  // namespace varscope::service
