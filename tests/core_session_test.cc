// SessionManager: leases with an injected clock, handle errors, nesting.
#include "server/core/base/error_info.h"
#include "server/core/namespace/session_manager.h"
#include "tests/test_util.h"

namespace varscope::core {
namespace {

class SessionTest : public ::testing::Test {
 protected:
  FakeClock clock_;
  VariableStore store_{StoreOptions{}};
  SessionManager sessions_{&store_, &clock_, SessionOptions{}};

  uint64_t Open(absl::Duration lease = absl::ZeroDuration()) {
    return sessions_.OpenSession("test", lease)->id;
  }
  absl::StatusOr<ScopeInfo> Scope(uint64_t s, uint64_t parent,
                                  const std::string& name) {
    OpenScopeRequest r;
    r.parent = parent;
    r.name = name;
    return sessions_.OpenScope(s, r);
  }
};

TEST_F(SessionTest, LeaseExpiresWithoutKeepAlive) {
  const uint64_t s = Open(absl::Seconds(10));
  clock_.Advance(absl::Seconds(9));
  ASSERT_OK(sessions_.KeepAlive(s));  // renews to t=19
  clock_.Advance(absl::Seconds(9));
  ASSERT_OK(sessions_.KeepAlive(s));
  clock_.Advance(absl::Seconds(11));
  auto expired = sessions_.KeepAlive(s);
  EXPECT_CODE(expired, kNotFound);
  EXPECT_TRUE(HasReason(expired.status(), kSessionNotFound));
  EXPECT_NE(std::string(expired.status().message()).find("open a new session"),
            std::string::npos);
}

TEST_F(SessionTest, ReaperReleasesExpiredSessionsButKeepsVariables) {
  const uint64_t s = Open(absl::Seconds(5));
  ASSERT_OK_AND_ASSIGN(ScopeInfo scope, Scope(s, 0, "a"));
  GetVariableRequest r;
  r.name = "v";
  r.shape = ShapeSpec::Of({1});
  ASSERT_OK(sessions_.GetVariable(s, scope.id, r));
  Open(absl::Seconds(60));
  clock_.Advance(absl::Seconds(6));
  EXPECT_EQ(sessions_.ReapExpired(), 1);
  EXPECT_EQ(sessions_.num_sessions(), 1u);
  EXPECT_CODE(sessions_.GetVariable(s, scope.id, r), kNotFound);
  EXPECT_OK(store_.Describe("a/v"));
}

TEST_F(SessionTest, LeaseIsClamped) {
  EXPECT_EQ(sessions_.OpenSession("x", absl::Milliseconds(1))->lease,
            absl::Seconds(1));
  EXPECT_EQ(sessions_.OpenSession("x", absl::Hours(100))->lease, absl::Hours(1));
  EXPECT_EQ(sessions_.OpenSession("x", absl::ZeroDuration())->lease,
            absl::Seconds(30));
  EXPECT_CODE(sessions_.OpenSession("x", absl::Seconds(-1)), kInvalidArgument);
}

TEST_F(SessionTest, CloseInnermostFirst) {
  const uint64_t s = Open();
  ASSERT_OK_AND_ASSIGN(ScopeInfo outer, Scope(s, 0, "outer"));
  ASSERT_OK_AND_ASSIGN(ScopeInfo inner, Scope(s, outer.id, "inner"));
  EXPECT_CODE(sessions_.CloseScope(s, outer.id), kFailedPrecondition);
  EXPECT_CODE(sessions_.CloseScope(s, 0), kInvalidArgument);
  ASSERT_OK(sessions_.CloseScope(s, inner.id));
  EXPECT_CODE(sessions_.CloseScope(s, inner.id), kFailedPrecondition);
  ASSERT_OK(sessions_.CloseScope(s, outer.id));
  // Opening under a closed handle is refused; re-entering it is fine.
  EXPECT_CODE(Scope(s, outer.id, "x"), kFailedPrecondition);
  OpenScopeRequest reenter;
  reenter.reenter = outer.id;
  EXPECT_OK(sessions_.OpenScope(s, reenter));
}

TEST_F(SessionTest, UnknownHandlesAndSessions) {
  const uint64_t s = Open();
  auto missing = Scope(s, 999, "x");
  EXPECT_CODE(missing, kNotFound);
  EXPECT_TRUE(HasReason(missing.status(), kScopeNotFound));
  EXPECT_CODE(Scope(12345, 0, "x"), kNotFound);
  // Handles are per session.
  const uint64_t other = Open();
  ASSERT_OK_AND_ASSIGN(ScopeInfo mine, Scope(s, 0, "mine"));
  EXPECT_CODE(Scope(other, mine.id, "x"), kNotFound);
}

TEST_F(SessionTest, ScopeRequestErrors) {
  const uint64_t s = Open();
  OpenScopeRequest none;
  EXPECT_CODE(sessions_.OpenScope(s, none), kInvalidArgument);
  OpenScopeRequest default_with_reuse;
  default_with_reuse.default_name = "d";
  default_with_reuse.reuse = Reuse::kReuse;
  EXPECT_CODE(sessions_.OpenScope(s, default_with_reuse), kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(ScopeInfo ns, [&] {
    OpenScopeRequest r;
    r.kind = ScopeKind::kNameScope;
    r.name = "ns";
    return sessions_.OpenScope(s, r);
  }());
  OpenScopeRequest reenter_ns;
  reenter_ns.reenter = ns.id;
  EXPECT_CODE(sessions_.OpenScope(s, reenter_ns), kInvalidArgument);
}

TEST_F(SessionTest, NameScopeAbsoluteAndReset) {
  const uint64_t s = Open();
  OpenScopeRequest absolute;
  absolute.kind = ScopeKind::kNameScope;
  absolute.name = "foo/";
  ASSERT_OK_AND_ASSIGN(ScopeInfo a, sessions_.OpenScope(s, absolute));
  EXPECT_EQ(a.name_scope, "foo/");
  ASSERT_OK_AND_ASSIGN(ScopeInfo b, sessions_.OpenScope(s, absolute));
  EXPECT_EQ(b.name_scope, "foo/");  // absolute: not uniquified
  EXPECT_EQ(*sessions_.OpName(s, a.id, "trailing/"), "trailing:0");
}

}  // namespace
}  // namespace varscope::core

namespace varscope::core {
namespace {

// A failed NewVariable takes back the op name it picked: the next one gets
// the same name.
TEST(SessionNames, FailedNewVariableGivesItsNameBack) {
  FakeClock clock;
  StoreOptions small;
  small.max_memory_bytes = 64;
  VariableStore store(small);
  SessionManager sessions(&store, &clock, SessionOptions{});
  const uint64_t s = sessions.OpenSession("t", absl::ZeroDuration())->id;
  auto value = [](int64_t elements) {
    NewVariableRequest r;
    InitializerSpec init;
    init.kind = InitializerSpec::Kind::kValue;
    init.value.dtype = DType::kFloat;
    init.value.shape = {elements};
    std::vector<float> data(static_cast<size_t>(elements), 1.0f);
    init.value.buffer = TensorBuffer::CopyOf(data.data(), data.size() * sizeof(float));
    r.variable.initializer = init;
    return r;
  };
  auto too_big = sessions.NewVariable(s, 0, value(1000));
  EXPECT_CODE(too_big, kResourceExhausted);
  EXPECT_TRUE(HasReason(too_big.status(), kQuotaExceeded));
  ASSERT_OK_AND_ASSIGN(VariableInfo first, sessions.NewVariable(s, 0, value(2)));
  EXPECT_EQ(first.name, "Variable");
  ASSERT_OK_AND_ASSIGN(std::string op, sessions.OpName(s, 0, "Variable", /*preview=*/true));
  EXPECT_EQ(op, "Variable_1:0");
}

// UpdateScope replaces or removes each default it names and leaves the
// others; scopes opened afterwards inherit the result.
TEST(SessionDefaults, UpdateScopeSetsAndClearsEachDefault) {
  FakeClock clock;
  VariableStore store(StoreOptions{});
  SessionManager sessions(&store, &clock, SessionOptions{});
  const uint64_t s = sessions.OpenSession("t", absl::ZeroDuration())->id;
  OpenScopeRequest open;
  open.name = "s";
  ASSERT_OK_AND_ASSIGN(ScopeInfo scope, sessions.OpenScope(s, open));
  InitializerSpec ones;
  ones.kind = InitializerSpec::Kind::kOnes;
  PartitionerSpec two;
  two.kind = PartitionerSpec::Kind::kFixedSize;
  two.num_shards = 2;
  ScopeDefaultsUpdate set;
  set.initializer = ones;
  set.partitioner = two;
  set.dtype = DType::kDouble;
  ASSERT_OK_AND_ASSIGN(ScopeInfo updated, sessions.UpdateScope(s, scope.id, set));
  EXPECT_TRUE(updated.initializer.has_value());
  EXPECT_TRUE(updated.partitioner.has_value());
  EXPECT_EQ(updated.dtype, DType::kDouble);
  GetVariableRequest get;
  get.name = "w";
  get.shape = ShapeSpec::Of({4});
  ASSERT_OK_AND_ASSIGN(VariableInfo w, sessions.GetVariable(s, scope.id, get));
  EXPECT_TRUE(w.partitioned);
  EXPECT_EQ(w.parts.size(), 2u);
  EXPECT_EQ(w.dtype, DType::kDouble);
  EXPECT_EQ(w.parts[0].initializer.kind, InitializerSpec::Kind::kOnes);

  ScopeDefaultsUpdate clear;
  clear.partitioner = std::optional<PartitionerSpec>();  // removes it
  ASSERT_OK_AND_ASSIGN(ScopeInfo cleared, sessions.UpdateScope(s, scope.id, clear));
  EXPECT_FALSE(cleared.partitioner.has_value());
  EXPECT_TRUE(cleared.initializer.has_value());  // untouched
  OpenScopeRequest child;
  child.parent = scope.id;
  child.name = "child";
  ASSERT_OK_AND_ASSIGN(ScopeInfo inner, sessions.OpenScope(s, child));
  EXPECT_FALSE(inner.partitioner.has_value());
  EXPECT_EQ(inner.dtype, DType::kDouble);
  get.name = "v";
  ASSERT_OK_AND_ASSIGN(VariableInfo v, sessions.GetVariable(s, inner.id, get));
  EXPECT_FALSE(v.partitioned);
  // An unknown handle changes nothing.
  EXPECT_CODE(sessions.UpdateScope(s, 424242, set), kNotFound);
}

// Another session's handle re-enters only for the same token owner.
TEST(SessionHandles, ReentryAcrossSessionsNeedsTheSameOwner) {
  FakeClock clock;
  VariableStore store(StoreOptions{});
  SessionManager sessions(&store, &clock, SessionOptions{});
  const uint64_t alice = sessions.OpenSession("a", absl::ZeroDuration(), "alice")->id;
  const uint64_t alice2 = sessions.OpenSession("a2", absl::ZeroDuration(), "alice")->id;
  const uint64_t bob = sessions.OpenSession("b", absl::ZeroDuration(), "bob")->id;
  OpenScopeRequest open;
  open.name = "private";
  ASSERT_OK_AND_ASSIGN(ScopeInfo scope, sessions.OpenScope(alice, open));
  OpenScopeRequest reenter;
  reenter.reenter = scope.id;
  auto stolen = sessions.OpenScope(bob, reenter);
  EXPECT_CODE(stolen, kNotFound);
  EXPECT_TRUE(HasReason(stolen.status(), kScopeNotFound));
  ASSERT_OK_AND_ASSIGN(ScopeInfo shared, sessions.OpenScope(alice2, reenter));
  EXPECT_EQ(shared.name, "private");
  // Not usable as a parent or a GetVariable scope from another session.
  OpenScopeRequest under;
  under.parent = scope.id;
  under.name = "x";
  EXPECT_CODE(sessions.OpenScope(alice2, under), kNotFound);
  // An expired session's handles are gone too, reaped or not.
  clock.Advance(absl::Seconds(20));
  ASSERT_OK(sessions.KeepAlive(alice2));
  clock.Advance(absl::Seconds(20));  // alice's lease (30 s) ran out; alice2's did not
  EXPECT_CODE(sessions.OpenScope(alice2, reenter), kNotFound);
}

}  // namespace
}  // namespace varscope::core
