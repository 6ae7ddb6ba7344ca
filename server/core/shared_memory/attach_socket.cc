#include "server/core/shared_memory/attach_socket.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace varscope::core {
namespace {

// One client connection, seen only by the serving thread.
struct Connection {
  int fd = -1;
  absl::Time opened;
  std::string segment;  // empty until attached
};

void Reply(int fd, char code, absl::string_view body) {
  std::string message(1, code);
  message.append(body.data(), body.size());
  // A fresh socket's buffer takes a short reply without blocking; a client
  // that does not read it only loses its own answer.
  (void)send(fd, message.data(), message.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
}

// Reads the hello: exactly the ticket's bytes with one descriptor. Returns
// the segment id, or an error for the reply.
absl::StatusOr<std::string> Hello(int fd, SharedSegments* segments) {
  char ticket[SharedSegments::kIdBytes + 1];
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)] = {};
  iovec iov{ticket, sizeof(ticket)};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  const ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (n < 0) return absl::InvalidArgumentError("could not read the ticket");
  std::vector<int> fds;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t end = reinterpret_cast<char*>(c) - control + c->cmsg_len;
    if (c->cmsg_len < CMSG_LEN(0) || end > msg.msg_controllen) break;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int received;
      std::memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      fds.push_back(received);
    }
  }
  absl::StatusOr<std::string> id = absl::InvalidArgumentError(
      "send exactly the 16-byte ticket with one memfd attached (SCM_RIGHTS)");
  if (n == static_cast<ssize_t>(SharedSegments::kIdBytes) && fds.size() == 1 &&
      (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) == 0) {
    id = segments->Attach(absl::string_view(ticket, SharedSegments::kIdBytes), fds[0]);
  }
  for (int received : fds) close(received);  // a mapping holds its own reference
  return id;
}

}  // namespace

absl::StatusOr<std::unique_ptr<AttachSocket>> AttachSocket::Start(SharedSegments* segments) {
  const std::string name = "varscope-shm-" + absl::BytesToHexString(RandomId().substr(0, 8));
  const int listener = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listener < 0) {
    return absl::UnavailableError(absl::StrCat("socket(AF_UNIX): ", std::strerror(errno)));
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path + 1, name.data(), name.size());  // sun_path[0] = 0: abstract
  const socklen_t len = offsetof(sockaddr_un, sun_path) + 1 + name.size();
  if (bind(listener, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      listen(listener, kMaxPending) != 0) {
    const int error = errno;
    close(listener);
    return absl::UnavailableError(
        absl::StrCat("cannot listen on the shared-memory socket: ", std::strerror(error)));
  }
  const int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) {
    const int error = errno;
    close(listener);
    return absl::UnavailableError(absl::StrCat("eventfd: ", std::strerror(error)));
  }
  return std::unique_ptr<AttachSocket>(new AttachSocket(segments, name, listener, wake));
}

AttachSocket::AttachSocket(SharedSegments* segments, std::string name, int listener, int wake)
    : segments_(segments), name_(std::move(name)), listener_(listener), wake_(wake) {
  thread_ = std::thread([this] { Serve(); });
}

AttachSocket::~AttachSocket() {
  const uint64_t one = 1;
  (void)write(wake_, &one, sizeof(one));
  thread_.join();
  close(listener_);
  close(wake_);
}

void AttachSocket::Serve() {
  std::vector<Connection> connections;
  auto drop = [&](size_t i) {
    if (!connections[i].segment.empty()) segments_->Detach(connections[i].segment);
    close(connections[i].fd);
    connections[i] = connections.back();
    connections.pop_back();
  };
  // Out of descriptors: leave new connections in the backlog for a while
  // instead of spinning on a listener that stays readable.
  absl::Time accept_after = absl::InfinitePast();
  for (;;) {
    const absl::Time before = absl::Now();
    const short listen_events = before >= accept_after ? POLLIN : 0;
    std::vector<pollfd> polled = {{wake_, POLLIN, 0}, {listener_, listen_events, 0}};
    for (const Connection& c : connections) polled.push_back({c.fd, POLLIN, 0});
    // Wakes at least every second to close connections that never said hello.
    const int ready = poll(polled.data(), polled.size(), 1000);
    if (ready < 0) {
      for (pollfd& p : polled) p.revents = 0;  // EINTR, ENOMEM: try again
    }
    if (polled[0].revents != 0) break;
    const absl::Time now = absl::Now();
    // Back to front, so dropping (which moves the last one in) skips nothing.
    for (size_t i = connections.size(); i-- > 0;) {
      const short events = polled[i + 2].revents;
      Connection& c = connections[i];
      if (c.segment.empty()) {
        if (events != 0) {
          absl::StatusOr<std::string> id = Hello(c.fd, segments_);
          if (id.ok()) {
            c.segment = *id;
            Reply(c.fd, 0, *id);
            continue;
          }
          Reply(c.fd, 1, id.status().message());
          drop(i);
        } else if (now - c.opened > kHelloTimeout) {
          drop(i);
        }
      } else if (events != 0) {
        // An attached client only ever closes its end; anything else ends
        // the attachment too.
        drop(i);
      }
    }
    if (polled[1].revents != 0) {
      for (;;) {
        const int fd = accept4(listener_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
          if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            accept_after = now + absl::Seconds(1);
          }
          break;
        }
        int pending = 0;
        for (const Connection& c : connections) pending += c.segment.empty() ? 1 : 0;
        if (pending >= kMaxPending) {
          Reply(fd, 1, "too many connections waiting to attach; try again");
          close(fd);
          continue;
        }
        connections.push_back({fd, now, ""});
      }
    }
  }
  for (size_t i = connections.size(); i-- > 0;) drop(i);
}

}  // namespace varscope::core
