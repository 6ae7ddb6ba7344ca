// File: wait.h
// A wait: a change-feed subscription with its own matching rule, and an
// attempt that decides whether the wait is over. WaitVersion and
// GetVariable with wait_ms are waits; the service adds only the deadline
// alarm and the RPC's Finish.
//
// The attempt runs once at Start, then after every matching change, never
// two at once and never nested: when the attempt itself causes a matching
// change (a waiting GetVariable under AUTO_REUSE creates the variable it
// waits for), the notification only marks the wait for one more attempt,
// which runs after the current one returns on the same thread. So an
// attempt may call anything in the store.
//
// Example:
//   auto wait = Wait::Start(&store.feed(), ChangeMatch::Names({"model/w"}),
//       [&] { return store.Describe("model/w").ok(); },
//       [](Wait::End why) { /* reply, exactly once */ });
//   ... later, from a timer: wait->Stop(Wait::End::kTimedOut);
//
// Thread-safety: all methods are thread-safe. `on_end` runs exactly once,
// with no lock held, on the thread that ended the wait (an attempt's, a
// publisher's or Stop's caller). When Stop races with an attempt in
// progress, the attempt's outcome wins: a wait whose attempt succeeded (and
// perhaps created a variable) always ends kDone.
#ifndef VARSCOPE_SERVER_CORE_NAMESPACE_WAIT_H_
#define VARSCOPE_SERVER_CORE_NAMESPACE_WAIT_H_

#include <functional>
#include <memory>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "server/core/namespace/change_feed.h"

namespace varscope::core {

class Wait : public std::enable_shared_from_this<Wait> {
 public:
  enum class End { kDone, kTimedOut, kCancelled };
  // True when the wait is over; the attempt keeps its own result.
  using Attempt = std::function<bool()>;
  using OnEnd = std::function<void(End)>;

  // Subscribes (before the first attempt, so no change in between is
  // missed), then runs the first attempt.
  static std::shared_ptr<Wait> Start(ChangeFeed* feed, ChangeMatch match,
                                     Attempt attempt, OnEnd on_end);
  Wait(const Wait&) = delete;
  Wait& operator=(const Wait&) = delete;
  ~Wait();

  // Ends the wait with `why` unless it has ended (or an attempt in progress
  // ends it first).
  void Stop(End why) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  class Listener;
  Wait(ChangeFeed* feed, Attempt attempt, OnEnd on_end);
  // Runs attempts until one succeeds or none is pending; see the top.
  void Poke() ABSL_LOCKS_EXCLUDED(mu_);
  void Finish(End why) ABSL_LOCKS_EXCLUDED(mu_);

  ChangeFeed* const feed_;  // Not owned.
  const Attempt attempt_;   // called without mu_, one call at a time
  const OnEnd on_end_;
  uint64_t subscription_ = 0;  // set once by Start

  absl::Mutex mu_;
  bool running_ ABSL_GUARDED_BY(mu_) = false;  // an attempt is in progress
  bool again_ ABSL_GUARDED_BY(mu_) = false;    // a change came meanwhile
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<End> stop_ ABSL_GUARDED_BY(mu_);  // Stop during an attempt
};

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_NAMESPACE_WAIT_H_
