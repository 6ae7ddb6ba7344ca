#include "server/core/base/error_info.h"

#include "absl/strings/cord.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_split.h"

namespace varscope::core {
namespace {

// The payload: reason, then key and value, separated by NUL bytes (names
// and values never contain NUL: names are validated first).
constexpr char kPayloadUrl[] = "varscope.dev/error-info";

}  // namespace

absl::Status WithReason(absl::Status status, absl::string_view reason,
                        std::vector<std::pair<std::string, std::string>> metadata) {
  if (status.ok()) return status;
  // NUL separates the parts; one inside a value (a hostile name) is
  // replaced.
  // Values are escaped to printable ASCII (C escapes; a hostile name may
  // hold any byte, and the wire form is a proto3 string, which must be
  // UTF-8), then cut to 256 bytes.
  auto append = [](std::string* out, absl::string_view part) {
    out->push_back('\0');
    std::string escaped = absl::CHexEscape(part);
    if (escaped.size() > 256) escaped.resize(256);
    out->append(escaped);
  };
  std::string payload(reason);
  for (auto& [key, value] : metadata) {
    append(&payload, key);
    append(&payload, value);
  }
  status.SetPayload(kPayloadUrl, absl::Cord(payload));
  return status;
}

std::optional<ErrorInfo> GetErrorInfo(const absl::Status& status) {
  auto payload = status.GetPayload(kPayloadUrl);
  if (!payload.has_value()) return std::nullopt;
  const std::string text(*payload);
  std::vector<std::string> parts = absl::StrSplit(text, absl::ByChar('\0'));
  ErrorInfo info;
  info.reason = parts.empty() ? "" : parts[0];
  for (size_t i = 1; i + 1 < parts.size(); i += 2) {
    info.metadata[parts[i]] = parts[i + 1];
  }
  return info;
}

bool HasReason(const absl::Status& status, absl::string_view reason) {
  std::optional<ErrorInfo> info = GetErrorInfo(status);
  return info.has_value() && info->reason == reason;
}

}  // namespace varscope::core
