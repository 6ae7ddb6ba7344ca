// Proves the TSan build sees absl::Mutex (tsan_absl_shim.cc): two threads
// update a counter under a Mutex and wait with Await, which must be clean;
// with any argument they also update an unguarded counter, which TSan must
// report (the test expecting that is marked WILL_FAIL).
#include <thread>

#include "absl/synchronization/mutex.h"

namespace {
absl::Mutex mu;
int guarded ABSL_GUARDED_BY(mu) = 0;
int unguarded = 0;
}  // namespace

int main(int argc, char**) {
  auto work = [argc] {
    for (int i = 0; i < 1000; ++i) {
      {
        absl::MutexLock lock(&mu);
        ++guarded;
      }
      if (argc > 1) ++unguarded;
    }
  };
  std::thread a(work);
  std::thread b(work);
  a.join();
  b.join();
  absl::MutexLock lock(&mu);
  auto done = []() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return guarded == 2000; };
  mu.Await(absl::Condition(&done));
  return 0;
}
