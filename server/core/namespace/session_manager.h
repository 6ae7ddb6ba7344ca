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
//    uniquified name scope named after O's last component (none for the
//    root). O may be this session's root (reenter 0) or a handle of another
//    live session (a scope object re-entered in another graph). A name (or
//    a captured scope) wins over a default_name, as in TensorFlow.
//  * Open counts (for default names) are per session: closing a string
//    scope resets the counts below it; closing a re-entered scope restores
//    the snapshot taken when it opened.
//  * A NAME_SCOPE handle belongs to the variable scope it was opened in:
//    GetVariable through it, and ReuseVariables on it, use that scope.
//
// Handles are opaque ids, unique on the server (a random 63-bit start, then
// counting) and never reused; each session's root has one too, and 0 is
// the root of the calling session. A handle of another session is NOT_FOUND
// everywhere but as a scope to re-enter, and only for a session opened
// with the same token (owner). Handles form a tree per session; a
// handle can be closed only when it has no open children ("innermost
// first"). Closed handles stay as captured scopes until the session ends.
//
// Every call decides before it changes anything: a failed call leaves the
// session (its names in use, default-name counts, handles) as it was.
//
// Thread-safety: all methods may be called concurrently. Each session has
// its own mutex (level 2 of base/lock_order.h, after the manager's); at
// most one session's lock is held at a time, and the store is called
// without holding any.
#ifndef VARSCOPE_SERVER_CORE_NAMESPACE_SESSION_MANAGER_H_
#define VARSCOPE_SERVER_CORE_NAMESPACE_SESSION_MANAGER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <tuple>
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

enum class ScopeKind { kVariableScope, kNameScope };

struct SessionOptions {
  absl::Duration default_lease = absl::Seconds(30);
  absl::Duration min_lease = absl::Seconds(1);
  absl::Duration max_lease = absl::Hours(1);
  // First session id; 0 = a random 63-bit start, so ids of a restarted
  // server never collide with ids that stale clients still hold.
  uint64_t first_session_id = 0;
  // First scope handle; 0 = a random 63-bit start (as for sessions).
  // Fixed only where inputs must name handles (the RPC fuzzer).
  uint64_t first_scope_handle = 0;
  // Live sessions; 0 = no limit. OpenSession beyond it: RESOURCE_EXHAUSTED.
  int max_sessions = 0;
  // Open (not yet closed) scope handles per session; 0 = no limit.
  int max_open_scopes = 0;
};

struct SessionInfo {
  uint64_t id = 0;
  std::string client_name;
  absl::Duration lease;
  uint64_t root_scope = 0;  // the root's handle
};

// What an operator sees of a live session (Admin.ListSessions).
struct SessionSummary {
  uint64_t id = 0;
  std::string client_name;
  std::string owner;            // the token's name; "" without tokens
  absl::Duration lease;
  absl::Duration expires_in;    // until the lease runs out unless renewed
  int open_scopes = 0;          // handles opened and not closed (root not counted)
};

// What a re-entry copies of a captured variable scope (TF_SEMANTICS §2.3).
struct CapturedScope {
  bool root = false;
  std::string name;
  Reuse reuse = Reuse::kInherit;
  std::optional<InitializerSpec> initializer;
  DType dtype = DType::kInvalid;
  std::optional<PartitionerSpec> partitioner;
  std::string original_name_scope;
};

struct OpenScopeRequest {
  uint64_t parent = 0;  // 0 = root
  // What to open: a name, a captured scope (0 = this session's root), or,
  // when neither is given, default_name.
  std::string name;
  std::optional<uint64_t> reenter;
  // Or a scope captured elsewhere (a session homed on another shard of a
  // cluster): re-entered like `reenter`.
  std::optional<CapturedScope> reenter_state;
  std::string default_name;
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
  bool root = false;
};

// UpdateScope: each field set replaces that default (an inner nullopt /
// kInvalid removes it); unset fields stay.
struct ScopeDefaultsUpdate {
  std::optional<std::optional<InitializerSpec>> initializer;
  std::optional<DType> dtype;
  std::optional<std::optional<PartitionerSpec>> partitioner;
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
  // scope.set_initializer / set_dtype / set_partitioner: later GetVariable
  // calls in the scope and scopes opened under it afterwards see them.
  absl::StatusOr<ScopeInfo> UpdateScope(uint64_t session, uint64_t scope,
                                        const ScopeDefaultsUpdate& update);
  absl::StatusOr<ScopeInfo> ReuseVariables(uint64_t session, uint64_t scope);
  absl::Status CloseScope(uint64_t session, uint64_t scope);
  // The session's handles: the root first, then in opening order.
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
  // NewVariable in steps, for a caller that creates the variable itself
  // (a cluster shard creates it on the shard that owns the name): the next
  // candidate name in the handle's name scope (`base` "" = "Variable"),
  // skipping names `taken` says are used; the op names it marked are noted
  // in `marks`, to give back with GiveBackNames if the creation fails.
  using NameMarks = std::vector<std::tuple<std::string, int64_t, int64_t>>;
  absl::StatusOr<std::string> NextVariableName(
      uint64_t session, uint64_t scope, absl::string_view base,
      const std::function<bool(const std::string&)>& taken, NameMarks* marks);
  void GiveBackNames(uint64_t session, const NameMarks& marks);
  // A session-unique op name ("scope_1/add_2:0"); with `preview`, the name
  // the next op would get, not reserved (unique_name(mark_as_used=False)).
  absl::StatusOr<std::string> OpName(uint64_t session, uint64_t scope,
                                     absl::string_view name,
                                     bool preview = false);

  // The scope `handle` as another shard's session re-enters it: NOT_FOUND
  // unless its session is alive and was opened by `owner`.
  absl::StatusOr<CapturedScope> CaptureForPeer(uint64_t handle, absl::string_view owner);
  // Drops sessions whose lease has run out; returns how many.
  int ReapExpired();
  size_t num_sessions() const;
  // The live sessions, by id.
  std::vector<SessionSummary> ListSessions() const;

 private:
  struct Scope;
  struct Session;

  struct PlannedScope;
  // Argument checks that need no session.
  static absl::Status CheckOpenScopeRequest(const OpenScopeRequest& request);
  // The live session, or NOT_FOUND with the SESSION_NOT_FOUND reason.
  absl::StatusOr<std::shared_ptr<Session>> Find(uint64_t session);
  // A copy of the scope `handle` (of `s`, or of another live session of
  // the same token owner) to re-enter in `s`.
  absl::StatusOr<CapturedScope> Capture(Session& s, uint64_t handle);
  // OpenScope's decision and commit inside `s`, under its lock.
  absl::StatusOr<ScopeInfo> OpenIn(Session& s, const OpenScopeRequest& request,
                                   const std::optional<CapturedScope>& captured);
  // The live session owning `handle` (via the handle index), or null.
  std::shared_ptr<Session> SessionOfHandle(uint64_t handle);
  // Removes a session and forgets its handles.
  void EraseLocked(uint64_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint64_t NewHandle() { return next_handle_.fetch_add(1, std::memory_order_relaxed); }
  VariableStore* const store_;  // Not owned.
  const Clock* const clock_;    // Not owned.
  const SessionOptions options_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, std::shared_ptr<Session>> sessions_
      ABSL_GUARDED_BY(mu_);
  uint64_t next_session_id_ ABSL_GUARDED_BY(mu_);
  // Which session each committed handle belongs to (cross-session
  // re-entry finds its session without scanning them all).
  absl::flat_hash_map<uint64_t, uint64_t> handle_session_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> next_handle_;
};

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_NAMESPACE_SESSION_MANAGER_H_
