// File: types.h
// The client library's own vocabulary: dtypes, reuse flags, shapes,
// initializers, partitioners, optimizers, and the descriptions and results
// the server sends back. No generated protobuf type appears in the public
// headers; the library converts at the wire (src/convert.cc).
//
// Example:
//   varscope::VariableOptions o;
//   o.shape = {784, 256};
//   o.initializer = varscope::Initializer::TruncatedNormal(0, 0.1);
//   o.partitioner = varscope::Partitioner::FixedSize(4);
//
// Thread-safety: plain values.
#ifndef VARSCOPE_CLIENT_TYPES_H_
#define VARSCOPE_CLIENT_TYPES_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace varscope {

/// \brief Element type; the numbers are TensorFlow's (types.proto).
enum class DataType : int {
  kUnspecified = 0,  ///< not given (TensorFlow's DT_INVALID)
  kFloat = 1,
  kDouble = 2,
  kInt32 = 3,
  kUInt8 = 4,
  kInt16 = 5,
  kInt8 = 6,
  kInt64 = 9,
  kBool = 10,
  kBFloat16 = 14,
  kHalf = 19,
};
/// Bytes per element (0 for kUnspecified).
size_t DataTypeSize(DataType dtype);
/// TensorFlow's name: "float32", "int64", ...
absl::string_view DataTypeName(DataType dtype);

/// \brief The DataType of a C++ element type (float -> kFloat, ...).
template <typename T>
constexpr DataType DataTypeOf();
template <> constexpr DataType DataTypeOf<float>() { return DataType::kFloat; }
template <> constexpr DataType DataTypeOf<double>() { return DataType::kDouble; }
template <> constexpr DataType DataTypeOf<int32_t>() { return DataType::kInt32; }
template <> constexpr DataType DataTypeOf<int64_t>() { return DataType::kInt64; }
template <> constexpr DataType DataTypeOf<int16_t>() { return DataType::kInt16; }
template <> constexpr DataType DataTypeOf<int8_t>() { return DataType::kInt8; }
template <> constexpr DataType DataTypeOf<uint8_t>() { return DataType::kUInt8; }

/// \brief Reuse flag of a variable scope (TensorFlow's `reuse`).
enum class Reuse {
  kInherit = 0,    ///< None/False: the parent's flag ("not reusing" at the root)
  kReuse = 1,      ///< True: fetch existing variables only
  kAutoReuse = 2,  ///< tf.AUTO_REUSE: create when absent, fetch when present
};

/// \brief What to do with pushed data.
enum class UpdateOp { kAssign = 1, kAdd = 2, kSub = 3, kApplyGradient = 4 };

/// \brief A dense tensor value with its own bytes (row-major, little-endian).
struct Tensor {
  DataType dtype = DataType::kUnspecified;
  std::vector<int64_t> shape;  ///< empty = scalar
  std::string data;
  /// A tensor of `values` with shape `shape` (default: a vector).
  template <typename T>
  static Tensor Of(const std::vector<T>& values, std::vector<int64_t> shape = {}) {
    Tensor t;
    t.dtype = DataTypeOf<T>();
    t.shape = shape.empty() ? std::vector<int64_t>{static_cast<int64_t>(values.size())}
                            : std::move(shape);
    t.data.assign(reinterpret_cast<const char*>(values.data()),
                  values.size() * sizeof(T));
    return t;
  }
};

/// \brief How a new variable's value is produced (TensorFlow's init_ops).
/// Random ones are deterministic per (seed, shape, dtype); seed 0 derives
/// the seed from the variable's full name.
struct Initializer {
  enum class Kind {
    kZeros, kOnes, kConstant, kRandomUniform, kRandomNormal, kTruncatedNormal,
    kUniformUnitScaling, kVarianceScaling, kGlorotUniform, kGlorotNormal,
    kLecunUniform, kLecunNormal, kHeUniform, kHeNormal, kOrthogonal,
    kIdentity, kValue,
  };
  enum class Mode { kFanIn, kFanOut, kFanAvg };
  enum class Distribution { kTruncatedNormal, kUntruncatedNormal, kUniform };

  Kind kind = Kind::kZeros;
  std::vector<double> values;       ///< kConstant
  bool verify_shape = false;        ///< kConstant
  double minval = 0;                ///< kRandomUniform
  std::optional<double> maxval;     ///< kRandomUniform (default 1 for floats)
  double mean = 0;                  ///< normals
  double stddev = 1;                ///< normals
  double scale = 1;                 ///< variance scaling; factor; gain
  Mode mode = Mode::kFanIn;
  Distribution distribution = Distribution::kTruncatedNormal;
  uint64_t seed = 0;
  Tensor value;                     ///< kValue

  static Initializer Zeros() { return Of(Kind::kZeros); }
  static Initializer Ones() { return Of(Kind::kOnes); }
  static Initializer Constant(std::vector<double> values, bool verify_shape = false);
  static Initializer RandomUniform(double minval = 0,
                                   std::optional<double> maxval = std::nullopt,
                                   uint64_t seed = 0);
  static Initializer RandomNormal(double mean = 0, double stddev = 1, uint64_t seed = 0);
  static Initializer TruncatedNormal(double mean = 0, double stddev = 1,
                                     uint64_t seed = 0);
  static Initializer UniformUnitScaling(double factor = 1, uint64_t seed = 0);
  static Initializer VarianceScaling(double scale = 1, Mode mode = Mode::kFanIn,
                                     Distribution distribution =
                                         Distribution::kTruncatedNormal,
                                     uint64_t seed = 0);
  static Initializer GlorotUniform(uint64_t seed = 0) { return Seeded(Kind::kGlorotUniform, seed); }
  static Initializer GlorotNormal(uint64_t seed = 0) { return Seeded(Kind::kGlorotNormal, seed); }
  static Initializer LecunUniform(uint64_t seed = 0) { return Seeded(Kind::kLecunUniform, seed); }
  static Initializer LecunNormal(uint64_t seed = 0) { return Seeded(Kind::kLecunNormal, seed); }
  static Initializer HeUniform(uint64_t seed = 0) { return Seeded(Kind::kHeUniform, seed); }
  static Initializer HeNormal(uint64_t seed = 0) { return Seeded(Kind::kHeNormal, seed); }
  static Initializer Orthogonal(double gain = 1, uint64_t seed = 0);
  static Initializer Identity(double gain = 1);
  /// "From value": the variable takes the tensor's dtype, shape and bytes.
  static Initializer FromValue(Tensor value);

 private:
  static Initializer Of(Kind kind) {
    Initializer i;
    i.kind = kind;
    return i;
  }
  static Initializer Seeded(Kind kind, uint64_t seed) {
    Initializer i = Of(kind);
    i.seed = seed;
    return i;
  }
};

/// \brief TensorFlow's partitioners: split a new variable along one axis
/// into parts `name/part_<i>`.
struct Partitioner {
  enum class Kind { kFixedSize, kMinMax, kVariableAxisSize, kExplicit };
  Kind kind = Kind::kFixedSize;
  int64_t num_shards = 1;           ///< kFixedSize
  int axis = 0;
  std::optional<int64_t> max_partitions;  ///< kMinMax (default 1)
  std::optional<int64_t> min_slice_size;  ///< kMinMax (default 256 KiB)
  int64_t max_shard_bytes = 0;      ///< kVariableAxisSize
  std::optional<int64_t> max_shards;  ///< kVariableAxisSize
  std::vector<int64_t> partitions;  ///< kExplicit

  static Partitioner FixedSize(int64_t num_shards, int axis = 0);
  static Partitioner MinMax(int64_t max_partitions = 1, int axis = 0,
                            int64_t min_slice_size = 256 << 10);
  static Partitioner VariableAxisSize(int64_t max_shard_bytes, int axis = 0,
                                      std::optional<int64_t> max_shards = std::nullopt);
  static Partitioner Explicit(std::vector<int64_t> partitions);
};

/// \brief A server-side optimizer with TensorFlow 1.x's update rule; an
/// unset optional takes TensorFlow's default.
struct OptimizerConfig {
  enum class Kind { kSgd, kMomentum, kAdagrad, kAdam, kRmsProp, kFtrl };
  Kind kind = Kind::kSgd;
  std::optional<double> learning_rate;
  double momentum = 0;            ///< kMomentum (required), kRmsProp
  bool use_nesterov = false;      ///< kMomentum
  std::optional<double> initial_accumulator_value;  ///< kAdagrad, kFtrl
  std::optional<double> beta1, beta2, epsilon;      ///< kAdam (epsilon: kRmsProp)
  std::optional<double> decay;    ///< kRmsProp
  bool centered = false;          ///< kRmsProp
  std::optional<double> learning_rate_power;  ///< kFtrl
  std::optional<double> l1, l2, l2_shrinkage;  ///< kFtrl

  static OptimizerConfig Sgd(double learning_rate);
  static OptimizerConfig Momentum(double learning_rate, double momentum,
                                  bool use_nesterov = false);
  static OptimizerConfig Adagrad(double learning_rate,
                                 std::optional<double> initial_accumulator_value = {});
  static OptimizerConfig Adam(std::optional<double> learning_rate = {},
                              std::optional<double> beta1 = {},
                              std::optional<double> beta2 = {},
                              std::optional<double> epsilon = {});
  static OptimizerConfig RmsProp(double learning_rate, std::optional<double> decay = {},
                                 double momentum = 0, std::optional<double> epsilon = {},
                                 bool centered = false);
  static OptimizerConfig Ftrl(double learning_rate);
};

/// \brief Rows [start, start + count) along axis 0.
struct RowRange {
  int64_t start = 0;
  int64_t count = 0;
};

/// \brief Where a part sits in its partitioned variable.
struct PartSlice {
  std::string full_name;
  std::vector<int64_t> full_shape;
  std::vector<int64_t> offset;
  int index = 0;
};

/// \brief A variable's description as the server reported it.
struct VariableInfo {
  std::string name;         ///< full name, "scope1/v" (no ":0")
  std::string tensor_name;  ///< TensorFlow's, "scope1/v:0"
  DataType dtype = DataType::kUnspecified;
  std::vector<int64_t> shape;
  uint64_t version = 0;     ///< store revision of its last change
  bool trainable = true;
  std::vector<std::string> collections;
  std::optional<PartSlice> slice;  ///< set for a part
  bool partitioned = false;
  std::vector<VariableInfo> parts;
  std::vector<int64_t> partitions;
  int64_t num_bytes = 0;
};

/// \brief One opened (or captured) scope handle.
struct ScopeInfo {
  uint64_t id = 0;
  uint64_t parent = 0;
  bool name_scope_only = false;  ///< a tf.name_scope handle
  std::string name;              ///< variable-scope name
  std::string name_scope;        ///< "scope1_1/" or ""
  std::string original_name_scope;
  Reuse reuse = Reuse::kInherit;  ///< effective flag
  std::optional<Initializer> initializer;
  DataType dtype = DataType::kUnspecified;
  std::optional<Partitioner> partitioner;
  bool open = true;
  bool root = false;
};

/// \brief One variable scope implied by the stored names (ListScopes).
struct ScopeNode {
  std::string name;
  int64_t variables = 0;        ///< directly in it
  int64_t total_variables = 0;  ///< anywhere below
};

/// \brief What a pull returned (the bytes went to the caller's buffer).
struct PullResult {
  uint64_t version = 0;
  bool unchanged = false;      ///< if_newer_than matched; buffer untouched
  std::vector<int64_t> shape;  ///< of the bytes written
};

/// \brief What one update of a push did.
struct UpdateResult {
  std::string name;
  uint64_t version = 0;
  bool applied = true;   ///< false: stale, or waiting for more replicas
  bool stale = false;
  int accumulated = 0;
  int64_t sync_step = 0;
  int64_t stale_dropped = 0;
};

/// \brief A variable's optimizer and synchronous-training state.
struct TrainingState {
  std::string name;
  std::string optimizer;  ///< TensorFlow's name ("Adam"); "" = none
  std::vector<std::string> slots;
  int64_t optimizer_steps = 0;
  int replicas_to_aggregate = 0;
  int64_t sync_step = 0;
  int accumulated = 0;
  int64_t stale_dropped = 0;
};

/// \brief A change under a watched prefix.
struct WatchEvent {
  enum class Kind { kCreated, kUpdated, kDeleted, kResync, kExisting };
  Kind kind = Kind::kUpdated;
  std::string name;
  uint64_t version = 0;
};

/// \brief A checkpoint in the server's data directory.
struct CheckpointInfo {
  std::string name;
  std::string path;
  int64_t sequence = 0;
  int64_t bytes = 0;
  int64_t variables = 0;
  std::string created;  ///< RFC 3339
};

/// \brief Server counters (Admin.GetStats).
struct ServerStats {
  std::string version;
  int64_t sessions = 0;
  int64_t variables = 0;
  int64_t tensor_bytes = 0;
  int64_t max_memory_bytes = 0;
  double uptime_seconds = 0;
  bool auth_enabled = false;
  bool tls_enabled = false;
  int64_t calls_in_flight = 0;
};

/// \brief A live session on the server (Admin.ListSessions).
struct SessionSummary {
  uint64_t id = 0;
  std::string client_name;
  std::string owner;         ///< the token's name; "" without tokens
  absl::Duration lease;
  absl::Duration expires_in; ///< until the lease runs out unless renewed
  int open_scopes = 0;       ///< scope handles open (the root not counted)
  int shard = 0;             ///< the shard it lives on (0: single server)
};

/// \brief The standard gRPC health status of a server (grpc.health.v1).
enum class HealthStatus { kUnknown = 0, kServing = 1, kNotServing = 2, kServiceUnknown = 3 };

/// \brief Per-call options beside the client-wide defaults.
struct CallOptions {
  /// Deadline of this call; unset = ConnectionOptions::rpc_timeout.
  std::optional<absl::Duration> timeout;
  /// Wait (within the deadline) for an unreachable server instead of
  /// failing at once; unset = ConnectionOptions::wait_for_ready.
  std::optional<bool> wait_for_ready;
};

/// \brief The machine-readable reason of a failed call (the server's
/// google.rpc.ErrorInfo): "VARIABLE_EXISTS", "SHAPE_MISMATCH", ... or ""
/// when the status carries none.
std::string ErrorReason(const absl::Status& status);
/// \brief The metadata of the reason ("variable", "flag", ...).
std::map<std::string, std::string> ErrorMetadata(const absl::Status& status);
/// \brief `status` carrying `reason` and `metadata` as the server sends
/// them: for a Connection test double that fails like the server does.
absl::Status WithErrorReason(absl::Status status, const std::string& reason,
                             const std::map<std::string, std::string>& metadata = {});

}  // namespace varscope

#endif  // VARSCOPE_CLIENT_TYPES_H_
