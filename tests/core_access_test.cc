// Access rules, the tokens file, constant-time comparison, the in-flight
// limiter, and the store and session quotas (nothing half-created).
#include <cstring>

#include "server/core/access/access.h"
#include "server/core/data/data_plane.h"
#include "server/core/namespace/session_manager.h"
#include "tests/test_util.h"

namespace varscope::core {
namespace {

constexpr char kTokens[] = R"(# name   role     token                             scopes
chief     admin    0123456789abcdef0123456789abcdef
worker    trainer  fedcba9876543210fedcba9876543210  tower_0 tower_1/
dash      reader   aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbb
)";

TEST(TokenTableTest, ParsesRolesAndPrefixes) {
  ASSERT_OK_AND_ASSIGN(TokenTable table, TokenTable::Parse(kTokens));
  EXPECT_EQ(table.size(), 3u);
  const Principal* worker =
      table.Authenticate("fedcba9876543210fedcba9876543210");
  ASSERT_NE(worker, nullptr);
  EXPECT_EQ(worker->name, "worker");
  EXPECT_EQ(worker->role, Role::kTrainer);
  EXPECT_EQ(worker->prefixes, (std::vector<std::string>{"tower_0", "tower_1"}));
  EXPECT_TRUE(worker->MayTouch("tower_0"));
  EXPECT_TRUE(worker->MayTouch("tower_0/dense/kernel:0"));
  EXPECT_TRUE(worker->MayTouch("tower_1/w"));
  EXPECT_FALSE(worker->MayTouch("tower_01/w"));  // component-wise, not text
  EXPECT_FALSE(worker->MayTouch("shared/w"));
  EXPECT_FALSE(worker->MayTouch(""));
  const Principal* chief = table.Authenticate("0123456789abcdef0123456789abcdef");
  ASSERT_NE(chief, nullptr);
  EXPECT_TRUE(chief->MayTouch(""));
  EXPECT_TRUE(chief->MayTouch("anything/at/all"));
}

TEST(TokenTableTest, RefusesWrongAndNearMissTokens) {
  ASSERT_OK_AND_ASSIGN(TokenTable table, TokenTable::Parse(kTokens));
  EXPECT_EQ(table.Authenticate(""), nullptr);
  EXPECT_EQ(table.Authenticate("0123456789abcdef0123456789abcde"), nullptr);
  EXPECT_EQ(table.Authenticate("0123456789abcdef0123456789abcdef0"), nullptr);
  EXPECT_EQ(table.Authenticate("1123456789abcdef0123456789abcdef"), nullptr);
  // The cyclic read of the stored token must not make a repetition match.
  EXPECT_EQ(table.Authenticate("aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbaaaaaaaaaaaaaaaabbbbbbbbbbbbbbbb"),
            nullptr);
}

TEST(TokenTableTest, BadFilesNameTheLineButNeverTheToken) {
  struct Case {
    const char* text;
    const char* expect;
  };
  const Case cases[] = {
      {"a reader short\n", "shorter than 16"},
      {"a superuser 0123456789abcdef0123\n", "unknown role"},
      {"a reader\n", "expected '<name> <role> <token>"},
      {"a reader 0123456789abcdef0123\na admin 0123456789abcdef9999\n",
       "used twice"},
      {"a reader 0123456789abcdef0123\nb admin 0123456789abcdef0123\n",
       "same token"},
      {"# only comments\n\n", "no tokens"},
      {"a reader 0123456789abcdef0123 /\n", "empty scope prefix"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<TokenTable> table = TokenTable::Parse(c.text);
    ASSERT_FALSE(table.ok()) << c.text;
    const std::string message(table.status().message());
    EXPECT_NE(message.find(c.expect), std::string::npos) << message;
    EXPECT_EQ(message.find("0123456789abcdef"), std::string::npos) << message;
  }
  EXPECT_NE(std::string(TokenTable::Parse("\n\nx reader y\n").status().message())
                .find("line 3"),
            std::string::npos);
}

TEST(AccessRuleTest, RolesAreOrderedAndGlobalMethodsNeedAnUnlimitedToken) {
  const AccessRule* push = RuleFor("varscope.v1.VariableData.Push");
  const AccessRule* save = RuleFor("varscope.v1.Admin.Save");
  ASSERT_NE(push, nullptr);
  ASSERT_NE(save, nullptr);
  EXPECT_EQ(RuleFor("grpc.health.v1.Health.Check"), nullptr);
  Principal reader{"r", Role::kReader, {}};
  Principal trainer{"t", Role::kTrainer, {}};
  Principal admin{"a", Role::kAdmin, {}};
  Principal limited_admin{"la", Role::kAdmin, {"tower_0"}};
  EXPECT_FALSE(reader.Allows(*push));
  EXPECT_TRUE(trainer.Allows(*push));
  EXPECT_TRUE(admin.Allows(*push));
  EXPECT_FALSE(trainer.Allows(*save));
  EXPECT_TRUE(admin.Allows(*save));
  EXPECT_FALSE(limited_admin.Allows(*save));
}

TEST(Sha256Test, KnownAnswer) {
  const std::string digest = Sha256("abc");
  ASSERT_EQ(digest.size(), 32u);
  static const unsigned char kExpected[4] = {0xba, 0x78, 0x16, 0xbf};
  EXPECT_EQ(std::memcmp(digest.data(), kExpected, 4), 0);
}

TEST(ConstantTimeEqualsTest, ComparesWholeStrings) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abcabc"));
  EXPECT_FALSE(ConstantTimeEquals("abcabc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("", "abc"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
}

TEST(InFlightLimiterTest, RefusesAboveTheLimitPerKey) {
  InFlightLimiter limiter(2);
  EXPECT_TRUE(limiter.Acquire("a"));
  EXPECT_TRUE(limiter.Acquire("a"));
  EXPECT_FALSE(limiter.Acquire("a"));
  EXPECT_TRUE(limiter.Acquire("b"));
  limiter.Release("a");
  EXPECT_EQ(limiter.in_flight("a"), 1);
  EXPECT_TRUE(limiter.Acquire("a"));
  limiter.Release("a");
  limiter.Release("a");
  limiter.Release("b");
  EXPECT_EQ(limiter.in_flight("a"), 0);
  InFlightLimiter unlimited(0);
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(unlimited.Acquire("a"));
}

GetVariableRequest Floats(const std::string& name, std::vector<int64_t> dims) {
  GetVariableRequest r;
  r.name = name;
  r.shape = ShapeSpec::Of(std::move(dims));
  r.dtype = DType::kFloat;
  return r;
}

TEST(QuotaTest, MemoryLimitRefusesCreatesAndCreatesNothing) {
  StoreOptions options;
  options.max_memory_bytes = 4096;
  VariableStore store(options);
  ASSERT_OK(store.GetVariable({}, Floats("a", {512})));  // 2048 bytes
  auto over = store.GetVariable({}, Floats("b", {600}));
  EXPECT_CODE(over, kResourceExhausted);
  EXPECT_NE(std::string(over.status().message()).find("--max_memory_bytes"),
            std::string::npos);
  EXPECT_EQ(store.total_bytes(), 2048);
  EXPECT_EQ(store.num_variables(), 1u);
  // A partitioned variable whose parts together pass the limit: no part.
  GetVariableRequest parts = Floats("p", {8, 100});  // 3200 bytes in 4 parts
  PartitionerSpec fixed;
  fixed.num_shards = 4;
  parts.partitioner = fixed;
  EXPECT_CODE(store.GetVariable({}, parts), kResourceExhausted);
  EXPECT_EQ(store.num_variables(), 1u);
  EXPECT_FALSE(store.NameInUse("p"));
  // Room again after a delete.
  ASSERT_OK(store.Delete("a"));
  ASSERT_OK(store.GetVariable({}, parts));
  EXPECT_EQ(store.total_bytes(), 3200);
}

TEST(QuotaTest, OptimizerSlotsAreCreatedAllOrNone) {
  StoreOptions options;
  options.max_memory_bytes = 3 * 400 - 1;  // w + one slot fit, not two
  VariableStore store(options);
  DataPlane data(&store);
  ASSERT_OK(store.GetVariable({}, Floats("w", {100})));
  std::string grad(400, '\0');
  Update u;
  u.name = "w";
  u.op = UpdateOp::kApplyGradient;
  u.dtype = DType::kFloat;
  u.data = grad;
  u.optimizer = OptimizerSpec{OptimizerKind::kAdam, {{"learning_rate", 0.1}}};
  EXPECT_CODE(data.Push({u}), kResourceExhausted);
  EXPECT_EQ(store.num_variables(), 1u);  // neither w/Adam nor w/Adam_1
  EXPECT_EQ(store.total_bytes(), 400);
}

TEST(QuotaTest, RestoreAboveTheMemoryLimitIsRefused) {
  VariableStore big{StoreOptions{}};
  ASSERT_OK(big.GetVariable({}, Floats("a", {1024})));
  StoreOptions options;
  options.max_memory_bytes = 1000;
  VariableStore small(options);
  ASSERT_OK(small.GetVariable({}, Floats("keep", {10})));
  EXPECT_CODE(small.Restore(big.Snapshot()), kResourceExhausted);
  EXPECT_TRUE(small.NameInUse("keep"));
}

TEST(QuotaTest, NameLengthLimit) {
  StoreOptions options;
  options.max_name_bytes = 16;
  VariableStore store(options);
  EXPECT_OK(store.GetVariable({}, Floats("sixteen_bytes_ab", {1})));
  auto s = store.GetVariable({}, Floats("seventeen_bytes_a", {1}));
  EXPECT_CODE(s, kInvalidArgument);
  EXPECT_NE(std::string(s.status().message()).find("--max_name_bytes"),
            std::string::npos);
  FakeClock clock;
  SessionManager sessions(&store, &clock, SessionOptions{});
  const uint64_t id = sessions.OpenSession("t", absl::ZeroDuration())->id;
  OpenScopeRequest scope;
  scope.name = "a_scope_name_too_long";
  EXPECT_CODE(sessions.OpenScope(id, scope), kInvalidArgument);
}

TEST(QuotaTest, CheckNameVetoesBeforeAnythingIsCreated) {
  VariableStore store{StoreOptions{}};
  GetVariableRequest r = Floats("w", {4});
  std::string seen;
  r.check_name = [&](absl::string_view name) {
    seen = std::string(name);
    return absl::PermissionDeniedError("no");
  };
  ScopeContext scope;
  scope.name = "outer";
  EXPECT_CODE(store.GetVariable(scope, r), kPermissionDenied);
  EXPECT_EQ(seen, "outer/w");
  EXPECT_EQ(store.num_variables(), 0u);
}

TEST(QuotaTest, SessionAndOpenScopeLimits) {
  VariableStore store{StoreOptions{}};
  FakeClock clock;
  SessionOptions options;
  options.max_sessions = 2;
  options.max_open_scopes = 2;
  SessionManager sessions(&store, &clock, options);
  const uint64_t a = sessions.OpenSession("a", absl::ZeroDuration())->id;
  ASSERT_OK(sessions.OpenSession("b", absl::ZeroDuration()));
  EXPECT_CODE(sessions.OpenSession("c", absl::ZeroDuration()), kResourceExhausted);
  ASSERT_OK(sessions.CloseSession(a));
  ASSERT_OK_AND_ASSIGN(SessionInfo c, sessions.OpenSession("c", absl::ZeroDuration()));

  OpenScopeRequest r;
  r.name = "s1";
  ASSERT_OK_AND_ASSIGN(ScopeInfo s1, sessions.OpenScope(c.id, r));
  r.name = "s2";
  ASSERT_OK(sessions.OpenScope(c.id, r));
  r.name = "s3";
  EXPECT_CODE(sessions.OpenScope(c.id, r), kResourceExhausted);
  ASSERT_OK(sessions.CloseScope(c.id, s1.id + 1));
  ASSERT_OK(sessions.OpenScope(c.id, r));  // room again
  // The refused open changed nothing: s3 now opens as "s3", not "s3_1".
  ASSERT_OK_AND_ASSIGN(auto handles, sessions.ListHandles(c.id));
  bool found = false;
  for (const ScopeInfo& h : handles) found |= h.name == "s3" && h.open;
  EXPECT_TRUE(found);
}

TEST(QuotaTest, SessionOwnership) {
  VariableStore store{StoreOptions{}};
  FakeClock clock;
  SessionManager sessions(&store, &clock, SessionOptions{});
  const uint64_t id =
      sessions.OpenSession("a", absl::ZeroDuration(), "worker")->id;
  EXPECT_OK(sessions.CheckOwner(id, "worker"));
  EXPECT_CODE(sessions.CheckOwner(id, "other"), kPermissionDenied);
  EXPECT_OK(sessions.CheckOwner(id + 12345, "other"));  // unknown: the call says
}

}  // namespace
}  // namespace varscope::core
