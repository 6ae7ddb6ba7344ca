// File: revision_clock.h
// Store revisions: every change (a creation, a push, a restore) takes the
// next number of one store-wide counter, and every variable it changes
// gets that number as its version. So versions only grow: a variable that
// is deleted and created again, restored from a checkpoint or imported
// gets a version above every version served before (as etcd's revisions).
//
// Across restarts: with a log, revisions are handed out below a durable
// ceiling that is raised a block ahead of need (one small log record per
// `block` revisions), and recovery starts the clock at the last ceiling,
// so a restarted server never repeats a version it may have served, even
// after losing pushes (relaxed durability).
//
// Example:
//   RevisionClock clock;
//   clock.SetReserver(&log, /*block=*/1 << 24);   // with a data directory
//   RETURN_IF_ERROR(clock.MakeRoom());             // before taking locks
//   uint64_t r = clock.Next();                     // under the locks
//
// Thread-safety: all methods are thread-safe. MakeRoom may write to the
// log; it is called with no lock of levels 1-6 held (base/lock_order.h).
#ifndef VARSCOPE_SERVER_CORE_NAMESPACE_REVISION_CLOCK_H_
#define VARSCOPE_SERVER_CORE_NAMESPACE_REVISION_CLOCK_H_

#include <atomic>
#include <cstdint>
#include <limits>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace varscope::core {

class RevisionClock {
 public:
  // Makes a ceiling durable (a log record); returns once it is on disk.
  class Reserver {
   public:
    virtual ~Reserver() = default;
    virtual absl::Status ReserveRevisions(uint64_t ceiling) = 0;
  };

  RevisionClock() = default;
  RevisionClock(const RevisionClock&) = delete;
  RevisionClock& operator=(const RevisionClock&) = delete;

  // The next revision. Callers made room with MakeRoom first; the margin
  // (half a block) is far more than the changes that can be in flight.
  uint64_t Next() { return next_.fetch_add(1, std::memory_order_relaxed) + 1; }
  // The newest revision handed out (0 before the first).
  uint64_t current() const { return next_.load(std::memory_order_relaxed); }
  // Recovery: the clock continues above `floor`.
  void AdvanceTo(uint64_t floor);

  // With a reserver, revisions stay below a durable ceiling. Not owned; set
  // before serving. Without one, the clock is unbounded (memory only).
  void SetReserver(Reserver* reserver, uint64_t block) ABSL_LOCKS_EXCLUDED(reserve_mu_);
  // Raises the durable ceiling when fewer than half a block of revisions
  // are left. Cheap (two atomic loads) when there is room.
  absl::Status MakeRoom() ABSL_LOCKS_EXCLUDED(reserve_mu_);
  uint64_t ceiling() const { return ceiling_.load(std::memory_order_acquire); }

 private:
  std::atomic<uint64_t> next_{0};
  std::atomic<uint64_t> ceiling_{std::numeric_limits<uint64_t>::max()};
  std::atomic<uint64_t> half_block_{0};
  // More than half a block below the ceiling (always without a reserver).
  bool HasRoom() const;
  // Held across the reservation's log write; only callers that need the
  // new ceiling wait for it.
  absl::Mutex reserve_mu_;
  Reserver* reserver_ ABSL_GUARDED_BY(reserve_mu_) = nullptr;
};

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_NAMESPACE_REVISION_CLOCK_H_
