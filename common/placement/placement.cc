#include "common/placement/placement.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace varscope::placement {
namespace {

constexpr uint64_t kFnvOffset = 14695981039346656037ull;
constexpr uint64_t kFnvPrime = 1099511628211ull;

uint64_t Fnv1a(absl::string_view bytes, uint64_t h = kFnvOffset) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= kFnvPrime;
  }
  return h;
}

// The slot variables TensorFlow 1.x's optimizers create, "<var>/<suffix>".
constexpr absl::string_view kSlotSuffixes[] = {
    "Momentum", "Adagrad", "Adam", "Adam_1", "RMSProp",
    "RMSProp_1", "RMSProp_2", "Ftrl", "Ftrl_1",
};

}  // namespace

absl::string_view PlacementKey(absl::string_view full_name) {
  absl::string_view name = full_name;
  absl::ConsumeSuffix(&name, ":0");
  const size_t slash = name.rfind('/');
  if (slash == absl::string_view::npos) return name;
  for (absl::string_view suffix : kSlotSuffixes) {
    if (name.substr(slash + 1) == suffix) {
      return name.substr(0, slash);
    }
  }
  return name;
}

// MurmurHash3's 64-bit finalizer: FNV-1a alone maps names that differ in
// their last character to slots an arithmetic progression apart (step
// 435 = the prime's low bits), so such names would share a shard whenever
// the shard count divides the step.
uint64_t Mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

uint32_t SlotOf(absl::string_view key) {
  return static_cast<uint32_t>(Mix(Fnv1a(key)) % kSlots);
}

absl::StatusOr<SlotTable> SlotTable::Static(int shards) {
  if (shards < 1) return absl::InvalidArgumentError("a cluster needs at least one shard");
  std::vector<uint32_t> assignment(kSlots);
  for (uint32_t slot = 0; slot < kSlots; ++slot) {
    assignment[slot] = slot % static_cast<uint32_t>(shards);
  }
  return FromAssignment(std::move(assignment), shards);
}

absl::StatusOr<SlotTable> SlotTable::FromAssignment(std::vector<uint32_t> shard_of_slot,
                                                    int shards) {
  if (shards < 1 || shards > 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("a cluster has 1 to 1024 shards, not ", shards));
  }
  if (shard_of_slot.size() != kSlots) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a slot table has ", kSlots, " entries, not ", shard_of_slot.size()));
  }
  uint64_t h = Fnv1a(absl::StrCat("shards=", shards, ";"));
  for (uint32_t shard : shard_of_slot) {
    if (shard >= static_cast<uint32_t>(shards)) {
      return absl::InvalidArgumentError(
          absl::StrCat("a slot table names shard ", shard, " of ", shards));
    }
    h = Fnv1a(absl::StrCat(shard, ","), h);
  }
  SlotTable table;
  table.shards_ = shards;
  table.shard_of_slot_ = std::move(shard_of_slot);
  table.version_ = h == 0 ? 1 : h;
  return table;
}

}  // namespace varscope::placement
