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
      "page_token was not made by this list call; pass the next_page_token "
      "of the previous page unchanged (or none for the first page)");
}

}  // namespace

absl::StatusOr<size_t> PageSize(int requested) {
  if (requested < 0) {
    return absl::InvalidArgumentError("page_size must not be negative");
  }
  if (requested == 0) return kDefaultPage;
  return std::min(static_cast<size_t>(requested), kMaxPage);
}

std::string EncodeCursor(const core::ListCursor& cursor) {
  return absl::WebSafeBase64Escape(absl::StrCat(
      "v|", cursor.partitioned ? "p" : "v", "|", cursor.index, "|", cursor.name));
}

absl::StatusOr<core::ListCursor> DecodeCursor(const std::string& token) {
  std::string text;
  if (!absl::WebSafeBase64Unescape(token, &text)) return BadToken();
  std::vector<std::string> parts = absl::StrSplit(text, absl::MaxSplits('|', 3));
  core::ListCursor cursor;
  if (parts.size() != 4 || parts[0] != "v" || (parts[1] != "p" && parts[1] != "v") ||
      !absl::SimpleAtoi(parts[2], &cursor.index)) {
    return BadToken();
  }
  cursor.partitioned = parts[1] == "p";
  cursor.name = parts[3];
  return cursor;
}

std::string EncodeNameToken(const std::string& kind, const std::string& name) {
  return absl::WebSafeBase64Escape(absl::StrCat(kind, "|", name));
}

absl::StatusOr<std::string> DecodeNameToken(const std::string& kind,
                                            const std::string& token) {
  std::string text;
  if (!absl::WebSafeBase64Unescape(token, &text)) return BadToken();
  std::vector<std::string> parts = absl::StrSplit(text, absl::MaxSplits('|', 1));
  if (parts.size() != 2 || parts[0] != kind) return BadToken();
  return parts[1];
}

}  // namespace varscope::service
