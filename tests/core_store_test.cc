// VariableStore: the get_variable decision procedure, partitioned variables,
// collections, listing, deletion and the creation race.
#include <atomic>
#include <cstring>
#include <thread>

#include "server/core/namespace/names.h"
#include "server/core/namespace/variable_store.h"
#include "absl/strings/str_cat.h"
#include "tests/test_util.h"

namespace varscope::core {
namespace {

GetVariableRequest Req(std::string name, std::vector<int64_t> shape) {
  GetVariableRequest r;
  r.name = std::move(name);
  r.shape = ShapeSpec::Of(std::move(shape));
  return r;
}

ScopeContext Scope(std::string name, Reuse reuse = Reuse::kInherit) {
  ScopeContext s;
  s.name = std::move(name);
  s.reuse = reuse;
  return s;
}

PartitionerSpec Fixed(int64_t shards) {
  PartitionerSpec p;
  p.kind = PartitionerSpec::Kind::kFixedSize;
  p.num_shards = shards;
  return p;
}

TEST(GetVariable, ReuseScopeReturnsSameStorage) {
  VariableStore store({});
  ASSERT_OK_AND_ASSIGN(VariableInfo a, store.GetVariable(Scope("s"), Req("v", {4})));
  ASSERT_OK_AND_ASSIGN(VariableInfo b,
                       store.GetVariable(Scope("s", Reuse::kReuse), Req("v", {4})));
  EXPECT_TRUE(a.created);
  EXPECT_FALSE(b.created);
  EXPECT_EQ(*store.ReadValue("s/v"), *store.ReadValue("s/v:0"));
  EXPECT_EQ(a.version, 1u);
}

TEST(GetVariable, CreateNeedsFullyDefinedShape) {
  VariableStore store({});
  auto partial = store.GetVariable(Scope(""), Req("v", {-1, 3}));
  EXPECT_CODE(partial, kInvalidArgument);
  EXPECT_NE(std::string(partial.status().message()).find("must be fully defined"),
            std::string::npos);
  GetVariableRequest no_shape;
  no_shape.name = "v";
  EXPECT_CODE(store.GetVariable(Scope(""), no_shape), kInvalidArgument);
  EXPECT_EQ(store.num_variables(), 0u);
}

TEST(GetVariable, DefaultInitializerByDtype) {
  VariableStore store({});
  GetVariableRequest ints = Req("i", {8});
  ints.dtype = DType::kInt64;
  ASSERT_OK_AND_ASSIGN(VariableInfo i, store.GetVariable(Scope(""), ints));
  EXPECT_EQ(i.initializer.kind, InitializerSpec::Kind::kZeros);
  ASSERT_OK_AND_ASSIGN(VariableInfo f, store.GetVariable(Scope(""), Req("f", {8})));
  EXPECT_EQ(f.initializer.kind, InitializerSpec::Kind::kGlorotUniform);
  EXPECT_EQ(f.dtype, DType::kFloat);
  auto value = *store.ReadValue("i");
  for (size_t k = 0; k < value->size(); ++k) EXPECT_EQ(value->data()[k], 0);
}

TEST(GetVariable, ScopeInitializerIsInheritedAndOverridden) {
  VariableStore store({});
  ScopeContext scope = Scope("s");
  scope.initializer = InitializerSpec::Of(InitializerSpec::Kind::kOnes);
  ASSERT_OK(store.GetVariable(scope, Req("a", {2})));
  GetVariableRequest zeros = Req("b", {2});
  zeros.initializer = InitializerSpec::Zeros();
  ASSERT_OK(store.GetVariable(scope, zeros));
  float a[2], b[2];
  std::memcpy(a, (*store.ReadValue("s/a"))->data(), sizeof(a));
  std::memcpy(b, (*store.ReadValue("s/b"))->data(), sizeof(b));
  EXPECT_EQ(a[0], 1.0f);
  EXPECT_EQ(b[1], 0.0f);
}

TEST(GetVariable, InitializeFromValue) {
  VariableStore store({});
  InitializerSpec value;
  value.kind = InitializerSpec::Kind::kValue;
  value.value.dtype = DType::kInt32;
  value.value.shape = {3};
  const int32_t data[3] = {7, 8, 9};
  value.value.buffer = TensorBuffer::CopyOf(data, sizeof(data));
  GetVariableRequest r;
  r.name = "v";
  r.initializer = value;
  ASSERT_OK_AND_ASSIGN(VariableInfo v, store.GetVariable(Scope(""), r));
  EXPECT_EQ(v.dtype, DType::kInt32);  // the value's dtype, not float32
  EXPECT_EQ(v.shape, Shape({3}));
  EXPECT_EQ(std::memcmp((*store.ReadValue("v"))->data(), data, sizeof(data)), 0);
  // With a shape: "do not specify shape"; with another dtype: mismatch.
  GetVariableRequest with_shape = r;
  with_shape.name = "w";
  with_shape.shape = ShapeSpec::Of({3});
  EXPECT_CODE(store.GetVariable(Scope(""), with_shape), kInvalidArgument);
  GetVariableRequest with_dtype = r;
  with_dtype.name = "x";
  with_dtype.dtype = DType::kFloat;
  auto mismatch = store.GetVariable(Scope(""), with_dtype);
  EXPECT_CODE(mismatch, kInvalidArgument);
  EXPECT_NE(std::string(mismatch.status().message()).find("don't match"),
            std::string::npos);
}

TEST(GetVariable, RejectsBadInputWithoutChangingTheStore) {
  StoreOptions small;
  small.max_variable_bytes = 1 << 20;
  VariableStore store(small);
  EXPECT_CODE(store.GetVariable(Scope(""), Req("big", {1 << 20})),
              kResourceExhausted);
  EXPECT_CODE(store.GetVariable(Scope(""), Req("neg", {-2})), kInvalidArgument);
  EXPECT_CODE(store.GetVariable(Scope(""), Req("overflow", {1LL << 40, 1LL << 40})),
              kInvalidArgument);
  EXPECT_CODE(store.GetVariable(Scope(""), Req("rank", std::vector<int64_t>(33, 1))),
              kInvalidArgument);
  EXPECT_CODE(store.GetVariable(Scope(""), Req("", {1})), kInvalidArgument);
  GetVariableRequest normal_int = Req("n", {2});
  normal_int.dtype = DType::kInt32;
  normal_int.initializer = InitializerSpec::Of(InitializerSpec::Kind::kRandomNormal);
  EXPECT_CODE(store.GetVariable(Scope(""), normal_int), kInvalidArgument);
  GetVariableRequest bad_collection = Req("c", {1});
  bad_collection.collections = {"has space"};
  EXPECT_CODE(store.GetVariable(Scope(""), bad_collection), kInvalidArgument);
  EXPECT_EQ(store.num_variables(), 0u);
  EXPECT_EQ(store.total_bytes(), 0);
}

TEST(GetVariable, CollectionsLocalAndExplicit) {
  VariableStore store({});
  GetVariableRequest local = Req("l", {1});
  local.local = true;
  ASSERT_OK_AND_ASSIGN(VariableInfo l, store.GetVariable(Scope(""), local));
  EXPECT_FALSE(l.trainable);
  // TF's get_local_variable: the given collections (none) plus
  // local_variables, so a local variable is not global.
  EXPECT_EQ(l.collections, (std::vector<std::string>{"local_variables"}));
  GetVariableRequest local_listed = Req("l2", {1});
  local_listed.local = true;
  local_listed.collections = std::vector<std::string>{"mine"};
  ASSERT_OK_AND_ASSIGN(VariableInfo l2, store.GetVariable(Scope(""), local_listed));
  EXPECT_EQ(l2.collections, (std::vector<std::string>{"mine", "local_variables"}));
  GetVariableRequest custom = Req("c", {1});
  custom.collections = {"concatenated"};
  ASSERT_OK_AND_ASSIGN(VariableInfo c, store.GetVariable(Scope(""), custom));
  EXPECT_EQ(c.collections,
            (std::vector<std::string>{"concatenated", "trainable_variables"}));
  ListOptions trainable;
  trainable.collection = "trainable_variables";
  ASSERT_EQ(store.List(trainable).variables.size(), 1u);
  EXPECT_EQ(store.List(trainable).variables[0].name, "c");
}

// Collection pages continue after the last entry returned, whatever was
// deleted or re-created meanwhile: nothing is skipped or repeated.
TEST(List, CollectionPagesSurviveDeletesAndRecreates) {
  VariableStore store({});
  for (int i = 0; i < 6; ++i) {
    ASSERT_OK(store.GetVariable(Scope(""), Req(absl::StrCat("v", i), {1})));
  }
  ListOptions options;
  options.collection = kGlobalVariables;
  options.limit = 2;
  ListPage first = store.List(options);
  ASSERT_EQ(first.variables.size(), 2u);
  EXPECT_EQ(first.variables[1].name, "v1");
  // Two earlier entries and the cursor's own go away; v1 comes back later.
  ASSERT_OK(store.Delete("v0"));
  ASSERT_OK(store.Delete("v1"));
  ASSERT_OK(store.GetVariable(Scope(""), Req("v1", {1})));
  options.after = first.next;
  std::vector<std::string> rest;
  while (options.after.has_value()) {
    ListPage page = store.List(options);
    for (const VariableInfo& v : page.variables) rest.push_back(v.name);
    options.after = page.next;
  }
  EXPECT_EQ(rest, (std::vector<std::string>{"v2", "v3", "v4", "v5", "v1"}));
}

TEST(List, LiteralPrefix) {
  VariableStore store({});
  ASSERT_OK(store.GetVariable(Scope("foo"), Req("a", {1})));
  ASSERT_OK(store.GetVariable(Scope("foo_"), Req("b", {1})));
  ASSERT_OK(store.GetVariable(Scope("foo/bar"), Req("c", {1})));
  ListOptions options;
  options.prefix = "foo";
  std::vector<VariableInfo> listed = store.List(options).variables;
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0].name, "foo/a");
  EXPECT_EQ(listed[1].name, "foo/bar/c");
}

TEST(Partitioned, UnevenSplitGivesExtraRowsToFirstParts) {  // trap 9
  VariableStore store({});
  GetVariableRequest r = Req("v", {43, 4});
  r.partitioner = Fixed(3);
  ASSERT_OK_AND_ASSIGN(VariableInfo v, store.GetVariable(Scope("scope0"), r));
  EXPECT_TRUE(v.partitioned);
  EXPECT_EQ(v.name, "scope0/v");
  ASSERT_EQ(v.parts.size(), 3u);
  EXPECT_EQ(v.parts[0].name, "scope0/v/part_0");
  EXPECT_EQ(v.parts[0].shape, Shape({15, 4}));
  EXPECT_EQ(v.parts[1].shape, Shape({14, 4}));
  EXPECT_EQ(v.parts[2].shape, Shape({14, 4}));
  EXPECT_EQ(v.parts[2].slice->offset, Shape({29, 0}));
  EXPECT_EQ(v.partitions, std::vector<int64_t>({3, 1}));
}

TEST(Partitioned, AllOnesStillMakesPart0) {  // trap 10
  VariableStore store({});
  GetVariableRequest r = Req("v", {4, 4});
  r.partitioner = Fixed(1);
  ASSERT_OK_AND_ASSIGN(VariableInfo v, store.GetVariable(Scope(""), r));
  ASSERT_EQ(v.parts.size(), 1u);
  EXPECT_EQ(v.parts[0].name, "v/part_0");
}

TEST(Partitioned, ScalarIgnoresPartitioner) {
  VariableStore store({});
  GetVariableRequest r = Req("name0", {});
  r.partitioner = Fixed(2);
  ASSERT_OK_AND_ASSIGN(VariableInfo v, store.GetVariable(Scope("scope0"), r));
  EXPECT_FALSE(v.partitioned);
  EXPECT_EQ(v.name, "scope0/name0");
}

TEST(Partitioned, ReuseRules) {
  VariableStore store({});
  GetVariableRequest r = Req("v", {10, 10});
  r.partitioner = Fixed(2);
  ASSERT_OK(store.GetVariable(Scope(""), r));
  EXPECT_CODE(store.GetVariable(Scope(""), r), kAlreadyExists);
  ASSERT_OK_AND_ASSIGN(VariableInfo again, store.GetVariable(Scope("", Reuse::kAutoReuse), r));
  EXPECT_FALSE(again.created);
  GetVariableRequest changed = r;
  changed.partitioner = Fixed(5);
  auto mismatch = store.GetVariable(Scope("", Reuse::kReuse), changed);
  EXPECT_CODE(mismatch, kInvalidArgument);
  EXPECT_NE(std::string(mismatch.status().message())
                .find("specified partitions [5, 1] and found partitions [2, 1]"),
            std::string::npos);
  // REUSE without a partitioner (and without a shape) returns it.
  GetVariableRequest plain;
  plain.name = "v";
  ASSERT_OK_AND_ASSIGN(VariableInfo reused, store.GetVariable(Scope("", Reuse::kReuse), plain));
  EXPECT_TRUE(reused.partitioned);
  // AUTO_REUSE without a partitioner takes the single path and fails.
  auto no_partitioner = store.GetVariable(Scope("", Reuse::kAutoReuse), plain);
  EXPECT_CODE(no_partitioner, kInvalidArgument);
  EXPECT_NE(std::string(no_partitioner.status().message()).find("No partitioner was provided"),
            std::string::npos);
  // A plain variable of the same name blocks a partitioned one.
  ASSERT_OK(store.GetVariable(Scope(""), Req("plain", {4})));
  GetVariableRequest part_plain = Req("plain", {4});
  part_plain.partitioner = Fixed(2);
  EXPECT_CODE(store.GetVariable(Scope("", Reuse::kAutoReuse), part_plain), kInvalidArgument);
  GetVariableRequest absent = Req("absent", {4});
  absent.partitioner = Fixed(2);
  EXPECT_CODE(store.GetVariable(Scope("", Reuse::kReuse), absent), kNotFound);
}

TEST(Partitioned, EmptyPartsRejectedBeforeAnythingIsCreated) {
  VariableStore store({});
  GetVariableRequest r = Req("v", {3, 2});
  PartitionerSpec p;
  p.kind = PartitionerSpec::Kind::kExplicit;
  p.partitions = {5, 1};
  r.partitioner = p;
  EXPECT_CODE(store.GetVariable(Scope(""), r), kInvalidArgument);
  p.partitions = {3, 2};
  r.partitioner = p;
  EXPECT_CODE(store.GetVariable(Scope(""), r), kInvalidArgument);  // two axes
  EXPECT_EQ(store.num_variables(), 0u);
}

TEST(Partitioned, ValueInitializerIsSlicedPerPart) {
  VariableStore store({});
  InitializerSpec value;
  value.kind = InitializerSpec::Kind::kValue;
  value.value.dtype = DType::kFloat;
  value.value.shape = {5, 2};
  std::vector<float> data(10);
  for (int i = 0; i < 10; ++i) data[i] = static_cast<float>(i);
  value.value.buffer = TensorBuffer::CopyOf(data.data(), 40);
  GetVariableRequest r;
  r.name = "v";
  r.initializer = value;
  r.partitioner = Fixed(2);
  ASSERT_OK(store.GetVariable(Scope(""), r));
  float part1[4];
  std::memcpy(part1, (*store.ReadValue("v/part_1"))->data(), sizeof(part1));
  EXPECT_EQ(part1[0], 6.0f);  // rows 3..4
  EXPECT_EQ(part1[3], 9.0f);
}

TEST(Delete, PartitionedWithPartsAndPartAlone) {
  VariableStore store({});
  GetVariableRequest r = Req("v", {4});
  r.partitioner = Fixed(2);
  ASSERT_OK(store.GetVariable(Scope(""), r));
  EXPECT_CODE(store.Delete("v/part_0"), kFailedPrecondition);
  ASSERT_OK_AND_ASSIGN(auto removed, store.Delete("v"));
  EXPECT_EQ(removed.size(), 3u);
  EXPECT_EQ(store.num_variables(), 0u);
  EXPECT_EQ(store.total_bytes(), 0);
  EXPECT_CODE(store.Delete("v"), kNotFound);
}

// A cluster places each part by its own name: the owner of "v" keeps the
// record and part 0, another shard part 1, created through Stage/Publish
// (cluster/spread_parts.h drives the steps over gRPC).
TEST(SpreadParts, StagePublishIdempotentRecreatedExpiredAndTaken) {
  auto not_part1 = [](absl::string_view name) { return name != "v/part_1"; };
  auto part1_only = [](absl::string_view name) { return name == "v/part_1"; };
  VariableStore owner({});
  owner.set_placement(not_part1);
  VariableStore other({});
  other.set_placement(part1_only);
  InitializerSpec value;
  value.kind = InitializerSpec::Kind::kValue;
  value.value.dtype = DType::kFloat;
  value.value.shape = {5, 2};
  std::vector<float> data(10);
  for (int i = 0; i < 10; ++i) data[i] = static_cast<float>(i);
  value.value.buffer = TensorBuffer::CopyOf(data.data(), 40);
  GetVariableRequest r;
  r.name = "v";
  r.initializer = value;
  r.partitioner = Fixed(2);
  // Only the cluster service can create it; nothing is left behind.
  EXPECT_CODE(owner.GetVariable(Scope(""), r), kInternal);
  EXPECT_FALSE(owner.NameInUse("v"));

  ASSERT_OK_AND_ASSIGN(VariableStore::Begun begun, owner.BeginGetVariable(Scope(""), r));
  ASSERT_NE(begun.creation, nullptr);
  EXPECT_EQ(begun.creation->remote_parts(), std::vector<int>{1});
  const PartitionedState whole = begun.creation->whole();
  ASSERT_OK(other.StagePart(whole, 1, 7));
  ASSERT_OK(other.StagePart(whole, 1, 7));  // idempotent
  EXPECT_CODE(other.Find("v/part_1"), kNotFound);  // staged: invisible
  ASSERT_OK_AND_ASSIGN(VariableInfo info, owner.FinishCreation(std::move(begun.creation)));
  ASSERT_EQ(info.parts.size(), 2u);
  EXPECT_EQ(info.parts[1].name, "v/part_1");
  EXPECT_EQ(info.parts[1].shape, (Shape{2, 2}));
  EXPECT_EQ(info.parts[1].slice->offset, (Shape{3, 0}));
  ASSERT_OK(other.PublishPart(whole, 1, 7));
  ASSERT_OK(other.PublishPart(whole, 1, 8));  // published already
  float part1[4];
  std::memcpy(part1, (*other.ReadValue("v/part_1"))->data(), sizeof(part1));
  EXPECT_EQ(part1[0], 6.0f);  // rows 3..4, as on one server
  EXPECT_EQ(part1[3], 9.0f);
  // A part is not deleted on its own, except as its owner's follow-up.
  EXPECT_CODE(other.Delete("v/part_1"), kFailedPrecondition);
  ASSERT_EQ(other.ForeignParts().size(), 1u);
  EXPECT_EQ(other.ForeignParts()[0].slice.full_name, "v");

  // A shard that lost the staged part (a restart) creates it on publish.
  VariableStore restarted({});
  restarted.set_placement(part1_only);
  ASSERT_OK(restarted.PublishPart(whole, 1, 9));
  std::memcpy(part1, (*restarted.ReadValue("v/part_1"))->data(), sizeof(part1));
  EXPECT_EQ(part1[0], 6.0f);
  // A stage whose creator never came back expires.
  VariableStore stale({});
  stale.set_placement(part1_only);
  ASSERT_OK(stale.StagePart(whole, 1, 10));
  EXPECT_TRUE(stale.DropStagedBefore(absl::Now() - absl::Minutes(1)).empty());
  EXPECT_EQ(stale.DropStagedBefore(absl::Now() + absl::Seconds(1)),
            std::vector<std::string>{"v/part_1"});
  EXPECT_EQ(stale.total_bytes(), 0);
  // A plain variable by the part's name refuses it, as on one server.
  ASSERT_OK(stale.GetVariable(Scope(""), Req("v/part_1", {2})));
  EXPECT_CODE(stale.StagePart(whole, 1, 11), kAlreadyExists);
  // A bad record from a peer is refused.
  PartitionedState bad = whole;
  bad.partitions = {9, 1};
  EXPECT_CODE(other.StagePart(bad, 1, 12), kInvalidArgument);
  EXPECT_CODE(other.StagePart(whole, 2, 12), kInvalidArgument);

  // The owner deletes the record and its part; the other part's name is
  // returned for its shard.
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> removed, owner.Delete("v"));
  EXPECT_EQ(removed, (std::vector<std::string>{"v/part_0", "v/part_1", "v"}));
  // The orphan left on the other shard (say its delete never arrived)
  // holds up the next creation (UNAVAILABLE, retry) until the keeper,
  // having asked the owner, deletes it at the version it checked.
  ASSERT_OK_AND_ASSIGN(begun, owner.BeginGetVariable(Scope(""), r));
  EXPECT_CODE(other.StagePart(begun.creation->whole(), 1, 13), kUnavailable);
  ASSERT_EQ(other.ForeignParts().size(), 1u);
  const uint64_t orphan_version = other.ForeignParts()[0].version;
  EXPECT_CODE(other.DeleteForeignPart("v/part_1", orphan_version + 1), kAborted);
  ASSERT_OK(other.DeleteForeignPart("v/part_1", orphan_version));
  ASSERT_OK(other.StagePart(begun.creation->whole(), 1, 13));
  EXPECT_CODE(other.Find("v/part_1"), kNotFound);
  owner.AbandonCreation(std::move(begun.creation));
  other.DropPart("v/part_1", 13);
  EXPECT_EQ(other.total_bytes(), 0);
  EXPECT_FALSE(owner.NameInUse("v"));
}

// 16 threads x 1000 names racing under AUTO_REUSE: exactly one creator per
// name and identical contents for everyone.
TEST(Concurrency, AutoReuseRaceCreatesEachNameOnce) {
  VariableStore store({});
  constexpr int kThreads = 16;
  constexpr int kNames = 1000;
  std::vector<std::atomic<int>> creators(kNames);
  std::vector<std::vector<std::shared_ptr<const TensorBuffer>>> seen(
      kThreads, std::vector<std::shared_ptr<const TensorBuffer>>(kNames));
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kNames; ++i) {
        const int n = (i + t * 61) % kNames;  // different orders per thread
        auto info = store.GetVariable(Scope("race", Reuse::kAutoReuse),
                                      Req("v" + std::to_string(n), {16}));
        if (!info.ok()) {
          errors++;
          continue;
        }
        if (info->created) creators[n]++;
        seen[t][n] = *store.ReadValue(info->name);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0);
  for (int n = 0; n < kNames; ++n) {
    EXPECT_EQ(creators[n].load(), 1) << n;
    for (int t = 1; t < kThreads; ++t) {
      ASSERT_EQ(seen[t][n], seen[0][n]);  // the very same buffer
    }
  }
  EXPECT_EQ(store.num_variables(), static_cast<size_t>(kNames));
}

TEST(Names, Validation) {
  EXPECT_OK(ValidateName("a.b-c_d/e", NamePosition::kRoot, "n"));
  EXPECT_OK(ValidateName(".hidden", NamePosition::kRoot, "n"));
  EXPECT_CODE(ValidateName("-x", NamePosition::kRoot, "n"), kInvalidArgument);
  EXPECT_OK(ValidateName("-x", NamePosition::kNested, "n"));
  EXPECT_CODE(ValidateName("a/", NamePosition::kNested, "n"), kInvalidArgument);
  EXPECT_CODE(ValidateName("a\x01", NamePosition::kNested, "n"), kInvalidArgument);
  EXPECT_CODE(ValidateName(std::string(1025, 'a'), NamePosition::kRoot, "n"),
              kInvalidArgument);
  EXPECT_TRUE(IsUnderPrefix("foo/a", "foo"));
  EXPECT_FALSE(IsUnderPrefix("foo_/a", "foo"));
}

}  // namespace
}  // namespace varscope::core
