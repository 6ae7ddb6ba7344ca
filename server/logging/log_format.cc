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

// How many bytes the valid UTF-8 sequence at text[i] has; 0 if invalid
// (a client's name that is not UTF-8 must not make the line invalid JSON).
size_t Utf8Length(absl::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char c = byte(i);
  size_t n = 0;
  unsigned char low = 0x80, high = 0xBF;  // the second byte's range
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) low = 0xA0;   // no overlong forms
    if (c == 0xED) high = 0x9F;  // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) low = 0x90;
    if (c == 0xF4) high = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;
  }
  if (i + n > text.size() || byte(i + 1) < low || byte(i + 1) > high) return 0;
  for (size_t k = 2; k < n; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return n;
}

// JSON string content: quotes, backslashes and control characters escaped,
// valid UTF-8 kept, any other byte replaced by U+FFFD.
void AppendEscaped(absl::string_view text, std::string* out) {
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      const size_t n = Utf8Length(text, i);
      if (n == 0) {
        *out += "\\ufffd";
      } else {
        out->append(text.data() + i, n);
        i += n - 1;
      }
      continue;
    }
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
