// File: ordered_locks.h
// Locks the writer (level 4) or value (level 6) mutexes of a set of
// variables in ascending name order, and unlocks them in reverse: how every
// multi-variable change takes them (base/lock_order.h). The set is known
// only at run time, which clang's analysis cannot follow; callers assert
// each lock with AssertHeld() where they use what it guards.
//
// Example:
//   std::map<std::string, VariableCell*> cells = ...;  // sorted by name
//   OrderedLocks writers(cells, &VariableCell::writer_mu);
//   cells.at("w")->writer_mu()->AssertHeld();
//
// Thread-safety: a lock set belongs to the thread that made it.
#ifndef VARSCOPE_SERVER_CORE_DATA_ORDERED_LOCKS_H_
#define VARSCOPE_SERVER_CORE_DATA_ORDERED_LOCKS_H_

#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "server/core/tensor/variable_cell.h"

namespace varscope::core {

class OrderedLocks {
 public:
  using Which = absl::Mutex* (VariableCell::*)() const;
  // The one place where a dynamic set of locks is taken, hence beyond the
  // analysis; the order is the map's, i.e. by name.
  OrderedLocks(const std::map<std::string, VariableCell*>& cells, Which which)
      ABSL_NO_THREAD_SAFETY_ANALYSIS {
    held_.reserve(cells.size());
    for (const auto& [name, cell] : cells) {
      absl::Mutex* mu = (cell->*which)();
      mu->Lock();
      held_.push_back(mu);
    }
  }
  ~OrderedLocks() { Release(); }
  // Unlocks early (idempotent).
  void Release() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    for (auto it = held_.rbegin(); it != held_.rend(); ++it) (*it)->Unlock();
    held_.clear();
  }
  OrderedLocks(const OrderedLocks&) = delete;
  OrderedLocks& operator=(const OrderedLocks&) = delete;

 private:
  std::vector<absl::Mutex*> held_;
};

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_DATA_ORDERED_LOCKS_H_
