#include "server/core/access/access.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdlib>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/core/namespace/names.h"

namespace varscope::core {
namespace {

struct MethodRule {
  const char* method;
  AccessRule rule;
};

// The one table of who may call what. A method missing here is refused
// (the service asks for every call), and a test checks that every method of
// the protos has a row.
constexpr MethodRule kRules[] = {
    // Sessions and scopes are a trainer's working state.
    {"varscope.v1.VariableStore.OpenSession", {Role::kTrainer}},
    {"varscope.v1.VariableStore.KeepAlive", {Role::kTrainer}},
    {"varscope.v1.VariableStore.CloseSession", {Role::kTrainer}},
    {"varscope.v1.VariableStore.OpenScope", {Role::kTrainer}},
    {"varscope.v1.VariableStore.UpdateScope", {Role::kTrainer}},
    {"varscope.v1.VariableStore.ReuseVariables", {Role::kTrainer}},
    {"varscope.v1.VariableStore.CloseScope", {Role::kTrainer}},
    {"varscope.v1.VariableStore.GetVariable", {Role::kTrainer}},
    {"varscope.v1.VariableStore.NewVariable", {Role::kTrainer}},
    {"varscope.v1.VariableStore.OpName", {Role::kTrainer}},
    {"varscope.v1.VariableStore.ListVariables", {Role::kReader}},
    {"varscope.v1.VariableStore.ListScopes", {Role::kReader}},
    {"varscope.v1.VariableStore.DescribeVariable", {Role::kReader}},
    {"varscope.v1.VariableStore.DeleteVariable", {Role::kAdmin}},
    {"varscope.v1.VariableData.Pull", {Role::kReader}},
    {"varscope.v1.VariableData.PullStream", {Role::kReader}},
    {"varscope.v1.VariableData.Gather", {Role::kReader}},
    {"varscope.v1.VariableData.DescribeTraining", {Role::kReader}},
    {"varscope.v1.VariableData.WaitVersion", {Role::kReader}},
    {"varscope.v1.VariableData.Watch", {Role::kReader}},
    {"varscope.v1.VariableData.Push", {Role::kTrainer}},
    {"varscope.v1.VariableData.PushStream", {Role::kTrainer}},
    {"varscope.v1.VariableData.SetOptimizer", {Role::kTrainer}},
    {"varscope.v1.Admin.ListCheckpoints", {Role::kReader, /*global=*/true}},
    {"varscope.v1.Admin.Save", {Role::kAdmin, /*global=*/true}},
    {"varscope.v1.Admin.Restore", {Role::kAdmin, /*global=*/true}},
    {"varscope.v1.Admin.Import", {Role::kAdmin}},
    {"varscope.v1.Admin.GetStats", {Role::kReader, /*global=*/true}},
    {"varscope.v1.Admin.ListSessions", {Role::kAdmin, /*global=*/true}},
    // Same-host shared memory: as Pull and Push over gRPC.
    {"varscope.v1.SharedMemory.Attach", {Role::kReader}},
    {"varscope.v1.SharedMemory.Pull", {Role::kReader}},
    {"varscope.v1.SharedMemory.Push", {Role::kTrainer}},
    // The cluster's shape is what clients route by.
    {"varscope.v1.Cluster.GetTopology", {Role::kReader}},
    // Shard-to-shard calls: the cluster token only.
    {"varscope.v1.Peer.CaptureScope", {Role::kPeer}},
    {"varscope.v1.Peer.PauseChanges", {Role::kPeer, /*global=*/true}},
    {"varscope.v1.Peer.SaveCut", {Role::kPeer, /*global=*/true}},
    {"varscope.v1.Peer.FinishSave", {Role::kPeer, /*global=*/true}},
    {"varscope.v1.Peer.ResumeChanges", {Role::kPeer, /*global=*/true}},
    {"varscope.v1.Peer.PrepareRestore", {Role::kPeer, /*global=*/true}},
    {"varscope.v1.Peer.CommitRestore", {Role::kPeer, /*global=*/true}},
    {"varscope.v1.Peer.RecordClusterCheckpoint", {Role::kPeer, /*global=*/true}},
    {"varscope.v1.Peer.StageParts", {Role::kPeer, /*global=*/true}},
    {"varscope.v1.Peer.PublishParts", {Role::kPeer, /*global=*/true}},
    {"varscope.v1.Peer.DropParts", {Role::kPeer, /*global=*/true}},
    {"varscope.v1.Peer.DeleteParts", {Role::kPeer, /*global=*/true}},
};

absl::StatusOr<Role> ParseRole(absl::string_view text) {
  if (text == "reader") return Role::kReader;
  if (text == "trainer") return Role::kTrainer;
  if (text == "admin") return Role::kAdmin;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown role '", text, "' (expected reader, trainer or admin)"));
}

}  // namespace

absl::string_view RoleName(Role role) {
  switch (role) {
    case Role::kReader: return "reader";
    case Role::kTrainer: return "trainer";
    case Role::kAdmin: return "admin";
    case Role::kPeer: return "peer";
  }
  return "unknown";
}

const AccessRule* RuleFor(absl::string_view full_method) {
  for (const MethodRule& m : kRules) {
    if (full_method == m.method) return &m.rule;
  }
  return nullptr;
}

std::vector<std::string> MethodsWithRules() {
  std::vector<std::string> out;
  for (const MethodRule& m : kRules) out.emplace_back(m.method);
  return out;
}

bool Principal::Allows(const AccessRule& rule) const {
  if (role < rule.role) return false;
  return !rule.global || prefixes.empty();
}

bool Principal::MayTouch(absl::string_view name) const {
  if (prefixes.empty()) return true;
  name = StripTensorSuffix(name);
  return std::any_of(prefixes.begin(), prefixes.end(),
                     [&](const std::string& p) { return IsUnderPrefix(name, p); });
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  // Walks a.size() bytes whatever b is; b is read cyclically so its length
  // does not show in the timing either.
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  if (b.empty()) return a.empty();
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i]) ^
            static_cast<unsigned char>(b[i % b.size()]);
  }
  return diff == 0;
}

absl::StatusOr<TokenTable> TokenTable::Parse(absl::string_view text) {
  TokenTable table;
  absl::flat_hash_set<std::string> names;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    if (size_t hash = line.find('#'); hash != absl::string_view::npos) {
      line = line.substr(0, hash);
    }
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (fields.empty()) continue;
    auto error = [&](absl::string_view what) {
      return absl::InvalidArgumentError(
          absl::StrCat("tokens file line ", line_number, ": ", what));
    };
    if (fields.size() < 3) {
      return error("expected '<name> <role> <token> [<scope prefix> ...]'");
    }
    Principal principal;
    principal.name = std::string(fields[0]);
    auto role = ParseRole(fields[1]);
    if (!role.ok()) return error(role.status().message());
    principal.role = *role;
    const absl::string_view token = fields[2];
    if (token.size() < kMinTokenBytes) {
      return error(absl::StrCat("the token of '", principal.name,
                                "' is shorter than ", kMinTokenBytes,
                                " bytes; use a long random token "
                                "(openssl rand -hex 32)"));
    }
    for (size_t i = 3; i < fields.size(); ++i) {
      absl::string_view prefix = fields[i];
      while (absl::ConsumeSuffix(&prefix, "/")) {
      }
      if (prefix.empty()) return error("an empty scope prefix");
      principal.prefixes.emplace_back(prefix);
    }
    if (!names.insert(principal.name).second) {
      return error(absl::StrCat("the name '", principal.name, "' is used twice"));
    }
    auto [it, inserted] =
        table.by_digest_.emplace(Sha256(token), table.principals_.size());
    if (!inserted) {
      return error(absl::StrCat("'", principal.name, "' has the same token as '",
                                table.principals_[it->second].name, "'"));
    }
    table.principals_.push_back(std::move(principal));
  }
  if (table.principals_.empty()) {
    return absl::InvalidArgumentError(
        "the tokens file has no tokens; every call would be refused");
  }
  return table;
}

const Principal* TokenTable::Authenticate(absl::string_view token) const {
  const std::string digest = Sha256(token);
  auto it = by_digest_.find(digest);
  // The map finds the entry by the digest's hash; the digest itself is
  // still compared in constant time.
  if (it == by_digest_.end() || !ConstantTimeEquals(digest, it->first)) {
    return nullptr;
  }
  return &principals_[it->second];
}

std::string Sha256(absl::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), out, &length, EVP_sha256(),
                 nullptr) != 1) {
    std::abort();  // only if OpenSSL itself is broken
  }
  return std::string(reinterpret_cast<const char*>(out), length);
}

bool InFlightLimiter::Acquire(const std::string& key) {
  absl::MutexLock lock(&mu_);
  int& count = counts_[key];
  if (limit_ > 0 && count >= limit_) {
    if (count == 0) counts_.erase(key);
    return false;
  }
  ++count;
  ++total_;
  return true;
}

void InFlightLimiter::Release(const std::string& key) {
  absl::MutexLock lock(&mu_);
  auto it = counts_.find(key);
  if (it == counts_.end()) return;
  --total_;
  if (--it->second <= 0) counts_.erase(it);
}

int64_t InFlightLimiter::total() const {
  absl::MutexLock lock(&mu_);
  return total_;
}

int InFlightLimiter::in_flight(const std::string& key) const {
  absl::MutexLock lock(&mu_);
  auto it = counts_.find(key);
  return it == counts_.end() ? 0 : it->second;
}

}  // namespace varscope::core
