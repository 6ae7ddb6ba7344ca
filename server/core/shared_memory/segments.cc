#include "server/core/shared_memory/segments.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace varscope::core {
namespace {

constexpr int kRequiredSeals = F_SEAL_SHRINK | F_SEAL_GROW;

}  // namespace

std::string RandomId() {
  std::string id(SharedSegments::kIdBytes, '\0');
  size_t filled = 0;
  while (filled < id.size()) {
    const ssize_t n = getrandom(id.data() + filled, id.size() - filled, 0);
    if (n > 0) {
      filled += static_cast<size_t>(n);
    } else if (errno != EINTR) {
      break;  // no getrandom (old kernel, seccomp): the device below
    }
  }
  if (filled < id.size()) {
    std::FILE* urandom = std::fopen("/dev/urandom", "rb");
    const bool read = urandom != nullptr &&
                      std::fread(id.data(), 1, id.size(), urandom) == id.size();
    if (urandom != nullptr) std::fclose(urandom);
    // Ids and tickets are secrets: without a random source there are none.
    if (!read) std::abort();
  }
  return id;
}

SharedSegment::~SharedSegment() { munmap(base_, size_); }

absl::StatusOr<absl::Span<uint8_t>> SharedSegment::Region(uint64_t offset,
                                                          uint64_t length) const {
  if (offset > size_ || length > size_ - offset) {
    return absl::InvalidArgumentError(absl::StrCat(
        "region [", offset, ", +", length, ") is outside the ", size_, "-byte segment"));
  }
  return absl::Span<uint8_t>(base_ + offset, length);
}

void SharedSegment::ReleaseResidentPages() const {
  // Safe under a concurrent copy: a shared mapping refaults the same pages.
  madvise(base_, size_, MADV_DONTNEED);
}

SharedSegments::SharedSegments(SharedMemoryLimits limits, const Clock* clock)
    : limits_(limits), clock_(clock) {}

std::string SharedSegments::IssueTicket(const std::string& owner) {
  std::string ticket = RandomId();
  const absl::Time now = Now();
  absl::MutexLock lock(&mu_);
  absl::erase_if(tickets_, [now](const auto& entry) { return entry.second.expires <= now; });
  while (tickets_.size() >= static_cast<size_t>(std::max(1, limits_.max_tickets))) {
    EvictOneTicket(owner);
  }
  tickets_[ticket] = Ticket{owner, now + limits_.ticket_lifetime};
  return ticket;
}

void SharedSegments::EvictOneTicket(const std::string& asking) {
  // The owner holding the most unused tickets gives one up (the asker on
  // a tie), so a token that asks for tickets in a loop evicts its own, not
  // those other tokens' clients are about to use.
  absl::flat_hash_map<absl::string_view, int> held;
  for (const auto& [id, t] : tickets_) ++held[t.owner];
  absl::string_view victim = asking;
  auto mine = held.find(asking);
  int most = mine == held.end() ? 0 : mine->second;
  for (const auto& [owner, count] : held) {
    if (count > most) {
      victim = owner;
      most = count;
    }
  }
  auto oldest = tickets_.end();
  for (auto it = tickets_.begin(); it != tickets_.end(); ++it) {
    if (it->second.owner != victim) continue;
    if (oldest == tickets_.end() || it->second.expires < oldest->second.expires) oldest = it;
  }
  tickets_.erase(oldest);
}

absl::StatusOr<std::string> SharedSegments::Attach(absl::string_view ticket, int fd) {
  std::string owner;
  {
    absl::MutexLock lock(&mu_);
    auto it = tickets_.find(ticket);
    if (it == tickets_.end()) {
      return absl::PermissionDeniedError("unknown or already used shared-memory ticket");
    }
    const Ticket found = it->second;
    tickets_.erase(it);
    if (found.expires <= Now()) {
      return absl::PermissionDeniedError("the shared-memory ticket expired (30 s); ask again");
    }
    owner = found.owner;
  }
  // Only plain memfds (tmpfs; a hugetlbfs one can lose pages to a hole
  // punch), sealed so their size holds, and still writable.
  struct statfs fs;
  const int seals = fcntl(fd, F_GET_SEALS);
  if (fstatfs(fd, &fs) != 0 || fs.f_type != TMPFS_MAGIC || seals < 0 ||
      (seals & kRequiredSeals) != kRequiredSeals) {
    return absl::InvalidArgumentError(
        "a shared-memory segment must be a memfd sealed with F_SEAL_SHRINK and F_SEAL_GROW");
  }
  if ((seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)) != 0) {
    return absl::InvalidArgumentError("a shared-memory segment must stay writable");
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size <= 0) {
    return absl::InvalidArgumentError("the shared-memory segment is empty");
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size > limits_.max_segment_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "a ", size, "-byte segment is over the limit of ", limits_.max_segment_bytes));
  }
  {
    absl::MutexLock lock(&mu_);
    const int count = static_cast<int>(segments_.size()) + reserved_segments_;
    const size_t bytes = attached_bytes_;
    if (count >= limits_.max_segments || size > limits_.max_total_bytes - std::min(bytes, limits_.max_total_bytes)) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "the daemon has ", count, " shared-memory segments (", bytes,
          " bytes) attached; limits are ", limits_.max_segments, " and ",
          limits_.max_total_bytes, " bytes"));
    }
    ++reserved_segments_;
    attached_bytes_ += size;
  }
  // Mapped without the lock held; the reservation keeps the limits.
  // Not populated: pages the client never touched would be charged to the
  // daemon.
  void* base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const int mapped_errno = errno;
  absl::MutexLock lock(&mu_);
  --reserved_segments_;
  if (base == MAP_FAILED) {
    attached_bytes_ -= size;
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot map the shared-memory segment: ", std::strerror(mapped_errno)));
  }
  std::string id = RandomId();
  segments_[id] = std::make_shared<SharedSegment>(owner, static_cast<uint8_t*>(base), size);
  return id;
}

void SharedSegments::Detach(absl::string_view id) {
  std::shared_ptr<SharedSegment> gone;  // unmapped outside the lock
  absl::MutexLock lock(&mu_);
  auto it = segments_.find(id);
  if (it == segments_.end()) return;
  gone = std::move(it->second);
  attached_bytes_ -= gone->size();
  segments_.erase(it);
}

absl::StatusOr<std::shared_ptr<SharedSegment>> SharedSegments::Find(
    absl::string_view id, absl::string_view owner) const {
  absl::MutexLock lock(&mu_);
  auto it = segments_.find(id);
  if (it == segments_.end()) {
    return absl::NotFoundError("no such shared-memory segment (detached, or the daemon restarted)");
  }
  if (it->second->owner() != owner) {
    return absl::PermissionDeniedError("the shared-memory segment belongs to another token");
  }
  return it->second;
}

void SharedSegments::ReleaseResidentPages() const {
  std::vector<std::shared_ptr<SharedSegment>> all;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, segment] : segments_) all.push_back(segment);
  }
  for (const auto& segment : all) segment->ReleaseResidentPages();
}

int SharedSegments::segments() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(segments_.size());
}

size_t SharedSegments::attached_bytes() const {
  absl::MutexLock lock(&mu_);
  return attached_bytes_;
}

}  // namespace varscope::core
