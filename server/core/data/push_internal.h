// File: push_internal.h
// Private to data/: the state of a push (or optimizer change) as it moves
// through its phases, and the arithmetic of one update.
#ifndef VARSCOPE_SERVER_CORE_DATA_PUSH_INTERNAL_H_
#define VARSCOPE_SERVER_CORE_DATA_PUSH_INTERNAL_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "server/core/data/data_plane.h"

namespace varscope::core {

// One slot variable of a gradient's optimizer: an existing variable (its
// cell writer-locked with the push) or a reserved one (private until the
// push applies).
struct SlotRef {
  std::string name;
  double initial_value = 0.0;
  std::shared_ptr<VariableCell> cell;  // null: missing, reserved at decide
  int pending = -1;                    // index into the target's `pending`
};

// One update and the variables it touches.
struct PushTarget {
  Update update;
  VariableHandle var;
  int64_t num_rows = 0;      // axis-0 size (1 for a scalar)
  int64_t row_elements = 0;  // elements per axis-0 row
  int64_t begin = 0;         // dense region, in elements
  int64_t count = 0;
  int64_t expected_bytes = 0;  // of update.data
  std::optional<ResolvedOptimizer> call_optimizer;

  // Planned (no locks), checked again once locked.
  ResolvedOptimizer optimizer;
  std::vector<SlotRef> slots;

  // Decided (writer locks held).
  enum class Action { kWrite, kStale, kAccumulate, kAggregateAndApply };
  Action action = Action::kWrite;
  uint64_t version_before = 0;
  std::vector<uint8_t> mean;         // kAggregateAndApply: the gradient
  std::vector<PendingSlot> pending;  // reserved slots

  // Prepared: copy-on-write targets have their new values here.
  bool in_place = false;
  std::shared_ptr<const TensorBuffer> new_value;
  std::vector<std::shared_ptr<TensorBuffer>> new_slots;  // parallel to slots

  UpdateResult result;

  bool ChangesValue() const {
    return action == Action::kWrite || action == Action::kAggregateAndApply;
  }
  bool WholeAssign() const {
    return update.op == UpdateOp::kAssign && !update.rows && !update.indices;
  }
  // Bytes of the value (and of each slot) the update changes.
  int64_t TouchedBytes() const;
};

struct PushPlan {
  std::vector<PushTarget> targets;
  // Every existing cell the push writes, by name: targets and their slots.
  std::map<std::string, VariableCell*> cells;
  uint64_t revision = 0;
};

// dst[i] += src[i] (or -=) for n elements of `dtype`. Integers wrap as in
// TensorFlow's kernels; 16-bit floats compute in float32.
void AddInto(DType dtype, uint8_t* dst, const uint8_t* src, int64_t n,
             bool subtract);
// Applies `t` (an action that changes the value) to `var` and `slots`
// (one pointer per t.slots), whole buffers of the variable's size. `step`
// counts optimizer updates including this one.
void ComputeUpdate(const PushTarget& t, uint8_t* var,
                   const std::vector<uint8_t*>& slots, int64_t step);

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_DATA_PUSH_INTERNAL_H_
