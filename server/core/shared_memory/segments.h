// File: segments.h
// Shared-memory segments that clients on the same host attach for bulk
// Pull and Push (proto/varscope/v1/shared_memory.proto). A client gets a
// one-time ticket over its authenticated gRPC connection, then hands the
// daemon a sealed memfd with that ticket (attach_socket.h); the segment
// belongs to the ticket's owner and is named by a 128-bit random id. Only
// that owner's calls may use it, so one client never reaches another's
// memory.
//
// Why sealed memfds only: the client keeps its own descriptor, and a file
// it could shrink would turn the daemon's next access into SIGBUS.
// F_SEAL_SHRINK rules that out (and only memfds carry seals).
//
// Example:
//   absl::StatusOr<std::string> ticket = segments.IssueTicket("trainer");
//   absl::StatusOr<std::string> id = segments.Attach(*ticket, memfd);
//   auto segment = segments.Find(*id, "trainer");
//   absl::StatusOr<absl::Span<uint8_t>> bytes = (*segment)->Region(0, n);
//
// Thread-safety: SharedSegments is thread-safe. A SharedSegment stays
// mapped while anyone holds it, also after Detach.
#ifndef VARSCOPE_SERVER_CORE_SHARED_MEMORY_SEGMENTS_H_
#define VARSCOPE_SERVER_CORE_SHARED_MEMORY_SEGMENTS_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "server/core/base/clock.h"

namespace varscope::core {

struct SharedMemoryLimits {
  size_t max_segment_bytes = size_t{1} << 30;
  // Address space mapped for all segments together.
  size_t max_total_bytes = size_t{64} << 30;
  int max_segments = 4096;
  // Tickets not yet used. When more are issued, the owner holding the
  // most gives up its oldest.
  int max_tickets = 4096;
  absl::Duration ticket_lifetime = absl::Seconds(30);
};

// One attached segment, mapped read-write; unmapped when the last
// reference goes.
class SharedSegment {
 public:
  SharedSegment(std::string owner, uint8_t* base, size_t size)
      : owner_(std::move(owner)), base_(base), size_(size) {}
  ~SharedSegment();
  SharedSegment(const SharedSegment&) = delete;
  SharedSegment& operator=(const SharedSegment&) = delete;

  const std::string& owner() const { return owner_; }
  size_t size() const { return size_; }
  // Bytes [offset, offset + length), or INVALID_ARGUMENT when they are not
  // all inside the segment. The client may change them at any time: read
  // them once.
  absl::StatusOr<absl::Span<uint8_t>> Region(uint64_t offset, uint64_t length) const;
  // See SharedSegments::ReleaseResidentPages.
  void ReleaseResidentPages() const;

 private:
  const std::string owner_;
  uint8_t* const base_;
  const size_t size_;
};

class SharedSegments {
 public:
  static constexpr size_t kIdBytes = 16;

  // `clock` (not owned) must outlive this; null = wall-clock time.
  explicit SharedSegments(SharedMemoryLimits limits = {}, const Clock* clock = nullptr);

  // A ticket that attaches one segment for `owner` within the lifetime.
  std::string IssueTicket(const std::string& owner) ABSL_LOCKS_EXCLUDED(mu_);
  // Maps the memfd `fd` (not taken: the mapping holds its own reference)
  // for the ticket's owner and returns the segment's id. Uses up the
  // ticket even when it fails. PERMISSION_DENIED: unknown or expired
  // ticket. INVALID_ARGUMENT: not a memfd sealed against shrinking and
  // growing, or empty. RESOURCE_EXHAUSTED: over a limit.
  absl::StatusOr<std::string> Attach(absl::string_view ticket, int fd) ABSL_LOCKS_EXCLUDED(mu_);
  // Forgets the segment; calls holding it finish first.
  void Detach(absl::string_view id) ABSL_LOCKS_EXCLUDED(mu_);
  // The segment if `owner` attached it. NOT_FOUND: no such id (detached,
  // or attached to a daemon before a restart). PERMISSION_DENIED: it is
  // another owner's.
  absl::StatusOr<std::shared_ptr<SharedSegment>> Find(absl::string_view id,
                                                      absl::string_view owner) const
      ABSL_LOCKS_EXCLUDED(mu_);

  // Drops this process's page mappings of every segment: the pages stay in
  // the clients' memfds and the next access maps them again. The daemon's
  // resident size then counts only its own memory (call when idle).
  void ReleaseResidentPages() const ABSL_LOCKS_EXCLUDED(mu_);

  const SharedMemoryLimits& limits() const { return limits_; }
  int segments() const ABSL_LOCKS_EXCLUDED(mu_);
  size_t attached_bytes() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Ticket {
    std::string owner;
    absl::Time expires;
  };

  absl::Time Now() const { return clock_ != nullptr ? clock_->Now() : absl::Now(); }
  // Drops one unused ticket to make room for one of `asking`'s.
  void EvictOneTicket(const std::string& asking) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const SharedMemoryLimits limits_;
  const Clock* const clock_;  // Not owned; may be null.
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Ticket> tickets_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::shared_ptr<SharedSegment>> segments_
      ABSL_GUARDED_BY(mu_);
  // Segments being mapped (mu_ released) count against the limits too.
  int reserved_segments_ ABSL_GUARDED_BY(mu_) = 0;
  // Of the attached segments and those being mapped.
  size_t attached_bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

// 16 bytes from the kernel's random source (getrandom).
std::string RandomId();

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_SHARED_MEMORY_SEGMENTS_H_
