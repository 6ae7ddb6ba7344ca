// File: idle_trim.h
// Gives the allocator's free memory back to the OS once the data plane
// goes quiet. gRPC's receive and send buffers come from malloc, and glibc
// keeps what they free in per-thread arenas (measured: 128 MiB of free
// arena memory resident after four clients pushed 16 MiB tensors).
// malloc_trim(0) releases those free pages; doing it only after `idle`
// without traffic keeps buffers warm while a job is pushing (at the cost
// of one round of page faults after each trim), and a trim
// every `period` regardless covers traffic the counter does not see
// (calls a cluster shard only forwards).
//
// KeepGrpcBuffersWarm() is the other half: it fixes glibc's mmap threshold
// at 4 MiB (gRPC's largest read chunk), so gRPC's receive and send buffers
// are recycled inside the arenas instead of being unmapped and mapped
// again as fresh pages that fault on first write (measured: +20% on a
// 1 MiB push, more on pulls). The trim threshold stays at glibc's default:
// raising it kept gRPC buffers warmer still, but malloc_trim cannot shrink
// the top of a thread's arena, so that memory would never go back. Large
// tensor buffers are mapped directly either way (tensor_memory.h).
//
// Example:
//   KeepGrpcBuffersWarm();  // once, at daemon start
//   IdleTrim trim({});
//   every second: trim.Tick(absl::Now(), bytes_moved);
//
// malloc_trim affects the whole process: varscope's Server runs it from its
// reap loop, so a program embedding a Server gets it too.
//
// Thread-safety: not thread-safe; call Tick from one thread.
#ifndef VARSCOPE_SERVER_CORE_TENSOR_IDLE_TRIM_H_
#define VARSCOPE_SERVER_CORE_TENSOR_IDLE_TRIM_H_

#include <cstdint>
#include <functional>

#include "absl/time/time.h"

namespace varscope::core {

struct IdleTrimOptions {
  // Longer than most training steps, so a job pushing every few seconds
  // keeps its buffers warm between steps.
  absl::Duration idle = absl::Seconds(10);
  absl::Duration period = absl::Seconds(30);
  std::function<void()> trim;  // null = malloc_trim(0)
};

// Fixes glibc's mmap threshold at 4 MiB (process-wide: the daemon calls it
// once; a library never should).
void KeepGrpcBuffersWarm();

class IdleTrim {
 public:
  explicit IdleTrim(IdleTrimOptions options);

  // `activity` is any counter that grows with traffic (bytes moved).
  // Returns whether it trimmed.
  bool Tick(absl::Time now, int64_t activity);

 private:
  IdleTrimOptions options_;
  int64_t last_activity_ = -1;
  absl::Time changed_ = absl::InfinitePast();
  absl::Time trimmed_ = absl::InfinitePast();
  bool trimmed_since_change_ = true;  // nothing to give back at start
};

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_TENSOR_IDLE_TRIM_H_
