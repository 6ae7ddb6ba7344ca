// File: log_format.h
// How varscoped's log lines look (--log_format): "text" (spdlog's default
// pattern, for people) or "json", one object per line for log shippers:
//   {"time":"2026-12-01T10:36:01.618Z","level":"info","msg":"..."}
//
// Thread-safety: call once at startup, before other threads log.
#ifndef VARSCOPE_SERVER_LOGGING_LOG_FORMAT_H_
#define VARSCOPE_SERVER_LOGGING_LOG_FORMAT_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace varscope::logging {

// INVALID_ARGUMENT for a format other than "text" or "json".
absl::Status SetLogFormat(absl::string_view format);

// One log line as JSON (exposed for tests): time in UTC with milliseconds.
std::string JsonLogLine(absl::string_view level, absl::string_view message,
                        int64_t unix_millis);

}  // namespace varscope::logging

#endif  // VARSCOPE_SERVER_LOGGING_LOG_FORMAT_H_
