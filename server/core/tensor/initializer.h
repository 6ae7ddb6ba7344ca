// File: initializer.h
// TensorFlow 1.x initializers (TF_SEMANTICS.md §4.6), producing real tensor
// storage of the variable's dtype.
//
// PRNG: every random initializer draws from a SplitMix64-seeded xoshiro256**
// stream whose seed is mixed from (seed, part index). Normals use the
// Box-Muller transform on 53-bit uniforms; truncated normals re-draw values
// beyond 2 standard deviations. A seed of 0 means "not given" and is replaced
// by a 64-bit FNV-1a hash of the variable's full name, so a variable
// re-created on a fresh server gets the same values. Results therefore depend
// only on (seed, dtype, shape, part index); they do not reproduce
// TensorFlow's Philox streams bit for bit.
//
// Thread-safety: pure functions.
#ifndef VARSCOPE_SERVER_CORE_TENSOR_INITIALIZER_H_
#define VARSCOPE_SERVER_CORE_TENSOR_INITIALIZER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/core/tensor/tensor.h"
#include "server/core/tensor/types.h"

namespace varscope::core {

struct InitializerSpec {
  enum class Kind {
    kZeros,
    kOnes,
    kConstant,
    kRandomUniform,
    kRandomNormal,
    kTruncatedNormal,
    kUniformUnitScaling,
    kVarianceScaling,
    kGlorotUniform,
    kGlorotNormal,
    kLecunUniform,
    kLecunNormal,
    kHeUniform,
    kHeNormal,
    kOrthogonal,
    kIdentity,
    kValue,
  };
  enum class FanMode { kFanIn, kFanOut, kFanAvg };
  enum class Distribution { kTruncatedNormal, kUntruncatedNormal, kUniform };

  Kind kind = Kind::kZeros;
  // kConstant.
  std::vector<double> values;
  bool verify_shape = false;
  // kRandomUniform: [minval, maxval); maxval unset = 1 (floats only).
  double minval = 0;
  std::optional<double> maxval;
  // kRandomNormal / kTruncatedNormal.
  double mean = 0;
  double stddev = 1;
  // kUniformUnitScaling factor, kVarianceScaling scale, kOrthogonal /
  // kIdentity gain.
  double scale = 1;
  FanMode mode = FanMode::kFanIn;
  Distribution distribution = Distribution::kTruncatedNormal;
  uint64_t seed = 0;
  // kValue.
  TensorValue value;

  static InitializerSpec Zeros() { return {}; }
  static InitializerSpec Of(Kind kind) {
    InitializerSpec spec;
    spec.kind = kind;
    return spec;
  }
};

// TensorFlow's name of the initializer ("glorot_uniform_initializer", ...).
std::string InitializerName(const InitializerSpec& spec);
// The default when neither the call nor the scope gives one: glorot_uniform
// for floating dtypes, zeros for integers and bool.
InitializerSpec DefaultInitializer(DType dtype);

// Where a part sits in a partitioned variable; fans use the full shape.
struct PartContext {
  Shape full_shape;
  Shape offset;
  int index = 0;
};

// Checks that `spec` can fill a tensor of `dtype` / `shape` (whole-variable
// shape) before anything is allocated: normal draws need a floating dtype,
// identity rank 2, orthogonal rank >= 2, constants at most num_elements
// values, integer uniform a maxval, a value the exact dtype and shape.
absl::Status ValidateInitializer(const InitializerSpec& spec, DType dtype,
                                 const Shape& shape,
                                 absl::string_view variable_name);

// Fills a new buffer of `dtype` / `shape`. `part` is set for one part of a
// partitioned variable (value and identity initializers are sliced; fans use
// the full shape). `name_seed` replaces a zero seed (see the file comment).
std::shared_ptr<TensorBuffer> RunInitializer(const InitializerSpec& spec,
                                             DType dtype, const Shape& shape,
                                             const PartContext* part,
                                             uint64_t name_seed);

// 64-bit FNV-1a of a name; the seed used when a random initializer has none.
uint64_t NameSeed(absl::string_view full_name);

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_TENSOR_INITIALIZER_H_
