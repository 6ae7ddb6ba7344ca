// File: cluster_spec.h
// Who is in the cluster: the ordered shard addresses (--cluster) and which
// of them this process is (--shard, or the ordinal of a StatefulSet pod
// name such as "varscope-2"), and the placement that follows from them.
// Session ids and scope handles of a shard carry its index in their top
// bits, so any shard knows where a session lives.
//
// Thread-safety: an immutable value once built.
#ifndef VARSCOPE_SERVER_CLUSTER_CLUSTER_SPEC_H_
#define VARSCOPE_SERVER_CLUSTER_CLUSTER_SPEC_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/placement/placement.h"

namespace varscope::cluster {

class ClusterSpec {
 public:
  // `cluster` is "host0:port,host1:port,..." (at least one), `shard` this
  // process's index in it.
  static absl::StatusOr<ClusterSpec> Create(absl::string_view cluster, int shard);

  int self() const { return self_; }
  int size() const { return static_cast<int>(addresses_.size()); }
  const std::vector<std::string>& addresses() const { return addresses_; }
  const std::string& address(int shard) const { return addresses_[shard]; }
  const placement::SlotTable& table() const { return table_; }

  // The shard that owns variable `full_name` (":0" accepted).
  int OwnerOf(absl::string_view full_name) const { return table_.OwnerOf(full_name); }
  bool Owns(absl::string_view full_name) const { return OwnerOf(full_name) == self_; }

  // The first session id / scope handle this shard hands out: its index in
  // bits 52..62, a random start below. HomeOf reads the index back (-1 for
  // an id no shard of a cluster made).
  uint64_t FirstId() const;
  int HomeOf(uint64_t session_or_handle) const;

 private:
  std::vector<std::string> addresses_;
  int self_ = 0;
  placement::SlotTable table_;
};

// The shard index from a StatefulSet pod name ("varscope-2" -> 2): the
// digits after the last '-'.
absl::StatusOr<int> ShardFromPodName(absl::string_view hostname);

}  // namespace varscope::cluster

#endif  // VARSCOPE_SERVER_CLUSTER_CLUSTER_SPEC_H_
