// File: partitioner.h
// TensorFlow's variable partitioners (TF_SEMANTICS.md §7): the three
// factories, an explicit partition list, validation of a partition list, and
// the split rule (the first D mod N parts get one extra row).
//
// Thread-safety: pure functions.
#ifndef VARSCOPE_SERVER_CORE_NAMESPACE_PARTITIONER_H_
#define VARSCOPE_SERVER_CORE_NAMESPACE_PARTITIONER_H_

#include <cstdint>
#include <optional>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/statusor.h"
#include "server/core/tensor/types.h"

namespace varscope::core {

struct PartitionerSpec {
  enum class Kind { kFixedSize, kMinMax, kVariableAxisSize, kExplicit };
  Kind kind = Kind::kFixedSize;
  int axis = 0;
  // kFixedSize.
  int64_t num_shards = 1;
  // kMinMax.
  int64_t max_partitions = 1;
  int64_t min_slice_size = 256 << 10;
  // kVariableAxisSize.
  int64_t max_shard_bytes = 0;
  std::optional<int64_t> max_shards;
  // kMinMax and kVariableAxisSize (strings are not supported, kept for
  // fidelity of the factory arguments).
  int64_t bytes_per_string_element = 16;
  // kExplicit.
  std::vector<int64_t> partitions;
};

absl::string_view PartitionerName(const PartitionerSpec& spec);

// Checks the factory arguments themselves (num_shards >= 1, positive byte
// counts, max_shards >= 1); independent of any shape.
absl::Status ValidatePartitionerArgs(const PartitionerSpec& spec);

// Runs the partitioner on a fully defined shape and validates the result as
// TensorFlow's _call_partitioner does: rank >= 1, one entry per dimension,
// every entry >= 1, at most one entry > 1, and no empty part (N <= D).
absl::StatusOr<std::vector<int64_t>> ComputePartitions(
    const PartitionerSpec& spec, DType dtype, const Shape& shape,
    absl::string_view variable_name);

// One part of a partitioned variable.
struct PartLayout {
  Shape shape;
  Shape offset;
};

// Splits `shape` by a validated partition list.
std::vector<PartLayout> SplitShape(const Shape& shape,
                                   const std::vector<int64_t>& partitions);

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_NAMESPACE_PARTITIONER_H_
