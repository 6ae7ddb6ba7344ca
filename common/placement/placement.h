// File: placement.h
// Where a variable lives in a cluster of N shards (DESIGN.md §6), computed
// the same way by every shard and by the client library:
//
//   key  = PlacementKey(name)   the full name without ":0"; an optimizer
//                               slot ("w/Adam") is placed with its variable
//                               ("w"). Each part of a partitioned variable
//                               is placed by its own name ("emb/part_1"), so
//                               parts spread over shards like TensorFlow's
//                               replica_device_setter spreads them; its
//                               slots go with it ("emb/part_1/Ftrl").
//   slot = SlotOf(key)          fmix64(FNV-1a 64 of the key's bytes) mod
//                               kSlots (fmix64: MurmurHash3's finalizer)
//   shard = table.ShardOf(slot) a versioned slot table; the static one is
//                               slot mod N
//
// The hash, kSlots and the slot suffixes are part of the on-disk and wire
// contract (cluster checkpoints record the table): change them never.
//
// Thread-safety: pure functions; SlotTable is an immutable value.
#ifndef VARSCOPE_COMMON_PLACEMENT_PLACEMENT_H_
#define VARSCOPE_COMMON_PLACEMENT_PLACEMENT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace varscope::placement {

// Slots a cluster's names hash into. Fixed: slots, not names, move
// between shards.
inline constexpr uint32_t kSlots = 4096;

// The name a variable is placed by (see the top).
absl::string_view PlacementKey(absl::string_view full_name);

// fmix64(FNV-1a 64 of `key`) mod kSlots.
uint32_t SlotOf(absl::string_view key);

// Which shard owns each slot. A value: copy freely.
class SlotTable {
 public:
  // The static table of `shards` shards: slot s on shard s mod shards.
  static absl::StatusOr<SlotTable> Static(int shards);
  // A table from its assignment (kSlots entries, each < shards).
  static absl::StatusOr<SlotTable> FromAssignment(std::vector<uint32_t> shard_of_slot,
                                                  int shards);
  SlotTable() = default;

  int shards() const { return shards_; }
  int ShardOf(uint32_t slot) const { return static_cast<int>(shard_of_slot_[slot]); }
  // The shard owning `full_name`.
  int OwnerOf(absl::string_view full_name) const {
    return ShardOf(SlotOf(PlacementKey(full_name)));
  }
  const std::vector<uint32_t>& assignment() const { return shard_of_slot_; }
  // A fingerprint of (shards, assignment), never 0: two tables with the same
  // version place every name the same way. Clients send the version they
  // route by; a shard whose table differs says so.
  uint64_t version() const { return version_; }

 private:
  int shards_ = 0;
  std::vector<uint32_t> shard_of_slot_;
  uint64_t version_ = 0;
};

}  // namespace varscope::placement

#endif  // VARSCOPE_COMMON_PLACEMENT_PLACEMENT_H_
