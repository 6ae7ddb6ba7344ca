// File: shard_connection.h (internal)
// A Connection to one server with what routing over a cluster needs: the
// cluster's topology, callback forms of pull and push (a push that spans
// shards joins its parts without a thread), and a ClusterConnection that
// routes over several of them.
//
// Thread-safety: implementations are thread-safe.
#ifndef VARSCOPE_CLIENT_SRC_SHARD_CONNECTION_H_
#define VARSCOPE_CLIENT_SRC_SHARD_CONNECTION_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "varscope/connection.h"

namespace varscope::internal {

// What Cluster.GetTopology answers.
struct Topology {
  bool clustered = false;
  std::vector<std::string> addresses;
  int self = 0;
  std::vector<uint32_t> shard_of_slot;
  uint64_t version = 0;
};

class ShardConnection : public Connection {
 public:
  using PullDone = std::function<void(absl::StatusOr<PullResult>)>;
  using PushDone = std::function<void(absl::StatusOr<std::vector<UpdateResult>>)>;
  // `done` runs once, on one of gRPC's threads.
  virtual void StartPull(const PullArgs& args, DataType dtype, absl::Span<uint8_t> out,
                         const CallOptions& call, PullDone done) = 0;
  virtual void StartPush(const std::vector<PushItem>& items, const CallOptions& call,
                         PushDone done) = 0;
  virtual absl::StatusOr<Topology> GetTopology(const CallOptions& call) = 0;
};

// A gRPC connection to `target` that adds `metadata` to every call.
// Connections of one `group` (one Client) share TCP connections to the
// same address; those of different groups never do.
absl::StatusOr<std::shared_ptr<ShardConnection>> MakeShardConnection(
    const std::string& target, const ConnectionOptions& options,
    std::vector<std::pair<std::string, std::string>> metadata, int64_t group);

// A connection to the cluster `entry` belongs to: namespace and admin calls
// go to `entry` (the home of the client's session), calls about a
// variable straight to the shard that owns it.
absl::StatusOr<std::shared_ptr<Connection>> MakeClusterConnection(
    std::shared_ptr<ShardConnection> entry, Topology topology, ConnectionOptions options,
    int64_t group);

}  // namespace varscope::internal

#endif  // VARSCOPE_CLIENT_SRC_SHARD_CONNECTION_H_
