// File: cut_gate.h
// Holds a shard's changes while the cluster takes one consistent cut
// (cluster checkpoints, cluster restores).
//
// Every push and SetOptimizer a client sends to this shard's front passes
// the gate (calls a peer sends on a client's behalf do not: the shard that
// took the client's call holds its ticket). A cut pauses every shard's gate
// and waits until each has drained the changes already in flight: from then
// on no change is half applied anywhere (a push spanning shards is done on
// all of them), and no push or SetOptimizer starts anywhere until every
// shard has taken its snapshot and all are resumed. So the cut holds whole
// pushes across shards, and a push made after another never appears in the
// cut without it. Streamed pushes (one variable each) are not drained: one
// that started before the pause is in the cut or not, whole; one that would
// start during it is refused (UNAVAILABLE, retried by the client). Creates
// and deletes are not held: a variable created around a cut may be in it
// while one created just before it on another shard is not (both carry
// their initializers and are created again on first use).
//
// A paused gate keeps the calls that arrive and runs them when it reopens
// (re-sent through this shard's front, so a kept push may run after one
// that arrived just after the reopening); a pause ends by itself at its
// deadline if the coordinator never resumes it (a coordinator that died
// must not stop the cluster), and the cut then fails.
//
// Thread-safety: thread-safe. Callbacks run without the gate's lock.
#ifndef VARSCOPE_SERVER_CLUSTER_CUT_GATE_H_
#define VARSCOPE_SERVER_CLUSTER_CUT_GATE_H_

#include <grpcpp/alarm.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace varscope::cluster {

class CutGate {
 public:
  // A change in flight; the gate counts it until the ticket is dropped.
  class Ticket {
   public:
    explicit Ticket(CutGate* gate) : gate_(gate) {}
    Ticket(Ticket&& other) noexcept : gate_(std::exchange(other.gate_, nullptr)) {}
    Ticket& operator=(Ticket&&) = delete;
    ~Ticket() {
      if (gate_ != nullptr) gate_->Leave();
    }

   private:
    CutGate* gate_;
  };

  CutGate() = default;
  CutGate(const CutGate&) = delete;
  CutGate& operator=(const CutGate&) = delete;

  // Open: a ticket. Paused: nullopt.
  std::optional<Ticket> TryEnter() ABSL_LOCKS_EXCLUDED(mu_);
  // Paused: keeps `later` to run once the gate reopens (on the thread that
  // reopens it) and returns true. Open: false (run it yourself).
  bool KeepUntilOpen(std::function<void()> later) ABSL_LOCKS_EXCLUDED(mu_);

  // Pauses for cut `cut_id` until Resume(cut_id) or `until`. `drained`
  // runs once no change is in flight (at once if none is). Pausing again
  // for the same cut (a retry) keeps the first deadline and reports
  // drained again; FAILED_PRECONDITION while another cut holds the gate.
  absl::Status Pause(uint64_t cut_id, absl::Time until, std::function<void()> drained)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Reopens if paused for `cut_id` and runs the kept calls; true if it was.
  bool Resume(uint64_t cut_id) ABSL_LOCKS_EXCLUDED(mu_);
  // Reopens whatever cut holds the gate (shutdown).
  void ReopenAll() ABSL_LOCKS_EXCLUDED(mu_);
  // Whether the gate is paused for `cut_id` (its deadline not passed).
  bool PausedFor(uint64_t cut_id) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Leave() ABSL_LOCKS_EXCLUDED(mu_);
  bool Reopen(uint64_t cut_id, bool from_alarm) ABSL_LOCKS_EXCLUDED(mu_);

  mutable absl::Mutex mu_;
  uint64_t cut_ ABSL_GUARDED_BY(mu_) = 0;  // 0: open
  int64_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::function<void()>> drained_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<void()>> kept_ ABSL_GUARDED_BY(mu_);
  // Ends the pause at its deadline; replaced (so cancelled) by each pause.
  std::unique_ptr<grpc::Alarm> expiry_ ABSL_GUARDED_BY(mu_);
};

}  // namespace varscope::cluster

#endif  // VARSCOPE_SERVER_CLUSTER_CUT_GATE_H_
