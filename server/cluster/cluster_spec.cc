#include "server/cluster/cluster_spec.h"

#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace varscope::cluster {
namespace {

constexpr int kShardShift = 52;
constexpr uint64_t kLowMask = (uint64_t{1} << kShardShift) - 1;

}  // namespace

absl::StatusOr<ClusterSpec> ClusterSpec::Create(absl::string_view cluster, int shard) {
  ClusterSpec spec;
  for (absl::string_view part : absl::StrSplit(cluster, ',')) {
    part = absl::StripAsciiWhitespace(part);
    const size_t colon = part.rfind(':');
    int port = 0;
    if (part.empty() || colon == absl::string_view::npos || colon == 0 ||
        !absl::SimpleAtoi(part.substr(colon + 1), &port) || port <= 0 || port > 65535) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--cluster: \"", part, "\" is not host:port (give every shard's address, in order, "
          "comma-separated)"));
    }
    for (const std::string& seen : spec.addresses_) {
      if (seen == part) {
        return absl::InvalidArgumentError(
            absl::StrCat("--cluster names ", part, " twice"));
      }
    }
    spec.addresses_.emplace_back(part);
  }
  if (shard < 0 || shard >= spec.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--shard=", shard, " is not an index into the ", spec.size(),
        " shards of --cluster (0 to ", spec.size() - 1, ")"));
  }
  spec.self_ = shard;
  auto table = placement::SlotTable::Static(spec.size());
  if (!table.ok()) return table.status();
  spec.table_ = *std::move(table);
  return spec;
}

uint64_t ClusterSpec::FirstId() const {
  std::random_device random;
  const uint64_t low = ((uint64_t{random()} << 32) | random()) & (kLowMask >> 1);
  return (uint64_t(self_ + 1) << kShardShift) | (low + 1);
}

int ClusterSpec::HomeOf(uint64_t id) const {
  const int home = static_cast<int>(id >> kShardShift) - 1;
  return home >= 0 && home < size() ? home : -1;
}

absl::StatusOr<int> ShardFromPodName(absl::string_view hostname) {
  const size_t dash = hostname.rfind('-');
  int index = -1;
  if (dash == absl::string_view::npos ||
      !absl::SimpleAtoi(hostname.substr(dash + 1), &index) || index < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot take the shard index from host name \"", hostname,
        "\": expected a StatefulSet pod name such as varscope-2 (or pass --shard)"));
  }
  return index;
}

}  // namespace varscope::cluster
