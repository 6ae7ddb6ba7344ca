// File: client.h
// The varscope C++ client: a session on a varscoped server, RAII scope
// guards that read like TensorFlow's `with` blocks, and variable handles.
// Public types are the library's own (types.h); no generated protobuf
// header is included or installed.
//
// Example:
//   auto client = varscope::Client::Connect("127.0.0.1:50051").value();
//   {
//     varscope::VariableScope scope1(*client, "scope1");
//     varscope::VariableScope scope2(*client, "scope2");
//     varscope::Variable v = client->GetVariable("variable1", {1}).value();
//     // v.name() == "scope1/scope2/variable1:0"
//     std::vector<float> value = v.Pull<float>().value();
//     v.Push<float>(varscope::UpdateOp::kAdd, {1.0f});
//   }
//
// Scopes nest per thread per client: a guard opens its scope inside the
// innermost guard alive on the calling thread, and GetVariable /
// NewVariable / OpName resolve in that innermost scope. Guards close their
// scope when destroyed and must be destroyed innermost-first (as `with`
// blocks are).
//
// Session recovery: the client renews its session lease in the background.
// If the server no longer knows the session (it restarted, or the lease ran
// out while the client was cut off), the client opens a new session,
// re-opens every live scope guard in order (re-applying ReuseVariables and
// scope defaults), and retries the call once; a guard whose scope cannot be
// restored exactly reports so on its next use. Name-scope suffixes restart
// in the new session, and captured scopes whose block had already closed
// cannot be re-entered after such a recovery (NOT_FOUND).
//
// Thread-safety: a Client may be used from many threads at once; each
// thread has its own scope stack. Guards belong to the thread that made
// them. Variable handles are immutable values: copy and share them freely;
// they keep the connection alive (they may outlive the Client, whose
// destruction only ends the session).
#ifndef VARSCOPE_CLIENT_CLIENT_H_
#define VARSCOPE_CLIENT_CLIENT_H_

#include <cstdint>
#include <cstring>
#include <future>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "varscope/connection.h"
#include "varscope/types.h"

namespace varscope {

/// \brief Thrown by the throwing guard constructors; carries the status.
class StatusError : public std::runtime_error {
 public:
  explicit StatusError(absl::Status status)
      : std::runtime_error(status.ToString()), status_(std::move(status)) {}
  const absl::Status& status() const { return status_; }

 private:
  absl::Status status_;
};

/// \brief Client settings.
struct ClientOptions {
  /// Shown in server logs.
  std::string client_name = "varscope-client";
  /// TLS, token, default deadline, message limit.
  ConnectionOptions connection;
  /// Requested session lease; zero = the server's default.
  absl::Duration lease = absl::ZeroDuration();
  /// Renew the lease in the background (every third of the lease).
  bool keep_alive = true;
};

/// \brief Options of GetVariable (TensorFlow's get_variable arguments).
struct VariableOptions {
  /// Shape; -1 = unknown dim (reuse only). Empty and !scalar = not given
  /// (any shape on reuse).
  std::vector<int64_t> shape;
  /// The shape is a scalar (rank 0).
  bool scalar = false;
  DataType dtype = DataType::kUnspecified;
  std::optional<Initializer> initializer;
  std::optional<bool> trainable;
  /// Unset = ["variables"] (["local_variables"] for a local variable);
  /// set = exactly these (plus "trainable_variables" when trainable).
  std::optional<std::vector<std::string>> collections;
  std::optional<Partitioner> partitioner;
  /// tf.get_local_variable: not trainable, in "local_variables".
  bool local = false;
  /// When the variable does not exist yet, wait up to this long for another
  /// worker (the chief) to create it instead of failing at once.
  absl::Duration wait = absl::ZeroDuration();
};

/// \brief Options of a variable scope guard.
struct ScopeOptions {
  Reuse reuse = Reuse::kInherit;
  /// TensorFlow's default_name: used when Open gets no name ("layer",
  /// "layer_1", ...); ignored, as in TensorFlow, when a name or a captured
  /// scope is given.
  std::string default_name;
  std::optional<Initializer> initializer;
  DataType dtype = DataType::kUnspecified;
  std::optional<Partitioner> partitioner;
  bool auxiliary_name_scope = true;
};

/// \brief Options of a pull.
struct PullOptions {
  /// Only these rows; unset = the whole tensor.
  std::optional<RowRange> rows;
  /// > 0: skip the data when the version is still <= this.
  uint64_t if_newer_than = 0;
};

/// \brief Options of a push.
struct PushOptions {
  /// Dense rows; unset (and no indices) = the whole tensor.
  std::optional<RowRange> rows;
  /// Sparse rows (scatter); data holds one row per index.
  std::vector<int64_t> indices;
  /// Compare-and-set: ABORTED (VERSION_CONFLICT) unless at this version.
  std::optional<uint64_t> expected_version;
  /// APPLY_GRADIENT: optimizer for this call; unset = the stored one.
  std::optional<OptimizerConfig> optimizer;
  /// APPLY_GRADIENT with synchronous aggregation: the worker's step.
  std::optional<int64_t> step;
};

namespace internal {
class ClientCore;
struct ScopeRecord;
}  // namespace internal

/// \brief A variable handle: its description as the server reported it,
/// and pull and push of its value. Immutable: pulls and pushes report
/// versions in their results and never change the handle.
class Variable {
 public:
  /// TensorFlow's tensor name, "scope1/v:0" (no ":0" for a partitioned one).
  const std::string& name() const { return info_.tensor_name; }
  /// The full name without ":0", as every call takes it.
  const std::string& full_name() const { return info_.name; }
  const std::vector<int64_t>& shape() const { return info_.shape; }
  DataType dtype() const { return info_.dtype; }
  /// The version when this handle was made.
  uint64_t version() const { return info_.version; }
  bool trainable() const { return info_.trainable; }
  bool partitioned() const { return info_.partitioned; }
  /// Whether the call that returned this handle created the variable.
  bool created() const { return created_; }
  const VariableInfo& info() const { return info_; }
  /// Elements of the whole tensor.
  int64_t num_elements() const;

  /// Pulls into caller memory; `out` must be exactly the data's size.
  absl::StatusOr<PullResult> Pull(absl::Span<uint8_t> out,
                                  const PullOptions& options = {},
                                  const CallOptions& call = {}) const;
  /// Pulls the whole tensor (or rows) as a typed vector; T must match dtype.
  template <typename T>
  absl::StatusOr<std::vector<T>> Pull(const PullOptions& options = {},
                                      const CallOptions& call = {}) const;
  /// Pulls the whole tensor (or rows) into `out` (resized) and reports the
  /// version it read; T must match dtype.
  template <typename T>
  absl::StatusOr<PullResult> PullInto(std::vector<T>* out,
                                      const PullOptions& options = {},
                                      const CallOptions& call = {}) const;
  /// ASSIGN / ADD / SUB / APPLY_GRADIENT with typed values.
  template <typename T>
  absl::StatusOr<UpdateResult> Push(UpdateOp op, const std::vector<T>& values,
                                    const PushOptions& options = {},
                                    const CallOptions& call = {}) const;
  /// Applies a gradient with the stored (or options.optimizer) optimizer.
  template <typename T>
  absl::StatusOr<UpdateResult> ApplyGradient(const std::vector<T>& gradient,
                                             const PushOptions& options = {}) const {
    return Push(UpdateOp::kApplyGradient, gradient, options);
  }
  /// Rows by index, row-major.
  template <typename T>
  absl::StatusOr<std::vector<T>> Gather(const std::vector<int64_t>& indices) const;
  /// Scatter ASSIGN / ADD / SUB / APPLY_GRADIENT of one row per index.
  template <typename T>
  absl::StatusOr<UpdateResult> Scatter(UpdateOp op, const std::vector<int64_t>& indices,
                                       const std::vector<T>& rows,
                                       PushOptions options = {}) const {
    options.indices = indices;
    return Push(op, rows, options);
  }
  /// Waits until the version passes `version` (default: the handle's).
  absl::StatusOr<uint64_t> WaitForNewerThan(
      std::optional<uint64_t> version = std::nullopt,
      absl::Duration timeout = absl::Seconds(30)) const;

 private:
  friend class Client;
  Variable(std::shared_ptr<internal::ClientCore> core, VariableInfo info,
           bool created)
      : core_(std::move(core)), info_(std::move(info)), created_(created) {}
  absl::Status CheckType(DataType dtype) const;
  absl::StatusOr<UpdateResult> PushBytes(UpdateOp op, DataType dtype,
                                         absl::Span<const uint8_t> data,
                                         const PushOptions& options,
                                         const CallOptions& call) const;
  absl::StatusOr<Tensor> GatherRows(const std::vector<int64_t>& indices) const;
  int64_t RowElements() const;

  std::shared_ptr<internal::ClientCore> core_;  // shared: keeps it alive
  VariableInfo info_;
  bool created_ = false;
};

/// \brief A scope kept after its block closed (TensorFlow's scope object),
/// or a session's root; re-enter it with VariableScope::Reenter, also from
/// another client (another session re-enters it as TensorFlow re-enters a
/// scope object in another graph).
class CapturedScope {
 public:
  std::string name() const;
  /// The server's handle (unique on the server).
  uint64_t handle() const;

 private:
  friend class VariableScope;
  friend class Client;
  CapturedScope(std::shared_ptr<internal::ScopeRecord> record,
                std::shared_ptr<internal::ClientCore> owner)
      : record_(std::move(record)), owner_(std::move(owner)) {}
  std::shared_ptr<internal::ScopeRecord> record_;  // null: the owner's root
  std::shared_ptr<internal::ClientCore> owner_;
};

/// \brief A session on a server. Create with Connect() (gRPC) or Create()
/// (any Connection, e.g. a test double).
class Client {
 public:
  /// Connects and opens a session; fails if the server is unreachable.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(
      const std::string& target, ClientOptions options = {});
  /// A client over `connection` (opens a session on it).
  static absl::StatusOr<std::unique_ptr<Client>> Create(
      std::shared_ptr<Connection> connection, ClientOptions options = {});
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  /// Stops the keep-alive and closes the session (variables stay; Variable
  /// handles keep working).
  ~Client();

  // ---- Namespace, in the innermost scope of this thread. ----
  /// tf.get_variable: creates or fetches `name`.
  absl::StatusOr<Variable> GetVariable(absl::string_view name,
                                       const VariableOptions& options = {},
                                       const CallOptions& call = {});
  absl::StatusOr<Variable> GetVariable(absl::string_view name,
                                       std::vector<int64_t> shape,
                                       DataType dtype = DataType::kUnspecified);
  /// tf.get_local_variable.
  absl::StatusOr<Variable> GetLocalVariable(absl::string_view name,
                                            VariableOptions options = {});
  /// tf.Variable: always creates, named after the current name scope.
  absl::StatusOr<Variable> NewVariable(absl::string_view name, const Tensor& value,
                                       std::optional<bool> trainable = std::nullopt);
  /// A session-unique op name in the current name scope ("add_1:0"); with
  /// `preview`, the name without reserving it (mark_as_used=False).
  absl::StatusOr<std::string> OpName(absl::string_view name, bool preview = false);
  /// tf.get_variable_scope(): the innermost variable scope of this thread
  /// (or the root), with its reuse flag and defaults.
  absl::StatusOr<ScopeInfo> CurrentScope();
  /// tf.get_variable_scope().reuse_variables().
  absl::Status ReuseVariables();
  /// tf.get_variable_scope().set_initializer / set_dtype / set_partitioner.
  absl::Status SetScopeDefaults(const ScopeDefaults& defaults);
  /// The session root as a capturable scope (re-enter it with
  /// VariableScope::Reenter).
  CapturedScope RootScope();

  /// All variables under `prefix` / in `collection` (every page).
  absl::StatusOr<std::vector<Variable>> ListVariables(absl::string_view prefix = "",
                                                      absl::string_view collection = "");
  /// One page (see ListVariablesArgs).
  absl::StatusOr<VariablePage> ListVariablesPage(const ListVariablesArgs& args);
  absl::StatusOr<ScopePage> ListScopes(const ListScopesArgs& args);
  absl::StatusOr<Variable> DescribeVariable(absl::string_view name);
  absl::Status DeleteVariable(absl::string_view name);

  // ---- Values, by full name (no session needed). ----
  /// Pulls a variable (or rows) into `out`, exactly the data's size.
  /// Tensors of 1 MiB and more stream in chunks.
  absl::StatusOr<PullResult> Pull(absl::string_view name, DataType dtype,
                                  absl::Span<uint8_t> out,
                                  const PullOptions& options = {},
                                  const CallOptions& call = {});
  /// Several whole variables in one call (each a consistent snapshot).
  absl::StatusOr<std::vector<Tensor>> PullMany(const std::vector<std::string>& names);
  /// One update; data of 1 MiB and more streams in chunks.
  absl::StatusOr<UpdateResult> Push(absl::string_view name, UpdateOp op,
                                    DataType dtype, absl::Span<const uint8_t> data,
                                    const PushOptions& options = {},
                                    const CallOptions& call = {});
  /// Several updates, atomically: all apply or none.
  absl::StatusOr<std::vector<UpdateResult>> PushMany(const std::vector<PushItem>& items,
                                                     const CallOptions& call = {});
  /// Rows of a rank >= 1 variable by index.
  absl::StatusOr<Tensor> Gather(absl::string_view name,
                                const std::vector<int64_t>& indices);
  /// Stores an optimizer (and a replica count for synchronous training) on
  /// variables and creates their slots: all of them or none.
  absl::StatusOr<std::vector<TrainingState>> SetOptimizer(
      const std::vector<std::string>& names, const OptimizerConfig& optimizer,
      int replicas_to_aggregate = 0);
  absl::StatusOr<TrainingState> DescribeTraining(absl::string_view name);
  /// Waits until `name`'s version is above `version` (a missing variable
  /// counts as 0); DEADLINE_EXCEEDED after `timeout`.
  absl::StatusOr<uint64_t> WaitVersion(absl::string_view name, uint64_t version,
                                       absl::Duration timeout);
  /// Change events under `prefix` ("" = all).
  std::unique_ptr<WatchStream> Watch(absl::string_view prefix,
                                     bool send_initial = false,
                                     uint32_t buffer_events = 0);
  /// Asynchronous variants (gRPC's callback API, no thread per call); the
  /// buffers must stay valid until the future is ready.
  std::future<absl::StatusOr<PullResult>> PullAsync(std::string name, DataType dtype,
                                                    absl::Span<uint8_t> out,
                                                    PullOptions options = {});
  std::future<absl::StatusOr<std::vector<UpdateResult>>> PushAsync(
      std::vector<PushItem> items);

  /// The current session id (changes after a recovery).
  uint64_t session_id() const;
  /// How many times the session was re-opened after being lost.
  int session_recoveries() const;
  /// The connection under this client (Admin calls live there).
  Connection& connection();

 private:
  friend class VariableScope;
  friend class NameScope;
  explicit Client(std::shared_ptr<internal::ClientCore> core);
  // Closes a guard's scope once; shared by VariableScope and NameScope.
  static absl::Status CloseGuard(
      Client*& client, const std::shared_ptr<internal::ScopeRecord>& record);
  Variable Wrap(VariableInfo info, bool created) const;

  std::shared_ptr<internal::ClientCore> core_;
};

// ---- Variable templates ----

template <typename T>
absl::StatusOr<std::vector<T>> Variable::Pull(const PullOptions& options,
                                              const CallOptions& call) const {
  std::vector<T> out;
  absl::StatusOr<PullResult> r = PullInto(&out, options, call);
  if (!r.ok()) return r.status();
  return out;
}

template <typename T>
absl::StatusOr<PullResult> Variable::PullInto(std::vector<T>* out,
                                              const PullOptions& options,
                                              const CallOptions& call) const {
  if (absl::Status s = CheckType(DataTypeOf<T>()); !s.ok()) return s;
  int64_t n = num_elements();
  if (options.rows) n = options.rows->count * RowElements();
  out->resize(static_cast<size_t>(n > 0 ? n : 0));
  return Pull(absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(out->data()),
                                  out->size() * sizeof(T)),
              options, call);
}

template <typename T>
absl::StatusOr<UpdateResult> Variable::Push(UpdateOp op, const std::vector<T>& values,
                                            const PushOptions& options,
                                            const CallOptions& call) const {
  if (absl::Status s = CheckType(DataTypeOf<T>()); !s.ok()) return s;
  return PushBytes(op, DataTypeOf<T>(),
                   absl::Span<const uint8_t>(
                       reinterpret_cast<const uint8_t*>(values.data()),
                       values.size() * sizeof(T)),
                   options, call);
}

template <typename T>
absl::StatusOr<std::vector<T>> Variable::Gather(const std::vector<int64_t>& indices) const {
  if (absl::Status s = CheckType(DataTypeOf<T>()); !s.ok()) return s;
  absl::StatusOr<Tensor> rows = GatherRows(indices);
  if (!rows.ok()) return rows.status();
  std::vector<T> out(rows->data.size() / sizeof(T));
  std::memcpy(out.data(), rows->data.data(), out.size() * sizeof(T));
  return out;
}

/// \brief RAII guard for `with tf.variable_scope(...)`: opens on
/// construction, closes on destruction. Movable, not copyable.
class VariableScope {
 public:
  /// Opens scope `name` (relative to the innermost scope of this thread);
  /// an empty `name` takes options.default_name.
  static absl::StatusOr<VariableScope> Open(Client& client, absl::string_view name,
                                            ScopeOptions options = {});
  /// tf.variable_scope(None, default_name=...): name, name_1, ...
  static absl::StatusOr<VariableScope> OpenDefault(Client& client,
                                                   absl::string_view default_name,
                                                   ScopeOptions options = {});
  /// Re-enters a captured scope (or a root): absolute name, its own reuse
  /// flag unless options ask for REUSE / AUTO_REUSE.
  static absl::StatusOr<VariableScope> Reenter(Client& client,
                                               const CapturedScope& scope,
                                               ScopeOptions options = {});
  /// Throwing variant of Open(): throws StatusError on failure.
  VariableScope(Client& client, absl::string_view name, ScopeOptions options = {});

  VariableScope(VariableScope&& other) noexcept;
  VariableScope& operator=(VariableScope&& other) noexcept;
  VariableScope(const VariableScope&) = delete;
  VariableScope& operator=(const VariableScope&) = delete;
  ~VariableScope();

  /// scope.reuse_variables(): REUSE for good, also for later re-entries.
  absl::Status ReuseVariables();
  /// scope.set_initializer / set_dtype / set_partitioner.
  absl::Status SetDefaults(const ScopeDefaults& defaults);
  /// Closes now (instead of at destruction) and reports the outcome.
  absl::Status Close();
  /// Keeps this scope for later re-entry.
  CapturedScope Capture() const;

  /// Variable-scope name ("scope1/scope2").
  std::string name() const;
  /// Name-scope prefix of ops ("scope1_1/").
  std::string name_scope() const;
  /// The name scope it was first opened with.
  std::string original_name_scope() const;
  /// Effective reuse flag as the server last reported it.
  Reuse reuse() const;
  /// The scope as the server last reported it.
  ScopeInfo info() const;

 private:
  VariableScope(Client* client, std::shared_ptr<internal::ScopeRecord> record);
  Client* client_ = nullptr;  // Not owned; null once closed.
  std::shared_ptr<internal::ClientCore> core_;  // also after Close()
  std::shared_ptr<internal::ScopeRecord> record_;
};

/// \brief RAII guard for `with tf.name_scope(...)`: changes op names only.
class NameScope {
 public:
  static absl::StatusOr<NameScope> Open(Client& client, absl::string_view name);
  /// Throwing variant of Open().
  NameScope(Client& client, absl::string_view name);
  NameScope(NameScope&& other) noexcept;
  NameScope& operator=(NameScope&& other) noexcept;
  NameScope(const NameScope&) = delete;
  NameScope& operator=(const NameScope&) = delete;
  ~NameScope();

  absl::Status Close();
  /// Name-scope prefix of ops ("scope1/name1/").
  std::string name_scope() const;

 private:
  NameScope(Client* client, std::shared_ptr<internal::ScopeRecord> record);
  Client* client_ = nullptr;  // Not owned; null once closed.
  std::shared_ptr<internal::ClientCore> core_;
  std::shared_ptr<internal::ScopeRecord> record_;
};

}  // namespace varscope

#endif  // VARSCOPE_CLIENT_CLIENT_H_
