// File: error_details.h (internal)
// The server's rich-error detail without googleapis' generated types: a
// google.rpc.Status (in grpc-status-details-bin) and its google.rpc.ErrorInfo,
// read and written in protobuf's wire format by hand, so the installed
// client library registers no google.rpc descriptors of its own (a trainer
// that also links googleapis would otherwise collide with them).
//
// Thread-safety: pure functions.
#ifndef VARSCOPE_CLIENT_SRC_ERROR_DETAILS_H_
#define VARSCOPE_CLIENT_SRC_ERROR_DETAILS_H_

#include <map>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace varscope::internal {

struct ErrorInfoFields {
  std::string reason;
  std::string domain;
  std::map<std::string, std::string> metadata;
};

// The first google.rpc.ErrorInfo among a serialized google.rpc.Status's
// details; nullopt when there is none or the bytes are not a Status.
std::optional<ErrorInfoFields> ErrorInfoFromStatusDetails(absl::string_view status);

// A serialized google.rpc.ErrorInfo, and back.
std::string EncodeErrorInfo(const ErrorInfoFields& info);
std::optional<ErrorInfoFields> DecodeErrorInfo(absl::string_view bytes);

}  // namespace varscope::internal

#endif  // VARSCOPE_CLIENT_SRC_ERROR_DETAILS_H_
