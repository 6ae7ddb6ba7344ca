// Fuzzes name validation, path helpers, scope paths and the tokens-file
// parser: none may crash, and what they accept must be consistent.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "server/core/access/access.h"
#include "server/core/namespace/names.h"
#include "server/core/namespace/variable_store.h"

using namespace varscope::core;  // NOLINT: a fuzz target's whole world

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  const bool root_ok = ValidateName(text, NamePosition::kRoot, "name").ok();
  const bool nested_ok = ValidateName(text, NamePosition::kNested, "name").ok();
  // The root rule is the stricter one.
  if (root_ok && !nested_ok) std::abort();
  if (ValidateVariableName(text).ok()) {
    if (text.empty() || text.size() > kMaxNameBytes) std::abort();
    if (text.front() == '/' || text.back() == '/') std::abort();
    if (text.find("//") != absl::string_view::npos) std::abort();
    if (LastComponent(text).empty()) std::abort();
    if (!IsUnderPrefix(text, text)) std::abort();
    if (JoinName("", text) != text) std::abort();
  }
  (void)ValidateCollectionName(text);
  (void)StripTensorSuffix(text);
  const size_t cut = size > 0 ? data[0] % (size + 1) : 0;
  (void)IsUnderPrefix(text.substr(cut), text.substr(0, cut));
  if (auto scope = ScopeContextForPath(text, Reuse::kAutoReuse); scope.ok()) {
    if (!scope->name.empty() && !ValidateVariableName(scope->name).ok()) {
      std::abort();
    }
  }
  if (auto table = TokenTable::Parse(text); table.ok()) {
    if (table->size() == 0) std::abort();
    (void)table->Authenticate(text);
  }
  return 0;
}
