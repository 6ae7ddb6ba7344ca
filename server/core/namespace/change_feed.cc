#include "server/core/namespace/change_feed.h"

#include <algorithm>
#include <utility>

#include "server/core/namespace/names.h"

namespace varscope::core {

uint64_t ChangeFeed::Subscribe(ChangeMatch match,
                               std::shared_ptr<ChangeListener> listener) {
  absl::MutexLock lock(&mu_);
  const uint64_t id = next_id_++;
  if (match.by_prefix) {
    by_prefix_.push_back(id);
  } else {
    for (const std::string& name : match.names) by_name_[name].push_back(id);
  }
  subscriptions_[id] = Subscription{std::move(match), std::move(listener)};
  return id;
}

void ChangeFeed::Unsubscribe(uint64_t id) {
  absl::MutexLock lock(&mu_);
  auto it = subscriptions_.find(id);
  if (it == subscriptions_.end()) return;
  auto drop = [id](std::vector<uint64_t>& ids) {
    ids.erase(std::remove(ids.begin(), ids.end(), id), ids.end());
  };
  if (it->second.match.by_prefix) {
    drop(by_prefix_);
  } else {
    for (const std::string& name : it->second.match.names) {
      auto named = by_name_.find(name);
      if (named == by_name_.end()) continue;
      drop(named->second);
      if (named->second.empty()) by_name_.erase(named);
    }
  }
  subscriptions_.erase(it);
}

void ChangeFeed::Enqueue(std::vector<ChangeEvent> events) {
  if (events.empty()) return;
  published_.fetch_add(events.size(), std::memory_order_relaxed);
  absl::MutexLock lock(&mu_);
  if (subscriptions_.empty()) return;  // a later subscriber starts after
  if (queue_.empty()) {
    queue_ = std::move(events);
  } else {
    for (ChangeEvent& e : events) queue_.push_back(std::move(e));
  }
}

void ChangeFeed::Deliver() {
  std::vector<ChangeEvent> batch;
  std::vector<std::pair<std::shared_ptr<ChangeListener>, const ChangeEvent*>>
      calls;
  {
    absl::MutexLock lock(&mu_);
    if (delivering_ || queue_.empty()) return;
    delivering_ = true;
  }
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      if (queue_.empty()) {
        delivering_ = false;
        return;
      }
      batch.swap(queue_);
      queue_.clear();
      calls.clear();
      // The matching is done under the lock, the calls after releasing it,
      // so a listener may unsubscribe (or finish an RPC that does) inline.
      for (const ChangeEvent& event : batch) {
        if (auto named = by_name_.find(event.name); named != by_name_.end()) {
          for (uint64_t id : named->second) {
            calls.emplace_back(subscriptions_.at(id).listener, &event);
          }
        }
        for (uint64_t id : by_prefix_) {
          const Subscription& sub = subscriptions_.at(id);
          if (IsUnderPrefix(event.name, sub.match.prefix)) {
            calls.emplace_back(sub.listener, &event);
          }
        }
      }
    }
    for (auto& [listener, event] : calls) listener->OnChange(*event);
  }
}

void ChangeFeed::Publish(std::vector<ChangeEvent> events) {
  Enqueue(std::move(events));
  Deliver();
}

size_t ChangeFeed::num_subscribers() const {
  absl::ReaderMutexLock lock(&mu_);
  return subscriptions_.size();
}

}  // namespace varscope::core
