#include "server/core/tensor/initializer.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "server/core/base/status_macros.h"

namespace varscope::core {
namespace {

using Kind = InitializerSpec::Kind;

// SplitMix64: expands one 64-bit seed into the xoshiro state.
uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// xoshiro256**: small, fast, and good enough for weight initialization.
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (uint64_t& word : s_) word = SplitMix64(seed);
  }
  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, 1) with 53 random bits.
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  // Standard normal (Box-Muller; the second value is cached).
  double Normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u1 = Uniform();
    while (u1 <= 0.0) u1 = Uniform();
    const double u2 = Uniform();
    const double radius = std::sqrt(-2.0 * std::log(u1));
    spare_ = radius * std::sin(2.0 * M_PI * u2);
    has_spare_ = true;
    return radius * std::cos(2.0 * M_PI * u2);
  }
  double TruncatedNormal() {
    for (;;) {
      const double x = Normal();
      if (std::fabs(x) <= 2.0) return x;
    }
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
  double spare_ = 0;
  bool has_spare_ = false;
};

int64_t Product(const Shape& shape, size_t begin, size_t end) {
  int64_t n = 1;
  for (size_t i = begin; i < end; ++i) n *= shape[i];
  return n;
}

// TensorFlow's _compute_fans.
std::pair<double, double> ComputeFans(const Shape& shape) {
  if (shape.empty()) return {1, 1};
  if (shape.size() == 1) {
    return {static_cast<double>(shape[0]), static_cast<double>(shape[0])};
  }
  if (shape.size() == 2) {
    return {static_cast<double>(shape[0]), static_cast<double>(shape[1])};
  }
  const double receptive = static_cast<double>(Product(shape, 0, shape.size() - 2));
  return {shape[shape.size() - 2] * receptive,
          shape[shape.size() - 1] * receptive};
}

// The variance-scaling parameters behind glorot/lecun/he.
InitializerSpec AsVarianceScaling(const InitializerSpec& spec) {
  using FM = InitializerSpec::FanMode;
  using D = InitializerSpec::Distribution;
  InitializerSpec vs = spec;
  vs.kind = Kind::kVarianceScaling;
  switch (spec.kind) {
    case Kind::kGlorotUniform:
      vs.scale = 1, vs.mode = FM::kFanAvg, vs.distribution = D::kUniform;
      break;
    case Kind::kGlorotNormal:
      vs.scale = 1, vs.mode = FM::kFanAvg,
      vs.distribution = D::kTruncatedNormal;
      break;
    case Kind::kLecunUniform:
      vs.scale = 1, vs.mode = FM::kFanIn, vs.distribution = D::kUniform;
      break;
    case Kind::kLecunNormal:
      vs.scale = 1, vs.mode = FM::kFanIn,
      vs.distribution = D::kTruncatedNormal;
      break;
    case Kind::kHeUniform:
      vs.scale = 2, vs.mode = FM::kFanIn, vs.distribution = D::kUniform;
      break;
    case Kind::kHeNormal:
      vs.scale = 2, vs.mode = FM::kFanIn,
      vs.distribution = D::kTruncatedNormal;
      break;
    default:
      break;
  }
  return vs;
}

bool IsRandom(Kind kind) {
  switch (kind) {
    case Kind::kZeros:
    case Kind::kOnes:
    case Kind::kConstant:
    case Kind::kIdentity:
    case Kind::kValue:
      return false;
    default:
      return true;
  }
}

// Copies the part of `full` (shape `full_shape`) that starts at `offset`
// and has shape `part_shape`; parts differ from the whole along one axis.
void CopySlice(const uint8_t* full, const Shape& full_shape,
               const Shape& offset, const Shape& part_shape, int element_size,
               uint8_t* out) {
  size_t axis = 0;
  while (axis < full_shape.size() && part_shape[axis] == full_shape[axis]) {
    ++axis;
  }
  if (axis == full_shape.size()) {
    std::memcpy(out, full, Product(full_shape, 0, full_shape.size()) *
                               static_cast<size_t>(element_size));
    return;
  }
  const int64_t outer = Product(full_shape, 0, axis);
  const int64_t inner =
      Product(full_shape, axis + 1, full_shape.size()) * element_size;
  const int64_t chunk = part_shape[axis] * inner;
  for (int64_t o = 0; o < outer; ++o) {
    const uint8_t* src = full + (o * full_shape[axis] + offset[axis]) * inner;
    std::memcpy(out + o * chunk, src, static_cast<size_t>(chunk));
  }
}

// Orthogonal rows x cols matrix: Gram-Schmidt QR of a normal matrix of shape
// (max, min); positive diagonal of R equals numpy's sign-fixed Householder Q.
std::vector<double> Orthogonal(int64_t rows, int64_t cols, Rng& rng) {
  const bool transpose = rows < cols;
  const int64_t m = transpose ? cols : rows;
  const int64_t n = transpose ? rows : cols;
  std::vector<double> a(static_cast<size_t>(m * n));
  for (double& x : a) x = rng.Normal();
  // Column j of `a` is a[i * n + j]; orthonormalize columns in place.
  for (int64_t j = 0; j < n; ++j) {
    for (int pass = 0; pass < 2; ++pass) {  // re-orthogonalize for stability
      for (int64_t k = 0; k < j; ++k) {
        double dot = 0;
        for (int64_t i = 0; i < m; ++i) dot += a[i * n + k] * a[i * n + j];
        for (int64_t i = 0; i < m; ++i) a[i * n + j] -= dot * a[i * n + k];
      }
    }
    double norm = 0;
    for (int64_t i = 0; i < m; ++i) norm += a[i * n + j] * a[i * n + j];
    norm = std::sqrt(norm);
    for (int64_t i = 0; i < m; ++i) a[i * n + j] /= norm;
  }
  if (!transpose) return a;
  std::vector<double> t(a.size());
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) t[j * m + i] = a[i * n + j];
  }
  return t;
}

uint64_t MixSeed(uint64_t seed, int part_index) {
  uint64_t state = seed ^ (0x632be59bd9b4e019ull * (part_index + 1));
  return SplitMix64(state);
}

}  // namespace

uint64_t NameSeed(absl::string_view full_name) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : full_name) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  return h == 0 ? 1 : h;
}

std::string InitializerName(const InitializerSpec& spec) {
  switch (spec.kind) {
    case Kind::kZeros: return "zeros_initializer";
    case Kind::kOnes: return "ones_initializer";
    case Kind::kConstant: return "constant_initializer";
    case Kind::kRandomUniform: return "random_uniform_initializer";
    case Kind::kRandomNormal: return "random_normal_initializer";
    case Kind::kTruncatedNormal: return "truncated_normal_initializer";
    case Kind::kUniformUnitScaling: return "uniform_unit_scaling_initializer";
    case Kind::kVarianceScaling: return "variance_scaling_initializer";
    case Kind::kGlorotUniform: return "glorot_uniform_initializer";
    case Kind::kGlorotNormal: return "glorot_normal_initializer";
    case Kind::kLecunUniform: return "lecun_uniform";
    case Kind::kLecunNormal: return "lecun_normal";
    case Kind::kHeUniform: return "he_uniform";
    case Kind::kHeNormal: return "he_normal";
    case Kind::kOrthogonal: return "orthogonal_initializer";
    case Kind::kIdentity: return "identity_initializer";
    case Kind::kValue: return "value";
  }
  return "unknown";
}

InitializerSpec DefaultInitializer(DType dtype) {
  return InitializerSpec::Of(IsFloating(dtype) ? Kind::kGlorotUniform
                                               : Kind::kZeros);
}

absl::Status ValidateInitializer(const InitializerSpec& spec, DType dtype,
                                 const Shape& shape,
                                 absl::string_view variable_name) {
  const std::string init = InitializerName(spec);
  auto error = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        init, " cannot initialize variable ", variable_name, " of ",
        DTypeName(dtype), " ", ShapeToString(shape), ": ", why));
  };
  if (IsRandom(spec.kind) && dtype == DType::kBool) {
    return error("random initializers do not produce bool values");
  }
  const bool needs_float = IsRandom(spec.kind) &&
                           spec.kind != Kind::kRandomUniform;
  if (needs_float && !IsFloating(dtype)) {
    return error("it needs a floating dtype (float16, bfloat16, float32, "
                 "float64)");
  }
  switch (spec.kind) {
    case Kind::kConstant: {
      VARSCOPE_ASSIGN_OR_RETURN(const int64_t n, NumElements(shape));
      if (static_cast<int64_t>(spec.values.size()) > n) {
        return error(absl::StrCat("too many elements provided: ",
                                  spec.values.size(), " values for ", n,
                                  " elements"));
      }
      if (spec.verify_shape && static_cast<int64_t>(spec.values.size()) != n) {
        return error(absl::StrCat("verify_shape needs exactly ", n,
                                  " values, got ", spec.values.size()));
      }
      break;
    }
    case Kind::kRandomUniform:
      if (!IsFloating(dtype) && !spec.maxval.has_value()) {
        return error("maxval is required for integer dtypes");
      }
      if (spec.maxval.has_value() && !(*spec.maxval > spec.minval) &&
          !IsFloating(dtype)) {
        return error("maxval must be greater than minval");
      }
      break;
    case Kind::kRandomNormal:
    case Kind::kTruncatedNormal:
      if (!(spec.stddev >= 0) || !std::isfinite(spec.stddev)) {
        return error("stddev must be finite and >= 0");
      }
      break;
    case Kind::kVarianceScaling:
      if (!(spec.scale > 0) || !std::isfinite(spec.scale)) {
        return error("scale must be a positive float");
      }
      break;
    case Kind::kOrthogonal:
      if (shape.size() < 2) {
        return error("the shape must have rank at least 2");
      }
      break;
    case Kind::kIdentity:
      if (shape.size() != 2) return error("identity needs a 2-D shape");
      break;
    case Kind::kValue: {
      if (spec.value.dtype != dtype) {
        return error(absl::StrCat("the value is ",
                                  DTypeName(spec.value.dtype)));
      }
      if (spec.value.shape != shape) {
        return error(absl::StrCat("the value has shape ",
                                  ShapeToString(spec.value.shape)));
      }
      VARSCOPE_ASSIGN_OR_RETURN(const int64_t bytes, NumBytes(dtype, shape));
      if (spec.value.buffer == nullptr ||
          static_cast<int64_t>(spec.value.buffer->size()) != bytes) {
        return error(absl::StrCat(
            "the value carries ",
            spec.value.buffer ? spec.value.buffer->size() : 0,
            " bytes; its shape needs ", bytes));
      }
      break;
    }
    default:
      break;
  }
  return absl::OkStatus();
}

std::shared_ptr<TensorBuffer> RunInitializer(const InitializerSpec& spec,
                                             DType dtype, const Shape& shape,
                                             const PartContext* part,
                                             uint64_t name_seed) {
  const int64_t n = Product(shape, 0, shape.size());
  const int size = DTypeSize(dtype);
  auto buffer = TensorBuffer::Allocate(static_cast<size_t>(n * size));
  uint8_t* out = buffer->data();
  const Shape& full_shape = part ? part->full_shape : shape;
  Rng rng(MixSeed(spec.seed != 0 ? spec.seed : name_seed,
                  part ? part->index : 0));
  auto fill = [&](auto&& draw) {
    for (int64_t i = 0; i < n; ++i) StoreElement(dtype, draw(i), out, i);
  };

  switch (spec.kind) {
    case Kind::kZeros:
      std::memset(out, 0, buffer->size());  // 0 is all-zero bits for all dtypes
      break;
    case Kind::kOnes:
      fill([](int64_t) { return 1.0; });
      break;
    case Kind::kConstant:
      fill([&](int64_t i) {
        if (spec.values.empty()) return 0.0;
        return spec.values[std::min<size_t>(i, spec.values.size() - 1)];
      });
      break;
    case Kind::kRandomUniform: {
      const double lo = spec.minval;
      const double hi = spec.maxval.value_or(1.0);
      if (IsFloating(dtype)) {
        fill([&](int64_t) { return lo + (hi - lo) * rng.Uniform(); });
      } else {
        const double span = std::floor(hi) - std::floor(lo);
        fill([&](int64_t) {
          return std::floor(lo) + std::floor(rng.Uniform() * span);
        });
      }
      break;
    }
    case Kind::kRandomNormal:
      fill([&](int64_t) { return spec.mean + spec.stddev * rng.Normal(); });
      break;
    case Kind::kTruncatedNormal:
      fill([&](int64_t) {
        return spec.mean + spec.stddev * rng.TruncatedNormal();
      });
      break;
    case Kind::kUniformUnitScaling: {
      double input_size =
          static_cast<double>(full_shape.empty()
                                  ? 1
                                  : Product(full_shape, 0, full_shape.size() - 1));
      input_size = std::max(input_size, 1.0);
      const double limit = std::sqrt(3.0 / input_size) * spec.scale;
      fill([&](int64_t) { return -limit + 2 * limit * rng.Uniform(); });
      break;
    }
    case Kind::kVarianceScaling:
    case Kind::kGlorotUniform:
    case Kind::kGlorotNormal:
    case Kind::kLecunUniform:
    case Kind::kLecunNormal:
    case Kind::kHeUniform:
    case Kind::kHeNormal: {
      const InitializerSpec vs = AsVarianceScaling(spec);
      const auto [fan_in, fan_out] = ComputeFans(full_shape);
      double denominator = fan_in;
      if (vs.mode == InitializerSpec::FanMode::kFanOut) denominator = fan_out;
      if (vs.mode == InitializerSpec::FanMode::kFanAvg) {
        denominator = (fan_in + fan_out) / 2.0;
      }
      const double scale = vs.scale / std::max(1.0, denominator);
      switch (vs.distribution) {
        case InitializerSpec::Distribution::kTruncatedNormal: {
          const double stddev = std::sqrt(scale) / 0.87962566103423978;
          fill([&](int64_t) { return stddev * rng.TruncatedNormal(); });
          break;
        }
        case InitializerSpec::Distribution::kUntruncatedNormal: {
          const double stddev = std::sqrt(scale);
          fill([&](int64_t) { return stddev * rng.Normal(); });
          break;
        }
        case InitializerSpec::Distribution::kUniform: {
          const double limit = std::sqrt(3.0 * scale);
          fill([&](int64_t) { return -limit + 2 * limit * rng.Uniform(); });
          break;
        }
      }
      break;
    }
    case Kind::kOrthogonal: {
      const int64_t cols = shape.back();
      const int64_t rows = cols == 0 ? 0 : n / cols;
      if (n == 0) break;
      const std::vector<double> q = Orthogonal(rows, cols, rng);
      fill([&](int64_t i) { return spec.scale * q[static_cast<size_t>(i)]; });
      break;
    }
    case Kind::kIdentity: {
      const int64_t row0 = part ? part->offset[0] : 0;
      const int64_t col0 = part ? part->offset[1] : 0;
      const int64_t cols = shape[1];
      fill([&](int64_t i) {
        return (row0 + i / cols) == (col0 + i % cols) ? spec.scale : 0.0;
      });
      break;
    }
    case Kind::kValue:
      if (part == nullptr) {
        std::memcpy(out, spec.value.buffer->data(), buffer->size());
      } else {
        CopySlice(spec.value.buffer->data(), part->full_shape, part->offset,
                  shape, size, out);
      }
      break;
  }
  return buffer;
}

}  // namespace varscope::core
