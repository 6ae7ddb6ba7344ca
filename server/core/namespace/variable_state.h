// File: variable_state.h
// Descriptions of stored variables as the rest of the core sees them:
// a variable's metadata (VariableInfo), everything a checkpoint or the log
// keeps of it (VariableState), partitioned variables, and a whole-store
// snapshot.
//
// Thread-safety: plain values.
#ifndef VARSCOPE_SERVER_CORE_NAMESPACE_VARIABLE_STATE_H_
#define VARSCOPE_SERVER_CORE_NAMESPACE_VARIABLE_STATE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "server/core/tensor/initializer.h"
#include "server/core/tensor/optimizer.h"
#include "server/core/tensor/tensor.h"
#include "server/core/tensor/types.h"

namespace varscope::core {

inline constexpr char kGlobalVariables[] = "variables";
inline constexpr char kTrainableVariables[] = "trainable_variables";
inline constexpr char kLocalVariables[] = "local_variables";

// Where a part sits inside its partitioned variable.
struct PartSlice {
  std::string full_name;
  Shape full_shape;
  Shape offset;
  int index = 0;
};

// A snapshot of a variable's (or partitioned variable's) description.
struct VariableInfo {
  std::string name;                 // full name, no ":0"
  DType dtype = DType::kInvalid;
  Shape shape;
  // The store revision of its last change (see revision_clock.h); for a
  // partitioned variable, the highest of its parts'.
  uint64_t version = 0;
  bool trainable = true;
  std::vector<std::string> collections;
  InitializerSpec initializer;
  std::optional<PartSlice> slice;
  bool partitioned = false;
  std::vector<int64_t> partitions;
  std::vector<VariableInfo> parts;  // for a partitioned variable
  int64_t num_bytes = 0;
  bool created = false;             // this call created it
};

// A stored variable with everything a checkpoint keeps.
struct VariableState {
  VariableInfo info;  // name, dtype, shape, version, trainable,
                      // collections, initializer, slice
  std::shared_ptr<const TensorBuffer> value;
  std::optional<OptimizerSpec> optimizer;
  int64_t optimizer_steps = 0;
  int replicas_to_aggregate = 0;
  int64_t sync_step = 0;
  int64_t stale_dropped = 0;
};

struct PartitionedState {
  std::string name;
  DType dtype = DType::kInvalid;
  Shape shape;
  std::vector<int64_t> partitions;
  std::vector<std::string> part_names;
  bool trainable = true;
  std::vector<std::string> collections;
  InitializerSpec initializer;
};

// The whole store at one moment: no change is half in it.
struct StoreSnapshot {
  std::vector<VariableState> variables;  // sorted by name
  std::vector<PartitionedState> partitioned;
  uint64_t revision = 0;  // the newest revision it contains
};

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_NAMESPACE_VARIABLE_STATE_H_
