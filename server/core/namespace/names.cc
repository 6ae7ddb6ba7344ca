#include "server/core/namespace/names.h"

#include "server/core/base/error_info.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"

namespace varscope::core {
namespace {

bool IsNameChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' ||
         c == '.' || c == '-' || c == '/';
}

bool IsRootFirstChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.';
}

// Quotes a user-supplied name for an error message, escaping control bytes.
std::string Quote(absl::string_view name) {
  std::string out = "'";
  for (char c : name.substr(0, 200)) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f) {
      absl::StrAppend(&out, "\\x", absl::Hex(u, absl::kZeroPad2));
    } else {
      out.push_back(c);
    }
  }
  if (name.size() > 200) out += "...";
  return out + "'";
}

}  // namespace

static absl::Status CheckName(absl::string_view name, NamePosition position,
                              absl::string_view what) {
  if (name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is empty"));
  }
  if (name.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " ", Quote(name), " is ", name.size(),
                     " bytes; the limit is ", kMaxNameBytes));
  }
  for (char c : name) {
    if (!IsNameChar(c)) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, " ", Quote(name),
          " is not valid: use letters, digits, '_', '.', '-' and '/' only"));
    }
  }
  if (position == NamePosition::kRoot && !IsRootFirstChar(name.front())) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " ", Quote(name),
        " is not valid at the root: it must start with a letter, digit or "
        "'.'"));
  }
  if (name.front() == '/' || name.back() == '/' ||
      absl::StrContains(name, "//")) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " ", Quote(name),
                     " has an empty path component (leading, trailing or "
                     "double '/')"));
  }
  return absl::OkStatus();
}

absl::Status ValidateName(absl::string_view name, NamePosition position,
                          absl::string_view what) {
  return WithReason(CheckName(name, position, what), kInvalidName,
                    {{"name", std::string(name)}});
}

absl::Status ValidateVariableName(absl::string_view full_name) {
  return ValidateName(full_name, NamePosition::kRoot, "variable name");
}

absl::Status ValidateCollectionName(absl::string_view name) {
  if (name.empty() || name.size() > 256) {
    return WithReason(absl::InvalidArgumentError(
                          "collection names are 1 to 256 bytes long"),
                      kInvalidName);
  }
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      return WithReason(
          absl::InvalidArgumentError(
              absl::StrCat("collection name ", Quote(name),
                           " must be printable ASCII without spaces")),
          kInvalidName, {{"collection", std::string(name)}});
    }
  }
  return absl::OkStatus();
}

std::string JoinName(absl::string_view prefix, absl::string_view name) {
  if (prefix.empty()) return std::string(name);
  if (name.empty()) return std::string(prefix);
  return absl::StrCat(prefix, "/", name);
}

absl::string_view LastComponent(absl::string_view name) {
  const size_t slash = name.rfind('/');
  return slash == absl::string_view::npos ? name : name.substr(slash + 1);
}

absl::string_view StripTensorSuffix(absl::string_view name) {
  if (absl::EndsWith(name, ":0")) name.remove_suffix(2);
  return name;
}

bool IsUnderPrefix(absl::string_view name, absl::string_view prefix) {
  if (prefix.empty()) return true;
  if (!absl::StartsWith(name, prefix)) return false;
  return name.size() == prefix.size() || name[prefix.size()] == '/';
}

}  // namespace varscope::core
