#include "server/core/namespace/partitioner.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace varscope::core {
namespace {

using Kind = PartitionerSpec::Kind;

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

absl::string_view PartitionerName(const PartitionerSpec& spec) {
  switch (spec.kind) {
    case Kind::kFixedSize:
      return "fixed_size_partitioner";
    case Kind::kMinMax:
      return "min_max_variable_partitioner";
    case Kind::kVariableAxisSize:
      return "variable_axis_size_partitioner";
    case Kind::kExplicit:
      return "explicit partitions";
  }
  return "partitioner";
}

absl::Status ValidatePartitionerArgs(const PartitionerSpec& spec) {
  const absl::string_view name = PartitionerName(spec);
  if (spec.kind != Kind::kExplicit && spec.axis < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": axis must be >= 0, got ", spec.axis));
  }
  switch (spec.kind) {
    case Kind::kFixedSize:
      if (spec.num_shards < 1) {
        return absl::InvalidArgumentError(absl::StrCat(
            name, ": num_shards must be >= 1, got ", spec.num_shards));
      }
      break;
    case Kind::kMinMax:
      if (spec.max_partitions < 1 || spec.min_slice_size < 1 ||
          spec.bytes_per_string_element < 1) {
        return absl::InvalidArgumentError(absl::StrCat(
            name,
            ": max_partitions, min_slice_size and bytes_per_string_element "
            "must be positive"));
      }
      break;
    case Kind::kVariableAxisSize:
      if (spec.max_shard_bytes < 1 || spec.bytes_per_string_element < 1) {
        return absl::InvalidArgumentError(absl::StrCat(
            name,
            ": both max_shard_bytes and bytes_per_string_element must be "
            "positive"));
      }
      if (spec.max_shards.has_value() && *spec.max_shards < 1) {
        return absl::InvalidArgumentError(
            absl::StrCat(name, ": max_shards must be >= 1"));
      }
      break;
    case Kind::kExplicit:
      if (spec.partitions.empty()) {
        return absl::InvalidArgumentError(
            "explicit partitions: the partition list is empty");
      }
      break;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int64_t>> ComputePartitions(
    const PartitionerSpec& spec, DType dtype, const Shape& shape,
    absl::string_view variable_name) {
  if (absl::Status s = ValidatePartitionerArgs(spec); !s.ok()) return s;
  if (shape.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a partitioned variable must have rank at least 1; ", variable_name,
        " has shape []"));
  }
  const size_t rank = shape.size();
  if (spec.kind != Kind::kExplicit && static_cast<size_t>(spec.axis) >= rank) {
    return absl::InvalidArgumentError(absl::StrCat(
        PartitionerName(spec), ": axis ", spec.axis, " is out of range for ",
        variable_name, " of shape ", ShapeToString(shape)));
  }
  std::vector<int64_t> partitions(rank, 1);
  const int64_t dim = spec.kind == Kind::kExplicit ? 0 : shape[spec.axis];
  const int64_t element_bytes = DTypeSize(dtype);
  switch (spec.kind) {
    case Kind::kFixedSize:
      partitions[spec.axis] = std::min(spec.num_shards, dim);
      break;
    case Kind::kMinMax: {
      int64_t total = element_bytes;
      for (int64_t d : shape) total *= d;
      const int64_t wanted = CeilDiv(total, spec.min_slice_size);
      partitions[spec.axis] =
          std::max<int64_t>(1, std::min({dim, spec.max_partitions, wanted}));
      break;
    }
    case Kind::kVariableAxisSize: {
      int64_t slice_bytes = element_bytes;
      for (size_t i = 0; i < rank; ++i) {
        if (i != static_cast<size_t>(spec.axis)) slice_bytes *= shape[i];
      }
      const int64_t slices_per_shard =
          std::max<int64_t>(1, spec.max_shard_bytes / std::max<int64_t>(1, slice_bytes));
      int64_t shards = CeilDiv(dim, slices_per_shard);
      if (spec.max_shards.has_value()) shards = std::min(shards, *spec.max_shards);
      partitions[spec.axis] = std::max<int64_t>(1, shards);
      break;
    }
    case Kind::kExplicit:
      partitions = spec.partitions;
      break;
  }
  // TensorFlow's _call_partitioner checks, then the empty-part check that TF
  // only hits after creating earlier parts: here nothing is created yet.
  if (partitions.size() != rank) {
    return absl::InvalidArgumentError(absl::StrCat(
        "partitioner returned ", partitions.size(),
        " entries, which does not match the rank ", rank, " of ",
        variable_name, " ", ShapeToString(shape)));
  }
  int sliced_axes = 0;
  for (size_t i = 0; i < rank; ++i) {
    if (partitions[i] < 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "partitioner returned zero partitions for some axes: [",
          absl::StrJoin(partitions, ", "), "] for ", variable_name));
    }
    if (partitions[i] > 1) {
      ++sliced_axes;
      if (partitions[i] > shape[i]) {
        return absl::InvalidArgumentError(absl::StrCat(
            "partitioner asks for ", partitions[i], " parts along axis ", i,
            " of ", variable_name, " ", ShapeToString(shape),
            ", which has only ", shape[i], ": some parts would be empty"));
      }
    }
  }
  if (sliced_axes > 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "can only slice a variable along one dimension: partitions [",
        absl::StrJoin(partitions, ", "), "] for ", variable_name));
  }
  return partitions;
}

std::vector<PartLayout> SplitShape(const Shape& shape,
                                   const std::vector<int64_t>& partitions) {
  size_t axis = 0;
  while (axis < partitions.size() && partitions[axis] == 1) ++axis;
  if (axis == partitions.size()) {
    return {PartLayout{shape, Shape(shape.size(), 0)}};  // one part_0
  }
  const int64_t n = partitions[axis];
  const int64_t base = shape[axis] / n;
  const int64_t extra = shape[axis] % n;
  std::vector<PartLayout> parts;
  int64_t offset = 0;
  for (int64_t i = 0; i < n; ++i) {
    PartLayout part{shape, Shape(shape.size(), 0)};
    part.shape[axis] = base + (i < extra ? 1 : 0);
    part.offset[axis] = offset;
    offset += part.shape[axis];
    parts.push_back(std::move(part));
  }
  return parts;
}

}  // namespace varscope::core
