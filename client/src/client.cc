// varscope::Client: a session over a Connection, per-thread scope stacks,
// session recovery, Variable handles and the RAII scope guards.
#include "varscope/client.h"

#include <algorithm>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace varscope {
namespace internal {

// One opened scope guard (or captured scope). The fields after `thread`
// are guarded by ClientCore::mu_.
struct ScopeRecord {
  OpenScopeArgs args;                    // as first sent (ids re-filled)
  std::shared_ptr<ScopeRecord> parent;   // null = session root
  std::shared_ptr<ScopeRecord> reenter;  // a captured scope of this client
  bool reenter_root = false;             // re-enters this session's root
  std::optional<uint64_t> foreign;       // a handle of another session
  std::thread::id thread;

  uint64_t seq = 0;         // creation order, for replay after recovery
  uint64_t id = 0;          // server handle, valid in `generation`
  uint64_t generation = 0;  // session generation the handle belongs to
  ScopeInfo info;
  bool open = false;
  bool reused = false;      // ReuseVariables was called on it
  ScopeDefaults defaults;   // SetDefaults calls, merged, for replay
};

namespace {

bool SessionLost(const absl::Status& status) {
  return ErrorReason(status) == "SESSION_NOT_FOUND";
}

// The reason of the client's own "this scope is gone" errors (a guard or
// the root that a session recovery could not restore exactly).
constexpr char kScopeLost[] = "SCOPE_LOST";

absl::Status ScopeLost(const std::string& what) {
  return WithErrorReason(
      absl::FailedPreconditionError(absl::StrCat(
          what, " is no longer usable: its session was lost and it could not be "
                "re-opened exactly")),
      kScopeLost);
}

void Merge(const ScopeDefaults& from, ScopeDefaults* into) {
  if (from.initializer) into->initializer = from.initializer;
  if (from.dtype) into->dtype = from.dtype;
  if (from.partitioner) into->partitioner = from.partitioner;
}

}  // namespace

// The state a Client and its Variable handles share.
class ClientCore {
 public:
  ClientCore(std::shared_ptr<Connection> connection, ClientOptions options)
      : connection_(std::move(connection)), options_(std::move(options)) {}

  Connection& conn() { return *connection_; }
  const ClientOptions& options() const { return options_; }

  // Stops the keep-alive and closes the session (best effort).
  void Stop() {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    if (keep_alive_.joinable()) keep_alive_.join();
    CallOptions quick;
    quick.timeout = absl::Seconds(2);
    connection_->CloseSession(session_id(), quick).IgnoreError();
  }

  void StartKeepAlive() {
    if (options_.keep_alive) keep_alive_ = std::thread([this] { KeepAliveLoop(); });
  }

  // Runs `call(session_id, scope_id)` where scope_id is `scope`'s handle (0
  // for the root). When the server no longer knows the session, recovers
  // it and retries once.
  // `ran_in`, when set, gets the session generation the successful call
  // ran in.
  template <typename Call>
  absl::Status Run(const std::shared_ptr<ScopeRecord>& scope, Call&& call,
                   uint64_t* ran_in = nullptr) {
    for (int attempt = 0;; ++attempt) {
      uint64_t session, scope_id = 0, generation;
      {
        absl::MutexLock lock(&mu_);
        session = session_id_;
        generation = generation_;
        if (scope != nullptr) {
          if (scope->generation != generation_ || !scope->open) {
            return ScopeLost(absl::StrCat("scope '", scope->info.name, "'"));
          }
          scope_id = scope->id;
        } else if (root_lost_) {
          return ScopeLost("the session root (its REUSE or defaults)");
        }
      }
      absl::Status status = call(session, scope_id);
      if (status.ok()) {
        if (ran_in != nullptr) *ran_in = generation;
        return status;
      }
      if (attempt == 0 && SessionLost(status)) {
        if (absl::Status recovered = Recover(generation); !recovered.ok()) {
          return recovered;
        }
        continue;
      }
      return status;
    }
  }

  // Opens a new session and re-opens every live guard (re-applying
  // ReuseVariables and scope defaults), unless another thread already
  // recovered since `seen_generation`. One recovery at a time; no lock is
  // held across its calls, and every reply is checked: a guard whose scope
  // cannot be restored exactly is left unusable (Run reports it).
  absl::Status Recover(uint64_t seen_generation) {
    std::vector<std::shared_ptr<ScopeRecord>> live;
    bool root_reused;
    ScopeDefaults root_defaults;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](bool* recovering) { return !*recovering; }, &recovering_));
      if (generation_ != seen_generation) return absl::OkStatus();
      recovering_ = true;
      root_reused = root_reused_;
      root_defaults = root_defaults_;
      for (auto& [thread, stack] : stacks_) {
        live.insert(live.end(), stack.begin(), stack.end());
      }
    }
    std::sort(live.begin(), live.end(),
              [](const auto& a, const auto& b) { return a->seq < b->seq; });
    struct Reopened {
      std::shared_ptr<ScopeRecord> record;
      ScopeInfo info;
    };
    std::vector<Reopened> reopened;
    absl::Status result;
    absl::StatusOr<Connection::Session> session =
        connection_->OpenSession(options_.client_name, options_.lease, {});
    if (session.ok()) result = RestoreRoot(session->id, root_reused, root_defaults);
    // Re-opened on the server but not restored exactly: closed again.
    auto discard = [&](uint64_t handle) {
      connection_->CloseScope(session->id, handle, {}).IgnoreError();
    };
    if (session.ok()) {
      absl::flat_hash_map<const ScopeRecord*, uint64_t> new_ids;
      auto id_of = [&](const std::shared_ptr<ScopeRecord>& r) -> std::optional<uint64_t> {
        if (r == nullptr) return uint64_t{0};
        auto it = new_ids.find(r.get());
        if (it == new_ids.end()) return std::nullopt;
        return it->second;
      };
      for (const auto& record : live) {
        const std::optional<uint64_t> parent = id_of(record->parent);
        const std::optional<uint64_t> reenter = id_of(record->reenter);
        if (!parent || (record->reenter != nullptr && !reenter)) continue;
        OpenScopeArgs args = ReplayArgs(*record);
        args.session = session->id;
        args.parent = *parent;
        if (record->reenter != nullptr) args.reenter = *reenter;
        absl::StatusOr<ScopeInfo> info = connection_->OpenScope(args, {});
        if (!info.ok()) continue;
        const uint64_t handle = info->id;
        // Another variable-scope name would change what its calls mean.
        if (info->name != record->info.name) {
          discard(handle);
          continue;
        }
        if (record->reused) {
          info = connection_->ReuseVariables(session->id, handle, {});
          if (!info.ok()) {  // without its REUSE it would mean something else
            discard(handle);
            continue;
          }
        }
        if (record->defaults.initializer || record->defaults.dtype ||
            record->defaults.partitioner) {
          info = connection_->UpdateScope(session->id, handle, record->defaults, {});
          if (!info.ok()) {
            discard(handle);
            continue;
          }
        }
        new_ids[record.get()] = handle;
        reopened.push_back({record, *std::move(info)});
      }
    }
    absl::MutexLock lock(&mu_);
    recovering_ = false;
    if (!session.ok()) return session.status();
    session_id_ = session->id;
    root_scope_ = session->root_scope;
    lease_ = session->lease;
    root_lost_ = !result.ok();
    pending_closes_.clear();  // they belonged to the lost session
    ++generation_;
    ++recoveries_;
    for (Reopened& r : reopened) {
      r.record->id = r.info.id;
      r.record->generation = generation_;
      r.record->info = std::move(r.info);
    }
    return result;
  }

  // How to re-open `record` in a new session: as first sent, except that a
  // default-named scope asks for the name it got (the new session's counts
  // start over) and a re-entry names its target again.
  static OpenScopeArgs ReplayArgs(const ScopeRecord& record) {
    OpenScopeArgs args = record.args;
    if (record.reenter_root) {
      args.reenter = 0;
    } else if (record.foreign) {
      args.reenter = *record.foreign;
    } else if (args.name.empty() && !args.name_scope_only && record.reenter == nullptr) {
      const size_t slash = record.info.name.rfind('/');
      args.name = slash == std::string::npos ? record.info.name
                                             : record.info.name.substr(slash + 1);
    }
    return args;
  }

  std::shared_ptr<ScopeRecord> Innermost() {
    absl::MutexLock lock(&mu_);
    auto it = stacks_.find(std::this_thread::get_id());
    if (it == stacks_.end() || it->second.empty()) return nullptr;
    return it->second.back();
  }

  absl::StatusOr<std::shared_ptr<ScopeRecord>> OpenScope(
      OpenScopeArgs args, std::shared_ptr<ScopeRecord> reenter, bool reenter_root,
      std::optional<uint64_t> foreign) {
    auto record = std::make_shared<ScopeRecord>();
    record->parent = Innermost();
    record->reenter = std::move(reenter);
    record->reenter_root = reenter_root;
    record->foreign = foreign;
    record->thread = std::this_thread::get_id();
    record->args = args;
    absl::StatusOr<ScopeInfo> info;
    uint64_t ran_in = 0;
    absl::Status status = Run(record->parent, [&](uint64_t session, uint64_t parent) {
      args.session = session;
      args.parent = parent;
      if (record->reenter != nullptr) {
        absl::MutexLock lock(&mu_);
        if (record->reenter->generation != generation_) {
          return absl::NotFoundError(
              "the captured scope was lost when the session was re-opened");
        }
        args.reenter = record->reenter->id;
      } else if (record->reenter_root) {
        args.reenter = 0;
      } else if (record->foreign) {
        args.reenter = *record->foreign;
      }
      info = connection_->OpenScope(args, {});
      return info.status();
    }, &ran_in);
    if (!status.ok()) return status;
    absl::MutexLock lock(&mu_);
    record->id = info->id;
    // The session it was opened in: if a recovery came in between, the
    // guard belongs to the lost session and reports so on its next use.
    record->generation = ran_in;
    record->info = *std::move(info);
    record->open = true;
    record->seq = next_seq_++;
    stacks_[record->thread].push_back(record);
    return record;
  }

  absl::Status CloseScope(const std::shared_ptr<ScopeRecord>& record) {
    {
      absl::MutexLock lock(&mu_);
      auto& stack = stacks_[record->thread];
      if (stack.empty() || stack.back() != record) {
        return absl::FailedPreconditionError(absl::StrCat(
            "improper nesting: scope '", record->info.name_scope,
            "' is not the innermost scope of its thread; close scopes "
            "innermost-first"));
      }
    }
    RetryPendingCloses();
    absl::Status status = Run(record, [&](uint64_t session, uint64_t id) {
      return connection_->CloseScope(session, id, {});
    });
    // Closed locally either way: the block has ended.
    absl::MutexLock lock(&mu_);
    auto& stack = stacks_[record->thread];
    stack.pop_back();
    if (stack.empty()) stacks_.erase(record->thread);
    record->open = false;
    if (absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status)) {
      // Still open on the server: closed before the parent is (a later
      // close retries it), or dropped with the session.
      pending_closes_.push_back({record->generation, record->id});
      return status;
    }
    // A guard the recovery could not restore has nothing left to close.
    return ErrorReason(status) == kScopeLost ? absl::OkStatus() : status;
  }

  // Closes, innermost first, handles whose close failed on the network.
  void RetryPendingCloses() {
    std::vector<std::pair<uint64_t, uint64_t>> pending;
    uint64_t session, generation;
    {
      absl::MutexLock lock(&mu_);
      pending.swap(pending_closes_);
      session = session_id_;
      generation = generation_;
    }
    std::vector<std::pair<uint64_t, uint64_t>> still;
    for (auto it = pending.rbegin(); it != pending.rend(); ++it) {
      if (it->first != generation) continue;  // that session is gone
      absl::Status s = connection_->CloseScope(session, it->second, {});
      if (absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s)) still.push_back(*it);
    }
    absl::MutexLock lock(&mu_);
    pending_closes_.insert(pending_closes_.begin(), still.rbegin(), still.rend());
  }

  absl::Status ReuseVariables(const std::shared_ptr<ScopeRecord>& record) {
    absl::StatusOr<ScopeInfo> info;
    absl::Status status = Run(record, [&](uint64_t session, uint64_t id) {
      info = connection_->ReuseVariables(session, id, {});
      return info.status();
    });
    if (!status.ok()) return status;
    absl::MutexLock lock(&mu_);
    if (record) {
      record->reused = true;
      record->info = *std::move(info);
    } else {
      root_reused_ = true;
    }
    return absl::OkStatus();
  }

  absl::Status SetDefaults(const std::shared_ptr<ScopeRecord>& record,
                           const ScopeDefaults& defaults) {
    absl::StatusOr<ScopeInfo> info;
    absl::Status status = Run(record, [&](uint64_t session, uint64_t id) {
      info = connection_->UpdateScope(session, id, defaults, {});
      return info.status();
    });
    if (!status.ok()) return status;
    absl::MutexLock lock(&mu_);
    if (record) {
      Merge(defaults, &record->defaults);
      record->info = *std::move(info);
    } else {
      Merge(defaults, &root_defaults_);
    }
    return absl::OkStatus();
  }

  uint64_t session_id() const {
    absl::MutexLock lock(&mu_);
    return session_id_;
  }
  uint64_t root_scope() const {
    absl::MutexLock lock(&mu_);
    return root_scope_;
  }
  int recoveries() const {
    absl::MutexLock lock(&mu_);
    return recoveries_;
  }
  uint64_t generation() const {
    absl::MutexLock lock(&mu_);
    return generation_;
  }
  // A guard's description and handle, read under the lock (a recovery may
  // rewrite them on another thread).
  ScopeInfo InfoOf(const ScopeRecord& record) const {
    absl::MutexLock lock(&mu_);
    return record.info;
  }
  uint64_t HandleOf(const ScopeRecord& record) const {
    absl::MutexLock lock(&mu_);
    return record.id;
  }

 private:
  // REUSE and defaults of the session root, again on a new session.
  absl::Status RestoreRoot(uint64_t session, bool reused, const ScopeDefaults& defaults) {
    if (reused) {
      absl::StatusOr<ScopeInfo> r = connection_->ReuseVariables(session, 0, {});
      if (!r.ok()) {
        return absl::Status(r.status().code(),
                            absl::StrCat("the re-opened session could not be set to "
                                         "REUSE again: ", r.status().message()));
      }
    }
    if (defaults.initializer || defaults.dtype || defaults.partitioner) {
      absl::StatusOr<ScopeInfo> r = connection_->UpdateScope(session, 0, defaults, {});
      if (!r.ok()) return r.status();
    }
    return absl::OkStatus();
  }

  void KeepAliveLoop() {
    absl::MutexLock lock(&mu_);
    while (!stopping_) {
      mu_.AwaitWithTimeout(absl::Condition(&stopping_),
                           std::max(lease_ / 3, absl::Milliseconds(100)));
      if (stopping_) break;
      const uint64_t session = session_id_;
      const uint64_t generation = generation_;
      mu_.Unlock();
      absl::StatusOr<absl::Duration> lease = connection_->KeepAlive(session, {});
      // Server down: try again next round. Server back without our session:
      // recover it (and our scopes) now rather than on the next call.
      if (!lease.ok() && SessionLost(lease.status())) {
        Recover(generation).IgnoreError();
      }
      mu_.Lock();
    }
  }

  const std::shared_ptr<Connection> connection_;
  const ClientOptions options_;
  std::thread keep_alive_;

  mutable absl::Mutex mu_;
  uint64_t session_id_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t root_scope_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Duration lease_ ABSL_GUARDED_BY(mu_) = absl::Seconds(30);
  int recoveries_ ABSL_GUARDED_BY(mu_) = 0;
  bool root_reused_ ABSL_GUARDED_BY(mu_) = false;
  ScopeDefaults root_defaults_ ABSL_GUARDED_BY(mu_);
  // The last recovery could not restore the root's REUSE or defaults.
  bool root_lost_ ABSL_GUARDED_BY(mu_) = false;
  // (generation, handle) of closes that failed on the network, in order.
  std::vector<std::pair<uint64_t, uint64_t>> pending_closes_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool recovering_ ABSL_GUARDED_BY(mu_) = false;  // one Recover at a time
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 1;
  // Each thread's open guards, outermost first.
  absl::flat_hash_map<std::thread::id, std::vector<std::shared_ptr<ScopeRecord>>>
      stacks_ ABSL_GUARDED_BY(mu_);
};

}  // namespace internal

using internal::ClientCore;
using internal::ScopeRecord;

// ---- Client ----

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(const std::string& target,
                                                        ClientOptions options) {
  absl::StatusOr<std::shared_ptr<Connection>> connection =
      MakeConnection(target, options.connection);
  if (!connection.ok()) return connection.status();
  absl::StatusOr<std::unique_ptr<Client>> client =
      Create(*std::move(connection), std::move(options));
  if (!client.ok()) {
    // The same error (code and reason kept), saying where.
    absl::Status annotated(client.status().code(),
                           absl::StrCat("cannot open a session on ", target, ": ",
                                        client.status().message()));
    client.status().ForEachPayload([&](absl::string_view url, const absl::Cord& payload) {
      annotated.SetPayload(url, payload);
    });
    return annotated;
  }
  return client;
}

absl::StatusOr<std::unique_ptr<Client>> Client::Create(
    std::shared_ptr<Connection> connection, ClientOptions options) {
  auto core = std::make_shared<ClientCore>(std::move(connection), std::move(options));
  // Generation 0 has no session yet, so this opens the first one.
  if (absl::Status status = core->Recover(0); !status.ok()) return status;
  core->StartKeepAlive();
  return std::unique_ptr<Client>(new Client(std::move(core)));
}

Client::Client(std::shared_ptr<ClientCore> core) : core_(std::move(core)) {}
Client::~Client() { core_->Stop(); }

Connection& Client::connection() { return core_->conn(); }

absl::Status Client::CloseGuard(Client*& client,
                                const std::shared_ptr<ScopeRecord>& record) {
  if (client == nullptr || record == nullptr) return absl::OkStatus();
  absl::Status status = client->core_->CloseScope(record);
  if (status.ok()) client = nullptr;  // closed: later Close() is a no-op
  return status;
}

uint64_t Client::session_id() const { return core_->session_id(); }
int Client::session_recoveries() const {
  return std::max(0, core_->recoveries() - 1);  // the first open is not one
}

Variable Client::Wrap(VariableInfo info, bool created) const {
  return Variable(core_, std::move(info), created);
}

absl::StatusOr<Variable> Client::GetVariable(absl::string_view name,
                                             const VariableOptions& options,
                                             const CallOptions& call) {
  GetVariableArgs args;
  args.name = std::string(name);
  if (options.scalar || !options.shape.empty()) args.shape = options.shape;
  args.dtype = options.dtype;
  args.initializer = options.initializer;
  args.trainable = options.trainable;
  args.collections = options.collections;
  args.partitioner = options.partitioner;
  args.local = options.local;
  args.wait = options.wait;
  absl::StatusOr<GetVariableResult> got;
  absl::Status status =
      core_->Run(core_->Innermost(), [&](uint64_t session, uint64_t scope) {
        args.session = session;
        args.scope = scope;
        got = core_->conn().GetVariable(args, call);
        return got.status();
      });
  if (!status.ok()) return status;
  return Wrap(std::move(got->variable), got->created);
}

absl::StatusOr<Variable> Client::GetVariable(absl::string_view name,
                                             std::vector<int64_t> shape,
                                             DataType dtype) {
  VariableOptions options;
  options.scalar = shape.empty();
  options.shape = std::move(shape);
  options.dtype = dtype;
  return GetVariable(name, options);
}

absl::StatusOr<Variable> Client::GetLocalVariable(absl::string_view name,
                                                  VariableOptions options) {
  options.local = true;
  return GetVariable(name, options);
}

absl::StatusOr<Variable> Client::NewVariable(absl::string_view name, const Tensor& value,
                                             std::optional<bool> trainable) {
  NewVariableArgs args;
  args.name = std::string(name);
  args.value = value;
  args.trainable = trainable;
  absl::StatusOr<VariableInfo> made;
  absl::Status status =
      core_->Run(core_->Innermost(), [&](uint64_t session, uint64_t scope) {
        args.session = session;
        args.scope = scope;
        made = core_->conn().NewVariable(args, {});
        return made.status();
      });
  if (!status.ok()) return status;
  return Wrap(*std::move(made), true);
}

absl::StatusOr<std::string> Client::OpName(absl::string_view name, bool preview) {
  absl::StatusOr<std::string> out;
  absl::Status status =
      core_->Run(core_->Innermost(), [&](uint64_t session, uint64_t scope) {
        out = core_->conn().OpName(session, scope, std::string(name), preview, {});
        return out.status();
      });
  if (!status.ok()) return status;
  return out;
}

absl::StatusOr<ScopeInfo> Client::CurrentScope() {
  // The innermost guard's own description; the root's comes from the
  // server (its reuse flag and defaults, as ListScopes reports them).
  std::shared_ptr<ScopeRecord> innermost = core_->Innermost();
  absl::StatusOr<ScopePage> page;
  uint64_t wanted = 0;
  absl::Status status = core_->Run(innermost, [&](uint64_t session, uint64_t scope) {
    ListScopesArgs args;
    args.session = session;
    args.handles_only = true;
    page = core_->conn().ListScopes(args, {});
    if (!page.ok()) return page.status();
    wanted = scope;
    for (const ScopeInfo& h : page->handles) {
      if (h.id == wanted || (wanted == 0 && h.root)) return absl::OkStatus();
    }
    return absl::NotFoundError("the current scope is not among the session's handles");
  });
  if (!status.ok()) return status;
  for (ScopeInfo& h : page->handles) {
    if (wanted == 0 && h.root) return std::move(h);
    if (h.id == wanted) return std::move(h);
  }
  return absl::NotFoundError("the current scope is not among the session's handles");
}

absl::Status Client::ReuseVariables() { return core_->ReuseVariables(core_->Innermost()); }

absl::Status Client::SetScopeDefaults(const ScopeDefaults& defaults) {
  return core_->SetDefaults(core_->Innermost(), defaults);
}

CapturedScope Client::RootScope() { return CapturedScope(nullptr, core_); }

absl::StatusOr<std::vector<Variable>> Client::ListVariables(absl::string_view prefix,
                                                            absl::string_view collection) {
  std::vector<Variable> out;
  ListVariablesArgs args;
  args.prefix = std::string(prefix);
  args.collection = std::string(collection);
  do {
    absl::StatusOr<VariablePage> page = core_->conn().ListVariables(args, {});
    if (!page.ok()) return page.status();
    for (VariableInfo& v : page->variables) out.push_back(Wrap(std::move(v), false));
    args.page_token = page->next_page_token;
  } while (!args.page_token.empty());
  return out;
}

absl::StatusOr<VariablePage> Client::ListVariablesPage(const ListVariablesArgs& args) {
  return core_->conn().ListVariables(args, {});
}

absl::StatusOr<ScopePage> Client::ListScopes(const ListScopesArgs& args) {
  return core_->conn().ListScopes(args, {});
}

absl::StatusOr<Variable> Client::DescribeVariable(absl::string_view name) {
  absl::StatusOr<VariableInfo> info = core_->conn().DescribeVariable(std::string(name), {});
  if (!info.ok()) return info.status();
  return Wrap(*std::move(info), false);
}

absl::Status Client::DeleteVariable(absl::string_view name) {
  return core_->conn().DeleteVariable(std::string(name), {}).status();
}

absl::StatusOr<PullResult> Client::Pull(absl::string_view name, DataType dtype,
                                        absl::Span<uint8_t> out,
                                        const PullOptions& options,
                                        const CallOptions& call) {
  return core_->conn().Pull({std::string(name), options.rows, options.if_newer_than},
                            dtype, out, call);
}

absl::StatusOr<std::vector<Tensor>> Client::PullMany(const std::vector<std::string>& names) {
  return core_->conn().PullMany(names, {});
}

namespace {

PushItem ItemOf(absl::string_view name, UpdateOp op, DataType dtype,
                absl::Span<const uint8_t> data, const PushOptions& options) {
  PushItem item;
  item.name = std::string(name);
  item.op = op;
  item.dtype = dtype;
  item.data = data;
  item.rows = options.rows;
  item.indices = options.indices;
  item.expected_version = options.expected_version;
  item.optimizer = options.optimizer;
  item.step = options.step;
  return item;
}

}  // namespace

absl::StatusOr<UpdateResult> Client::Push(absl::string_view name, UpdateOp op,
                                          DataType dtype, absl::Span<const uint8_t> data,
                                          const PushOptions& options,
                                          const CallOptions& call) {
  absl::StatusOr<std::vector<UpdateResult>> r =
      core_->conn().Push({ItemOf(name, op, dtype, data, options)}, call);
  if (!r.ok()) return r.status();
  return std::move(r->front());
}

absl::StatusOr<std::vector<UpdateResult>> Client::PushMany(const std::vector<PushItem>& items,
                                                           const CallOptions& call) {
  return core_->conn().Push(items, call);
}

absl::StatusOr<Tensor> Client::Gather(absl::string_view name,
                                      const std::vector<int64_t>& indices) {
  return core_->conn().Gather(std::string(name), indices, {});
}

absl::StatusOr<std::vector<TrainingState>> Client::SetOptimizer(
    const std::vector<std::string>& names, const OptimizerConfig& optimizer,
    int replicas_to_aggregate) {
  return core_->conn().SetOptimizer(names, optimizer, replicas_to_aggregate, {});
}

absl::StatusOr<TrainingState> Client::DescribeTraining(absl::string_view name) {
  return core_->conn().DescribeTraining(std::string(name), {});
}

absl::StatusOr<uint64_t> Client::WaitVersion(absl::string_view name, uint64_t version,
                                             absl::Duration timeout) {
  return core_->conn().WaitVersion(std::string(name), version, timeout, {});
}

std::unique_ptr<WatchStream> Client::Watch(absl::string_view prefix, bool send_initial,
                                           uint32_t buffer_events) {
  return core_->conn().Watch(std::string(prefix), send_initial, buffer_events, {});
}

std::future<absl::StatusOr<PullResult>> Client::PullAsync(std::string name,
                                                          DataType dtype,
                                                          absl::Span<uint8_t> out,
                                                          PullOptions options) {
  return core_->conn().PullAsync({std::move(name), options.rows, options.if_newer_than},
                                 dtype, out, {});
}

std::future<absl::StatusOr<std::vector<UpdateResult>>> Client::PushAsync(
    std::vector<PushItem> items) {
  return core_->conn().PushAsync(items, {});
}

// ---- Variable ----

int64_t Variable::num_elements() const {
  int64_t n = 1;
  for (int64_t d : info_.shape) n *= d;
  return n;
}

int64_t Variable::RowElements() const {
  int64_t n = 1;
  for (size_t i = 1; i < info_.shape.size(); ++i) n *= info_.shape[i];
  return n;
}

absl::Status Variable::CheckType(DataType dtype) const {
  if (info_.partitioned) {
    return absl::FailedPreconditionError(absl::StrCat(
        full_name(), " is partitioned; pull and push its parts (name/part_i)"));
  }
  if (info_.dtype != dtype) {
    return absl::InvalidArgumentError(absl::StrCat("variable ", full_name(), " is ",
                                                   DataTypeName(info_.dtype), ", not ",
                                                   DataTypeName(dtype)));
  }
  return absl::OkStatus();
}

absl::StatusOr<PullResult> Variable::Pull(absl::Span<uint8_t> out,
                                          const PullOptions& options,
                                          const CallOptions& call) const {
  return core_->conn().Pull({full_name(), options.rows, options.if_newer_than},
                            info_.dtype, out, call);
}

absl::StatusOr<UpdateResult> Variable::PushBytes(UpdateOp op, DataType dtype,
                                                 absl::Span<const uint8_t> data,
                                                 const PushOptions& options,
                                                 const CallOptions& call) const {
  absl::StatusOr<std::vector<UpdateResult>> r =
      core_->conn().Push({ItemOf(full_name(), op, dtype, data, options)}, call);
  if (!r.ok()) return r.status();
  return std::move(r->front());
}

absl::StatusOr<Tensor> Variable::GatherRows(const std::vector<int64_t>& indices) const {
  return core_->conn().Gather(full_name(), indices, {});
}

absl::StatusOr<uint64_t> Variable::WaitForNewerThan(std::optional<uint64_t> version,
                                                    absl::Duration timeout) const {
  return core_->conn().WaitVersion(full_name(), version.value_or(info_.version), timeout,
                                   {});
}

// ---- Scope guards ----

std::string CapturedScope::name() const {
  return record_ != nullptr ? owner_->InfoOf(*record_).name : "";
}

uint64_t CapturedScope::handle() const {
  return record_ != nullptr ? owner_->HandleOf(*record_) : owner_->root_scope();
}

namespace {

OpenScopeArgs VariableScopeArgs(const ScopeOptions& options) {
  OpenScopeArgs args;
  args.reuse = options.reuse;
  args.initializer = options.initializer;
  args.dtype = options.dtype;
  args.partitioner = options.partitioner;
  args.auxiliary_name_scope = options.auxiliary_name_scope;
  args.default_name = options.default_name;
  return args;
}

}  // namespace

absl::StatusOr<VariableScope> VariableScope::Open(Client& client, absl::string_view name,
                                                  ScopeOptions options) {
  if (name.empty() && options.default_name.empty()) {
    return absl::InvalidArgumentError(
        "a variable scope needs a name or a default_name");
  }
  OpenScopeArgs args = VariableScopeArgs(options);
  args.name = std::string(name);
  auto record = client.core_->OpenScope(std::move(args), nullptr, false, std::nullopt);
  if (!record.ok()) return record.status();
  return VariableScope(&client, *std::move(record));
}

VariableScope::VariableScope(Client* client, std::shared_ptr<internal::ScopeRecord> record)
    : client_(client), core_(client->core_), record_(std::move(record)) {}

absl::StatusOr<VariableScope> VariableScope::OpenDefault(Client& client,
                                                         absl::string_view default_name,
                                                         ScopeOptions options) {
  options.default_name = std::string(default_name);
  OpenScopeArgs args = VariableScopeArgs(options);
  auto record = client.core_->OpenScope(std::move(args), nullptr, false, std::nullopt);
  if (!record.ok()) return record.status();
  return VariableScope(&client, *std::move(record));
}

absl::StatusOr<VariableScope> VariableScope::Reenter(Client& client,
                                                     const CapturedScope& scope,
                                                     ScopeOptions options) {
  OpenScopeArgs args = VariableScopeArgs(options);
  const bool ours = scope.owner_ == client.core_;
  absl::StatusOr<std::shared_ptr<ScopeRecord>> record;
  if (ours && scope.record_ != nullptr) {
    record = client.core_->OpenScope(std::move(args), scope.record_, false, std::nullopt);
  } else if (ours) {
    record = client.core_->OpenScope(std::move(args), nullptr, true, std::nullopt);
  } else {
    // Another session's scope object, re-entered here (its handle).
    record = client.core_->OpenScope(std::move(args), nullptr, false, scope.handle());
  }
  if (!record.ok()) return record.status();
  return VariableScope(&client, *std::move(record));
}

VariableScope::VariableScope(Client& client, absl::string_view name, ScopeOptions options) {
  absl::StatusOr<VariableScope> opened = Open(client, name, std::move(options));
  if (!opened.ok()) throw StatusError(opened.status());
  *this = *std::move(opened);
}

VariableScope::VariableScope(VariableScope&& other) noexcept
    : client_(std::exchange(other.client_, nullptr)),
      core_(std::move(other.core_)),
      record_(std::move(other.record_)) {}

VariableScope& VariableScope::operator=(VariableScope&& other) noexcept {
  if (this != &other) {
    Close().IgnoreError();
    client_ = std::exchange(other.client_, nullptr);
    core_ = std::move(other.core_);
    record_ = std::move(other.record_);
  }
  return *this;
}

VariableScope::~VariableScope() { Close().IgnoreError(); }

absl::Status VariableScope::Close() {
  return Client::CloseGuard(client_, record_);  // keeps record_ for Capture()
}

absl::Status VariableScope::ReuseVariables() {
  if (client_ == nullptr) return absl::FailedPreconditionError("the scope guard is closed");
  return client_->core_->ReuseVariables(record_);
}

absl::Status VariableScope::SetDefaults(const ScopeDefaults& defaults) {
  if (client_ == nullptr) return absl::FailedPreconditionError("the scope guard is closed");
  return client_->core_->SetDefaults(record_, defaults);
}

// Also after Close(): the captured scope keeps its client's state.
CapturedScope VariableScope::Capture() const { return CapturedScope(record_, core_); }
std::string VariableScope::name() const { return info().name; }
std::string VariableScope::name_scope() const { return info().name_scope; }
std::string VariableScope::original_name_scope() const {
  return info().original_name_scope;
}
Reuse VariableScope::reuse() const { return info().reuse; }
ScopeInfo VariableScope::info() const { return core_->InfoOf(*record_); }

absl::StatusOr<NameScope> NameScope::Open(Client& client, absl::string_view name) {
  OpenScopeArgs args;
  args.name_scope_only = true;
  args.name = std::string(name);
  auto record = client.core_->OpenScope(std::move(args), nullptr, false, std::nullopt);
  if (!record.ok()) return record.status();
  return NameScope(&client, *std::move(record));
}

NameScope::NameScope(Client* client, std::shared_ptr<internal::ScopeRecord> record)
    : client_(client), core_(client->core_), record_(std::move(record)) {}

NameScope::NameScope(Client& client, absl::string_view name) {
  absl::StatusOr<NameScope> opened = Open(client, name);
  if (!opened.ok()) throw StatusError(opened.status());
  *this = *std::move(opened);
}

NameScope::NameScope(NameScope&& other) noexcept
    : client_(std::exchange(other.client_, nullptr)),
      core_(std::move(other.core_)),
      record_(std::move(other.record_)) {}

NameScope& NameScope::operator=(NameScope&& other) noexcept {
  if (this != &other) {
    Close().IgnoreError();
    client_ = std::exchange(other.client_, nullptr);
    core_ = std::move(other.core_);
    record_ = std::move(other.record_);
  }
  return *this;
}

NameScope::~NameScope() { Close().IgnoreError(); }

absl::Status NameScope::Close() { return Client::CloseGuard(client_, record_); }

std::string NameScope::name_scope() const { return core_->InfoOf(*record_).name_scope; }

}  // namespace varscope
