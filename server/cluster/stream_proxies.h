// File: stream_proxies.h
// The streaming calls of a cluster shard that another shard must answer:
// a PullStream or PushStream of a variable this shard does not own is
// relayed chunk by chunk to its owner (flow-controlled: one chunk in
// flight, so a 1 GiB transfer never sits in this shard's memory), and a
// Watch merges the event streams of every shard into one.
//
// Thread-safety: each reactor is driven by gRPC's callback threads and
// guards its own state.
#ifndef VARSCOPE_SERVER_CLUSTER_STREAM_PROXIES_H_
#define VARSCOPE_SERVER_CLUSTER_STREAM_PROXIES_H_

#include <grpcpp/grpcpp.h>

#include "server/cluster/routing.h"
#include "varscope/v1/variable_data.pb.h"

namespace varscope::cluster {

// Metadata a routing client sends on a PushStream: the variable's name, so
// the shard that owns it answers without relaying.
inline constexpr char kVariableKey[] = "varscope-variable";

// Relays a PullStream to `owner`.
grpc::ServerWriteReactor<grpc::ByteBuffer>* ProxyPullStream(grpc::CallbackServerContext* ctx,
                                                            const Routing& routing, int owner,
                                                            const grpc::ByteBuffer& request);
// Relays a PushStream to the owner of the variable its first chunk names.
grpc::ServerReadReactor<grpc::ByteBuffer>* ProxyPushStream(grpc::CallbackServerContext* ctx,
                                                           const Routing& routing,
                                                           grpc::ByteBuffer* response);
// One watch over every shard: events of all shards interleaved (each
// variable's in its own order); a shard's stream failing ends the watch
// with an error naming it.
grpc::ServerWriteReactor<v1::WatchEvent>* WatchEveryShard(grpc::CallbackServerContext* ctx,
                                                          const Routing& routing,
                                                          const v1::WatchRequest& request);

}  // namespace varscope::cluster

#endif  // VARSCOPE_SERVER_CLUSTER_STREAM_PROXIES_H_
