#include "error_details.h"

#include <cstdint>
#include <functional>

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/wire_format_lite.h"

namespace varscope::internal {
namespace {

using google::protobuf::internal::WireFormatLite;
using google::protobuf::io::CodedInputStream;
using google::protobuf::io::CodedOutputStream;

constexpr absl::string_view kErrorInfoType = "google.rpc.ErrorInfo";

// Calls `field(number, bytes)` for each length-delimited field of a
// message and skips the others; false on malformed input.
bool ForEachBytesField(absl::string_view message,
                       const std::function<bool(int, std::string)>& field) {
  CodedInputStream in(reinterpret_cast<const uint8_t*>(message.data()),
                      static_cast<int>(message.size()));
  for (uint32_t tag = in.ReadTag(); tag != 0; tag = in.ReadTag()) {
    const int number = WireFormatLite::GetTagFieldNumber(tag);
    if (WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      std::string bytes;
      if (!WireFormatLite::ReadBytes(&in, &bytes) || !field(number, std::move(bytes))) {
        return false;
      }
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return false;
    }
  }
  return in.ConsumedEntireMessage();
}

}  // namespace

std::optional<ErrorInfoFields> DecodeErrorInfo(absl::string_view bytes) {
  // ErrorInfo {1: reason, 2: domain, 3: map<string, string> metadata}.
  ErrorInfoFields info;
  const bool ok = ForEachBytesField(bytes, [&](int number, std::string value) {
    if (number == 1) info.reason = std::move(value);
    if (number == 2) info.domain = std::move(value);
    if (number == 3) {
      std::string key, entry_value;
      if (!ForEachBytesField(value, [&](int n, std::string v) {
            if (n == 1) key = std::move(v);
            if (n == 2) entry_value = std::move(v);
            return true;
          })) {
        return false;
      }
      info.metadata[key] = std::move(entry_value);
    }
    return true;
  });
  if (!ok) return std::nullopt;
  return info;
}

std::optional<ErrorInfoFields> ErrorInfoFromStatusDetails(absl::string_view status) {
  // Status {1: code, 2: message, 3: repeated Any details};
  // Any {1: type_url, 2: value}.
  std::optional<ErrorInfoFields> found;
  const bool ok = ForEachBytesField(status, [&](int number, std::string any) {
    if (number != 3 || found.has_value()) return true;
    std::string type_url, value;
    if (!ForEachBytesField(any, [&](int n, std::string v) {
          if (n == 1) type_url = std::move(v);
          if (n == 2) value = std::move(v);
          return true;
        })) {
      return false;
    }
    const size_t slash = type_url.rfind('/');
    if (absl::string_view(type_url).substr(slash == std::string::npos ? 0 : slash + 1) ==
        kErrorInfoType) {
      found = DecodeErrorInfo(value);
    }
    return true;
  });
  if (!ok) return std::nullopt;
  return found;
}

std::string EncodeErrorInfo(const ErrorInfoFields& info) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    CodedOutputStream coded(&stream);
    WireFormatLite::WriteString(1, info.reason, &coded);
    WireFormatLite::WriteString(2, info.domain, &coded);
    for (const auto& [key, value] : info.metadata) {
      std::string entry;
      {
        google::protobuf::io::StringOutputStream entry_stream(&entry);
        CodedOutputStream entry_coded(&entry_stream);
        WireFormatLite::WriteString(1, key, &entry_coded);
        WireFormatLite::WriteString(2, value, &entry_coded);
      }
      WireFormatLite::WriteBytes(3, entry, &coded);
    }
  }
  return out;
}

}  // namespace varscope::internal
