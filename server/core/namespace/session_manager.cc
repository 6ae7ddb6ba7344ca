#include "server/core/namespace/session_manager.h"

#include <algorithm>
#include <random>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/core/namespace/names.h"
#include "server/core/base/status_macros.h"

namespace varscope::core {

namespace {

absl::Status WithReason(absl::Status status, const char* reason) {
  status.SetPayload(kErrorReasonUrl, absl::Cord(reason));
  return status;
}

absl::Status SessionNotFound(uint64_t id) {
  return WithReason(
      absl::NotFoundError(absl::StrCat(
          "session ", id,
          " is unknown or its lease expired; open a new session "
          "(OpenSession) and re-open its scopes")),
      kReasonSessionNotFound);
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

  absl::Mutex mu;
  absl::Time deadline ABSL_GUARDED_BY(mu);
  bool closed ABSL_GUARDED_BY(mu) = false;
  // Handles by id; id 0 is the root.
  absl::flat_hash_map<uint64_t, Scope> scopes ABSL_GUARDED_BY(mu);
  uint64_t next_scope_id ABSL_GUARDED_BY(mu) = 1;
  // Handles opened and not yet closed (the root not counted).
  int open_scopes ABSL_GUARDED_BY(mu) = 0;
  // Op namespace: lower-cased full name -> use count (TF's _names_in_use).
  absl::flat_hash_map<std::string, int64_t> names_in_use ABSL_GUARDED_BY(mu);
  // Variable-scope open counts (TF's variable_scopes_count).
  absl::flat_hash_map<std::string, int64_t> scope_counts ABSL_GUARDED_BY(mu);

  // TF's Graph.unique_name, case-insensitive (TF >= 1.9).
  std::string UniqueName(const std::string& full)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    const std::string key = absl::AsciiStrToLower(full);
    int64_t& count = names_in_use[key];
    const int64_t i = count++;
    if (i == 0) return full;
    int64_t j = i;
    while (names_in_use.contains(absl::StrCat(key, "_", j))) ++j;
    names_in_use[absl::StrCat(key, "_", j)] = 1;
    return absl::StrCat(full, "_", j);
  }

  absl::StatusOr<Scope*> FindScope(uint64_t scope)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
  auto it = scopes.find(scope);
  if (it == scopes.end()) {
    return WithReason(absl::NotFoundError(absl::StrCat(
                          "scope ", scope, " is not a handle of session ",
                          id,
                          "; use a scope_id returned by OpenScope in this "
                          "session (0 = root)")),
                      kReasonScopeNotFound);
  }
  return &it->second;
}

  // The variable-scope context GetVariable sees through a handle.
  ScopeContext ContextOf(const Scope& scope) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
  const Scope& owner = scopes.at(scope.owner);
  return ScopeContext{owner.name, owner.reuse, owner.initializer, owner.dtype,
                      owner.partitioner};
}

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
  return info;
}
};


SessionManager::SessionManager(VariableStore* store, const Clock* clock,
                               SessionOptions options)
    : store_(store),
      clock_(clock),
      options_(std::move(options)),
      next_session_id_(options_.first_session_id) {
  if (next_session_id_ == 0) {
    std::random_device entropy;
    const uint64_t high = entropy();
    next_session_id_ = ((high << 32) | entropy()) >> 1;
    if (next_session_id_ == 0) next_session_id_ = 1;
  }
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
  {
    absl::MutexLock lock(&session->mu);
    session->deadline = clock_->Now() + lease;
    Scope root;
    root.kind = ScopeKind::kVariableScope;
    session->scopes.emplace(0, std::move(root));
  }
  absl::MutexLock lock(&mu_);
  if (options_.max_sessions > 0 &&
      sessions_.size() >= static_cast<size_t>(options_.max_sessions)) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the server already has ", sessions_.size(),
        " sessions, its --max_sessions; close sessions you no longer use (an "
        "abandoned one ends when its lease runs out)"));
  }
  session->id = next_session_id_++;
  sessions_.emplace(session->id, session);
  return SessionInfo{session->id, session->client_name, lease};
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
    sessions_.erase(id);
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
  sessions_.erase(session);
  return absl::OkStatus();
}

absl::StatusOr<ScopeInfo> SessionManager::OpenScope(
    uint64_t session, const OpenScopeRequest& request) {
  VARSCOPE_ASSIGN_OR_RETURN(std::shared_ptr<Session> s, Find(session));
  absl::MutexLock lock(&s->mu);
  VARSCOPE_ASSIGN_OR_RETURN(Scope * parent, s->FindScope(request.parent));
  if (!parent->open) {
    return absl::FailedPreconditionError(absl::StrCat(
        "parent scope ", request.parent,
        " is closed; open scopes inside an open scope (re-enter a closed one "
        "with reenter_scope_id)"));
  }
  const Scope& owner = s->scopes.at(parent->owner);
  const std::string current_ns = parent->name_scope;
  const NamePosition position = PositionIn(current_ns);
  if (options_.max_open_scopes > 0 &&
      s->open_scopes >= options_.max_open_scopes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "session ", session, " already has ", s->open_scopes,
        " open scopes, the server's --max_open_scopes_per_session; close "
        "scopes you no longer use"));
  }

  Scope scope;
  scope.parent = request.parent;
  scope.kind = request.kind;

  if (request.kind == ScopeKind::kNameScope) {
    if (request.reenter != 0 || request.initializer.has_value() ||
        request.dtype != DType::kInvalid || request.partitioner.has_value() ||
        !request.auxiliary_name_scope) {
      return absl::InvalidArgumentError(
          "a NAME_SCOPE takes only name or default_name; reenter_scope_id, "
          "initializer, dtype, partitioner and auxiliary_name_scope apply to "
          "VARIABLE_SCOPE");
    }
    const std::string& name =
        request.name.empty() ? request.default_name : request.name;
    scope.origin = Scope::Origin::kNameScope;
    scope.owner = parent->owner;
    if (name.empty()) {
      scope.name_scope = "";  // tf.name_scope("") resets to the root
    } else if (name.back() == '/') {
      // Absolute: re-enter exactly this name scope, nothing uniquified.
      VARSCOPE_RETURN_IF_ERROR(
          ValidateName(StripSlash(name), position, "name scope"));
      scope.name_scope = name;
    } else {
      VARSCOPE_RETURN_IF_ERROR(ValidateName(name, position, "name scope"));
      scope.name_scope =
          s->UniqueName(JoinName(StripSlash(current_ns), name)) + "/";
    }
  } else {
    const int selectors = (request.name.empty() ? 0 : 1) +
                          (request.reenter != 0 ? 1 : 0);
    if (selectors > 1) {
      return absl::InvalidArgumentError(
          "give either name or reenter_scope_id, not both");
    }
    // Defaults come from the scope we inherit from, then the request's.
    auto take_defaults = [&](const Scope& from) {
      scope.initializer = request.initializer.has_value() ? request.initializer
                                                          : from.initializer;
      scope.dtype = request.dtype != DType::kInvalid ? request.dtype
                                                     : from.dtype;
      scope.partitioner = request.partitioner.has_value()
                              ? request.partitioner
                              : from.partitioner;
    };
    auto open_name_scope = [&](absl::string_view component)
                               ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu) {
      return request.auxiliary_name_scope
                 ? s->UniqueName(JoinName(StripSlash(current_ns), component)) +
                       "/"
                 : current_ns;
    };
    if (!request.name.empty()) {
      VARSCOPE_RETURN_IF_ERROR(
          ValidateName(request.name, position, "scope name"));
      scope.name = JoinName(owner.name, request.name);
      VARSCOPE_RETURN_IF_ERROR(store_->ValidateFullName(scope.name));
      scope.reuse = ResolveReuse(request.reuse, owner.reuse);
      take_defaults(owner);
      scope.name_scope = open_name_scope(request.name);
      scope.original_name_scope = scope.name_scope;
      scope.origin = Scope::Origin::kString;
      ++s->scope_counts[scope.name];
    } else if (!request.default_name.empty()) {
      if (request.reuse != Reuse::kInherit) {
        return absl::InvalidArgumentError(absl::StrCat(
            "reuse ", ReuseName(request.reuse),
            " cannot be used without a name: a default_name scope inherits "
            "its parent's reuse flag"));
      }
      VARSCOPE_RETURN_IF_ERROR(
          ValidateName(request.default_name, position, "default_name"));
      // The name scope and the variable-scope suffix come from different
      // tables, so they can differ (TF_SEMANTICS §2.4 step 5).
      scope.name_scope = open_name_scope(request.default_name);
      std::string chosen = request.default_name;
      if (s->scope_counts[JoinName(owner.name, chosen)] > 0) {
        int64_t k = 1;
        while (s->scope_counts[JoinName(
                   owner.name, absl::StrCat(request.default_name, "_", k))] >
               0) {
          ++k;
        }
        chosen = absl::StrCat(request.default_name, "_", k);
      }
      scope.name = JoinName(owner.name, chosen);
      VARSCOPE_RETURN_IF_ERROR(store_->ValidateFullName(scope.name));
      scope.reuse = owner.reuse;
      take_defaults(owner);
      scope.original_name_scope = scope.name_scope;
      scope.origin = Scope::Origin::kString;
      ++s->scope_counts[scope.name];
    } else if (request.reenter != 0) {
      VARSCOPE_ASSIGN_OR_RETURN(Scope * captured,
                                s->FindScope(request.reenter));
      if (captured->kind != ScopeKind::kVariableScope) {
        return absl::InvalidArgumentError(absl::StrCat(
            "scope ", request.reenter,
            " is a NAME_SCOPE; only variable scopes can be re-entered"));
      }
      scope.name = captured->name;
      scope.reuse = ResolveReuse(request.reuse, captured->reuse);
      take_defaults(*captured);
      scope.name_scope = open_name_scope(LastComponent(captured->name));
      scope.original_name_scope = captured->original_name_scope;
      scope.origin = Scope::Origin::kReenter;
      ++s->scope_counts[scope.name];
      scope.counts_snapshot = s->scope_counts;
    } else {
      return absl::InvalidArgumentError(
          "OpenScope needs a name, a default_name or a reenter_scope_id");
    }
  }

  scope.id = s->next_scope_id++;
  if (scope.kind == ScopeKind::kVariableScope) scope.owner = scope.id;
  parent->open_children++;
  s->open_scopes++;
  const uint64_t id = scope.id;
  Scope& stored = s->scopes.emplace(id, std::move(scope)).first->second;
  return s->InfoOf(stored);
}

absl::StatusOr<ScopeInfo> SessionManager::ReuseVariables(uint64_t session,
                                                         uint64_t scope) {
  VARSCOPE_ASSIGN_OR_RETURN(std::shared_ptr<Session> s, Find(session));
  absl::MutexLock lock(&s->mu);
  VARSCOPE_ASSIGN_OR_RETURN(Scope * handle, s->FindScope(scope));
  s->scopes.at(handle->owner).reuse = Reuse::kReuse;
  return s->InfoOf(*handle);
}

absl::Status SessionManager::CloseScope(uint64_t session, uint64_t scope) {
  VARSCOPE_ASSIGN_OR_RETURN(std::shared_ptr<Session> s, Find(session));
  absl::MutexLock lock(&s->mu);
  if (scope == 0) {
    return absl::InvalidArgumentError("the root scope (0) cannot be closed");
  }
  VARSCOPE_ASSIGN_OR_RETURN(Scope * handle, s->FindScope(scope));
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
  for (const auto& [id, scope] : s->scopes) {
    if (id != 0) out.push_back(s->InfoOf(scope));
  }
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

absl::StatusOr<VariableInfo> SessionManager::NewVariable(
    uint64_t session, uint64_t scope, const NewVariableRequest& request) {
  if (!request.variable.initializer.has_value()) {
    return absl::InvalidArgumentError(
        "NewVariable needs an initial value (value, or initializer with "
        "shape)");
  }
  const std::string base = request.name.empty() ? "Variable" : request.name;
  VARSCOPE_ASSIGN_OR_RETURN(std::shared_ptr<Session> s, Find(session));
  // tf.Variable ignores the scope's defaults and reuse: it always creates.
  const ScopeContext no_defaults;
  constexpr int kMaxAttempts = 1000;
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    std::string candidate;
    {
      absl::MutexLock lock(&s->mu);
      VARSCOPE_ASSIGN_OR_RETURN(Scope * handle, s->FindScope(scope));
      if (!handle->open) {
        return absl::FailedPreconditionError(
            absl::StrCat("scope ", scope, " is closed"));
      }
      VARSCOPE_RETURN_IF_ERROR(
          ValidateName(base, PositionIn(handle->name_scope), "variable name"));
      // Skip suffixes another worker's variable already uses (§10.6).
      do {
        candidate =
            s->UniqueName(JoinName(StripSlash(handle->name_scope), base));
      } while (store_->NameInUse(candidate));
    }
    absl::StatusOr<VariableInfo> created =
        store_->CreateVariable(candidate, request.variable, no_defaults);
    if (!absl::IsAlreadyExists(created.status())) return created;
    // Lost a race for `candidate` with another session: pick the next one.
  }
  return absl::AbortedError("NewVariable could not find a free name");
}

absl::StatusOr<std::string> SessionManager::OpName(uint64_t session,
                                                   uint64_t scope,
                                                   absl::string_view name) {
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
  const std::string full =
      s->UniqueName(JoinName(StripSlash(handle->name_scope), name));
  VARSCOPE_RETURN_IF_ERROR(ValidateName(full, NamePosition::kRoot, "op name"));
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
      sessions_.erase(it++);
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

}  // namespace varscope::core
