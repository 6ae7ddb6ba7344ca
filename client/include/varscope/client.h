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

#include <cstdint>
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
struct ClientOptions {
  /// Shown in server logs.
  std::string client_name = "varscope-client";
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
};

/// \brief Options of a variable scope guard.
struct ScopeOptions {
  Reuse reuse = v1::INHERIT;
  std::optional<v1::Initializer> initializer;
  DataType dtype = v1::DT_INVALID;
  std::optional<v1::Partitioner> partitioner;
  bool auxiliary_name_scope = true;
};

/// \brief A variable's description as returned by the server.
class Variable {
 public:
  explicit Variable(v1::Variable proto) : proto_(std::move(proto)) {}
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

 private:
  v1::Variable proto_;
};

class Client;
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

  /// The current session id (changes after a recovery).
  uint64_t session_id() const;
  /// How many times the session was re-opened after being lost.
  int session_recoveries() const;

 private:
  friend class VariableScope;
  friend class NameScope;
  class Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  // Closes a guard's scope once; shared by VariableScope and NameScope.
  static absl::Status CloseGuard(
      Client*& client, const std::shared_ptr<internal::ScopeRecord>& record);
  std::unique_ptr<Impl> impl_;
};

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
