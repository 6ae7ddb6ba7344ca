// File: change_feed.h
// Publishes change events (a variable was created, updated or deleted) to
// subscribers, each with its own matching rule: exact full names (looked
// up in a hash map, so a thousand waiting calls cost nothing per push) or
// a scope prefix. Watch streams and waits (wait.h) are built on it.
//
// Example:
//   ChangeFeed feed;
//   auto sub = std::make_shared<MyListener>();  // implements ChangeListener
//   uint64_t id = feed.Subscribe(ChangeMatch::Under("model"), sub);
//   feed.Publish({{"model/w", 2, ChangeKind::kUpdated}});  // sub->OnChange
//   feed.Unsubscribe(id);
//
// Order: writers Enqueue their events while still holding the locks of the
// variables they changed (so the queue holds each variable's events in
// commit order), and Deliver after releasing every lock. Delivery drains
// the queue first-in first-out, one thread at a time: every subscriber
// sees each variable's events in version order. A thread whose events are
// being drained by another returns at once.
//
// Thread-safety: all methods are thread-safe; the feed's lock is a leaf
// (level 7 of base/lock_order.h). Listeners are called with no lock held
// (neither the feed's nor any core lock), so a listener may subscribe,
// unsubscribe or call back into the store. Listeners run on a write path
// and must be quick. A listener can still be called once just after
// Unsubscribe returns (shared ownership keeps it alive).
#ifndef VARSCOPE_SERVER_CORE_NAMESPACE_CHANGE_FEED_H_
#define VARSCOPE_SERVER_CORE_NAMESPACE_CHANGE_FEED_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace varscope::core {

enum class ChangeKind { kCreated = 1, kUpdated = 2, kDeleted = 3 };

struct ChangeEvent {
  std::string name;      // full variable name, no ":0"
  uint64_t version = 0;  // the version after the change (0 when deleted)
  ChangeKind kind = ChangeKind::kUpdated;
};

// Which events a subscriber gets.
struct ChangeMatch {
  // Events for exactly these full names.
  static ChangeMatch Names(std::vector<std::string> names) {
    ChangeMatch m;
    m.names = std::move(names);
    return m;
  }
  // Events for `prefix` or anything under it as a scope ("a/b" covers "a/b"
  // and "a/b/c", not "a/bc"); "" covers everything.
  static ChangeMatch Under(std::string prefix) {
    ChangeMatch m;
    m.prefix = std::move(prefix);
    m.by_prefix = true;
    return m;
  }
  std::vector<std::string> names;
  std::string prefix;
  bool by_prefix = false;
};

class ChangeListener {
 public:
  virtual ~ChangeListener() = default;
  virtual void OnChange(const ChangeEvent& event) = 0;
};

class ChangeFeed {
 public:
  ChangeFeed() = default;
  ChangeFeed(const ChangeFeed&) = delete;
  ChangeFeed& operator=(const ChangeFeed&) = delete;

  // Returns an id for Unsubscribe.
  uint64_t Subscribe(ChangeMatch match, std::shared_ptr<ChangeListener> listener)
      ABSL_LOCKS_EXCLUDED(mu_);
  void Unsubscribe(uint64_t id) ABSL_LOCKS_EXCLUDED(mu_);
  // Queues events; may be called under core locks.
  void Enqueue(std::vector<ChangeEvent> events) ABSL_LOCKS_EXCLUDED(mu_);
  // Delivers what is queued, unless another thread is doing so. Call with
  // no core lock held.
  void Deliver() ABSL_LOCKS_EXCLUDED(mu_);
  // Enqueue then Deliver.
  void Publish(std::vector<ChangeEvent> events) ABSL_LOCKS_EXCLUDED(mu_);

  size_t num_subscribers() const ABSL_LOCKS_EXCLUDED(mu_);
  // Events published so far: a cheap "has anything changed" counter.
  uint64_t published() const { return published_.load(std::memory_order_relaxed); }

 private:
  struct Subscription {
    ChangeMatch match;
    std::shared_ptr<ChangeListener> listener;
  };
  std::atomic<uint64_t> published_{0};
  mutable absl::Mutex mu_;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<uint64_t, Subscription> subscriptions_ ABSL_GUARDED_BY(mu_);
  // Exact-name subscriptions by name, and the prefix ones.
  absl::flat_hash_map<std::string, std::vector<uint64_t>> by_name_
      ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> by_prefix_ ABSL_GUARDED_BY(mu_);
  std::vector<ChangeEvent> queue_ ABSL_GUARDED_BY(mu_);
  bool delivering_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_NAMESPACE_CHANGE_FEED_H_
