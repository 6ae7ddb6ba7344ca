// File: shared_memory_route.h
// A shard's rule for same-host shared-memory calls: serve only variables
// this shard owns, by the client's current slot table, and take pushes
// only while no consistent cut is being taken. Anything else goes back to
// the client as USE_GRPC_TRANSFER, and it repeats the call over gRPC,
// where forwarding and held cuts are handled.
//
// Thread-safety: thread-safe.
#ifndef VARSCOPE_SERVER_CLUSTER_SHARED_MEMORY_ROUTE_H_
#define VARSCOPE_SERVER_CLUSTER_SHARED_MEMORY_ROUTE_H_

#include <memory>

#include "server/service/shared_memory_service.h"

namespace varscope::cluster {

class CutGate;
class Routing;

// Both not owned; they must outlive the route.
std::unique_ptr<service::SharedMemoryRoute> MakeSharedMemoryRoute(Routing* routing,
                                                                  CutGate* cuts);

}  // namespace varscope::cluster

#endif  // VARSCOPE_SERVER_CLUSTER_SHARED_MEMORY_ROUTE_H_
