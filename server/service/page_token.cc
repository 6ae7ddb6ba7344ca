#include "server/service/page_token.h"

#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace varscope::service {
namespace {

constexpr size_t kDefaultPage = 1000;
constexpr size_t kMaxPage = 10000;

absl::Status BadToken() {
  return absl::InvalidArgumentError(
      "page_token was not made by this list call with these arguments; pass "
      "the next_page_token of the previous page unchanged, with the same "
      "arguments (or none for the first page)");
}

// The listing's arguments, folded into the token (FNV-1a 64).
std::string QueryTag(absl::string_view query) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : query) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return absl::StrCat(absl::Hex(h));
}

}  // namespace

absl::StatusOr<size_t> PageSize(int requested) {
  if (requested < 0) {
    return absl::InvalidArgumentError("page_size must not be negative");
  }
  if (requested == 0) return kDefaultPage;
  return std::min(static_cast<size_t>(requested), kMaxPage);
}

std::string EncodeCursor(const core::ListCursor& cursor, absl::string_view query) {
  return absl::WebSafeBase64Escape(absl::StrCat("v|", QueryTag(query), "|",
                                                cursor.partitioned ? "p" : "v", "|",
                                                cursor.index, "|", cursor.name));
}

absl::StatusOr<core::ListCursor> DecodeCursor(const std::string& token,
                                              absl::string_view query) {
  std::string text;
  if (!absl::WebSafeBase64Unescape(token, &text)) return BadToken();
  std::vector<std::string> parts = absl::StrSplit(text, absl::MaxSplits('|', 4));
  core::ListCursor cursor;
  if (parts.size() != 5 || parts[0] != "v" || parts[1] != QueryTag(query) ||
      (parts[2] != "p" && parts[2] != "v") ||
      !absl::SimpleAtoi(parts[3], &cursor.index)) {
    return BadToken();
  }
  cursor.partitioned = parts[2] == "p";
  cursor.name = parts[4];
  return cursor;
}

std::string EncodeNameToken(absl::string_view query, const std::string& name) {
  return absl::WebSafeBase64Escape(absl::StrCat("n|", QueryTag(query), "|", name));
}

absl::StatusOr<std::string> DecodeNameToken(absl::string_view query,
                                            const std::string& token) {
  std::string text;
  if (!absl::WebSafeBase64Unescape(token, &text)) return BadToken();
  std::vector<std::string> parts = absl::StrSplit(text, absl::MaxSplits('|', 2));
  if (parts.size() != 3 || parts[0] != "n" || parts[1] != QueryTag(query)) {
    return BadToken();
  }
  return parts[2];
}

std::string EncodeSessionToken(const SessionCursor& last) {
  return EncodeNameToken("sessions", absl::StrCat(last.shard, "/", last.id));
}

absl::StatusOr<SessionCursor> DecodeSessionToken(const std::string& token) {
  SessionCursor cursor;
  absl::StatusOr<std::string> text = DecodeNameToken("sessions", token);
  const std::vector<std::string> parts =
      text.ok() ? absl::StrSplit(*text, '/') : std::vector<std::string>{};
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &cursor.shard) ||
      !absl::SimpleAtoi(parts[1], &cursor.id)) {
    return absl::InvalidArgumentError("page_token is not a sessions page token");
  }
  return cursor;
}

}  // namespace varscope::service
