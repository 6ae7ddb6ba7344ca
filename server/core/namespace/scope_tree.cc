#include "server/core/namespace/scope_tree.h"

#include <algorithm>

#include "absl/strings/str_split.h"
#include "server/core/namespace/names.h"

namespace varscope::core {

ScopeNode BuildScopeTree(const std::vector<VariableInfo>& variables) {
  ScopeNode root;
  for (const VariableInfo& var : variables) {
    std::vector<std::string> parts = absl::StrSplit(var.name, '/');
    ScopeNode* node = &root;
    node->total_variables++;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      const std::string path = JoinName(node->name, parts[i]);
      auto it = std::find_if(
          node->children.begin(), node->children.end(),
          [&](const ScopeNode& child) { return child.name == path; });
      if (it == node->children.end()) {
        node->children.push_back(ScopeNode{path, {}, 0, {}});
        it = node->children.end() - 1;
      }
      node = &*it;
      node->total_variables++;
    }
    node->variables.push_back(parts.back());
  }
  return root;
}

}  // namespace varscope::core
