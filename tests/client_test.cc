// Client library behaviour beyond the semantics suite: per-thread nesting,
// guard misuse, and session recovery after a server restart.
#include <thread>

#include "absl/time/clock.h"
#include "tests/test_server.h"
#include "tests/test_util.h"
#include "varscope/client.h"

namespace varscope::testing {
namespace {

TEST(Client, GuardsNestPerThread) {
  auto server = StartTestServer();
  auto client = *Client::Connect(server->address());
  VariableScope outer(*client, "main_thread");
  std::string from_thread;
  std::thread worker([&] {
    // A new thread starts at the root, like a Python thread in TF.
    VariableScope scope(*client, "worker");
    from_thread = client->GetVariable("w", {2})->name();
  });
  worker.join();
  EXPECT_EQ(from_thread, "worker/w:0");
  ASSERT_OK_AND_ASSIGN(Variable v, client->GetVariable("w", {2}));
  EXPECT_EQ(v.name(), "main_thread/w:0");
}

TEST(Client, ClosingOutOfOrderFails) {
  auto server = StartTestServer();
  auto client = *Client::Connect(server->address());
  ASSERT_OK_AND_ASSIGN(VariableScope outer, VariableScope::Open(*client, "outer"));
  ASSERT_OK_AND_ASSIGN(VariableScope inner, VariableScope::Open(*client, "inner"));
  EXPECT_CODE(outer.Close(), kFailedPrecondition);
  EXPECT_OK(inner.Close());
  EXPECT_OK(outer.Close());
}

TEST(Client, ThrowingConstructorThrowsStatusError) {
  auto server = StartTestServer();
  auto client = *Client::Connect(server->address());
  try {
    VariableScope bad(*client, "bad name");
    FAIL() << "expected StatusError";
  } catch (const StatusError& e) {
    EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST(Client, ConnectFailsWhenNoServer) {
  ClientOptions options;
  options.rpc_timeout = absl::Milliseconds(500);
  auto client = Client::Connect("127.0.0.1:1", options);
  EXPECT_FALSE(client.ok());
}

TEST(Client, ReopensSessionAndGuardsAfterServerRestart) {
  auto server = StartTestServer();
  const int port = server->port();
  ClientOptions options;
  options.rpc_timeout = absl::Seconds(2);
  auto client = *Client::Connect(server->address(), options);
  ScopeOptions auto_reuse;
  auto_reuse.reuse = v1::AUTO_REUSE;
  VariableScope scope(*client, "model", auto_reuse);
  VariableScope inner(*client, "layer");
  ASSERT_OK(client->GetVariable("w", {3}));
  const uint64_t old_session = client->session_id();

  server.reset();  // the daemon goes away, with all its state
  service::ServerOptions same_port;
  same_port.listen = "127.0.0.1:" + std::to_string(port);
  auto restarted = service::Server::Start(same_port);
  ASSERT_OK(restarted);

  // While the channel reconnects calls may fail with UNAVAILABLE; a trainer
  // retries those. Once through, the session and guards are back.
  absl::StatusOr<Variable> v;
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  do {
    v = client->GetVariable("w2", {3});
    if (v.ok() || !absl::IsUnavailable(v.status())) break;
    absl::SleepFor(absl::Milliseconds(100));
  } while (absl::Now() < deadline);
  ASSERT_OK(v);
  EXPECT_EQ(v->name(), "model/layer/w2:0");
  EXPECT_NE(client->session_id(), old_session);
  EXPECT_GE(client->session_recoveries(), 1);
  // The re-opened scope kept its AUTO_REUSE flag.
  ASSERT_OK_AND_ASSIGN(Variable again, client->GetVariable("w2", {3}));
  EXPECT_FALSE(again.created());
  EXPECT_OK(inner.Close());
  EXPECT_OK(scope.Close());
}

// Recovery re-applies ReuseVariables (and checks that it worked): a
// recovered scope never silently loses REUSE.
TEST(Client, RecoveredScopeKeepsReuseVariables) {
  auto server = StartTestServer();
  const int port = server->port();
  ClientOptions options;
  options.rpc_timeout = absl::Seconds(2);
  auto client = *Client::Connect(server->address(), options);
  ScopeOptions auto_reuse;
  auto_reuse.reuse = v1::AUTO_REUSE;
  VariableScope outer(*client, "model", auto_reuse);
  VariableScope shared(*client, "shared");  // inherits AUTO_REUSE
  ASSERT_OK(client->GetVariable("v", {1}));
  ASSERT_OK(shared.ReuseVariables());

  server.reset();
  service::ServerOptions same_port;
  same_port.listen = "127.0.0.1:" + std::to_string(port);
  auto restarted = service::Server::Start(same_port);
  ASSERT_OK(restarted);
  absl::StatusOr<Variable> v;
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  do {  // UNAVAILABLE while the channel reconnects
    v = client->GetVariable("fresh", {1});
    if (!absl::IsUnavailable(v.status())) break;
    absl::SleepFor(absl::Milliseconds(100));
  } while (absl::Now() < deadline);
  // Under REUSE a missing variable is NOT_FOUND; under the inherited
  // AUTO_REUSE it would have been created.
  EXPECT_CODE(v, kNotFound);
  EXPECT_GE(client->session_recoveries(), 1);
  EXPECT_OK(shared.Close());
  EXPECT_OK(outer.Close());
}

TEST(Client, ListDescribeDelete) {
  auto server = StartTestServer();
  auto client = *Client::Connect(server->address());
  {
    VariableScope s(*client, "s");
    ASSERT_OK(client->GetVariable("a", {1}));
    ASSERT_OK(client->GetVariable("b", {1}));
  }
  ASSERT_OK_AND_ASSIGN(auto listed, client->ListVariables("s"));
  EXPECT_EQ(listed.size(), 2u);
  ASSERT_OK_AND_ASSIGN(Variable a, client->DescribeVariable("s/a:0"));
  EXPECT_EQ(a.shape(), std::vector<int64_t>({1}));
  EXPECT_OK(client->DeleteVariable("s/a"));
  EXPECT_CODE(client->DescribeVariable("s/a"), kNotFound);
}

}  // namespace
}  // namespace varscope::testing
