#include "shared_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace varscope::internal {
namespace {

constexpr size_t kIdBytes = 16;
// How long the daemon may take to answer an attach.
constexpr int kReplySeconds = 5;

// Failures on this side of the handshake (not the daemon being down).
absl::Status OsError(absl::string_view what) {
  return absl::FailedPreconditionError(absl::StrCat(what, ": ", std::strerror(errno)));
}

size_t SegmentSizeFor(size_t bytes) {
  size_t size = SharedMemoryPool::kMinSegmentBytes;
  while (size < bytes) size *= 2;
  return size;
}

// Closes a descriptor when it goes out of scope.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
  int release() { return std::exchange(fd, -1); }
};

// Sends the ticket with the memfd and reads the segment id.
absl::StatusOr<std::string> Handshake(const AttachTicket& ticket, int memfd, Fd* socket_out) {
  // Connected without blocking: a daemon whose backlog is full answers
  // EAGAIN (the call then goes over gRPC) instead of holding the caller.
  Fd sock{socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)};
  if (sock.fd < 0) return OsError("socket(AF_UNIX)");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (ticket.socket_name.size() + 1 > sizeof(addr.sun_path)) {
    return absl::FailedPreconditionError("the daemon's shared-memory socket name is too long");
  }
  std::memcpy(addr.sun_path + 1, ticket.socket_name.data(), ticket.socket_name.size());
  const socklen_t len = offsetof(sockaddr_un, sun_path) + 1 + ticket.socket_name.size();
  if (connect(sock.fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    // Not in the daemon's network namespace (another container, say).
    return OsError("cannot reach the daemon's shared-memory socket");
  }
  if (fcntl(sock.fd, F_SETFL, 0) != 0) return OsError("fcntl");
  timeval timeout{kReplySeconds, 0};
  setsockopt(sock.fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  setsockopt(sock.fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));

  iovec iov{const_cast<char*>(ticket.ticket.data()), ticket.ticket.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &memfd, sizeof(int));
  if (sendmsg(sock.fd, &msg, MSG_NOSIGNAL) != static_cast<ssize_t>(ticket.ticket.size())) {
    return OsError("cannot hand the segment to the daemon");
  }
  char reply[512];
  const ssize_t n = recv(sock.fd, reply, sizeof(reply), 0);
  if (n <= 0) return OsError("the daemon did not answer the attach");
  if (reply[0] != 0 || n != static_cast<ssize_t>(1 + kIdBytes)) {
    return absl::FailedPreconditionError(absl::StrCat("the daemon refused the segment: ",
                                                      absl::string_view(reply + 1, n - 1)));
  }
  socket_out->fd = sock.release();
  return std::string(reply + 1, kIdBytes);
}

}  // namespace

Segment::~Segment() {
  munmap(base_, size_);
  close(socket_);  // the daemon detaches the segment
}

SegmentLease::~SegmentLease() {
  if (segment_ != nullptr) pool_->Release(std::move(segment_), /*keep=*/true);
}

void SegmentLease::Discard() {
  if (segment_ != nullptr) pool_->Release(std::move(segment_), /*keep=*/false);
}

std::shared_ptr<SharedMemoryPool> SharedMemoryPool::Create(AttachFn attach,
                                                           absl::Duration idle) {
  return std::shared_ptr<SharedMemoryPool>(new SharedMemoryPool(std::move(attach), idle));
}

std::optional<SegmentLease> SharedMemoryPool::Acquire(size_t bytes, bool wait_for_ready) {
  const absl::Time now = absl::Now();
  std::vector<std::shared_ptr<Segment>> closing;  // unmapped outside the lock
  uint64_t generation;
  size_t size;
  {
    absl::MutexLock lock(&mu_);
    if (off_ || now < retry_after_ || bytes > max_segment_bytes_) return std::nullopt;
    // Idle segments go; the smallest free one that fits is taken.
    for (auto it = free_.begin(); it != free_.end();) {
      if (now - it->since >= idle_) {
        total_bytes_ -= it->segment->size();
        --total_segments_;
        closing.push_back(std::move(it->segment));
        it = free_.erase(it);
        continue;
      }
      ++it;
    }
    auto best = free_.end();  // after the erasing above: it moves end()
    for (auto it = free_.begin(); it != free_.end(); ++it) {
      if (it->segment->size() >= bytes &&
          (best == free_.end() || it->segment->size() < best->segment->size())) {
        best = it;
      }
    }
    if (best != free_.end()) {
      std::shared_ptr<Segment> segment = std::move(best->segment);
      free_.erase(best);
      return SegmentLease(shared_from_this(), std::move(segment));
    }
    size = std::min(SegmentSizeFor(bytes), max_segment_bytes_);
    // Make room by closing free segments that are too small.
    while ((total_bytes_ + size > kMaxPoolBytes || total_segments_ >= kMaxSegments) &&
           !free_.empty()) {
      total_bytes_ -= free_.back().segment->size();
      --total_segments_;
      closing.push_back(std::move(free_.back().segment));
      free_.pop_back();
    }
    // Every segment is in use by another call: this one goes over gRPC.
    if (total_bytes_ + size > kMaxPoolBytes || total_segments_ >= kMaxSegments) {
      return std::nullopt;
    }
    total_bytes_ += size;
    ++total_segments_;
    generation = generation_;
  }
  closing.clear();
  absl::StatusOr<std::shared_ptr<Segment>> made = Attach(size, bytes, generation, wait_for_ready);
  absl::MutexLock lock(&mu_);
  if (!made.ok()) {
    total_bytes_ -= size;
    --total_segments_;
    if (made.status().code() == absl::StatusCode::kUnimplemented ||
        made.status().code() == absl::StatusCode::kPermissionDenied) {
      off_ = true;  // the daemon does not offer it to us
    } else if (made.status().code() != absl::StatusCode::kOutOfRange &&
               made.status().code() != absl::StatusCode::kUnavailable) {
      // Unreachable socket, refused segment: not for a while. (UNAVAILABLE
      // is a daemon down or restarting: the next call asks again.)
      retry_after_ = now + kRetryAfter;
    }
    return std::nullopt;
  }
  total_bytes_ = total_bytes_ - size + (*made)->size();  // clamped to the daemon's limit
  return SegmentLease(shared_from_this(), *std::move(made));
}

void SharedMemoryPool::Release(std::shared_ptr<Segment> segment, bool keep) {
  std::shared_ptr<Segment> closing;  // closed outside the lock
  absl::MutexLock lock(&mu_);
  if (!keep || off_ || segment->generation() != generation_) {
    total_bytes_ -= segment->size();
    --total_segments_;
    closing = std::move(segment);
    return;
  }
  free_.push_back({std::move(segment), absl::Now()});
}

void SharedMemoryPool::Forget() {
  std::vector<Free> closing;
  absl::MutexLock lock(&mu_);
  ++generation_;
  for (const Free& f : free_) total_bytes_ -= f.segment->size();
  total_segments_ -= static_cast<int>(free_.size());
  closing.swap(free_);
}

void SharedMemoryPool::Disable() {
  {
    absl::MutexLock lock(&mu_);
    off_ = true;
  }
  Forget();
}

absl::StatusOr<std::shared_ptr<Segment>> SharedMemoryPool::Attach(size_t bytes, size_t needed,
                                                                  uint64_t generation,
                                                                  bool wait_for_ready) {
  absl::StatusOr<AttachTicket> ticket = attach_(wait_for_ready);
  if (!ticket.ok()) return ticket.status();
  {
    absl::MutexLock lock(&mu_);
    max_segment_bytes_ = ticket->max_segment_bytes;
  }
  if (needed > ticket->max_segment_bytes) {
    return absl::OutOfRangeError("the tensor is over the daemon's segment limit");
  }
  bytes = std::min(bytes, ticket->max_segment_bytes);
  Fd memfd{memfd_create("varscope-segment", MFD_CLOEXEC | MFD_ALLOW_SEALING)};
  if (memfd.fd < 0) return OsError("memfd_create");
  if (ftruncate(memfd.fd, static_cast<off_t>(bytes)) != 0) return OsError("ftruncate");
  if (fcntl(memfd.fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    return OsError("sealing the segment");
  }
  void* base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, memfd.fd, 0);
  if (base == MAP_FAILED) return OsError("mapping the segment");
  Fd socket;
  absl::StatusOr<std::string> id = Handshake(*ticket, memfd.fd, &socket);
  if (!id.ok()) {
    munmap(base, bytes);
    return id.status();
  }
  return std::make_shared<Segment>(*std::move(id), static_cast<uint8_t*>(base), bytes,
                                   socket.release(), generation);
}

}  // namespace varscope::internal
