// Linked into every test binary: Abseil's deadlock detector in abort mode,
// whatever the library's build default, so a lock-order cycle anywhere in a
// test is a crash ("Potential Mutex deadlock"), never a silent hang. The
// death test proves it is on in this binary.
#include <gtest/gtest.h>

#include "absl/synchronization/mutex.h"

namespace {

const bool kDeadlockDetectionOn = [] {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kAbort);
  return true;
}();

void LockInBothOrders() {
  absl::Mutex a;
  absl::Mutex b;
  {
    absl::MutexLock la(&a);
    absl::MutexLock lb(&b);
  }
  absl::MutexLock lb(&b);
  absl::MutexLock la(&a);  // b then a: a cycle with a then b
}

TEST(DeadlockDetection, AbortsOnALockOrderCycle) {
  ASSERT_TRUE(kDeadlockDetectionOn);
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(LockInBothOrders(), "Potential Mutex deadlock");
}

}  // namespace
