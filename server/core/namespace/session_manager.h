// File: session_manager.h
// Sessions (one client process's context, TensorFlow's graph/thread state)
// and their scope handles (one `with tf.variable_scope(...)` or
// `with tf.name_scope(...)` block each).
//
// How a scope's flag and names are resolved (TF_SEMANTICS.md §2-§3, §6):
//  * Opened by name S under parent P: variable-scope name P.name + "/" + S;
//    reuse = requested if REUSE/AUTO_REUSE, else P's (`requested or parent`);
//    defaults copied from P then overridden; name scope = unique_name(S)
//    under P's name scope (so a second "foo" gets name scope "foo_1/").
//  * default_name D: variable-scope name D, or D_k for the smallest k whose
//    count under P is 0; name scope = unique_name(D); reuse inherited.
//  * Re-entering a captured handle O: variable-scope name O.name
//    (absolute), reuse = requested or O's own flag, defaults from O, a fresh
//    uniquified name scope named after O's last component.
//  * Open counts (for default names) are per session: closing a string
//    scope resets the counts below it; closing a re-entered scope restores
//    the snapshot taken when it opened.
//  * A NAME_SCOPE handle belongs to the variable scope it was opened in:
//    GetVariable through it, and ReuseVariables on it, use that scope.
//
// Handles form a tree per session; a handle can be closed only when it has
// no open children ("innermost first"). Closed handles stay as captured
// scopes until the session ends.
//
// Thread-safety: all methods may be called concurrently. Each session has
// its own mutex; the store is called without holding any session lock.
#ifndef VARSCOPE_SERVER_CORE_NAMESPACE_SESSION_MANAGER_H_
#define VARSCOPE_SERVER_CORE_NAMESPACE_SESSION_MANAGER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/core/base/clock.h"
#include "server/core/namespace/variable_store.h"

namespace varscope::core {

// Payload type URL and values attached to statuses about unknown sessions
// and handles, so the RPC layer can tell clients to re-open.
inline constexpr char kErrorReasonUrl[] = "varscope.dev/error-reason";
inline constexpr char kReasonSessionNotFound[] = "SESSION_NOT_FOUND";
inline constexpr char kReasonScopeNotFound[] = "SCOPE_NOT_FOUND";

enum class ScopeKind { kVariableScope, kNameScope };

struct SessionOptions {
  absl::Duration default_lease = absl::Seconds(30);
  absl::Duration min_lease = absl::Seconds(1);
  absl::Duration max_lease = absl::Hours(1);
  // First session id; 0 = a random 63-bit start, so ids of a restarted
  // server never collide with ids that stale clients still hold.
  uint64_t first_session_id = 0;
  // Live sessions; 0 = no limit. OpenSession beyond it: RESOURCE_EXHAUSTED.
  int max_sessions = 0;
  // Open (not yet closed) scope handles per session; 0 = no limit.
  int max_open_scopes = 0;
};

struct SessionInfo {
  uint64_t id = 0;
  std::string client_name;
  absl::Duration lease;
};

struct OpenScopeRequest {
  uint64_t parent = 0;  // 0 = root
  std::string name;
  std::string default_name;
  uint64_t reenter = 0;  // captured handle to re-enter; 0 = none
  ScopeKind kind = ScopeKind::kVariableScope;
  Reuse reuse = Reuse::kInherit;
  std::optional<InitializerSpec> initializer;
  DType dtype = DType::kInvalid;
  std::optional<PartitionerSpec> partitioner;
  bool auxiliary_name_scope = true;
};

struct ScopeInfo {
  uint64_t id = 0;
  uint64_t parent = 0;
  ScopeKind kind = ScopeKind::kVariableScope;
  std::string name;                 // variable-scope name
  std::string name_scope;           // "foo_1/" or ""
  std::string original_name_scope;
  Reuse reuse = Reuse::kInherit;    // effective flag
  std::optional<InitializerSpec> initializer;
  DType dtype = DType::kInvalid;
  std::optional<PartitionerSpec> partitioner;
  bool open = true;
};

struct NewVariableRequest {
  std::string name;  // "" = "Variable"
  GetVariableRequest variable;  // shape / dtype / initializer / collections
};

class SessionManager {
 public:
  // `store` and `clock` are not owned and must outlive the manager.
  SessionManager(VariableStore* store, const Clock* clock,
                 SessionOptions options);
  SessionManager(const SessionManager&) = delete;
  SessionManager& operator=(const SessionManager&) = delete;
  ~SessionManager();

  // `lease` zero = default; otherwise clamped to [min_lease, max_lease].
  // `owner` names the token holder (see access.h); "" without tokens.
  absl::StatusOr<SessionInfo> OpenSession(std::string client_name,
                                          absl::Duration lease,
                                          std::string owner = "");
  // PERMISSION_DENIED when `session` exists and was opened by another
  // owner, so one token cannot drive another token's session.
  absl::Status CheckOwner(uint64_t session, absl::string_view owner) const;
  // Renews the lease; NOT_FOUND (reason SESSION_NOT_FOUND) when unknown or
  // expired.
  absl::StatusOr<absl::Duration> KeepAlive(uint64_t session);
  absl::Status CloseSession(uint64_t session);

  absl::StatusOr<ScopeInfo> OpenScope(uint64_t session,
                                      const OpenScopeRequest& request);
  absl::StatusOr<ScopeInfo> ReuseVariables(uint64_t session, uint64_t scope);
  absl::Status CloseScope(uint64_t session, uint64_t scope);
  absl::StatusOr<std::vector<ScopeInfo>> ListHandles(uint64_t session);

  // What GetVariable inside a handle (0 = root) resolves against: the
  // variable scope's name, effective reuse flag and defaults.
  absl::StatusOr<ScopeContext> ScopeContextFor(uint64_t session, uint64_t scope);
  // tf.get_variable inside a handle (0 = root).
  absl::StatusOr<VariableInfo> GetVariable(uint64_t session, uint64_t scope,
                                           const GetVariableRequest& request);
  // tf.Variable: named after the handle's name scope, uniquified among the
  // session's op names and the store's variables.
  absl::StatusOr<VariableInfo> NewVariable(uint64_t session, uint64_t scope,
                                           const NewVariableRequest& request);
  // A session-unique op name ("scope_1/add_2:0").
  absl::StatusOr<std::string> OpName(uint64_t session, uint64_t scope,
                                     absl::string_view name);

  // Drops sessions whose lease has run out; returns how many.
  int ReapExpired();
  size_t num_sessions() const;

 private:
  struct Scope;
  struct Session;

  // The live session, or NOT_FOUND with the SESSION_NOT_FOUND reason.
  absl::StatusOr<std::shared_ptr<Session>> Find(uint64_t session);
  VariableStore* const store_;  // Not owned.
  const Clock* const clock_;    // Not owned.
  const SessionOptions options_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, std::shared_ptr<Session>> sessions_
      ABSL_GUARDED_BY(mu_);
  uint64_t next_session_id_ ABSL_GUARDED_BY(mu_);
};

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_NAMESPACE_SESSION_MANAGER_H_
