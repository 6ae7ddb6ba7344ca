// Same-host shared memory in the core: segments attach only with a live
// ticket and only as sealed memfds, belong to the ticket's owner, stay
// inside their bounds, and detach when the client's connection closes.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/time/clock.h"
#include "server/core/shared_memory/attach_socket.h"
#include "server/core/shared_memory/segments.h"

namespace varscope::core {
namespace {

// A memfd of `size` bytes, sealed as clients seal theirs (or not).
int MakeMemfd(size_t size, bool sealed = true) {
  const int fd = memfd_create("test-segment", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(ftruncate(fd, static_cast<off_t>(size)), 0);
  if (sealed) {
    EXPECT_EQ(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL), 0);
  }
  return fd;
}

TEST(SharedSegments, ASegmentIsItsTicketOwnersAndStaysInBounds) {
  SharedSegments segments;
  const int fd = MakeMemfd(1 << 20);
  auto* mine = static_cast<uint8_t*>(mmap(nullptr, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  ASSERT_NE(mine, MAP_FAILED);

  const std::string ticket = segments.IssueTicket("alice");
  absl::StatusOr<std::string> id = segments.Attach(ticket, fd);
  ASSERT_TRUE(id.ok()) << id.status();
  close(fd);  // the daemon's mapping holds its own reference
  EXPECT_EQ(segments.segments(), 1);
  EXPECT_EQ(segments.attached_bytes(), size_t{1} << 20);
  // A ticket attaches once.
  const int again = MakeMemfd(4096);
  EXPECT_EQ(segments.Attach(ticket, again).status().code(), absl::StatusCode::kPermissionDenied);
  close(again);

  auto found = segments.Find(*id, "alice");
  ASSERT_TRUE(found.ok()) << found.status();
  auto region = (*found)->Region(100, 4);
  ASSERT_TRUE(region.ok());
  std::memcpy(region->data(), "abcd", 4);
  EXPECT_EQ(std::memcmp(mine + 100, "abcd", 4), 0);  // the same pages
  EXPECT_EQ((*found)->Region((1 << 20) - 3, 4).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*found)->Region(UINT64_MAX, 2).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*found)->Region(1, UINT64_MAX).status().code(), absl::StatusCode::kInvalidArgument);

  EXPECT_EQ(segments.Find(*id, "bob").status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(segments.Find("no such id......", "alice").status().code(),
            absl::StatusCode::kNotFound);

  segments.Detach(*id);
  EXPECT_EQ(segments.Find(*id, "alice").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(segments.segments(), 0);
  // A call that still holds it may finish: the mapping stays until then.
  std::memcpy(region->data(), "wxyz", 4);
  EXPECT_EQ(std::memcmp(mine + 100, "wxyz", 4), 0);
  found->reset();
  munmap(mine, 1 << 20);
}

TEST(SharedSegments, RefusesUnsealedFilesExpiredTicketsAndWhatIsOverTheLimits) {
  FakeClock clock;
  SharedMemoryLimits limits;
  limits.max_segment_bytes = 1 << 20;
  limits.max_segments = 1;
  SharedSegments segments(limits, &clock);

  const int unsealed = MakeMemfd(4096, /*sealed=*/false);
  EXPECT_EQ(segments.Attach(segments.IssueTicket("a"), unsealed).status().code(),
            absl::StatusCode::kInvalidArgument);
  close(unsealed);
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  EXPECT_EQ(segments.Attach(segments.IssueTicket("a"), pipe_fds[0]).status().code(),
            absl::StatusCode::kInvalidArgument);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
  const int empty = MakeMemfd(0);
  EXPECT_EQ(segments.Attach(segments.IssueTicket("a"), empty).status().code(),
            absl::StatusCode::kInvalidArgument);
  close(empty);
  const int big = MakeMemfd((1 << 20) + 4096);
  EXPECT_EQ(segments.Attach(segments.IssueTicket("a"), big).status().code(),
            absl::StatusCode::kResourceExhausted);
  close(big);

  const int fd = MakeMemfd(4096);
  const std::string late = segments.IssueTicket("a");
  clock.Advance(limits.ticket_lifetime + absl::Seconds(1));
  EXPECT_EQ(segments.Attach(late, fd).status().code(), absl::StatusCode::kPermissionDenied);
  ASSERT_TRUE(segments.Attach(segments.IssueTicket("a"), fd).ok());
  EXPECT_EQ(segments.Attach(segments.IssueTicket("a"), fd).status().code(),
            absl::StatusCode::kResourceExhausted);  // max_segments
  close(fd);
  EXPECT_EQ(segments.segments(), 1);
}

TEST(SharedSegments, ATokenAskingForTicketsInALoopEvictsOnlyItsOwn) {
  SharedMemoryLimits limits;
  limits.max_tickets = 4;
  FakeClock clock;  // one tick between tickets: "oldest" is well defined
  SharedSegments segments(limits, &clock);
  auto issue = [&](const std::string& owner) {
    clock.Advance(absl::Milliseconds(1));
    return segments.IssueTicket(owner);
  };
  const std::string alice = issue("alice");
  std::vector<std::string> mallory;
  for (int i = 0; i < 10; ++i) mallory.push_back(issue("mallory"));
  // Alice's ticket survived; of Mallory's, only the newest three are left.
  const int fd = MakeMemfd(4096);
  EXPECT_TRUE(segments.Attach(alice, fd).ok());
  EXPECT_EQ(segments.Attach(mallory[6], fd).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(segments.Attach(mallory[7], fd).ok());
  EXPECT_TRUE(segments.Attach(mallory[9], fd).ok());
  // On a tie the asker gives up its own oldest: Mallory holds two
  // (mallory[8] and a new one), Alice two, and Alice asks for a third.
  const std::string m10 = issue("mallory");
  const std::string a1 = issue("alice");
  const std::string a2 = issue("alice");
  const std::string a3 = issue("alice");
  EXPECT_EQ(segments.Attach(a1, fd).status().code(), absl::StatusCode::kPermissionDenied);
  for (const std::string& kept : {mallory[8], m10, a2, a3}) {
    EXPECT_TRUE(segments.Attach(kept, fd).ok());
  }
  close(fd);
}

// The client's side of the handshake, by hand: connect, send the ticket
// with the memfd, read the answer.
std::string Hello(const std::string& name, const std::string& ticket, int memfd, int* sock) {
  *sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path + 1, name.data(), name.size());
  const socklen_t len = offsetof(sockaddr_un, sun_path) + 1 + name.size();
  EXPECT_EQ(connect(*sock, reinterpret_cast<sockaddr*>(&addr), len), 0);
  iovec iov{const_cast<char*>(ticket.data()), ticket.size()};
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
  EXPECT_EQ(sendmsg(*sock, &msg, 0), static_cast<ssize_t>(ticket.size()));
  char reply[512];
  const ssize_t n = recv(*sock, reply, sizeof(reply), 0);
  return n > 0 ? std::string(reply, n) : "";
}

// Waits for the serving thread to see a close (an event, not a delay: it
// returns as soon as the count changes).
bool CountBecomes(const SharedSegments& segments, int want) {
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (segments.segments() != want) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

TEST(AttachSocket, AttachesForATicketAndDetachesWhenTheClientHangsUp) {
  SharedSegments segments;
  auto socket = AttachSocket::Start(&segments);
  ASSERT_TRUE(socket.ok()) << socket.status();
  const std::string name = (*socket)->name();

  const int fd = MakeMemfd(1 << 20);
  int sock = -1;
  const std::string reply = Hello(name, segments.IssueTicket("alice"), fd, &sock);
  ASSERT_EQ(reply.size(), 1 + SharedSegments::kIdBytes) << reply;
  EXPECT_EQ(reply[0], 0);
  EXPECT_TRUE(segments.Find(reply.substr(1), "alice").ok());
  EXPECT_EQ(segments.segments(), 1);

  // A wrong ticket: refused with a reason, nothing attached.
  int other = -1;
  const std::string refused = Hello(name, std::string(16, 'x'), fd, &other);
  ASSERT_FALSE(refused.empty());
  EXPECT_EQ(refused[0], 1);
  EXPECT_NE(refused.find("ticket"), std::string::npos) << refused;
  close(other);
  close(fd);

  close(sock);  // the client exits: its segment goes
  EXPECT_TRUE(CountBecomes(segments, 0));

  // Three clients; the middle one leaves: only its segment goes.
  int socks[3];
  std::string ids[3];
  for (int i = 0; i < 3; ++i) {
    const int memfd = MakeMemfd(4096);
    const std::string answer = Hello(name, segments.IssueTicket("bob"), memfd, &socks[i]);
    close(memfd);
    ASSERT_EQ(answer.size(), 1 + SharedSegments::kIdBytes);
    ASSERT_EQ(answer[0], 0);
    ids[i] = answer.substr(1);
  }
  close(socks[1]);
  EXPECT_TRUE(CountBecomes(segments, 2));
  EXPECT_TRUE(segments.Find(ids[0], "bob").ok());
  EXPECT_FALSE(segments.Find(ids[1], "bob").ok());
  EXPECT_TRUE(segments.Find(ids[2], "bob").ok());

  // Stopping the socket detaches what is still attached.
  socket->reset();
  EXPECT_EQ(segments.segments(), 0);
  close(socks[0]);
  close(socks[2]);
}

TEST(AttachSocket, RefusesConnectionsBeyondThoseWaitingToSayHello) {
  SharedSegments segments;
  auto socket = AttachSocket::Start(&segments);
  ASSERT_TRUE(socket.ok()) << socket.status();
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string& name = (*socket)->name();
  std::memcpy(addr.sun_path + 1, name.data(), name.size());
  const socklen_t len = offsetof(sockaddr_un, sun_path) + 1 + name.size();
  auto open_one = [&] {
    const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), len), 0);
    return fd;
  };
  // Silent connections fill the waiting slots; the serving thread has
  // taken them all once a segment attaches after them.
  std::vector<int> silent;
  for (int i = 0; i < AttachSocket::kMaxPending - 1; ++i) silent.push_back(open_one());
  const int memfd = MakeMemfd(4096);
  int attached = -1;
  ASSERT_EQ(Hello(name, segments.IssueTicket("a"), memfd, &attached)[0], 0);
  silent.push_back(open_one());  // the last free slot
  const int refused = open_one();
  char reply[256];
  const ssize_t n = recv(refused, reply, sizeof(reply), 0);
  ASSERT_GT(n, 0);
  EXPECT_EQ(reply[0], 1);
  EXPECT_NE(std::string(reply + 1, n - 1).find("too many"), std::string::npos);
  for (int fd : silent) close(fd);
  close(refused);
  close(attached);
  close(memfd);
  EXPECT_TRUE(CountBecomes(segments, 0));
}

}  // namespace
}  // namespace varscope::core
