// File: connection.h
// The client's link to a varscope server, one method per RPC in the
// library's own types. varscope::Client is built on it; MakeConnection
// gives the gRPC one. Tests of a trainer can implement Connection
// themselves (or subclass it with gMock) and hand it to Client::Create, so
// they run without a server.
//
// Example:
//   std::shared_ptr<varscope::Connection> c =
//       varscope::MakeConnection("127.0.0.1:50051", {}).value();
//   auto client = varscope::Client::Create(c, {}).value();
//
// Thread-safety: implementations must be safe for concurrent calls.
// Buffers passed as spans must stay valid until the call returns (for the
// async calls: until the future is ready).
#ifndef VARSCOPE_CLIENT_CONNECTION_H_
#define VARSCOPE_CLIENT_CONNECTION_H_

#include <cstdint>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "varscope/types.h"

namespace varscope {

/// \brief A stream of change events; Next() blocks for the next one.
class WatchStream {
 public:
  virtual ~WatchStream() = default;
  /// False when the stream ended (see status()).
  virtual bool Next(WatchEvent* event) = 0;
  /// Ends the stream from any thread; Next() then returns false.
  virtual void Cancel() = 0;
  /// The final status, after Next() returned false.
  virtual absl::Status status() = 0;
};

/// \brief TLS to a varscoped started with --tls_cert (PEM file paths).
struct TlsOptions {
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

/// \brief How to reach a server.
struct ConnectionOptions {
  TlsOptions tls;
  /// Sent as "authorization: Bearer <token>" on every call; "" = none.
  /// Like gRPC's own call credentials, a token is only sent over TLS or to
  /// a loopback or unix-socket target, unless allow_token_without_tls.
  std::string auth_token;
  bool allow_token_without_tls = false;
  /// Deadline of a call without CallOptions::timeout.
  absl::Duration rpc_timeout = absl::Seconds(30);
  /// Matches the server's --max_message_bytes.
  int max_message_bytes = 64 << 20;
  /// Calls wait (up to their deadline) for the server to be reachable
  /// instead of failing at once with UNAVAILABLE while it is down or
  /// restarting (gRPC's wait_for_ready).
  bool wait_for_ready = false;
  /// Same-host bulk transfer: with a daemon on this machine (a loopback or
  /// unix: target), pulls and pushes of one tensor of 64 KiB and more move
  /// its bytes through shared memory this process attaches (sealed memfd
  /// segments: at most 16 and 1 GiB per connection, i.e. per shard; one
  /// unused for 30 s is closed at the next large call, all when the
  /// connection goes) instead of through gRPC, which still carries the
  /// call. Falls back to
  /// gRPC on its own where that is not possible (another network
  /// namespace, a daemon run with --shared_memory=false).
  bool shared_memory = true;
  /// Ask the server for its cluster topology first (MakeConnection) and
  /// send each variable's calls straight to its shard. false: talk to the
  /// target only, with no call before the first one (a shard still answers
  /// for the whole cluster, one forwarding hop away); what a health check
  /// wants, since it needs no token.
  bool use_topology = true;
};

// ---- Requests (the library's own shapes of the RPCs' requests). ----

struct OpenScopeArgs {
  uint64_t session = 0;
  uint64_t parent = 0;                ///< 0 = the session root
  std::string name;                   ///< or:
  std::optional<uint64_t> reenter;    ///< a captured scope (0 = root), or:
  std::string default_name;           ///< when neither is given
  bool name_scope_only = false;       ///< tf.name_scope
  Reuse reuse = Reuse::kInherit;
  std::optional<Initializer> initializer;
  DataType dtype = DataType::kUnspecified;
  std::optional<Partitioner> partitioner;
  bool auxiliary_name_scope = true;
};

/// UpdateScope: each set field replaces that default (a set-but-empty
/// optional removes it).
struct ScopeDefaults {
  std::optional<std::optional<Initializer>> initializer;
  std::optional<DataType> dtype;
  std::optional<std::optional<Partitioner>> partitioner;
};

struct GetVariableArgs {
  uint64_t session = 0;               ///< 0: one-shot form (scope_path, reuse)
  uint64_t scope = 0;
  std::string scope_path;             ///< one-shot form only
  Reuse reuse = Reuse::kInherit;      ///< one-shot form only
  std::string name;
  std::optional<std::vector<int64_t>> shape;  ///< unset = not given; {} = scalar
  DataType dtype = DataType::kUnspecified;
  std::optional<Initializer> initializer;
  std::optional<bool> trainable;
  std::optional<std::vector<std::string>> collections;
  std::optional<Partitioner> partitioner;
  bool local = false;
  absl::Duration wait = absl::ZeroDuration();
};

struct GetVariableResult {
  VariableInfo variable;
  bool created = false;
};

struct NewVariableArgs {
  uint64_t session = 0;
  uint64_t scope = 0;
  std::string name;                   ///< "" = "Variable"
  std::optional<Tensor> value;        ///< or initializer + shape + dtype
  std::optional<Initializer> initializer;
  std::vector<int64_t> shape;
  DataType dtype = DataType::kUnspecified;
  std::optional<bool> trainable;
  std::optional<std::vector<std::string>> collections;
};

struct ListVariablesArgs {
  std::string prefix;
  std::string collection;
  bool include_partitioned = false;
  int page_size = 0;                  ///< 0 = the server's default
  std::string page_token;
};

struct VariablePage {
  std::vector<VariableInfo> variables;
  std::string next_page_token;        ///< "" on the last page
};

struct ListScopesArgs {
  std::string prefix;
  uint64_t session = 0;               ///< also list its handles
  bool handles_only = false;          ///< only them, without the scope tree
  int page_size = 0;
  std::string page_token;
};

struct ScopePage {
  std::vector<ScopeNode> scopes;
  std::vector<ScopeInfo> handles;
  std::string next_page_token;
};

struct PullArgs {
  std::string name;
  std::optional<RowRange> rows;
  uint64_t if_newer_than = 0;         ///< > 0: unchanged when not newer
};

/// One update of a push; `data` is borrowed for the call.
struct PushItem {
  std::string name;
  UpdateOp op = UpdateOp::kAssign;
  DataType dtype = DataType::kUnspecified;
  absl::Span<const uint8_t> data;
  std::optional<RowRange> rows;
  std::vector<int64_t> indices;       ///< sparse rows (scatter)
  std::optional<uint64_t> expected_version;
  std::optional<OptimizerConfig> optimizer;
  std::optional<int64_t> step;

  /// An item of `op` with typed `values` (borrowed: they must outlive the
  /// call).
  template <typename T>
  static PushItem Of(std::string name, UpdateOp op, const std::vector<T>& values) {
    PushItem item;
    item.name = std::move(name);
    item.op = op;
    item.dtype = DataTypeOf<T>();
    item.data = absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(values.data()),
                                          values.size() * sizeof(T));
    return item;
  }
};

/// \brief Every call the client makes, one virtual method per RPC:
/// MakeConnection() gives the gRPC one; a test double overrides only what
/// it needs (every method defaults to UNIMPLEMENTED), e.g. with gMock's
/// MOCK_METHOD. Implementations must be thread-safe.
class Connection {
 public:
  virtual ~Connection() = default;

  // Sessions and scopes (VariableStore).
  struct Session {
    uint64_t id = 0;
    absl::Duration lease;
    uint64_t root_scope = 0;
  };
  virtual absl::StatusOr<Session> OpenSession(const std::string& client_name,
                                              absl::Duration lease,
                                              const CallOptions& call);
  virtual absl::StatusOr<absl::Duration> KeepAlive(uint64_t session,
                                                   const CallOptions& call);
  virtual absl::Status CloseSession(uint64_t session, const CallOptions& call);
  virtual absl::StatusOr<ScopeInfo> OpenScope(const OpenScopeArgs& args,
                                              const CallOptions& call);
  virtual absl::StatusOr<ScopeInfo> UpdateScope(uint64_t session, uint64_t scope,
                                                const ScopeDefaults& defaults,
                                                const CallOptions& call);
  virtual absl::StatusOr<ScopeInfo> ReuseVariables(uint64_t session, uint64_t scope,
                                                   const CallOptions& call);
  virtual absl::Status CloseScope(uint64_t session, uint64_t scope,
                                  const CallOptions& call);
  virtual absl::StatusOr<GetVariableResult> GetVariable(const GetVariableArgs& args,
                                                        const CallOptions& call);
  virtual absl::StatusOr<VariableInfo> NewVariable(const NewVariableArgs& args,
                                                   const CallOptions& call);
  virtual absl::StatusOr<std::string> OpName(uint64_t session, uint64_t scope,
                                             const std::string& name, bool preview,
                                             const CallOptions& call);
  virtual absl::StatusOr<VariablePage> ListVariables(const ListVariablesArgs& args,
                                                     const CallOptions& call);
  virtual absl::StatusOr<ScopePage> ListScopes(const ListScopesArgs& args,
                                               const CallOptions& call);
  virtual absl::StatusOr<VariableInfo> DescribeVariable(const std::string& name,
                                                        const CallOptions& call);
  virtual absl::StatusOr<std::vector<std::string>> DeleteVariable(
      const std::string& name, const CallOptions& call);

  // Values (VariableData). `out` must be exactly the size of the data.
  virtual absl::StatusOr<PullResult> Pull(const PullArgs& args, DataType dtype,
                                          absl::Span<uint8_t> out,
                                          const CallOptions& call);
  /// Several whole variables in one call (each a consistent snapshot).
  virtual absl::StatusOr<std::vector<Tensor>> PullMany(
      const std::vector<std::string>& names, const CallOptions& call);
  /// All updates or none.
  virtual absl::StatusOr<std::vector<UpdateResult>> Push(
      const std::vector<PushItem>& items, const CallOptions& call);
  virtual absl::StatusOr<Tensor> Gather(const std::string& name,
                                        const std::vector<int64_t>& indices,
                                        const CallOptions& call);
  virtual absl::StatusOr<std::vector<TrainingState>> SetOptimizer(
      const std::vector<std::string>& names,
      const std::optional<OptimizerConfig>& optimizer, int replicas_to_aggregate,
      const CallOptions& call);
  virtual absl::StatusOr<TrainingState> DescribeTraining(const std::string& name,
                                                         const CallOptions& call);
  virtual absl::StatusOr<uint64_t> WaitVersion(const std::string& name,
                                               uint64_t version,
                                               absl::Duration timeout,
                                               const CallOptions& call);
  virtual std::unique_ptr<WatchStream> Watch(const std::string& prefix,
                                             bool send_initial, uint32_t buffer_events,
                                             const CallOptions& call);
  /// Asynchronous pull and push: no thread per call; the future is ready
  /// when the call ends.
  virtual std::future<absl::StatusOr<PullResult>> PullAsync(
      const PullArgs& args, DataType dtype, absl::Span<uint8_t> out,
      const CallOptions& call);
  virtual std::future<absl::StatusOr<std::vector<UpdateResult>>> PushAsync(
      const std::vector<PushItem>& items, const CallOptions& call);

  // Operators (Admin).
  virtual absl::StatusOr<CheckpointInfo> Save(const std::string& name,
                                              const CallOptions& call);
  virtual absl::StatusOr<std::vector<CheckpointInfo>> ListCheckpoints(
      const CallOptions& call);
  virtual absl::StatusOr<CheckpointInfo> Restore(const std::string& name,
                                                 const CallOptions& call);
  virtual absl::StatusOr<std::vector<std::string>> Import(
      const std::string& path, const std::string& scope,
      std::optional<bool> trainable, const CallOptions& call);
  virtual absl::StatusOr<ServerStats> GetStats(const CallOptions& call);
  virtual absl::StatusOr<std::vector<SessionSummary>> ListSessions(const CallOptions& call);
  /// The standard health check (grpc.health.v1.Health/Check) of the whole
  /// server (service ""); needs no token.
  virtual absl::StatusOr<HealthStatus> CheckHealth(const CallOptions& call);
};

/// The gRPC connection to `target` ("host:port", "unix:/path").
absl::StatusOr<std::shared_ptr<Connection>> MakeConnection(
    const std::string& target, const ConnectionOptions& options);

}  // namespace varscope

#endif  // VARSCOPE_CLIENT_CONNECTION_H_
