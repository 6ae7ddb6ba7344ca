// The client's own value types: factories, dtype facts, error reasons.
#include "varscope/types.h"

#include "absl/strings/cord.h"
#include "error_details.h"
#include "status_util.h"

namespace varscope {

size_t DataTypeSize(DataType dtype) {
  switch (dtype) {
    case DataType::kBool:
    case DataType::kInt8:
    case DataType::kUInt8:
      return 1;
    case DataType::kInt16:
    case DataType::kHalf:
    case DataType::kBFloat16:
      return 2;
    case DataType::kFloat:
    case DataType::kInt32:
      return 4;
    case DataType::kDouble:
    case DataType::kInt64:
      return 8;
    case DataType::kUnspecified:
      return 0;
  }
  return 0;
}

absl::string_view DataTypeName(DataType dtype) {
  switch (dtype) {
    case DataType::kFloat: return "float32";
    case DataType::kDouble: return "float64";
    case DataType::kInt32: return "int32";
    case DataType::kUInt8: return "uint8";
    case DataType::kInt16: return "int16";
    case DataType::kInt8: return "int8";
    case DataType::kInt64: return "int64";
    case DataType::kBool: return "bool";
    case DataType::kBFloat16: return "bfloat16";
    case DataType::kHalf: return "float16";
    case DataType::kUnspecified: return "unspecified";
  }
  return "unknown";
}

Initializer Initializer::Constant(std::vector<double> values, bool verify_shape) {
  Initializer i = Of(Kind::kConstant);
  i.values = std::move(values);
  i.verify_shape = verify_shape;
  return i;
}

Initializer Initializer::RandomUniform(double minval, std::optional<double> maxval,
                                       uint64_t seed) {
  Initializer i = Seeded(Kind::kRandomUniform, seed);
  i.minval = minval;
  i.maxval = maxval;
  return i;
}

Initializer Initializer::RandomNormal(double mean, double stddev, uint64_t seed) {
  Initializer i = Seeded(Kind::kRandomNormal, seed);
  i.mean = mean;
  i.stddev = stddev;
  return i;
}

Initializer Initializer::TruncatedNormal(double mean, double stddev, uint64_t seed) {
  Initializer i = Seeded(Kind::kTruncatedNormal, seed);
  i.mean = mean;
  i.stddev = stddev;
  return i;
}

Initializer Initializer::UniformUnitScaling(double factor, uint64_t seed) {
  Initializer i = Seeded(Kind::kUniformUnitScaling, seed);
  i.scale = factor;
  return i;
}

Initializer Initializer::VarianceScaling(double scale, Mode mode,
                                         Distribution distribution, uint64_t seed) {
  Initializer i = Seeded(Kind::kVarianceScaling, seed);
  i.scale = scale;
  i.mode = mode;
  i.distribution = distribution;
  return i;
}

Initializer Initializer::Orthogonal(double gain, uint64_t seed) {
  Initializer i = Seeded(Kind::kOrthogonal, seed);
  i.scale = gain;
  return i;
}

Initializer Initializer::Identity(double gain) {
  Initializer i = Of(Kind::kIdentity);
  i.scale = gain;
  return i;
}

Initializer Initializer::FromValue(Tensor value) {
  Initializer i = Of(Kind::kValue);
  i.value = std::move(value);
  return i;
}

Partitioner Partitioner::FixedSize(int64_t num_shards, int axis) {
  Partitioner p;
  p.kind = Kind::kFixedSize;
  p.num_shards = num_shards;
  p.axis = axis;
  return p;
}

Partitioner Partitioner::MinMax(int64_t max_partitions, int axis,
                                int64_t min_slice_size) {
  Partitioner p;
  p.kind = Kind::kMinMax;
  p.max_partitions = max_partitions;
  p.axis = axis;
  p.min_slice_size = min_slice_size;
  return p;
}

Partitioner Partitioner::VariableAxisSize(int64_t max_shard_bytes, int axis,
                                          std::optional<int64_t> max_shards) {
  Partitioner p;
  p.kind = Kind::kVariableAxisSize;
  p.max_shard_bytes = max_shard_bytes;
  p.axis = axis;
  p.max_shards = max_shards;
  return p;
}

Partitioner Partitioner::Explicit(std::vector<int64_t> partitions) {
  Partitioner p;
  p.kind = Kind::kExplicit;
  p.partitions = std::move(partitions);
  return p;
}

OptimizerConfig OptimizerConfig::Sgd(double learning_rate) {
  OptimizerConfig c;
  c.kind = Kind::kSgd;
  c.learning_rate = learning_rate;
  return c;
}

OptimizerConfig OptimizerConfig::Momentum(double learning_rate, double momentum,
                                          bool use_nesterov) {
  OptimizerConfig c;
  c.kind = Kind::kMomentum;
  c.learning_rate = learning_rate;
  c.momentum = momentum;
  c.use_nesterov = use_nesterov;
  return c;
}

OptimizerConfig OptimizerConfig::Adagrad(double learning_rate,
                                         std::optional<double> initial_accumulator_value) {
  OptimizerConfig c;
  c.kind = Kind::kAdagrad;
  c.learning_rate = learning_rate;
  c.initial_accumulator_value = initial_accumulator_value;
  return c;
}

OptimizerConfig OptimizerConfig::Adam(std::optional<double> learning_rate,
                                      std::optional<double> beta1,
                                      std::optional<double> beta2,
                                      std::optional<double> epsilon) {
  OptimizerConfig c;
  c.kind = Kind::kAdam;
  c.learning_rate = learning_rate;
  c.beta1 = beta1;
  c.beta2 = beta2;
  c.epsilon = epsilon;
  return c;
}

OptimizerConfig OptimizerConfig::RmsProp(double learning_rate,
                                         std::optional<double> decay, double momentum,
                                         std::optional<double> epsilon, bool centered) {
  OptimizerConfig c;
  c.kind = Kind::kRmsProp;
  c.learning_rate = learning_rate;
  c.decay = decay;
  c.momentum = momentum;
  c.epsilon = epsilon;
  c.centered = centered;
  return c;
}

OptimizerConfig OptimizerConfig::Ftrl(double learning_rate) {
  OptimizerConfig c;
  c.kind = Kind::kFtrl;
  c.learning_rate = learning_rate;
  return c;
}

namespace {

std::optional<internal::ErrorInfoFields> ErrorInfoOf(const absl::Status& status) {
  auto payload = status.GetPayload(internal::kErrorInfoUrl);
  if (!payload.has_value()) return std::nullopt;
  return internal::DecodeErrorInfo(std::string(*payload));
}

}  // namespace

std::string ErrorReason(const absl::Status& status) {
  std::optional<internal::ErrorInfoFields> info = ErrorInfoOf(status);
  return info.has_value() ? info->reason : "";
}

std::map<std::string, std::string> ErrorMetadata(const absl::Status& status) {
  std::optional<internal::ErrorInfoFields> info = ErrorInfoOf(status);
  if (!info.has_value()) return {};
  return info->metadata;
}

absl::Status WithErrorReason(absl::Status status, const std::string& reason,
                             const std::map<std::string, std::string>& metadata) {
  if (status.ok()) return status;
  internal::ErrorInfoFields info{reason, "varscope.dev", metadata};
  status.SetPayload(internal::kErrorInfoUrl, absl::Cord(internal::EncodeErrorInfo(info)));
  return status;
}

namespace internal {

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  absl::Status out(static_cast<absl::StatusCode>(status.error_code()),
                   status.error_message());
  if (!status.error_details().empty()) {
    if (std::optional<ErrorInfoFields> info =
            ErrorInfoFromStatusDetails(status.error_details())) {
      out.SetPayload(kErrorInfoUrl, absl::Cord(EncodeErrorInfo(*info)));
    }
  }
  return out;
}

}  // namespace internal
}  // namespace varscope
