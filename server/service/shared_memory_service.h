// File: shared_memory_service.h
// gRPC handlers of varscope.v1.SharedMemory: tickets for attaching
// segments, and Pull and Push whose tensor bytes are in an attached
// segment (proto/varscope/v1/shared_memory.proto). The bytes are copied
// once on each side: from the stored snapshot into the segment (pull), and
// from the segment into the new value (push, as the core applies it).
//
// Thread-safety: handlers run concurrently on gRPC's callback threads; the
// core objects are thread-safe.
#ifndef VARSCOPE_SERVER_SERVICE_SHARED_MEMORY_SERVICE_H_
#define VARSCOPE_SERVER_SERVICE_SHARED_MEMORY_SERVICE_H_

#include <memory>
#include <string>

#include "server/core/data/data_plane.h"
#include "server/core/shared_memory/attach_socket.h"
#include "server/core/shared_memory/segments.h"
#include "server/service/call_gate.h"
#include "varscope/v1/shared_memory.grpc.pb.h"

namespace varscope::service {

// What a cluster adds: a shard serves only the variables it owns this way,
// and pushes only while no consistent cut is being taken.
class SharedMemoryRoute {
 public:
  virtual ~SharedMemoryRoute() = default;
  // OK when this shard may serve `name` over shared memory now; `*hold`
  // is kept until the call is done (a push's cut ticket). Otherwise
  // FAILED_PRECONDITION with reason USE_GRPC_TRANSFER.
  virtual absl::Status ServeHere(const grpc::CallbackServerContext& ctx,
                                 const std::string& name, bool push,
                                 std::shared_ptr<void>* hold) = 0;
};

class SharedMemoryService final : public v1::SharedMemory::CallbackService {
 public:
  // Not owned; all must outlive the service. `route` is null on a single
  // server.
  SharedMemoryService(core::DataPlane* data, CallGate* gate, core::SharedSegments* segments,
                      const core::AttachSocket* socket, SharedMemoryRoute* route)
      : data_(data), gate_(gate), segments_(segments), socket_(socket), route_(route) {}

  using Context = grpc::CallbackServerContext;
  grpc::ServerUnaryReactor* Attach(Context* ctx, const v1::AttachRequest* request,
                                   v1::AttachResponse* response) override;
  grpc::ServerUnaryReactor* Pull(Context* ctx, const v1::SharedPullRequest* request,
                                 v1::SharedPullResponse* response) override;
  grpc::ServerUnaryReactor* Push(Context* ctx, const v1::SharedPushRequest* request,
                                 v1::PushResponse* response) override;

 private:
  // The region's bytes in a segment of the caller's.
  absl::StatusOr<absl::Span<uint8_t>> RegionOf(const Admission& call, const v1::Region& region,
                                               std::shared_ptr<core::SharedSegment>* segment);

  core::DataPlane* const data_;             // Not owned.
  CallGate* const gate_;                    // Not owned.
  core::SharedSegments* const segments_;    // Not owned.
  const core::AttachSocket* const socket_;  // Not owned.
  SharedMemoryRoute* const route_;          // Not owned; may be null.
};

}  // namespace varscope::service

#endif  // VARSCOPE_SERVER_SERVICE_SHARED_MEMORY_SERVICE_H_
