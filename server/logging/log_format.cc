#include "server/logging/log_format.h"

#include <spdlog/formatter.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"

namespace varscope::logging {
namespace {

// JSON string content: quotes, backslashes and control characters escaped;
// other bytes as they are (messages are UTF-8 or ASCII).
void AppendEscaped(absl::string_view text, std::string* out) {
  for (unsigned char c : text) {
    switch (c) {
      case '"': *out += "\\\""; break;
      case '\\': *out += "\\\\"; break;
      case '\n': *out += "\\n"; break;
      case '\r': *out += "\\r"; break;
      case '\t': *out += "\\t"; break;
      default:
        if (c < 0x20) {
          absl::StrAppendFormat(out, "\\u%04x", c);
        } else {
          *out += static_cast<char>(c);
        }
    }
  }
}

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const int64_t millis = std::chrono::duration_cast<std::chrono::milliseconds>(
                               msg.time.time_since_epoch())
                               .count();
    const spdlog::string_view_t level = spdlog::level::to_string_view(msg.level);
    const std::string line =
        JsonLogLine(absl::string_view(level.data(), level.size()),
                    absl::string_view(msg.payload.data(), msg.payload.size()), millis);
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

}  // namespace

std::string JsonLogLine(absl::string_view level, absl::string_view message,
                        int64_t unix_millis) {
  std::string out = absl::StrCat(
      "{\"time\":\"",
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixMillis(unix_millis),
                       absl::UTCTimeZone()),
      "\",\"level\":\"");
  AppendEscaped(level, &out);
  out += "\",\"msg\":\"";
  AppendEscaped(message, &out);
  out += "\"}\n";
  return out;
}

absl::Status SetLogFormat(absl::string_view format) {
  if (format == "text") return absl::OkStatus();
  if (format == "json") {
    spdlog::set_formatter(std::make_unique<JsonFormatter>());
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--log_format must be text or json, not '", format, "'"));
}

}  // namespace varscope::logging
