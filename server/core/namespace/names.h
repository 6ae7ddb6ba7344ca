// File: names.h
// Name grammar (TF_SEMANTICS.md §6.4 plus varscope's §10.4) and path helpers.
//
// TensorFlow's rule depends on position: a name opened at the root must
// match ^[A-Za-z0-9.][A-Za-z0-9_.\-/]*$, a name opened inside another name
// scope ^[A-Za-z0-9_.\-/]*$. varscope additionally forbids empty path
// components ("a//b", "/a", "a/") and names over kMaxNameBytes.
//
// Thread-safety: pure functions.
#ifndef VARSCOPE_SERVER_CORE_NAMESPACE_NAMES_H_
#define VARSCOPE_SERVER_CORE_NAMESPACE_NAMES_H_

#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"

namespace varscope::core {

inline constexpr size_t kMaxNameBytes = 1024;

// Where a name is opened: at the root of the name stack, or inside a scope.
enum class NamePosition { kRoot, kNested };

// Checks a scope or op name component as TensorFlow's name_scope does, plus
// our empty-component and length rules. `what` names the kind of name in
// the error ("scope name", "variable name").
absl::Status ValidateName(absl::string_view name, NamePosition position,
                          absl::string_view what);
// A full variable name: the root rule applies to the whole path (TensorFlow
// opens it as a name scope at the root).
absl::Status ValidateVariableName(absl::string_view full_name);
// A collection key: 1..256 printable ASCII bytes.
absl::Status ValidateCollectionName(absl::string_view name);

// "a" + "b" = "a/b"; either side may be empty.
std::string JoinName(absl::string_view prefix, absl::string_view name);
// The text after the last '/', or the whole name.
absl::string_view LastComponent(absl::string_view name);
// Strips a trailing ":0" (tensor-name form) if present.
absl::string_view StripTensorSuffix(absl::string_view name);
// True when `name` is `prefix` itself or lies under "prefix/" (literal, not a
// regex: "foo" does not cover "foo_").
bool IsUnderPrefix(absl::string_view name, absl::string_view prefix);

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_NAMESPACE_NAMES_H_
