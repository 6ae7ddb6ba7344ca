// File: change_feed.h
// Publishes change events (a variable was created, updated or deleted) to
// subscribers filtered by name prefix. Watch streams and version waits are
// built on it.
//
// Example:
//   ChangeFeed feed;
//   auto sub = std::make_shared<MyListener>();  // implements ChangeListener
//   uint64_t id = feed.Subscribe("model/", sub);
//   feed.Publish({"model/w", 2, ChangeKind::kUpdated});  // sub->OnChange(...)
//   feed.Unsubscribe(id);
//
// Thread-safety: all methods are thread-safe. Listeners are called on the
// publishing (writer's) thread after the feed's lock is released, so they
// may subscribe or unsubscribe, but must be fast and must not block: they
// run on a training write path. A listener can still be called once just
// after Unsubscribe returns, so it must tolerate that (shared ownership
// keeps it alive).
#ifndef VARSCOPE_SERVER_CORE_NAMESPACE_CHANGE_FEED_H_
#define VARSCOPE_SERVER_CORE_NAMESPACE_CHANGE_FEED_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace varscope::core {

enum class ChangeKind { kCreated = 1, kUpdated = 2, kDeleted = 3 };

struct ChangeEvent {
  std::string name;      // full variable name, no ":0"
  uint64_t version = 0;  // the version after the change (0 when deleted)
  ChangeKind kind = ChangeKind::kUpdated;
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

  // Calls `listener` for every event whose name equals `prefix` or lies
  // under it as a scope ("a/b" covers "a/b" and "a/b/c", not "a/bc");
  // "" covers everything. Returns an id for Unsubscribe.
  uint64_t Subscribe(std::string prefix,
                     std::shared_ptr<ChangeListener> listener)
      ABSL_LOCKS_EXCLUDED(mu_);
  void Unsubscribe(uint64_t id) ABSL_LOCKS_EXCLUDED(mu_);
  void Publish(const std::vector<ChangeEvent>& events) ABSL_LOCKS_EXCLUDED(mu_);

  size_t num_subscribers() const ABSL_LOCKS_EXCLUDED(mu_);
  // Events published so far: a cheap "has anything changed" counter.
  uint64_t published() const { return published_.load(std::memory_order_relaxed); }

 private:
  struct Subscription {
    std::string prefix;
    std::shared_ptr<ChangeListener> listener;
  };
  std::atomic<uint64_t> published_{0};
  mutable absl::Mutex mu_;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<uint64_t, Subscription> subscriptions_ ABSL_GUARDED_BY(mu_);
};

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_NAMESPACE_CHANGE_FEED_H_
