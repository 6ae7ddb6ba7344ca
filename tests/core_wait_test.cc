// Waits (namespace/wait.h) and the change feed's matching rules: an attempt
// that causes the very change it waits for (a waiting GetVariable under
// AUTO_REUSE) runs again after returning, never nested; exact names match
// exactly; Stop during an attempt lets the attempt decide.
#include <atomic>
#include <thread>

#include "server/core/namespace/variable_store.h"
#include "server/core/namespace/wait.h"
#include "absl/synchronization/notification.h"
#include "tests/test_util.h"

namespace varscope::core {
namespace {

TEST(Wait, AnAttemptThatCausesItsOwnChangeRunsAgainAfterwardsNotNested) {
  ChangeFeed feed;
  int attempts = 0, depth = 0, max_depth = 0;
  std::vector<Wait::End> ends;
  auto wait = Wait::Start(
      &feed, ChangeMatch::Names({"x"}),
      [&] {
        max_depth = std::max(max_depth, ++depth);
        ++attempts;
        if (attempts == 1) feed.Publish({{"x", 1, ChangeKind::kCreated}});
        --depth;
        return attempts == 2;
      },
      [&](Wait::End why) { ends.push_back(why); });
  EXPECT_EQ(attempts, 2);
  EXPECT_EQ(max_depth, 1);
  ASSERT_EQ(ends.size(), 1u);
  EXPECT_EQ(ends[0], Wait::End::kDone);
  wait->Stop(Wait::End::kTimedOut);  // too late: nothing happens
  EXPECT_EQ(ends.size(), 1u);
  EXPECT_EQ(feed.num_subscribers(), 0u);
}

// The crash of issue #10: a waiting one-shot GetVariable under AUTO_REUSE
// creates the variable in its first attempt, whose CREATED event pokes the
// same wait.
TEST(Wait, WaitingGetVariableThatCreatesEndsOnceWithTheVariable) {
  VariableStore store({});
  absl::StatusOr<VariableInfo> got = absl::UnknownError("not run");
  int ended = 0;
  ScopeContext scope;
  scope.name = "s";
  scope.reuse = Reuse::kAutoReuse;
  GetVariableRequest request;
  request.name = "w";
  request.shape = ShapeSpec::Of({2});
  auto wait = Wait::Start(
      &store.feed(), ChangeMatch::Names({"s/w", "s/w/part_0"}),
      [&] {
        got = store.GetVariable(scope, request);
        return !absl::IsNotFound(got.status());
      },
      [&](Wait::End why) {
        EXPECT_EQ(why, Wait::End::kDone);
        ++ended;
      });
  EXPECT_EQ(ended, 1);
  ASSERT_OK(got);
  EXPECT_TRUE(got->created);
  EXPECT_EQ(got->name, "s/w");
}

TEST(Wait, MatchesTheExactNameOnly) {
  ChangeFeed feed;
  std::atomic<int> attempts{0};
  bool ended = false;
  auto wait = Wait::Start(
      &feed, ChangeMatch::Names({"w"}), [&] { return ++attempts == 3; },
      [&](Wait::End) { ended = true; });
  feed.Publish({{"a/w", 1, ChangeKind::kCreated}, {"ww", 1, ChangeKind::kCreated}});
  EXPECT_EQ(attempts, 1);  // neither "a/w" nor "ww" is "w"
  feed.Publish({{"w", 1, ChangeKind::kCreated}});
  feed.Publish({{"w", 2, ChangeKind::kUpdated}});
  EXPECT_EQ(attempts, 3);
  EXPECT_TRUE(ended);
}

TEST(Wait, StopDuringAnAttemptLetsTheAttemptDecide) {
  ChangeFeed feed;
  absl::Notification in_attempt, stopped;
  std::vector<Wait::End> ends;
  std::shared_ptr<Wait> wait;
  bool first = true;
  std::thread poker;
  wait = Wait::Start(
      &feed, ChangeMatch::Names({"w"}),
      [&] {
        if (first) {  // the initial attempt, on this thread
          first = false;
          return false;
        }
        in_attempt.Notify();
        stopped.WaitForNotification();
        return true;  // succeeded (say, created the variable)
      },
      [&](Wait::End why) { ends.push_back(why); });
  poker = std::thread([&] { feed.Publish({{"w", 1, ChangeKind::kCreated}}); });
  in_attempt.WaitForNotification();
  wait->Stop(Wait::End::kTimedOut);  // the deadline fires meanwhile
  stopped.Notify();
  poker.join();
  ASSERT_EQ(ends.size(), 1u);
  EXPECT_EQ(ends[0], Wait::End::kDone);
}

TEST(ChangeFeed, PrefixAndExactSubscriptionsEachGetTheirEvents) {
  ChangeFeed feed;
  struct Count : ChangeListener {
    void OnChange(const ChangeEvent&) override { ++n; }
    std::atomic<int> n{0};
  };
  auto under = std::make_shared<Count>();
  auto exact = std::make_shared<Count>();
  const uint64_t a = feed.Subscribe(ChangeMatch::Under("m"), under);
  const uint64_t b = feed.Subscribe(ChangeMatch::Names({"m/w", "x"}), exact);
  feed.Publish({{"m/w", 1, ChangeKind::kUpdated},
                {"m2/w", 1, ChangeKind::kUpdated},
                {"x", 1, ChangeKind::kUpdated}});
  EXPECT_EQ(under->n, 1);
  EXPECT_EQ(exact->n, 2);
  feed.Unsubscribe(b);
  feed.Publish({{"m/w", 2, ChangeKind::kUpdated}});
  EXPECT_EQ(exact->n, 2);
  EXPECT_EQ(under->n, 2);
  feed.Unsubscribe(a);
  EXPECT_EQ(feed.num_subscribers(), 0u);
}

}  // namespace
}  // namespace varscope::core
