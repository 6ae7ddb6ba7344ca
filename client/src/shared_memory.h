// File: shared_memory.h
// The client's end of same-host bulk transfer
// (proto/varscope/v1/shared_memory.proto): a pool of memfd segments
// attached to one daemon. A pull or push of a large tensor leases a
// segment for the call, the tensor's bytes go through it, and it goes back
// to the pool. Segments are this process's own memory, sealed so the
// daemon can trust their size; the daemon maps them for the token that
// attached them only.
//
// When shared memory cannot be used (another host, another network
// namespace, a daemon without it, a pool at its cap) Acquire returns
// nothing and the call goes over gRPC.
//
// Example:
//   SharedMemoryPool pool(attach);
//   if (std::optional<SegmentLease> lease = pool.Acquire(n)) {
//     std::memcpy(lease->data(), bytes, n);  // then SharedMemory.Push
//   }
//
// Thread-safety: thread-safe; a lease is one call's.
#ifndef VARSCOPE_CLIENT_SRC_SHARED_MEMORY_H_
#define VARSCOPE_CLIENT_SRC_SHARED_MEMORY_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace varscope::internal {

// What SharedMemory.Attach answers.
struct AttachTicket {
  std::string socket_name;  // abstract, without the leading NUL
  std::string ticket;
  size_t max_segment_bytes = 0;
};

class SharedMemoryPool;

// One attached segment: mapped here and in the daemon while the socket
// stays open.
class Segment {
 public:
  Segment(std::string id, uint8_t* base, size_t size, int socket, uint64_t generation)
      : id_(std::move(id)), base_(base), size_(size), socket_(socket), generation_(generation) {}
  ~Segment();
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;

  const std::string& id() const { return id_; }
  uint8_t* data() const { return base_; }
  size_t size() const { return size_; }
  uint64_t generation() const { return generation_; }

 private:
  const std::string id_;
  uint8_t* const base_;
  const size_t size_;
  const int socket_;
  const uint64_t generation_;
};

// A segment held for one call; back to the pool when destroyed.
class SegmentLease {
 public:
  SegmentLease(std::shared_ptr<SharedMemoryPool> pool, std::shared_ptr<Segment> segment)
      : pool_(std::move(pool)), segment_(std::move(segment)) {}
  SegmentLease(SegmentLease&&) = default;
  SegmentLease& operator=(SegmentLease&&) = default;
  ~SegmentLease();

  const std::string& id() const { return segment_->id(); }
  uint8_t* data() const { return segment_->data(); }
  size_t size() const { return segment_->size(); }
  // The call failed without the daemon's answer, so its handler may still
  // read or write the segment: close it instead of lending it again.
  void Discard();

 private:
  std::shared_ptr<SharedMemoryPool> pool_;
  std::shared_ptr<Segment> segment_;
};

class SharedMemoryPool : public std::enable_shared_from_this<SharedMemoryPool> {
 public:
  // Smallest segment made (smaller calls share it).
  static constexpr size_t kMinSegmentBytes = size_t{1} << 20;
  // All segments of one pool together, at most, and how many (each holds
  // a descriptor here and one in the daemon).
  static constexpr size_t kMaxPoolBytes = size_t{1} << 30;
  static constexpr int kMaxSegments = 16;
  // Free segments unused this long are closed.
  static constexpr absl::Duration kIdle = absl::Seconds(30);
  // After a failed attach, how long calls go over gRPC before trying again.
  static constexpr absl::Duration kRetryAfter = absl::Seconds(30);

  // `attach` asks the daemon for a ticket (over gRPC), waiting for a
  // reconnecting channel when told to. UNIMPLEMENTED from it turns shared
  // memory off for the pool's life.
  using AttachFn = std::function<absl::StatusOr<AttachTicket>(bool wait_for_ready)>;
  // `idle`: free segments unused this long are closed (tests shorten it).
  static std::shared_ptr<SharedMemoryPool> Create(AttachFn attach, absl::Duration idle = kIdle);

  // A segment of at least `bytes` for one call, or nothing: use gRPC.
  // `wait_for_ready`: the call waits for the daemon, so may its attach.
  std::optional<SegmentLease> Acquire(size_t bytes, bool wait_for_ready = false)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The daemon no longer knows the pool's segments (it restarted): drop
  // them; the next call attaches afresh.
  void Forget() ABSL_LOCKS_EXCLUDED(mu_);
  // The daemon does not serve shared memory (any more): drop the segments
  // and never attach again.
  void Disable() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  friend class SegmentLease;
  SharedMemoryPool(AttachFn attach, absl::Duration idle)
      : attach_(std::move(attach)), idle_(idle) {}
  // Back to the free list, or closed when `keep` is false or it is stale.
  void Release(std::shared_ptr<Segment> segment, bool keep) ABSL_LOCKS_EXCLUDED(mu_);
  // Makes, seals, maps and attaches one segment of `size` bytes (no lock
  // held). OUT_OF_RANGE: `needed` is over the daemon's segment limit.
  absl::StatusOr<std::shared_ptr<Segment>> Attach(size_t size, size_t needed,
                                                  uint64_t generation, bool wait_for_ready);

  const AttachFn attach_;
  const absl::Duration idle_;
  absl::Mutex mu_;
  struct Free {
    std::shared_ptr<Segment> segment;
    absl::Time since;
  };
  std::vector<Free> free_ ABSL_GUARDED_BY(mu_);
  size_t total_bytes_ ABSL_GUARDED_BY(mu_) = 0;  // leased, free and being made
  int total_segments_ ABSL_GUARDED_BY(mu_) = 0;  // the same, counted
  size_t max_segment_bytes_ ABSL_GUARDED_BY(mu_) = SIZE_MAX;
  bool off_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time retry_after_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  // Bumped by Forget: leases of older generations are not pooled again.
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace varscope::internal

#endif  // VARSCOPE_CLIENT_SRC_SHARED_MEMORY_H_
