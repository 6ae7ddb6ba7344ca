#include "server/core/namespace/change_feed.h"

#include <utility>

#include "server/core/namespace/names.h"

namespace varscope::core {

uint64_t ChangeFeed::Subscribe(std::string prefix,
                               std::shared_ptr<ChangeListener> listener) {
  absl::MutexLock lock(&mu_);
  const uint64_t id = next_id_++;
  subscriptions_[id] = Subscription{std::move(prefix), std::move(listener)};
  return id;
}

void ChangeFeed::Unsubscribe(uint64_t id) {
  absl::MutexLock lock(&mu_);
  subscriptions_.erase(id);
}

void ChangeFeed::Publish(const std::vector<ChangeEvent>& events) {
  if (events.empty()) return;
  published_.fetch_add(events.size(), std::memory_order_relaxed);
  // Collect the calls under the lock, make them after releasing it, so a
  // listener may unsubscribe (or finish an RPC that unsubscribes) inline.
  std::vector<std::pair<std::shared_ptr<ChangeListener>, const ChangeEvent*>>
      calls;
  {
    absl::ReaderMutexLock lock(&mu_);
    if (subscriptions_.empty()) return;
    for (const ChangeEvent& event : events) {
      for (const auto& [id, sub] : subscriptions_) {
        if (IsUnderPrefix(event.name, sub.prefix)) {
          calls.emplace_back(sub.listener, &event);
        }
      }
    }
  }
  for (auto& [listener, event] : calls) listener->OnChange(*event);
}

size_t ChangeFeed::num_subscribers() const {
  absl::ReaderMutexLock lock(&mu_);
  return subscriptions_.size();
}

}  // namespace varscope::core
