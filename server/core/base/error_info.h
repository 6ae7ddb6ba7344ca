// File: error_info.h
// Machine-readable error reasons for statuses the core returns: a reason
// (UPPER_SNAKE_CASE) and metadata naming what failed, attached to an
// absl::Status as a payload. The service turns it into the standard
// google.rpc.ErrorInfo detail (domain "varscope.dev"); the core never
// sees protobuf. The message stays for people.
//
// Example:
//   return WithReason(absl::NotFoundError("variable w does not exist"),
//                     kVariableNotFound, {{"variable", "w"}});
//   ...
//   std::optional<ErrorInfo> info = GetErrorInfo(status);  // info->reason
//
// Thread-safety: pure functions.
#ifndef VARSCOPE_SERVER_CORE_BASE_ERROR_INFO_H_
#define VARSCOPE_SERVER_CORE_BASE_ERROR_INFO_H_

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace varscope::core {

// Reasons (the API's contract; add, never rename).
inline constexpr char kVariableExists[] = "VARIABLE_EXISTS";
inline constexpr char kVariableNotFound[] = "VARIABLE_NOT_FOUND";
inline constexpr char kShapeMismatch[] = "SHAPE_MISMATCH";
inline constexpr char kDTypeMismatch[] = "DTYPE_MISMATCH";
inline constexpr char kPartitionMismatch[] = "PARTITION_MISMATCH";
inline constexpr char kInvalidName[] = "INVALID_NAME";
inline constexpr char kSessionNotFound[] = "SESSION_NOT_FOUND";
inline constexpr char kScopeNotFound[] = "SCOPE_NOT_FOUND";
inline constexpr char kQuotaExceeded[] = "QUOTA_EXCEEDED";
inline constexpr char kVersionConflict[] = "VERSION_CONFLICT";
inline constexpr char kUnsupportedDType[] = "UNSUPPORTED_DTYPE";
inline constexpr char kCheckpointNotFound[] = "CHECKPOINT_NOT_FOUND";
// A shared-memory call this daemon cannot serve that way; nothing changed.
inline constexpr char kUseGrpcTransfer[] = "USE_GRPC_TRANSFER";

inline constexpr char kErrorDomain[] = "varscope.dev";

struct ErrorInfo {
  std::string reason;
  std::map<std::string, std::string> metadata;
};

// `status` with `reason` and `metadata` attached (OK stays OK).
absl::Status WithReason(
    absl::Status status, absl::string_view reason,
    std::vector<std::pair<std::string, std::string>> metadata = {});
// The reason attached to `status`, if any.
std::optional<ErrorInfo> GetErrorInfo(const absl::Status& status);
// True when `status` carries `reason`.
bool HasReason(const absl::Status& status, absl::string_view reason);

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_BASE_ERROR_INFO_H_
