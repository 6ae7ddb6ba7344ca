// File: client.h
// The varscope C++ client: a connection and session to a varscoped server,
// RAII scope guards that read like TensorFlow's `with` blocks, and variable
// handles.
//
// Example:
//   auto client = varscope::Client::Connect("127.0.0.1:50051").value();
//   {
//     varscope::VariableScope scope1(*client, "scope1");
//     varscope::VariableScope scope2(*client, "scope2");
//     auto v = client->GetVariable("variable1", {1});
//     // v->name() == "scope1/scope2/variable1:0"
//     std::vector<float> value = v->Pull<float>().value();
//     v->Push<float>(varscope::v1::ADD, {1.0f});
//   }
//
// Scopes nest per thread per client: a guard opens its scope inside the
// innermost guard alive on the calling thread, and GetVariable / NewVariable
// / OpName resolve in that innermost scope. Guards close their scope when
// destroyed and must be destroyed innermost-first (as `with` blocks are).
//
// Session recovery: the client renews its session lease in the background.
// If the server no longer knows the session (it restarted, or the lease ran
// out while the client was cut off), the client opens a new session,
// re-opens every live scope guard in order (re-applying ReuseVariables), and
// retries the call once. Name-scope suffixes restart in the new session, and
// captured scopes whose block had already closed cannot be re-entered after
// such a recovery (NOT_FOUND).
//
// Thread-safety: a Client may be used from many threads at once; each thread
// has its own scope stack. Guards belong to the thread that made them.
#ifndef VARSCOPE_CLIENT_CLIENT_H_
#define VARSCOPE_CLIENT_CLIENT_H_

#include <algorithm>
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
#include "varscope/v1/types.pb.h"
#include "varscope/v1/variable_data.pb.h"

namespace varscope {

using DataType = v1::DataType;
using Reuse = v1::Reuse;

/// \brief Thrown by the throwing guard constructors; carries the status.
class StatusError : public std::runtime_error {
 public:
  explicit StatusError(absl::Status status)
      : std::runtime_error(status.ToString()), status_(std::move(status)) {}
  const absl::Status& status() const { return status_; }

 private:
  absl::Status status_;
};

/// \brief Connection settings.
/// \brief TLS to a varscoped started with --tls_cert (PEM file paths).
struct ClientTlsOptions {
  /// Use TLS. Without ca_file the system's root certificates are trusted.
  bool enabled = false;
  /// CA that signed the server's certificate.
  std::string ca_file;
  /// This client's certificate and key, for a server with --tls_client_ca.
  std::string cert_file;
  std::string key_file;
  /// Expect this name in the server certificate instead of the target host.
  std::string server_name;
};

struct ClientOptions {
  /// Shown in server logs.
  std::string client_name = "varscope-client";
  ClientTlsOptions tls;
  /// Sent as "authorization: Bearer <token>" on every call; "" = none.
  /// Like gRPC's own call credentials, a token is only sent over TLS or to
  /// a loopback or unix-socket target, unless allow_token_without_tls.
  std::string auth_token;
  bool allow_token_without_tls = false;
  /// Requested session lease; zero = the server's default.
  absl::Duration lease = absl::ZeroDuration();
  /// Deadline of every RPC.
  absl::Duration rpc_timeout = absl::Seconds(30);
  /// Matches the server's --max_message_bytes.
  int max_message_bytes = 64 << 20;
  /// Renew the lease in the background (every third of the lease).
  bool keep_alive = true;
};

/// \brief Options of GetVariable (TensorFlow's get_variable arguments).
struct VariableOptions {
  /// Shape; -1 = unknown dim (reuse only). Empty = any shape on reuse.
  std::vector<int64_t> shape;
  /// Create a scalar (rank 0).
  bool scalar = false;
  DataType dtype = v1::DT_INVALID;
  std::optional<v1::Initializer> initializer;
  std::optional<bool> trainable;
  std::vector<std::string> collections;
  std::optional<v1::Partitioner> partitioner;
  /// tf.get_local_variable.
  bool local = false;
  /// Under REUSE, wait up to this long for another worker (the chief) to
  /// create the variable instead of failing at once with NOT_FOUND.
  absl::Duration wait = absl::ZeroDuration();
};

using UpdateOp = v1::UpdateOp;

/// \brief Rows [start, start + count) along axis 0.
struct RowRange {
  int64_t start = 0;
  int64_t count = 0;
};

/// \brief Options of a pull.
struct PullOptions {
  /// Only these rows; unset = the whole tensor.
  std::optional<RowRange> rows;
  /// > 0: skip the data when the version is still <= this.
  uint64_t if_newer_than = 0;
};

/// \brief What a pull returned (the bytes went to the caller's buffer).
struct PullResult {
  uint64_t version = 0;
  /// if_newer_than matched; the buffer was not written.
  bool unchanged = false;
  std::vector<int64_t> shape;  // of the bytes written
};

/// \brief Options of a push.
struct PushOptions {
  /// Dense rows; unset (and no indices) = the whole tensor.
  std::optional<RowRange> rows;
  /// Sparse rows (scatter); data holds one row per index.
  std::vector<int64_t> indices;
  /// Compare-and-set: ABORTED unless the variable is at this version.
  std::optional<uint64_t> expected_version;
  /// APPLY_GRADIENT: optimizer for this call; unset = the stored one.
  std::optional<v1::OptimizerConfig> optimizer;
  /// APPLY_GRADIENT with synchronous aggregation: the worker's step.
  std::optional<int64_t> step;
};

/// \brief One update of a multi-variable push (bytes are borrowed).
struct PushItem {
  std::string name;
  UpdateOp op = v1::ASSIGN;
  DataType dtype = v1::DT_INVALID;
  const void* data = nullptr;
  size_t bytes = 0;
  PushOptions options;
};

/// \brief The DataType of a C++ element type (float -> DT_FLOAT, ...).
template <typename T>
constexpr DataType DataTypeOf();
template <> constexpr DataType DataTypeOf<float>() { return v1::DT_FLOAT; }
template <> constexpr DataType DataTypeOf<double>() { return v1::DT_DOUBLE; }
template <> constexpr DataType DataTypeOf<int32_t>() { return v1::DT_INT32; }
template <> constexpr DataType DataTypeOf<int64_t>() { return v1::DT_INT64; }
template <> constexpr DataType DataTypeOf<int16_t>() { return v1::DT_INT16; }
template <> constexpr DataType DataTypeOf<int8_t>() { return v1::DT_INT8; }
template <> constexpr DataType DataTypeOf<uint8_t>() { return v1::DT_UINT8; }

/// \brief A watch stream: Next() blocks for the next event.
class WatchStream {
 public:
  virtual ~WatchStream() = default;
  /// False when the stream ended (see status()).
  virtual bool Next(v1::WatchEvent* event) = 0;
  /// Ends the stream from any thread; Next() then returns false.
  virtual void Cancel() = 0;
  /// The final status, after Next() returned false.
  virtual absl::Status status() = 0;
};

/// \brief Options of a variable scope guard.
struct ScopeOptions {
  Reuse reuse = v1::INHERIT;
  std::optional<v1::Initializer> initializer;
  DataType dtype = v1::DT_INVALID;
  std::optional<v1::Partitioner> partitioner;
  bool auxiliary_name_scope = true;
};

class Client;

/// \brief A variable handle: its description as returned by the server, and
/// (when it came from a Client) pull and push of its value. The handle
/// must not outlive its Client. Pulls and pushes update version().
class Variable {
 public:
  explicit Variable(v1::Variable proto, Client* client = nullptr)
      : proto_(std::move(proto)), client_(client) {}
  /// Tensor name, "scope1/v:0" (no ":0" for a partitioned variable).
  const std::string& name() const { return proto_.name(); }
  std::vector<int64_t> shape() const {
    return {proto_.shape().begin(), proto_.shape().end()};
  }
  DataType dtype() const { return proto_.dtype(); }
  uint64_t version() const { return proto_.version(); }
  bool created() const { return proto_.created(); }
  bool trainable() const { return proto_.trainable(); }
  bool partitioned() const { return proto_.partitioned(); }
  const v1::Variable& proto() const { return proto_; }

  /// Pulls into caller memory; `bytes` must be the exact size.
  absl::StatusOr<PullResult> Pull(void* out, size_t bytes,
                                  const PullOptions& options = {});
  /// Pulls the whole tensor (or rows) as a typed vector; T must match dtype.
  template <typename T>
  absl::StatusOr<std::vector<T>> Pull(const PullOptions& options = {});
  /// ASSIGN / ADD / SUB / APPLY_GRADIENT with typed values.
  template <typename T>
  absl::StatusOr<v1::UpdateResult> Push(UpdateOp op,
                                        const std::vector<T>& values,
                                        const PushOptions& options = {});
  /// Applies a gradient with the stored (or options.optimizer) optimizer.
  template <typename T>
  absl::StatusOr<v1::UpdateResult> ApplyGradient(
      const std::vector<T>& gradient, const PushOptions& options = {}) {
    return Push(v1::APPLY_GRADIENT, gradient, options);
  }
  /// Rows by index, row-major.
  template <typename T>
  absl::StatusOr<std::vector<T>> Gather(const std::vector<int64_t>& indices);
  /// Scatter ASSIGN / ADD / SUB / APPLY_GRADIENT of one row per index.
  template <typename T>
  absl::StatusOr<v1::UpdateResult> Scatter(UpdateOp op,
                                           const std::vector<int64_t>& indices,
                                           const std::vector<T>& rows,
                                           PushOptions options = {}) {
    options.indices = indices;
    return Push(op, rows, options);
  }
  /// Waits until the version passes `version` (default: the handle's).
  absl::StatusOr<uint64_t> WaitForNewerThan(
      std::optional<uint64_t> version = std::nullopt,
      absl::Duration timeout = absl::Seconds(30));

  /// Elements of the whole tensor.
  int64_t num_elements() const;

 private:
  absl::Status CheckType(DataType dtype) const;
  absl::StatusOr<v1::UpdateResult> PushBytes(UpdateOp op, DataType dtype,
                                             const void* data, size_t bytes,
                                             const PushOptions& options);
  int64_t RowElements() const;

  v1::Variable proto_;
  Client* client_ = nullptr;  // Not owned.
};
class VariableScope;
namespace internal {
struct ScopeRecord;
}  // namespace internal

/// \brief A scope kept after its block closed (TensorFlow's scope object);
/// re-enter it with VariableScope::Reenter.
class CapturedScope {
 public:
  const std::string& name() const;

 private:
  friend class VariableScope;
  explicit CapturedScope(std::shared_ptr<internal::ScopeRecord> record)
      : record_(std::move(record)) {}
  std::shared_ptr<internal::ScopeRecord> record_;
};

/// \brief A connection and session. Create with Connect().
class Client {
 public:
  /// Connects and opens a session; fails if the server is unreachable.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(
      const std::string& target, ClientOptions options = {});
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  /// Stops the keep-alive and closes the session (variables stay).
  ~Client();

  /// Creates or fetches `name` in the innermost scope of this thread.
  absl::StatusOr<Variable> GetVariable(absl::string_view name,
                                       const VariableOptions& options = {});
  absl::StatusOr<Variable> GetVariable(absl::string_view name,
                                       std::vector<int64_t> shape,
                                       DataType dtype = v1::DT_INVALID);
  /// tf.Variable: always creates, named after the current name scope.
  absl::StatusOr<Variable> NewVariable(absl::string_view name,
                                       const v1::TensorValue& value);
  /// A session-unique op name in the current name scope ("add_1:0").
  absl::StatusOr<std::string> OpName(absl::string_view name);
  /// Sets the innermost scope of this thread (or the root) to REUSE.
  absl::Status ReuseVariables();

  absl::StatusOr<std::vector<Variable>> ListVariables(
      absl::string_view prefix = "", absl::string_view collection = "");
  absl::StatusOr<Variable> DescribeVariable(absl::string_view name);
  absl::Status DeleteVariable(absl::string_view name);

  // ---- Data plane (no session needed; names are full names). ----

  /// Pulls a variable (or rows) into `out`, which must be exactly the size
  /// of the data. Tensors of 1 MiB and more stream in chunks.
  absl::StatusOr<PullResult> Pull(absl::string_view name, DataType dtype,
                                  void* out, size_t bytes,
                                  const PullOptions& options = {});
  /// Pulls several whole variables in one call (each a consistent snapshot).
  absl::StatusOr<v1::PullResponse> PullMany(
      const std::vector<std::string>& names);
  /// One update; data of 1 MiB and more streams in chunks.
  absl::StatusOr<v1::UpdateResult> Push(absl::string_view name, UpdateOp op,
                                        DataType dtype, const void* data,
                                        size_t bytes,
                                        const PushOptions& options = {});
  /// Several updates, atomically: all apply or none.
  absl::StatusOr<std::vector<v1::UpdateResult>> PushMany(
      const std::vector<PushItem>& items);
  /// Rows of a rank >= 1 variable by index.
  absl::StatusOr<v1::Tensor> Gather(absl::string_view name,
                                    const std::vector<int64_t>& indices);
  /// Stores an optimizer (and a replica count for synchronous training) on
  /// variables and creates their slots.
  absl::StatusOr<std::vector<v1::TrainingState>> SetOptimizer(
      const std::vector<std::string>& names,
      const v1::OptimizerConfig& optimizer, int replicas_to_aggregate = 0);
  absl::StatusOr<v1::TrainingState> DescribeTraining(absl::string_view name);
  /// Waits until `name`'s version is above `version` (a missing variable
  /// counts as 0); DEADLINE_EXCEEDED after `timeout`.
  absl::StatusOr<uint64_t> WaitVersion(absl::string_view name,
                                       uint64_t version,
                                       absl::Duration timeout);
  /// Change events under `prefix` ("" = all).
  std::unique_ptr<WatchStream> Watch(absl::string_view prefix,
                                     bool send_initial = false,
                                     uint32_t buffer_events = 0);
  /// Asynchronous variants: run on a background thread; the buffers must
  /// stay valid until the future is ready.
  std::future<absl::StatusOr<PullResult>> PullAsync(
      std::string name, DataType dtype, void* out, size_t bytes,
      PullOptions options = {});
  std::future<absl::StatusOr<v1::UpdateResult>> PushAsync(
      std::string name, UpdateOp op, DataType dtype, const void* data,
      size_t bytes, PushOptions options = {});

  /// The current session id (changes after a recovery).
  uint64_t session_id() const;
  /// How many times the session was re-opened after being lost.
  int session_recoveries() const;

 private:
  friend class VariableScope;
  friend class NameScope;
  class Impl;
  class Data;
  explicit Client(std::unique_ptr<Impl> impl);
  // Closes a guard's scope once; shared by VariableScope and NameScope.
  static absl::Status CloseGuard(
      Client*& client, const std::shared_ptr<internal::ScopeRecord>& record);
  std::unique_ptr<Impl> impl_;
  std::unique_ptr<Data> data_;
};

// ---- Variable templates ----

template <typename T>
absl::StatusOr<std::vector<T>> Variable::Pull(const PullOptions& options) {
  if (absl::Status s = CheckType(DataTypeOf<T>()); !s.ok()) return s;
  int64_t n = num_elements();
  if (options.rows) n = options.rows->count * RowElements();
  std::vector<T> out(static_cast<size_t>(std::max<int64_t>(n, 0)));
  absl::StatusOr<PullResult> r = Pull(out.data(), out.size() * sizeof(T), options);
  if (!r.ok()) return r.status();
  return out;
}

template <typename T>
absl::StatusOr<v1::UpdateResult> Variable::Push(UpdateOp op,
                                                const std::vector<T>& values,
                                                const PushOptions& options) {
  if (absl::Status s = CheckType(DataTypeOf<T>()); !s.ok()) return s;
  return PushBytes(op, DataTypeOf<T>(), values.data(), values.size() * sizeof(T),
                   options);
}

template <typename T>
absl::StatusOr<std::vector<T>> Variable::Gather(
    const std::vector<int64_t>& indices) {
  if (absl::Status s = CheckType(DataTypeOf<T>()); !s.ok()) return s;
  if (client_ == nullptr) {
    return absl::FailedPreconditionError("this Variable has no client");
  }
  absl::StatusOr<v1::Tensor> rows = client_->Gather(name(), indices);
  if (!rows.ok()) return rows.status();
  std::vector<T> out(rows->data().size() / sizeof(T));
  std::memcpy(out.data(), rows->data().data(), out.size() * sizeof(T));
  return out;
}

/// \brief RAII guard for `with tf.variable_scope(...)`: opens on
/// construction, closes on destruction. Movable, not copyable.
class VariableScope {
 public:
  /// Opens scope `name` (relative to the innermost scope of this thread).
  static absl::StatusOr<VariableScope> Open(Client& client,
                                            absl::string_view name,
                                            ScopeOptions options = {});
  /// tf.variable_scope(None, default_name=...): name, name_1, ...
  static absl::StatusOr<VariableScope> OpenDefault(Client& client,
                                                   absl::string_view default_name,
                                                   ScopeOptions options = {});
  /// Re-enters a captured scope: absolute name, its own reuse flag unless
  /// options ask for REUSE / AUTO_REUSE.
  static absl::StatusOr<VariableScope> Reenter(Client& client,
                                               const CapturedScope& scope,
                                               ScopeOptions options = {});
  /// Throwing variant of Open(): throws StatusError on failure.
  VariableScope(Client& client, absl::string_view name,
                ScopeOptions options = {});

  VariableScope(VariableScope&& other) noexcept;
  VariableScope& operator=(VariableScope&& other) noexcept;
  VariableScope(const VariableScope&) = delete;
  VariableScope& operator=(const VariableScope&) = delete;
  ~VariableScope();

  /// scope.reuse_variables(): REUSE for good, also for later re-entries.
  absl::Status ReuseVariables();
  /// Closes now (instead of at destruction) and reports the outcome.
  absl::Status Close();
  /// Keeps this scope for later re-entry.
  CapturedScope Capture() const;

  /// Variable-scope name ("scope1/scope2").
  const std::string& name() const;
  /// Name-scope prefix of ops ("scope1_1/").
  const std::string& name_scope() const;
  /// Effective reuse flag as the server reported it at open time (or after
  /// ReuseVariables).
  Reuse reuse() const;

 private:
  VariableScope(Client* client, std::shared_ptr<internal::ScopeRecord> record)
      : client_(client), record_(std::move(record)) {}
  Client* client_ = nullptr;  // Not owned.
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
  const std::string& name_scope() const;

 private:
  NameScope(Client* client, std::shared_ptr<internal::ScopeRecord> record)
      : client_(client), record_(std::move(record)) {}
  Client* client_ = nullptr;  // Not owned.
  std::shared_ptr<internal::ScopeRecord> record_;
};

}  // namespace varscope

#endif  // VARSCOPE_CLIENT_CLIENT_H_
