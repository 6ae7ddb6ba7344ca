#include "server/core/namespace/session_manager.h"

#include <algorithm>
#include <random>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/core/namespace/names.h"
#include "server/core/base/error_info.h"
#include "server/core/base/status_macros.h"

namespace varscope::core {

namespace {

absl::Status SessionNotFound(uint64_t id) {
  return WithReason(
      absl::NotFoundError(absl::StrCat(
          "session ", id,
          " is unknown or its lease expired; open a new session "
          "(OpenSession) and re-open its scopes")),
      kSessionNotFound, {{"session_id", absl::StrCat(id)}});
}

absl::Status ScopeNotFound(uint64_t scope, uint64_t session) {
  return WithReason(
      absl::NotFoundError(absl::StrCat(
          "scope ", scope, " is not a handle of session ", session,
          "; use a scope_id returned by OpenScope in this session (0 = root)")),
      kScopeNotFound,
      {{"scope_id", absl::StrCat(scope)}, {"session_id", absl::StrCat(session)}});
}

uint64_t RandomStart() {
  std::random_device entropy;
  const uint64_t high = entropy();
  const uint64_t start = ((high << 32) | entropy()) >> 1;
  return start == 0 ? 1 : start;
}

// "foo/" -> "foo": name scopes carry a trailing slash, joins do not.
absl::string_view StripSlash(absl::string_view name_scope) {
  if (!name_scope.empty() && name_scope.back() == '/') {
    name_scope.remove_suffix(1);
  }
  return name_scope;
}

NamePosition PositionIn(const std::string& name_scope) {
  return name_scope.empty() ? NamePosition::kRoot : NamePosition::kNested;
}

}  // namespace

struct SessionManager::Scope {
  enum class Origin { kRoot, kString, kReenter, kNameScope };

  uint64_t id = 0;
  uint64_t parent = 0;
  ScopeKind kind = ScopeKind::kVariableScope;
  Origin origin = Origin::kRoot;
  // The variable scope this handle resolves GetVariable in: itself for a
  // variable scope, the enclosing variable scope for a name scope.
  uint64_t owner = 0;
  // Variable-scope fields (meaningful when kind == kVariableScope).
  std::string name;
  Reuse reuse = Reuse::kInherit;
  std::optional<InitializerSpec> initializer;
  DType dtype = DType::kInvalid;
  std::optional<PartitionerSpec> partitioner;
  std::string original_name_scope;
  // Name scope ops opened inside this handle get ("foo_1/"; "" = root).
  std::string name_scope;
  bool open = true;
  int open_children = 0;
  // For a re-entered captured scope: the open counts to restore on close.
  std::optional<absl::flat_hash_map<std::string, int64_t>> counts_snapshot;
};

struct SessionManager::Session {
  uint64_t id = 0;
  std::string client_name;
  std::string owner;  // the token holder that opened it; "" without tokens
  absl::Duration lease;

  uint64_t root = 0;  // the root's handle; constant once opened

  absl::Mutex mu;
  absl::Time deadline ABSL_GUARDED_BY(mu);
  bool closed ABSL_GUARDED_BY(mu) = false;
  // Handles by id (server-wide ids), the root included.
  absl::flat_hash_map<uint64_t, Scope> scopes ABSL_GUARDED_BY(mu);
  // Handles opened and not yet closed (the root not counted).
  int open_scopes ABSL_GUARDED_BY(mu) = 0;
  // Op namespace: lower-cased full name -> use count (TF's _names_in_use).
  absl::flat_hash_map<std::string, int64_t> names_in_use ABSL_GUARDED_BY(mu);
  // Variable-scope open counts (TF's variable_scopes_count).
  absl::flat_hash_map<std::string, int64_t> scope_counts ABSL_GUARDED_BY(mu);

  // Marks made by UniqueName, to take back when the change they were for
  // fails: (key, count before, count set).
  using NameMarks = SessionManager::NameMarks;

  // TF's Graph.unique_name, case-insensitive (TF >= 1.9): the name the
  // next use of `full` gets; with `mark`, reserves it (noting the marks in
  // `marks` when given).
  std::string UniqueName(const std::string& full, bool mark = true,
                         NameMarks* marks = nullptr) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    const std::string key = absl::AsciiStrToLower(full);
    auto it = names_in_use.find(key);
    const int64_t i = it == names_in_use.end() ? 0 : it->second;
    std::string out = full;
    if (i > 0) {
      int64_t j = i;
      while (names_in_use.contains(absl::StrCat(key, "_", j))) ++j;
      if (mark) SetNameCount(absl::StrCat(key, "_", j), 1, marks);
      out = absl::StrCat(full, "_", j);
    }
    if (mark) SetNameCount(key, i + 1, marks);
    return out;
  }

  void SetNameCount(const std::string& key, int64_t value, NameMarks* marks)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    auto found = names_in_use.find(key);
    if (marks != nullptr) {
      marks->emplace_back(key, found == names_in_use.end() ? 0 : found->second, value);
    }
    names_in_use[key] = value;
  }

  // Takes back `marks`, newest first, where nobody marked the name since.
  void Unmark(const NameMarks& marks) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    for (auto it = marks.rbegin(); it != marks.rend(); ++it) {
      const auto& [key, before, after] = *it;
      auto found = names_in_use.find(key);
      if (found == names_in_use.end() || found->second != after) continue;
      if (before == 0) {
        names_in_use.erase(found);
      } else {
        found->second = before;
      }
    }
  }

  // Count of a variable-scope name (default-name uniquification).
  int64_t CountOf(const std::string& name) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    auto it = scope_counts.find(name);
    return it == scope_counts.end() ? 0 : it->second;
  }

  // `scope` 0 means this session's root.
  absl::StatusOr<Scope*> FindScope(uint64_t scope)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    auto it = scopes.find(scope == 0 ? root : scope);
    if (it == scopes.end()) return ScopeNotFound(scope, id);
    return &it->second;
  }

  // The variable-scope context GetVariable sees through a handle.
  ScopeContext ContextOf(const Scope& scope) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    const Scope& owner = scopes.at(scope.owner);
    return ScopeContext{owner.name, owner.reuse, owner.initializer, owner.dtype,
                        owner.partitioner};
  }

  // Plans a fresh name scope `component` under `parent`'s, uniquified
  // (reserved at Commit); without `open`, the scope keeps the parent's.
  void PlanOwnNameScope(const Scope& parent, const std::string& component, bool open,
                        PlannedScope& p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // The steps of OpenScope (TF_SEMANTICS §2); none changes the session.
  absl::StatusOr<PlannedScope> PlanNameScope(const Scope& parent,
                                             const OpenScopeRequest& request)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  absl::StatusOr<PlannedScope> PlanNamed(const Scope& parent,
                                         const OpenScopeRequest& request,
                                         const VariableStore& store)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  absl::StatusOr<PlannedScope> PlanDefaultName(const Scope& parent,
                                               const OpenScopeRequest& request,
                                               const VariableStore& store)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  absl::StatusOr<PlannedScope> PlanReentry(const Scope& parent,
                                           const OpenScopeRequest& request,
                                           const CapturedScope& captured)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Reserves the name scope, counts, and adds the scope as handle `id`.
  ScopeInfo Commit(Scope& parent, PlannedScope planned, uint64_t id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  ScopeInfo InfoOf(const Scope& scope) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    const Scope& owner = scopes.at(scope.owner);
    ScopeInfo info;
    info.id = scope.id;
    info.parent = scope.parent;
    info.kind = scope.kind;
    info.name = owner.name;
    info.name_scope = scope.name_scope;
    info.original_name_scope = owner.original_name_scope;
    info.reuse = owner.reuse;
    info.initializer = owner.initializer;
    info.dtype = owner.dtype;
    info.partitioner = owner.partitioner;
    info.open = scope.open;
    info.root = scope.origin == Scope::Origin::kRoot;
    return info;
  }
};

// An opened scope decided but not yet in the session: the name scope to
// reserve and the counts to change when it is committed.
struct SessionManager::PlannedScope {
  Scope scope;
  std::string reserve;        // full name scope to mark used; "" = none
  bool count = false;         // ++scope_counts[scope.name]
  bool snapshot = false;      // re-entry: keep the counts to restore on close
};



// ---------------------------------------------------------------------------
// OpenScope, in steps.

absl::Status SessionManager::CheckOpenScopeRequest(const OpenScopeRequest& request) {
  if (request.kind == ScopeKind::kNameScope) {
    if (request.reenter.has_value() || request.reenter_state.has_value() ||
        request.initializer.has_value() ||
        request.dtype != DType::kInvalid || request.partitioner.has_value() ||
        !request.auxiliary_name_scope || request.reuse != Reuse::kInherit) {
      return absl::InvalidArgumentError(
          "a NAME_SCOPE takes only name or default_name; reenter_scope_id, "
          "reuse, initializer, dtype, partitioner and auxiliary_name_scope "
          "apply to VARIABLE_SCOPE");
    }
    return absl::OkStatus();
  }
  const bool reenters = request.reenter.has_value() || request.reenter_state.has_value();
  if (!request.name.empty() && reenters) {
    return absl::InvalidArgumentError(
        "give either name or reenter_scope_id, not both");
  }
  if (request.name.empty() && !reenters && request.default_name.empty()) {
    return absl::InvalidArgumentError(
        "OpenScope needs a name, a reenter_scope_id or a default_name");
  }
  return absl::OkStatus();
}

namespace {

// Defaults come from the scope inherited from, then the request's.
template <typename Scope, typename From>
void TakeDefaults(Scope& scope, const From& from, const OpenScopeRequest& request) {
  scope.initializer =
      request.initializer.has_value() ? request.initializer : from.initializer;
  scope.dtype = request.dtype != DType::kInvalid ? request.dtype : from.dtype;
  scope.partitioner =
      request.partitioner.has_value() ? request.partitioner : from.partitioner;
}

}  // namespace

absl::StatusOr<SessionManager::PlannedScope> SessionManager::Session::PlanNameScope(
    const Scope& parent, const OpenScopeRequest& request) {
  const std::string& name =
      request.name.empty() ? request.default_name : request.name;
  PlannedScope p;
  p.scope.parent = parent.id;
  p.scope.kind = ScopeKind::kNameScope;
  p.scope.origin = Scope::Origin::kNameScope;
  p.scope.owner = parent.owner;
  const NamePosition position = PositionIn(parent.name_scope);
  if (name.empty()) {
    p.scope.name_scope = "";  // tf.name_scope("") resets to the root
  } else if (name.back() == '/') {
    // Absolute: re-enter exactly this name scope, nothing uniquified.
    VARSCOPE_RETURN_IF_ERROR(ValidateName(StripSlash(name), position, "name scope"));
    p.scope.name_scope = name;
  } else {
    VARSCOPE_RETURN_IF_ERROR(ValidateName(name, position, "name scope"));
    PlanOwnNameScope(parent, name, /*open=*/true, p);
  }
  return p;
}

void SessionManager::Session::PlanOwnNameScope(const Scope& parent,
                                               const std::string& component, bool open,
                                               PlannedScope& p) {
  if (!open) {
    p.scope.name_scope = parent.name_scope;
    return;
  }
  p.reserve = JoinName(StripSlash(parent.name_scope), component);
  p.scope.name_scope = UniqueName(p.reserve, /*mark=*/false) + "/";
}

absl::StatusOr<SessionManager::PlannedScope> SessionManager::Session::PlanNamed(
    const Scope& parent, const OpenScopeRequest& request,
    const VariableStore& store) {
  const Scope& owner = scopes.at(parent.owner);
  VARSCOPE_RETURN_IF_ERROR(
      ValidateName(request.name, PositionIn(parent.name_scope), "scope name"));
  PlannedScope p;
  p.scope.parent = parent.id;
  p.scope.origin = Scope::Origin::kString;
  p.scope.name = JoinName(owner.name, request.name);
  VARSCOPE_RETURN_IF_ERROR(store.ValidateFullName(p.scope.name));
  p.scope.reuse = ResolveReuse(request.reuse, owner.reuse);
  TakeDefaults(p.scope, owner, request);
  PlanOwnNameScope(parent, request.name, request.auxiliary_name_scope, p);
  p.scope.original_name_scope = p.scope.name_scope;
  p.count = true;
  return p;
}

absl::StatusOr<SessionManager::PlannedScope> SessionManager::Session::PlanDefaultName(
    const Scope& parent, const OpenScopeRequest& request,
    const VariableStore& store) {
  if (request.reuse != Reuse::kInherit) {
    return absl::InvalidArgumentError(absl::StrCat(
        "reuse ", ReuseName(request.reuse),
        " cannot be used without a name: a default_name scope inherits its "
        "parent's reuse flag"));
  }
  VARSCOPE_RETURN_IF_ERROR(ValidateName(
      request.default_name, PositionIn(parent.name_scope), "default_name"));
  const Scope& owner = scopes.at(parent.owner);
  PlannedScope p;
  p.scope.parent = parent.id;
  p.scope.origin = Scope::Origin::kString;
  // The name scope and the variable-scope suffix come from different
  // tables, so they can differ (TF_SEMANTICS §2.4 step 5).
  PlanOwnNameScope(parent, request.default_name, request.auxiliary_name_scope, p);
  std::string chosen = request.default_name;
  for (int64_t k = 1; CountOf(JoinName(owner.name, chosen)) > 0; ++k) {
    chosen = absl::StrCat(request.default_name, "_", k);
  }
  p.scope.name = JoinName(owner.name, chosen);
  VARSCOPE_RETURN_IF_ERROR(store.ValidateFullName(p.scope.name));
  p.scope.reuse = owner.reuse;
  TakeDefaults(p.scope, owner, request);
  p.scope.original_name_scope = p.scope.name_scope;
  p.count = true;
  return p;
}

absl::StatusOr<SessionManager::PlannedScope> SessionManager::Session::PlanReentry(
    const Scope& parent, const OpenScopeRequest& request,
    const CapturedScope& captured) {
  PlannedScope p;
  p.scope.parent = parent.id;
  p.scope.origin = Scope::Origin::kReenter;
  p.scope.name = captured.name;  // absolute
  p.scope.reuse = ResolveReuse(request.reuse, captured.reuse);
  TakeDefaults(p.scope, captured, request);
  // A fresh name scope named after the last component; the root opens none
  // (TF_SEMANTICS §2.3 step 1).
  PlanOwnNameScope(parent, std::string(LastComponent(captured.name)),
                   request.auxiliary_name_scope && !captured.root, p);
  p.scope.original_name_scope = captured.original_name_scope;
  p.count = !captured.root;
  p.snapshot = true;
  return p;
}

ScopeInfo SessionManager::Session::Commit(Scope& parent, PlannedScope p,
                                          uint64_t id) {
  if (!p.reserve.empty()) UniqueName(p.reserve, /*mark=*/true);
  if (p.count) ++scope_counts[p.scope.name];
  if (p.snapshot) p.scope.counts_snapshot = scope_counts;
  p.scope.id = id;
  if (p.scope.kind == ScopeKind::kVariableScope) p.scope.owner = id;
  parent.open_children++;
  open_scopes++;
  Scope& stored = scopes.emplace(id, std::move(p.scope)).first->second;
  return InfoOf(stored);
}

SessionManager::SessionManager(VariableStore* store, const Clock* clock,
                               SessionOptions options)
    : store_(store),
      clock_(clock),
      options_(std::move(options)),
      next_session_id_(options_.first_session_id),
      next_handle_(options_.first_scope_handle != 0 ? options_.first_scope_handle
                                                     : RandomStart()) {
  if (next_session_id_ == 0) next_session_id_ = RandomStart();
}

SessionManager::~SessionManager() = default;

absl::StatusOr<SessionInfo> SessionManager::OpenSession(
    std::string client_name, absl::Duration lease, std::string owner) {
  if (lease < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("lease_ttl_ms must not be negative");
  }
  if (client_name.size() > 256) {
    return absl::InvalidArgumentError("client_name is over 256 bytes");
  }
  if (lease == absl::ZeroDuration()) lease = options_.default_lease;
  lease = std::clamp(lease, options_.min_lease, options_.max_lease);
  auto session = std::make_shared<Session>();
  session->client_name = std::move(client_name);
  session->owner = std::move(owner);
  session->lease = lease;
  session->root = NewHandle();
  {
    absl::MutexLock lock(&session->mu);
    session->deadline = clock_->Now() + lease;
    Scope root;
    root.id = session->root;
    root.owner = session->root;
    root.parent = 0;
    root.kind = ScopeKind::kVariableScope;
    session->scopes.emplace(root.id, std::move(root));
  }
  absl::MutexLock lock(&mu_);
  if (options_.max_sessions > 0 &&
      sessions_.size() >= static_cast<size_t>(options_.max_sessions)) {
    return WithReason(
        absl::ResourceExhaustedError(absl::StrCat(
            "the server already has ", sessions_.size(),
            " sessions, its --max_sessions; close sessions you no longer use "
            "(an abandoned one ends when its lease runs out)")),
        kQuotaExceeded, {{"flag", "--max_sessions"}});
  }
  session->id = next_session_id_++;
  sessions_.emplace(session->id, session);
  handle_session_[session->root] = session->id;
  return SessionInfo{session->id, session->client_name, lease, session->root};
}

absl::Status SessionManager::CheckOwner(uint64_t session,
                                        absl::string_view owner) const {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(session);
  // An unknown session is reported by the call itself.
  if (it == sessions_.end() || it->second->owner == owner) {
    return absl::OkStatus();
  }
  return absl::PermissionDeniedError(absl::StrCat(
      "session ", session, " was opened with another token"));
}

absl::StatusOr<std::shared_ptr<SessionManager::Session>> SessionManager::Find(
    uint64_t id) {
  std::shared_ptr<Session> session;
  {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(id);
    if (it == sessions_.end()) return SessionNotFound(id);
    session = it->second;
  }
  bool expired = false;
  {
    absl::MutexLock lock(&session->mu);
    const absl::Time now = clock_->Now();
    if (session->closed || now > session->deadline) {
      session->closed = true;
      expired = true;
    } else {
      session->deadline = now + session->lease;  // any call renews the lease
    }
  }
  if (expired) {
    absl::MutexLock lock(&mu_);
    EraseLocked(id);
    return SessionNotFound(id);
  }
  return session;
}

absl::StatusOr<absl::Duration> SessionManager::KeepAlive(uint64_t session) {
  VARSCOPE_ASSIGN_OR_RETURN(std::shared_ptr<Session> s, Find(session));
  return s->lease;
}

absl::Status SessionManager::CloseSession(uint64_t session) {
  VARSCOPE_ASSIGN_OR_RETURN(std::shared_ptr<Session> s, Find(session));
  {
    absl::MutexLock lock(&s->mu);
    s->closed = true;
  }
  absl::MutexLock lock(&mu_);
  EraseLocked(session);
  return absl::OkStatus();
}

void SessionManager::EraseLocked(uint64_t id) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  std::vector<uint64_t> handles;
  {
    absl::MutexLock lock(&it->second->mu);
    for (const auto& [handle, scope] : it->second->scopes) handles.push_back(handle);
  }
  for (uint64_t handle : handles) handle_session_.erase(handle);
  sessions_.erase(it);
}

namespace {

// What a re-entry copies of `scope` (handle `id`).
template <typename ScopeT>
absl::StatusOr<CapturedScope> CaptureOf(const ScopeT& scope, uint64_t id, bool root) {
  if (scope.kind != ScopeKind::kVariableScope) {
    return absl::InvalidArgumentError(absl::StrCat(
        "scope ", id, " is a NAME_SCOPE; only variable scopes can be re-entered"));
  }
  CapturedScope c;
  c.root = root;
  c.name = scope.name;
  c.reuse = scope.reuse;
  c.initializer = scope.initializer;
  c.dtype = scope.dtype;
  c.partitioner = scope.partitioner;
  c.original_name_scope = scope.original_name_scope;
  return c;
}

}  // namespace

std::shared_ptr<SessionManager::Session> SessionManager::SessionOfHandle(uint64_t handle) {
  absl::MutexLock lock(&mu_);
  auto owner = handle_session_.find(handle);
  if (owner == handle_session_.end()) return nullptr;
  auto it = sessions_.find(owner->second);
  return it == sessions_.end() ? nullptr : it->second;
}

absl::StatusOr<CapturedScope> SessionManager::Capture(Session& s, uint64_t handle) {
  {
    absl::MutexLock lock(&s.mu);
    if (handle == 0 || s.scopes.contains(handle)) {
      VARSCOPE_ASSIGN_OR_RETURN(Scope * scope, s.FindScope(handle));
      return CaptureOf(*scope, handle, scope->origin == Scope::Origin::kRoot);
    }
  }
  // A handle of another live session opened with the same token:
  // TensorFlow lets a scope object be re-entered in another graph. One
  // session lock at a time.
  std::shared_ptr<Session> other = SessionOfHandle(handle);
  if (other != nullptr && other.get() != &s && other->owner == s.owner) {
    absl::MutexLock lock(&other->mu);
    auto it = other->scopes.find(handle);
    if (!other->closed && clock_->Now() <= other->deadline && it != other->scopes.end()) {
      return CaptureOf(it->second, handle, it->second.origin == Scope::Origin::kRoot);
    }
  }
  return ScopeNotFound(handle, s.id);
}

absl::StatusOr<CapturedScope> SessionManager::CaptureForPeer(uint64_t handle,
                                                            absl::string_view owner) {
  std::shared_ptr<Session> s = SessionOfHandle(handle);
  if (s != nullptr && s->owner == owner) {
    absl::MutexLock lock(&s->mu);
    auto it = s->scopes.find(handle);
    if (!s->closed && clock_->Now() <= s->deadline && it != s->scopes.end()) {
      return CaptureOf(it->second, handle, it->second.origin == Scope::Origin::kRoot);
    }
  }
  return WithReason(absl::NotFoundError(absl::StrCat(
                        "scope handle ", handle,
                        " is not a scope of a live session of this token")),
                    kScopeNotFound, {{"scope_id", absl::StrCat(handle)}});
}

absl::StatusOr<ScopeInfo> SessionManager::OpenScope(
    uint64_t session, const OpenScopeRequest& request) {
  VARSCOPE_RETURN_IF_ERROR(CheckOpenScopeRequest(request));
  VARSCOPE_ASSIGN_OR_RETURN(std::shared_ptr<Session> s, Find(session));
  std::optional<CapturedScope> captured = request.reenter_state;
  if (request.kind == ScopeKind::kVariableScope && request.reenter.has_value() &&
      request.name.empty()) {
    VARSCOPE_ASSIGN_OR_RETURN(captured, Capture(*s, *request.reenter));
  }
  VARSCOPE_ASSIGN_OR_RETURN(ScopeInfo info, OpenIn(*s, request, captured));
  // Indexed once committed: until then nobody else knows the handle.
  absl::MutexLock lock(&mu_);
  handle_session_[info.id] = s->id;
  return info;
}

absl::StatusOr<ScopeInfo> SessionManager::OpenIn(Session& session_state,
                                                 const OpenScopeRequest& request,
                                                 const std::optional<CapturedScope>& captured) {
  Session* s = &session_state;
  const uint64_t session = s->id;
  absl::MutexLock lock(&s->mu);
  VARSCOPE_ASSIGN_OR_RETURN(Scope * parent, s->FindScope(request.parent));
  if (!parent->open) {
    return absl::FailedPreconditionError(absl::StrCat(
        "parent scope ", request.parent,
        " is closed; open scopes inside an open scope (re-enter a closed one "
        "with reenter_scope_id)"));
  }
  if (options_.max_open_scopes > 0 &&
      s->open_scopes >= options_.max_open_scopes) {
    return WithReason(
        absl::ResourceExhaustedError(absl::StrCat(
            "session ", session, " already has ", s->open_scopes,
            " open scopes, the server's --max_open_scopes_per_session; close "
            "scopes you no longer use")),
        kQuotaExceeded, {{"flag", "--max_open_scopes_per_session"}});
  }
  // Decide everything, then change the session.
  absl::StatusOr<PlannedScope> planned =
      request.kind == ScopeKind::kNameScope ? s->PlanNameScope(*parent, request)
      : captured.has_value() ? s->PlanReentry(*parent, request, *captured)
      : !request.name.empty() ? s->PlanNamed(*parent, request, *store_)
                              : s->PlanDefaultName(*parent, request, *store_);
  if (!planned.ok()) return planned.status();
  return s->Commit(*parent, *std::move(planned), NewHandle());
}

absl::StatusOr<ScopeInfo> SessionManager::ReuseVariables(uint64_t session,
                                                         uint64_t scope) {
  VARSCOPE_ASSIGN_OR_RETURN(std::shared_ptr<Session> s, Find(session));
  absl::MutexLock lock(&s->mu);
  VARSCOPE_ASSIGN_OR_RETURN(Scope * handle, s->FindScope(scope));
  s->scopes.at(handle->owner).reuse = Reuse::kReuse;
  return s->InfoOf(*handle);
}

absl::StatusOr<ScopeInfo> SessionManager::UpdateScope(
    uint64_t session, uint64_t scope, const ScopeDefaultsUpdate& update) {
  VARSCOPE_ASSIGN_OR_RETURN(std::shared_ptr<Session> s, Find(session));
  absl::MutexLock lock(&s->mu);
  VARSCOPE_ASSIGN_OR_RETURN(Scope * handle, s->FindScope(scope));
  Scope& owner = s->scopes.at(handle->owner);
  if (update.initializer.has_value()) owner.initializer = *update.initializer;
  if (update.dtype.has_value()) owner.dtype = *update.dtype;
  if (update.partitioner.has_value()) owner.partitioner = *update.partitioner;
  return s->InfoOf(*handle);
}

absl::Status SessionManager::CloseScope(uint64_t session, uint64_t scope) {
  VARSCOPE_ASSIGN_OR_RETURN(std::shared_ptr<Session> s, Find(session));
  absl::MutexLock lock(&s->mu);
  VARSCOPE_ASSIGN_OR_RETURN(Scope * handle, s->FindScope(scope));
  if (handle->origin == Scope::Origin::kRoot) {
    return absl::InvalidArgumentError(
        absl::StrCat("scope ", scope, " is the session's root; it cannot be closed"));
  }
  if (!handle->open) {
    return absl::FailedPreconditionError(
        absl::StrCat("scope ", scope, " is already closed"));
  }
  if (handle->open_children > 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "improper nesting: scope ", scope, " ('", handle->name_scope,
        "') still has ", handle->open_children,
        " open child scope(s); close scopes innermost-first"));
  }
  handle->open = false;
  s->scopes.at(handle->parent).open_children--;
  s->open_scopes--;
  if (handle->origin == Scope::Origin::kString) {
    // Counts of sub-scopes restart, so re-entering the parent hands out the
    // same default names again.
    const std::string prefix = handle->name + "/";
    for (auto& [key, count] : s->scope_counts) {
      if (absl::StartsWith(key, prefix)) count = 0;
    }
  } else if (handle->origin == Scope::Origin::kReenter) {
    s->scope_counts = std::move(*handle->counts_snapshot);
    handle->counts_snapshot.reset();
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ScopeInfo>> SessionManager::ListHandles(
    uint64_t session) {
  VARSCOPE_ASSIGN_OR_RETURN(std::shared_ptr<Session> s, Find(session));
  absl::MutexLock lock(&s->mu);
  std::vector<ScopeInfo> out;
  for (const auto& [id, scope] : s->scopes) out.push_back(s->InfoOf(scope));
  // Handles count up from the root's: the root first, then opening order.
  std::sort(out.begin(), out.end(),
            [](const ScopeInfo& a, const ScopeInfo& b) { return a.id < b.id; });
  return out;
}

absl::StatusOr<ScopeContext> SessionManager::ScopeContextFor(uint64_t session,
                                                             uint64_t scope) {
  VARSCOPE_ASSIGN_OR_RETURN(std::shared_ptr<Session> s, Find(session));
  absl::MutexLock lock(&s->mu);
  VARSCOPE_ASSIGN_OR_RETURN(Scope * handle, s->FindScope(scope));
  if (!handle->open) {
    return absl::FailedPreconditionError(absl::StrCat(
        "scope ", scope,
        " is closed; re-enter it (reenter_scope_id) to use it again"));
  }
  return s->ContextOf(*handle);
}

absl::StatusOr<VariableInfo> SessionManager::GetVariable(
    uint64_t session, uint64_t scope, const GetVariableRequest& request) {
  VARSCOPE_ASSIGN_OR_RETURN(ScopeContext context, ScopeContextFor(session, scope));
  // No session lock here: creating a large variable must not block the
  // session's other threads.
  return store_->GetVariable(context, request);
}

absl::StatusOr<std::string> SessionManager::NextVariableName(
    uint64_t session, uint64_t scope, absl::string_view base_name,
    const std::function<bool(const std::string&)>& taken, NameMarks* marks) {
  const std::string base = base_name.empty() ? "Variable" : std::string(base_name);
  VARSCOPE_ASSIGN_OR_RETURN(std::shared_ptr<Session> s, Find(session));
  absl::MutexLock lock(&s->mu);
  VARSCOPE_ASSIGN_OR_RETURN(Scope * handle, s->FindScope(scope));
  if (!handle->open) {
    return absl::FailedPreconditionError(absl::StrCat("scope ", scope, " is closed"));
  }
  VARSCOPE_RETURN_IF_ERROR(ValidateName(base, PositionIn(handle->name_scope), "variable name"));
  std::string candidate;
  // Skip suffixes another worker's variable already uses (§10.6).
  do {
    candidate = s->UniqueName(JoinName(StripSlash(handle->name_scope), base), true, marks);
  } while (taken(candidate));
  return candidate;
}

void SessionManager::GiveBackNames(uint64_t session, const NameMarks& marks) {
  absl::StatusOr<std::shared_ptr<Session>> s = Find(session);
  if (!s.ok()) return;
  absl::MutexLock lock(&(*s)->mu);
  (*s)->Unmark(marks);
}

absl::StatusOr<VariableInfo> SessionManager::NewVariable(
    uint64_t session, uint64_t scope, const NewVariableRequest& request) {
  if (!request.variable.initializer.has_value()) {
    return absl::InvalidArgumentError(
        "NewVariable needs an initial value (value, or initializer with "
        "shape)");
  }
  // tf.Variable ignores the scope's defaults and reuse: it always creates.
  const ScopeContext no_defaults;
  auto in_store = [this](const std::string& name) { return store_->NameInUse(name); };
  constexpr int kMaxAttempts = 1000;
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    NameMarks marks;
    VARSCOPE_ASSIGN_OR_RETURN(std::string candidate,
                              NextVariableName(session, scope, request.name, in_store, &marks));
    absl::StatusOr<VariableInfo> created =
        store_->CreateVariable(candidate, request.variable, no_defaults);
    if (created.ok()) return created;
    if (!absl::IsAlreadyExists(created.status())) {
      // A failed call changes nothing: the op names it took are given back.
      GiveBackNames(session, marks);
      return created;
    }
    // Lost a race for `candidate` with another session: pick the next one.
  }
  return absl::AbortedError("NewVariable could not find a free name");
}

absl::StatusOr<std::string> SessionManager::OpName(uint64_t session,
                                                   uint64_t scope,
                                                   absl::string_view name,
                                                   bool preview) {
  if (name.empty()) {
    return absl::InvalidArgumentError("OpName needs an op name or type");
  }
  VARSCOPE_ASSIGN_OR_RETURN(std::shared_ptr<Session> s, Find(session));
  absl::MutexLock lock(&s->mu);
  VARSCOPE_ASSIGN_OR_RETURN(Scope * handle, s->FindScope(scope));
  if (!handle->open) {
    return absl::FailedPreconditionError(
        absl::StrCat("scope ", scope, " is closed"));
  }
  if (name.back() == '/') {  // absolute, used as-is
    name.remove_suffix(1);
    VARSCOPE_RETURN_IF_ERROR(ValidateName(name, NamePosition::kRoot, "op name"));
    return absl::StrCat(name, ":0");
  }
  VARSCOPE_RETURN_IF_ERROR(
      ValidateName(name, PositionIn(handle->name_scope), "op name"));
  const std::string base = JoinName(StripSlash(handle->name_scope), name);
  const std::string full = s->UniqueName(base, /*mark=*/false);
  VARSCOPE_RETURN_IF_ERROR(ValidateName(full, NamePosition::kRoot, "op name"));
  if (!preview) s->UniqueName(base, /*mark=*/true);
  return absl::StrCat(full, ":0");
}

int SessionManager::ReapExpired() {
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  int reaped = 0;
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    Session& s = *it->second;
    bool expired;
    {
      absl::MutexLock session_lock(&s.mu);
      expired = s.closed || now > s.deadline;
      s.closed = s.closed || expired;
    }
    if (expired) {
      EraseLocked((it++)->first);
      ++reaped;
    } else {
      ++it;
    }
  }
  return reaped;
}

size_t SessionManager::num_sessions() const {
  absl::MutexLock lock(&mu_);
  return sessions_.size();
}

std::vector<SessionSummary> SessionManager::ListSessions() const {
  std::vector<std::shared_ptr<Session>> live;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, session] : sessions_) live.push_back(session);
  }
  // Each session's lock alone, after the manager's is released.
  const absl::Time now = clock_->Now();
  std::vector<SessionSummary> out;
  for (const std::shared_ptr<Session>& s : live) {
    absl::MutexLock lock(&s->mu);
    if (s->closed || s->deadline <= now) continue;
    out.push_back(SessionSummary{s->id, s->client_name, s->owner, s->lease,
                                 s->deadline - now, s->open_scopes});
  }
  std::sort(out.begin(), out.end(),
            [](const SessionSummary& a, const SessionSummary& b) { return a.id < b.id; });
  return out;
}

}  // namespace varscope::core
