// File: access.h
// Who may do what: roles, bearer-token tables and the rule for every RPC.
// Pure (no gRPC): the service reads the token from call metadata and asks
// this code for a decision.
//
//   auto table = TokenTable::Parse(file_text);
//   const Principal* who = table->Authenticate(token);   // constant time
//   if (!who) -> UNAUTHENTICATED
//   const AccessRule* rule = RuleFor("varscope.v1.VariableData.Push");
//   who->Allows(*rule) / who->MayTouch("tower_0/w") -> PERMISSION_DENIED
//
// Thread-safety: TokenTable is immutable after Parse; share it through a
// shared_ptr and swap the pointer to reload. InFlightLimiter is thread-safe.
#ifndef VARSCOPE_SERVER_CORE_ACCESS_ACCESS_H_
#define VARSCOPE_SERVER_CORE_ACCESS_ACCESS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace varscope::core {

// Ordered: each role may do everything the roles below it may.
// kPeer is not a role of the tokens file: it is the cluster token's (the
// shards of one cluster calling each other), above every other.
enum class Role { kReader = 1, kTrainer = 2, kAdmin = 3, kPeer = 4 };
absl::string_view RoleName(Role role);

// What an RPC needs. `global` RPCs act on the whole store (save, restore,
// listing checkpoints), so a token limited to scope prefixes may not call
// them whatever its role.
struct AccessRule {
  Role role;
  bool global = false;
};
// The rule of a method by its protobuf full name
// ("varscope.v1.VariableData.Push"); null for methods varscope does not
// serve (health and reflection are open and never ask).
const AccessRule* RuleFor(absl::string_view full_method);
// Every method with a rule, for tests and docs.
std::vector<std::string> MethodsWithRules();

// A token's holder. `prefixes` empty = every name.
struct Principal {
  std::string name;  // the label in the tokens file; safe to log
  Role role = Role::kReader;
  std::vector<std::string> prefixes;

  bool Allows(const AccessRule& rule) const;
  // True when `name` (a variable or scope name, ":0" accepted) is one of the
  // prefixes or lies under one ("tower_0" covers "tower_0/w", not
  // "tower_01/w").
  bool MayTouch(absl::string_view name) const;
};

// Shortest token accepted, so that guessable tokens are refused at load.
inline constexpr size_t kMinTokenBytes = 16;

// The --auth_tokens_file. One token per line, fields separated by blanks:
//   <name> <role> <token> [<scope prefix> ...]
// '#' starts a comment. Names and tokens must be unique.
class TokenTable {
 public:
  // Errors name the line, never the token.
  static absl::StatusOr<TokenTable> Parse(absl::string_view text);

  // The holder of `token`, or null. The table keeps only SHA-256 digests
  // of the tokens, looks the presented token's digest up and compares the
  // digests in constant time: the cost does not grow with the number of
  // tokens, and timing reveals nothing about a stored token's bytes.
  const Principal* Authenticate(absl::string_view token) const;
  size_t size() const { return principals_.size(); }

 private:
  std::vector<Principal> principals_;
  // SHA-256 of the token -> index into principals_.
  absl::flat_hash_map<std::string, size_t> by_digest_;
};

// SHA-256 of `data`, 32 raw bytes.
std::string Sha256(absl::string_view data);

// True when a and b are equal, in time that depends only on a.size().
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

// Counts calls in flight per client key and refuses one above the limit.
class InFlightLimiter {
 public:
  // limit <= 0 = unlimited.
  explicit InFlightLimiter(int limit) : limit_(limit) {}
  // Takes a slot for `key`; false when it already has `limit` calls.
  bool Acquire(const std::string& key) ABSL_LOCKS_EXCLUDED(mu_);
  void Release(const std::string& key) ABSL_LOCKS_EXCLUDED(mu_);
  int limit() const { return limit_; }
  int in_flight(const std::string& key) const ABSL_LOCKS_EXCLUDED(mu_);
  // All clients together.
  int64_t total() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  const int limit_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, int> counts_ ABSL_GUARDED_BY(mu_);
  int64_t total_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_ACCESS_ACCESS_H_
