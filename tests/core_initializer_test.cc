// Initializers, 16-bit float conversion and partitioners.
#include <cmath>
#include <cstring>

#include "server/core/tensor/initializer.h"
#include "server/core/namespace/partitioner.h"
#include "tests/test_util.h"

namespace varscope::core {
namespace {

using Kind = InitializerSpec::Kind;

std::vector<double> Values(const InitializerSpec& spec, DType dtype,
                           const Shape& shape, uint64_t name_seed = 42) {
  auto buffer = RunInitializer(spec, dtype, shape, nullptr, name_seed);
  std::vector<double> out(*NumElements(shape));
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = LoadElement(dtype, buffer->data(), static_cast<int64_t>(i));
  }
  return out;
}

double Mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / v.size();
}

double Stddev(const std::vector<double>& v) {
  const double m = Mean(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / v.size());
}

TEST(Initializer, ConstantPadsWithLastValue) {
  InitializerSpec spec = InitializerSpec::Of(Kind::kConstant);
  spec.values = {1, 2};
  EXPECT_EQ(Values(spec, DType::kInt32, {4}), (std::vector<double>{1, 2, 2, 2}));
  spec.values = {1, 2, 3, 4, 5};
  EXPECT_CODE(ValidateInitializer(spec, DType::kInt32, {4}, "v"), kInvalidArgument);
  spec.values = {1, 2};
  spec.verify_shape = true;
  EXPECT_CODE(ValidateInitializer(spec, DType::kInt32, {4}, "v"), kInvalidArgument);
}

TEST(Initializer, RandomUniformBoundsAndDeterminism) {
  InitializerSpec spec = InitializerSpec::Of(Kind::kRandomUniform);
  spec.minval = -2;
  spec.maxval = 3;
  spec.seed = 7;
  const auto a = Values(spec, DType::kFloat, {10000});
  for (double x : a) {
    EXPECT_GE(x, -2);
    EXPECT_LT(x, 3);
  }
  EXPECT_NEAR(Mean(a), 0.5, 0.05);
  EXPECT_EQ(a, Values(spec, DType::kFloat, {10000}));  // same seed, same values
  spec.seed = 8;
  EXPECT_NE(a, Values(spec, DType::kFloat, {10000}));
  // Integers need maxval and draw from [minval, maxval).
  InitializerSpec ints = InitializerSpec::Of(Kind::kRandomUniform);
  EXPECT_CODE(ValidateInitializer(ints, DType::kInt32, {2}, "v"), kInvalidArgument);
  ints.maxval = 5;
  for (double x : Values(ints, DType::kInt64, {1000})) {
    EXPECT_GE(x, 0);
    EXPECT_LT(x, 5);
    EXPECT_EQ(x, std::floor(x));
  }
}

TEST(Initializer, ZeroSeedUsesTheNameSeed) {
  InitializerSpec spec = InitializerSpec::Of(Kind::kRandomNormal);
  EXPECT_EQ(Values(spec, DType::kFloat, {64}, NameSeed("a/b")),
            Values(spec, DType::kFloat, {64}, NameSeed("a/b")));
  EXPECT_NE(Values(spec, DType::kFloat, {64}, NameSeed("a/b")),
            Values(spec, DType::kFloat, {64}, NameSeed("a/c")));
}

TEST(Initializer, NormalAndTruncatedNormalStatistics) {
  InitializerSpec normal = InitializerSpec::Of(Kind::kRandomNormal);
  normal.mean = 1;
  normal.stddev = 2;
  const auto n = Values(normal, DType::kDouble, {20000});
  EXPECT_NEAR(Mean(n), 1.0, 0.05);
  EXPECT_NEAR(Stddev(n), 2.0, 0.05);
  InitializerSpec truncated = InitializerSpec::Of(Kind::kTruncatedNormal);
  truncated.stddev = 1;
  for (double x : Values(truncated, DType::kFloat, {20000})) {
    EXPECT_LE(std::fabs(x), 2.0);
  }
}

TEST(Initializer, GlorotUniformLimitUsesFans) {
  const auto v = Values(InitializerSpec::Of(Kind::kGlorotUniform), DType::kFloat,
                        {300, 100});
  const double limit = std::sqrt(6.0 / 400.0);
  double max_abs = 0;
  for (double x : v) max_abs = std::max(max_abs, std::fabs(x));
  EXPECT_LE(max_abs, limit + 1e-6);
  EXPECT_GT(max_abs, 0.95 * limit);
  // Uniform variance limit^2/3 -> stddev limit/sqrt(3).
  EXPECT_NEAR(Stddev(v), limit / std::sqrt(3.0), 0.003);
}

TEST(Initializer, VarianceScalingTruncatedNormalStddev) {
  InitializerSpec spec = InitializerSpec::Of(Kind::kVarianceScaling);
  spec.scale = 2;
  spec.mode = InitializerSpec::FanMode::kFanIn;
  // Rank 4 (conv kernel): receptive 3*3, fan_in = 16*9 = 144.
  const auto v = Values(spec, DType::kFloat, {3, 3, 16, 64});
  // A normal truncated at 2 sigma has stddev 0.8796 sigma; TF divides it out.
  EXPECT_NEAR(Stddev(v), std::sqrt(2.0 / 144.0), 0.004);
}

TEST(Initializer, UniformUnitScaling) {
  InitializerSpec spec = InitializerSpec::Of(Kind::kUniformUnitScaling);
  spec.scale = 1.5;
  const auto v = Values(spec, DType::kFloat, {12, 10});
  for (double x : v) EXPECT_LE(std::fabs(x), 1.5 * std::sqrt(3.0 / 12) + 1e-6);
}

TEST(Initializer, OrthogonalIsOrthonormal) {
  InitializerSpec spec = InitializerSpec::Of(Kind::kOrthogonal);
  for (const Shape& shape : {Shape{6, 4}, Shape{4, 6}, Shape{2, 3, 4}}) {
    const auto q = Values(spec, DType::kDouble, shape);
    const int64_t cols = shape.back();
    const int64_t rows = static_cast<int64_t>(q.size()) / cols;
    // Columns orthonormal when rows >= cols, rows otherwise.
    const bool by_cols = rows >= cols;
    const int64_t k = by_cols ? cols : rows;
    for (int64_t a = 0; a < k; ++a) {
      for (int64_t b = 0; b < k; ++b) {
        double dot = 0;
        for (int64_t i = 0; i < (by_cols ? rows : cols); ++i) {
          dot += by_cols ? q[i * cols + a] * q[i * cols + b]
                         : q[a * cols + i] * q[b * cols + i];
        }
        EXPECT_NEAR(dot, a == b ? 1.0 : 0.0, 1e-9);
      }
    }
  }
  EXPECT_CODE(ValidateInitializer(spec, DType::kFloat, {4}, "v"), kInvalidArgument);
}

TEST(Initializer, IdentityIsSlicedPerPart) {
  InitializerSpec spec = InitializerSpec::Of(Kind::kIdentity);
  spec.scale = 3;
  PartContext part{{4, 4}, {2, 0}, 1};
  auto buffer = RunInitializer(spec, DType::kFloat, {2, 4}, &part, 1);
  float v[8];
  std::memcpy(v, buffer->data(), sizeof(v));
  EXPECT_EQ(v[2], 3.0f);  // row 2, col 2
  EXPECT_EQ(v[7], 3.0f);  // row 3, col 3
  EXPECT_EQ(v[0], 0.0f);
  EXPECT_CODE(ValidateInitializer(spec, DType::kFloat, {2, 2, 2}, "v"),
              kInvalidArgument);
}

TEST(Initializer, BoolAndHalfDtypes) {
  EXPECT_EQ(Values(InitializerSpec::Of(Kind::kOnes), DType::kBool, {3}),
            (std::vector<double>{1, 1, 1}));
  EXPECT_EQ(Values(InitializerSpec::Of(Kind::kOnes), DType::kHalf, {2}),
            (std::vector<double>{1, 1}));
  EXPECT_CODE(ValidateInitializer(InitializerSpec::Of(Kind::kRandomUniform),
                                  DType::kBool, {2}, "v"),
              kInvalidArgument);
}

TEST(HalfFloat, RoundTripsAndRounds) {
  for (float f : {0.0f, 1.0f, -2.5f, 65504.0f, 6.1035156e-05f, 5.9604645e-08f}) {
    EXPECT_FLOAT_EQ(HalfToFloat(FloatToHalf(f)), f) << f;
  }
  EXPECT_EQ(FloatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(FloatToHalf(1e6f), 0x7c00);  // overflow -> inf
  EXPECT_EQ(FloatToBFloat16(1.0f), 0x3f80);
  EXPECT_FLOAT_EQ(BFloat16ToFloat(FloatToBFloat16(3.140625f)), 3.140625f);
}

TEST(Partitioner, Factories) {
  PartitionerSpec fixed;
  fixed.kind = PartitionerSpec::Kind::kFixedSize;
  fixed.num_shards = 5;
  EXPECT_EQ(*ComputePartitions(fixed, DType::kFloat, {10, 10}, "v"),
            (std::vector<int64_t>{5, 1}));
  fixed.num_shards = 50;  // clamped to the dimension
  EXPECT_EQ(*ComputePartitions(fixed, DType::kFloat, {10, 10}, "v"),
            (std::vector<int64_t>{10, 1}));

  PartitionerSpec min_max;
  min_max.kind = PartitionerSpec::Kind::kMinMax;
  min_max.max_partitions = 100;
  EXPECT_EQ(*ComputePartitions(min_max, DType::kFloat, {2048, 1024}, "v"),
            (std::vector<int64_t>{32, 1}));
  min_max.max_partitions = 16;
  EXPECT_EQ(*ComputePartitions(min_max, DType::kFloat, {2048, 1024}, "v"),
            (std::vector<int64_t>{16, 1}));
  min_max.max_partitions = 100;
  min_max.axis = 1;
  EXPECT_EQ(*ComputePartitions(min_max, DType::kFloat, {64, 1024, 1, 3}, "v"),
            (std::vector<int64_t>{1, 3, 1, 1}));

  PartitionerSpec axis_size;
  axis_size.kind = PartitionerSpec::Kind::kVariableAxisSize;
  axis_size.max_shard_bytes = 4 * 10 * 3;  // three rows of 10 floats
  EXPECT_EQ(*ComputePartitions(axis_size, DType::kFloat, {10, 10}, "v"),
            (std::vector<int64_t>{4, 1}));
  axis_size.max_shards = 2;
  EXPECT_EQ(*ComputePartitions(axis_size, DType::kFloat, {10, 10}, "v"),
            (std::vector<int64_t>{2, 1}));
  axis_size.max_shard_bytes = 0;
  EXPECT_CODE(ComputePartitions(axis_size, DType::kFloat, {10, 10}, "v"),
              kInvalidArgument);

  EXPECT_CODE(ComputePartitions(fixed, DType::kFloat, {}, "v"), kInvalidArgument);
  fixed.axis = 3;
  EXPECT_CODE(ComputePartitions(fixed, DType::kFloat, {10, 10}, "v"),
              kInvalidArgument);
}

TEST(Partitioner, SplitRule) {
  auto rows = [](int64_t d, int64_t n) {
    std::vector<int64_t> out;
    for (const PartLayout& p : SplitShape({d, 2}, {n, 1})) out.push_back(p.shape[0]);
    return out;
  };
  EXPECT_EQ(rows(43, 2), (std::vector<int64_t>{22, 21}));
  EXPECT_EQ(rows(43, 3), (std::vector<int64_t>{15, 14, 14}));
  EXPECT_EQ(rows(43, 4), (std::vector<int64_t>{11, 11, 11, 10}));
  EXPECT_EQ(rows(43, 5), (std::vector<int64_t>{9, 9, 9, 8, 8}));
  EXPECT_EQ(rows(13, 3), (std::vector<int64_t>{5, 4, 4}));
}

}  // namespace
}  // namespace varscope::core
