// File: attach_socket.h
// The daemon's end of attaching a shared-memory segment: a Unix
// SOCK_SEQPACKET socket in Linux's abstract namespace ("\0varscope-shm-"
// and 16 random hex digits: no file to clean up after a kill -9, and
// reachable only from the daemon's network namespace, as its loopback
// address is). One thread serves it with poll(). A client sends one
// message, the 16-byte ticket with its memfd attached (SCM_RIGHTS), and
// gets one back: byte 0 and the 16-byte segment id, or byte 1 and why not.
// The segment stays attached while that connection is open.
//
// Example:
//   auto socket = AttachSocket::Start(&segments);
//   response.set_socket_name((*socket)->name());
//
// Thread-safety: name() may be called from any thread; the destructor
// stops the thread and detaches every segment it attached.
#ifndef VARSCOPE_SERVER_CORE_SHARED_MEMORY_ATTACH_SOCKET_H_
#define VARSCOPE_SERVER_CORE_SHARED_MEMORY_ATTACH_SOCKET_H_

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/core/shared_memory/segments.h"

namespace varscope::core {

class AttachSocket {
 public:
  // A connection must send its ticket within this long.
  static constexpr absl::Duration kHelloTimeout = absl::Seconds(10);
  // Connections that have not sent their ticket yet, at most.
  static constexpr int kMaxPending = 64;

  // `segments` (not owned) must outlive the socket.
  static absl::StatusOr<std::unique_ptr<AttachSocket>> Start(SharedSegments* segments);
  ~AttachSocket();
  AttachSocket(const AttachSocket&) = delete;
  AttachSocket& operator=(const AttachSocket&) = delete;

  // The abstract name without its leading NUL byte.
  const std::string& name() const { return name_; }

 private:
  AttachSocket(SharedSegments* segments, std::string name, int listener, int wake);
  void Serve();

  SharedSegments* const segments_;  // Not owned.
  const std::string name_;
  const int listener_;
  const int wake_;  // an eventfd: written once to stop Serve
  std::thread thread_;
};

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_SHARED_MEMORY_ATTACH_SOCKET_H_
