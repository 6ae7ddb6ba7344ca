// File: scope_tree.h
// The variable-scope tree implied by stored variable names (for ListScopes
// and the CLI's tree view).
//
// Thread-safety: pure function over a snapshot.
#ifndef VARSCOPE_SERVER_CORE_NAMESPACE_SCOPE_TREE_H_
#define VARSCOPE_SERVER_CORE_NAMESPACE_SCOPE_TREE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "server/core/namespace/variable_store.h"

namespace varscope::core {

struct ScopeNode {
  std::string name;                    // full path, "" for the root
  std::vector<std::string> variables;  // base names directly in this scope
  int64_t total_variables = 0;         // anywhere below
  std::vector<ScopeNode> children;     // sorted by name
};

// Builds the tree of `variables` (full names), sorted by name.
ScopeNode BuildScopeTree(const std::vector<VariableInfo>& variables);

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_NAMESPACE_SCOPE_TREE_H_
