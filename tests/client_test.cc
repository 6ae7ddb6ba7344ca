// Client library behaviour beyond the semantics suite: per-thread nesting,
// guard misuse, a failed first connect, session recovery after a server restart (and over a mocked
// Connection), handle lifetime, per-call deadlines, asynchronous calls
// without a thread each, paging and scope defaults.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <vector>

#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/daemon.h"
#include "tests/test_server.h"
#include "tests/test_util.h"
#include "varscope/client.h"
#include "varscope/v1/admin.grpc.pb.h"

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

TEST(Client, OperatorsSeeSessionsAndHealth) {
  auto server = StartTestServer();
  ClientOptions options;
  options.client_name = "trainer-7";
  auto client = *Client::Connect(server->address(), options);
  VariableScope scope(*client, "layer");
  Connection& connection = client->connection();
  ASSERT_OK_AND_ASSIGN(std::vector<SessionSummary> sessions, connection.ListSessions({}));
  ASSERT_EQ(sessions.size(), 1u);
  EXPECT_EQ(sessions[0].id, client->session_id());
  EXPECT_EQ(sessions[0].client_name, "trainer-7");
  EXPECT_EQ(sessions[0].open_scopes, 1);
  EXPECT_GT(sessions[0].expires_in, absl::ZeroDuration());
  EXPECT_LE(sessions[0].expires_in, sessions[0].lease);
  ASSERT_OK_AND_ASSIGN(HealthStatus health, connection.CheckHealth({}));
  EXPECT_EQ(health, HealthStatus::kServing);

  // Pages of one, in id order.
  auto second = *Client::Connect(server->address());
  auto admin = varscope::v1::Admin::NewStub(
      grpc::CreateChannel(server->address(), grpc::InsecureChannelCredentials()));
  varscope::v1::ListSessionsRequest request;
  request.set_page_size(1);
  std::vector<uint64_t> ids;
  do {
    grpc::ClientContext ctx;
    varscope::v1::ListSessionsResponse page;
    ASSERT_TRUE(admin->ListSessions(&ctx, request, &page).ok());
    ASSERT_EQ(page.sessions_size(), 1);
    ids.push_back(page.sessions(0).id());
    request.set_page_token(page.next_page_token());
  } while (!request.page_token().empty());
  EXPECT_THAT(ids, ::testing::ElementsAre(client->session_id(), second->session_id()));
  request.set_page_token("not-a-token");
  grpc::ClientContext ctx;
  varscope::v1::ListSessionsResponse page;
  EXPECT_EQ(admin->ListSessions(&ctx, request, &page).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
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
  options.connection.rpc_timeout = absl::Milliseconds(500);
  auto client = Client::Connect("127.0.0.1:1", options);
  EXPECT_FALSE(client.ok());
}

// A TCP front door to 127.0.0.1:`upstream` that closes the first connection
// it accepts (a connect attempt that fails, as gRPC 1.51's can at random:
// grpc/grpc#35064) and relays every later one.
class FirstConnectionFails {
 public:
  explicit FirstConnectionFails(int upstream) : upstream_(upstream) {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr = Loopback(0);
    EXPECT_EQ(bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(listen(listener_, 16), 0);
    socklen_t len = sizeof(addr);
    getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }
  ~FirstConnectionFails() {
    shutdown(listener_, SHUT_RDWR);
    acceptor_.join();  // no relays start after this
    for (int fd : open_) shutdown(fd, SHUT_RDWR);
    for (std::thread& t : relays_) t.join();
    for (int fd : open_) close(fd);
    close(listener_);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int accepted() const { return accepted_; }

 private:
  static sockaddr_in Loopback(int port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    return addr;
  }
  void AcceptLoop() {
    for (;;) {
      const int client = accept(listener_, nullptr, nullptr);
      if (client < 0) return;  // shut down
      if (accepted_++ == 0) {
        close(client);
        continue;
      }
      const int server = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr = Loopback(upstream_);
      if (connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
        close(client);
        close(server);
        continue;
      }
      open_.insert(open_.end(), {client, server});
      relays_.emplace_back([client, server] { Relay(client, server); });
      relays_.emplace_back([client, server] { Relay(server, client); });
    }
  }
  static void Relay(int from, int to) {
    char buffer[1 << 16];
    ssize_t n;
    while ((n = read(from, buffer, sizeof(buffer))) > 0) {
      if (write(to, buffer, n) != n) break;
    }
    shutdown(to, SHUT_WR);
  }

  const int upstream_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<int> accepted_{0};
  std::thread acceptor_;
  // Written by the acceptor only; read once it has ended.
  std::vector<int> open_;
  std::vector<std::thread> relays_;
};

// gRPC fails a call at once when its connect attempt fails (without
// wait_for_ready); Connect gives the channel one quick reconnect instead.
TEST(Client, ConnectRidesOverAFailedConnectAttempt) {
  auto server = StartTestServer();
  FirstConnectionFails door(server->port());
  ASSERT_OK_AND_ASSIGN(auto client, Client::Connect(door.address()));
  EXPECT_EQ(door.accepted(), 2);
  EXPECT_OK(client->GetVariable("w", {3}));
}

// A client that rides out a server restart: calls wait for the channel to
// come back instead of failing at once.
ClientOptions RestartTolerant() {
  ClientOptions options;
  options.keep_alive = false;
  options.connection.wait_for_ready = true;
  options.connection.rpc_timeout = absl::Seconds(30);
  return options;
}

// A fresh in-process server (empty store) on `port`.
std::unique_ptr<service::Server> RestartOn(int port) {
  service::ServerOptions same_port;
  same_port.listen = "127.0.0.1:" + std::to_string(port);
  auto restarted = service::Server::Start(same_port);
  EXPECT_OK(restarted);
  return restarted.ok() ? *std::move(restarted) : nullptr;
}

TEST(Client, ReopensSessionAndGuardsAfterServerRestart) {
  auto server = StartTestServer();
  const int port = server->port();
  auto client = *Client::Connect(server->address(), RestartTolerant());
  ScopeOptions auto_reuse;
  auto_reuse.reuse = Reuse::kAutoReuse;
  VariableScope scope(*client, "model", auto_reuse);
  VariableScope inner(*client, "layer");
  ASSERT_OK(client->GetVariable("w", {3}));
  const uint64_t old_session = client->session_id();

  server.reset();  // the daemon goes away, with all its state
  auto restarted = RestartOn(port);
  ASSERT_NE(restarted, nullptr);

  // The call waits for the channel to reconnect (wait_for_ready), then
  // finds the session gone and recovers it with the guards.
  absl::StatusOr<Variable> v = client->GetVariable("w2", {3});
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
  auto client = *Client::Connect(server->address(), RestartTolerant());
  ScopeOptions auto_reuse;
  auto_reuse.reuse = Reuse::kAutoReuse;
  VariableScope outer(*client, "model", auto_reuse);
  VariableScope shared(*client, "shared");  // inherits AUTO_REUSE
  ASSERT_OK(client->GetVariable("v", {1}));
  ASSERT_OK(shared.ReuseVariables());

  server.reset();
  auto restarted = RestartOn(port);
  ASSERT_NE(restarted, nullptr);
  absl::StatusOr<Variable> v = client->GetVariable("fresh", {1});
  // Under REUSE a missing variable is NOT_FOUND; under the inherited
  // AUTO_REUSE it would have been created.
  EXPECT_CODE(v, kNotFound);
  EXPECT_GE(client->session_recoveries(), 1);
  EXPECT_OK(shared.Close());
  EXPECT_OK(outer.Close());
}

// Recovery re-opens a re-entered scope as a re-entry (its target still
// open), a default-named scope under the name it got, and the root with its
// REUSE.
TEST(Client, RecoveryKeepsReentriesDefaultNamesAndTheRootsReuse) {
  auto server = StartTestServer();
  const int port = server->port();
  auto client = *Client::Connect(server->address(), RestartTolerant());
  ASSERT_OK(client->GetVariable("r", {1}));
  ASSERT_OK(client->ReuseVariables());  // the root reuses from now on
  ScopeOptions auto_reuse;
  auto_reuse.reuse = Reuse::kAutoReuse;
  ASSERT_OK_AND_ASSIGN(VariableScope cap, VariableScope::Open(*client, "cap", auto_reuse));
  ASSERT_OK_AND_ASSIGN(VariableScope again, VariableScope::Reenter(*client, cap.Capture()));
  ASSERT_OK_AND_ASSIGN(VariableScope layer, VariableScope::OpenDefault(*client, "layer"));
  ASSERT_EQ(layer.name(), "cap/layer");

  server.reset();
  auto restarted = RestartOn(port);
  ASSERT_NE(restarted, nullptr);

  ASSERT_OK_AND_ASSIGN(Variable w, client->GetVariable("w", {1}));
  EXPECT_GE(client->session_recoveries(), 1);
  EXPECT_EQ(w.name(), "cap/layer/w:0");  // the default-named scope, same name
  EXPECT_TRUE(w.created());               // AUTO_REUSE, inherited through the re-entry
  ASSERT_OK(layer.Close());
  EXPECT_EQ(again.name(), "cap");
  EXPECT_EQ(again.reuse(), Reuse::kAutoReuse);
  ASSERT_OK_AND_ASSIGN(Variable w2, client->GetVariable("w", {1}));
  EXPECT_EQ(w2.name(), "cap/w:0");
  ASSERT_OK(again.Close());
  ASSERT_OK(cap.Close());
  // The root's REUSE came back: a missing variable is not created.
  EXPECT_CODE(client->GetVariable("missing", {1}), kNotFound);
}

// A re-entry of a scope whose block had closed before the session was lost
// cannot be restored: it reports SCOPE_LOST (and creates nothing) rather
// than turning into another scope.
TEST(Client, RecoveryNeverTurnsALostReentryIntoAnotherScope) {
  auto server = StartTestServer();
  const int port = server->port();
  auto client = *Client::Connect(server->address(), RestartTolerant());
  ScopeOptions auto_reuse;
  auto_reuse.reuse = Reuse::kAutoReuse;
  ASSERT_OK_AND_ASSIGN(VariableScope gone, VariableScope::Open(*client, "gone", auto_reuse));
  const CapturedScope captured = gone.Capture();
  ASSERT_OK(gone.Close());
  ASSERT_OK_AND_ASSIGN(VariableScope lost, VariableScope::Reenter(*client, captured));

  server.reset();
  auto restarted = RestartOn(port);
  ASSERT_NE(restarted, nullptr);

  auto w = client->GetVariable("w", {1});
  EXPECT_CODE(w, kFailedPrecondition);
  EXPECT_EQ(ErrorReason(w.status()), "SCOPE_LOST");
  EXPECT_OK(lost.Close());  // nothing left to close
  EXPECT_EQ(restarted->store().num_variables(), 0u);
  ASSERT_OK_AND_ASSIGN(Variable root_w, client->GetVariable("w", {1}));
  EXPECT_EQ(root_w.name(), "w:0");
}

TEST(Client, ReasonsOfQuotasAndMissingCheckpoints) {
  service::ServerOptions one_session;
  one_session.sessions.max_sessions = 1;
  auto server = StartTestServer(one_session);
  ClientOptions options;
  options.keep_alive = false;
  auto first = *Client::Connect(server->address(), options);
  auto second = Client::Connect(server->address(), options);
  EXPECT_CODE(second, kResourceExhausted);
  EXPECT_EQ(ErrorReason(second.status()), "QUOTA_EXCEEDED");
  EXPECT_EQ(ErrorMetadata(second.status())["flag"], "--max_sessions");

  char dir[] = "/tmp/varscope_client_ckpt_XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  service::ServerOptions durable;
  durable.data_dir = dir;
  auto with_data = StartTestServer(durable);
  auto client = *Client::Connect(with_data->address(), options);
  auto missing = client->connection().Restore("no-such-checkpoint", {});
  EXPECT_CODE(missing, kNotFound);
  EXPECT_EQ(ErrorReason(missing.status()), "CHECKPOINT_NOT_FOUND");
  with_data.reset();
  std::system((std::string("rm -rf ") + dir).c_str());
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

// A user's test double: gMock over the Connection interface, with only
// the calls the test expects.
class MockConnection : public Connection {
 public:
  MOCK_METHOD(absl::StatusOr<Session>, OpenSession,
              (const std::string&, absl::Duration, const CallOptions&), (override));
  MOCK_METHOD(absl::Status, CloseSession, (uint64_t, const CallOptions&), (override));
  MOCK_METHOD(absl::StatusOr<GetVariableResult>, GetVariable,
              (const GetVariableArgs&, const CallOptions&), (override));
};

TEST(Client, RecoversItsSessionOverAMockedConnection) {
  using ::testing::_;
  using ::testing::Field;
  using ::testing::Return;
  auto mock = std::make_shared<MockConnection>();
  GetVariableResult w;
  w.variable.name = "w";
  w.variable.tensor_name = "w:0";
  w.variable.dtype = DataType::kFloat;
  w.variable.shape = {2};
  w.created = true;
  {
    ::testing::InSequence order;
    EXPECT_CALL(*mock, OpenSession("mocked", _, _))
        .WillOnce(Return(Connection::Session{7, absl::Seconds(30), 70}));
    // The server lost session 7: the client re-opens one and retries once.
    EXPECT_CALL(*mock, GetVariable(Field(&GetVariableArgs::session, 7u), _))
        .WillOnce(Return(WithErrorReason(absl::NotFoundError("session 7 is gone"),
                                         "SESSION_NOT_FOUND")));
    EXPECT_CALL(*mock, OpenSession("mocked", _, _))
        .WillOnce(Return(Connection::Session{8, absl::Seconds(30), 80}));
    EXPECT_CALL(*mock, GetVariable(Field(&GetVariableArgs::session, 8u), _))
        .WillOnce(Return(w));
    EXPECT_CALL(*mock, CloseSession(8, _)).WillOnce(Return(absl::OkStatus()));
  }
  ClientOptions options;
  options.client_name = "mocked";
  options.keep_alive = false;
  ASSERT_OK_AND_ASSIGN(auto client, Client::Create(mock, options));
  ASSERT_OK_AND_ASSIGN(Variable v, client->GetVariable("w", {2}));
  EXPECT_EQ(v.name(), "w:0");
  EXPECT_TRUE(v.created());
  EXPECT_EQ(client->session_id(), 8u);
  EXPECT_EQ(client->session_recoveries(), 1);
  // A call the double does not implement says so.
  EXPECT_CODE(client->DescribeVariable("w"), kUnimplemented);
}

TEST(Client, VariableHandlesOutliveTheClient) {
  auto server = StartTestServer();
  std::optional<Variable> w;
  {
    auto client = *Client::Connect(server->address());
    w = *client->GetVariable("w", {3}, DataType::kFloat);
  }  // the session ends; the handle keeps the connection
  ASSERT_OK(w->Push<float>(UpdateOp::kAssign, {1, 2, 3}));
  ASSERT_OK_AND_ASSIGN(std::vector<float> back, w->Pull<float>());
  EXPECT_EQ(back, (std::vector<float>{1, 2, 3}));
  const Variable copy = *w;  // handles are values
  w.reset();
  EXPECT_OK(copy.Pull<float>());
}

int ThreadsOfThisProcess() {
  std::ifstream status("/proc/self/status");
  std::string key;
  int value = 0;
  while (status >> key) {
    if (key == "Threads:") {
      status >> value;
      return value;
    }
  }
  return -1;
}

// The daemon is stopped (SIGSTOP), so no call can finish: 400 calls in
// flight must not mean 400 threads, and a per-call deadline ends a call
// that the client-wide default would let wait.
TEST(Client, AsyncCallsInFlightTakeNoThreadEachAndPerCallDeadlinesHold) {
  Daemon daemon;
  ASSERT_NE(daemon.port(), 0) << daemon.log();
  ClientOptions options;
  options.keep_alive = false;
  ASSERT_OK_AND_ASSIGN(auto client, Client::Connect(daemon.address(), options));
  VariableOptions zeros;
  zeros.shape = {256};
  zeros.initializer = Initializer::Zeros();
  ASSERT_OK(client->GetVariable("v", zeros));
  std::vector<float> warm(256);
  ASSERT_OK(client->Pull("v", DataType::kFloat, AsWritableBytes(warm.data(), 1024)));

  ASSERT_EQ(kill(daemon.pid(), SIGSTOP), 0);
  const int threads_before = ThreadsOfThisProcess();
  constexpr int kCalls = 200;
  const std::vector<float> one(256, 1.0f);
  std::vector<std::vector<float>> buffers(kCalls, std::vector<float>(256));
  std::vector<std::future<absl::StatusOr<std::vector<UpdateResult>>>> pushes;
  std::vector<std::future<absl::StatusOr<PullResult>>> pulls;
  for (int i = 0; i < kCalls; ++i) {
    pushes.push_back(client->PushAsync({PushItem::Of("v", UpdateOp::kAdd, one)}));
    pulls.push_back(client->PullAsync("v", DataType::kFloat,
                                      AsWritableBytes(buffers[i].data(), 1024)));
  }
  const int threads_during = ThreadsOfThisProcess();
  EXPECT_LT(threads_during - threads_before, 16)
      << threads_before << " threads before, " << threads_during << " with "
      << 2 * kCalls << " calls in flight";
  CallOptions quick;
  quick.timeout = absl::Milliseconds(200);
  std::vector<float> out(256);
  EXPECT_CODE(client->Pull("v", DataType::kFloat, AsWritableBytes(out.data(), 1024), {},
                           quick),
              kDeadlineExceeded);
  ASSERT_EQ(kill(daemon.pid(), SIGCONT), 0);
  for (auto& p : pushes) EXPECT_OK(p.get());
  for (auto& p : pulls) EXPECT_OK(p.get());
  ASSERT_OK_AND_ASSIGN(Variable v, client->DescribeVariable("v"));
  EXPECT_EQ(v.Pull<float>()->at(0), static_cast<float>(kCalls));
}

TEST(Client, PagesThroughVariablesAndScopes) {
  auto server = StartTestServer();
  auto client = *Client::Connect(server->address());
  for (int i = 0; i < 25; ++i) {
    ASSERT_OK(client->GetVariable(absl::StrCat("p/s", i % 5, "/v", i), {1}));
  }
  ListVariablesArgs args;
  args.prefix = "p";
  args.page_size = 10;
  std::vector<std::string> names;
  int pages = 0;
  do {
    ASSERT_OK_AND_ASSIGN(VariablePage page, client->ListVariablesPage(args));
    ++pages;
    for (const VariableInfo& v : page.variables) names.push_back(v.name);
    if (pages == 1) {  // a deletion between pages repeats or skips nothing
      ASSERT_OK(client->DeleteVariable(page.variables.back().name));
    }
    args.page_token = page.next_page_token;
  } while (!args.page_token.empty());
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(names.size(), 25u);
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_EQ(std::adjacent_find(names.begin(), names.end()), names.end());

  ListScopesArgs scopes;
  scopes.prefix = "p";
  scopes.page_size = 4;
  std::vector<std::string> scope_names;
  do {
    ASSERT_OK_AND_ASSIGN(ScopePage page, client->ListScopes(scopes));
    for (const ScopeNode& n : page.scopes) scope_names.push_back(n.name);
    scopes.page_token = page.next_page_token;
  } while (!scopes.page_token.empty());
  EXPECT_EQ(scope_names, (std::vector<std::string>{"", "p", "p/s0", "p/s1", "p/s2",
                                                   "p/s3", "p/s4"}));
  ListVariablesArgs forged;
  forged.page_token = "not-a-token";
  EXPECT_CODE(client->ListVariablesPage(forged), kInvalidArgument);
}

TEST(Client, ScopeDefaultsApplyToLaterVariables) {
  auto server = StartTestServer();
  auto client = *Client::Connect(server->address());
  VariableScope scope(*client, "s");
  ScopeDefaults ones;
  ones.initializer = Initializer::Ones();
  ASSERT_OK(scope.SetDefaults(ones));
  EXPECT_TRUE(scope.info().initializer.has_value());
  ASSERT_OK_AND_ASSIGN(Variable w, client->GetVariable("w", {2}, DataType::kFloat));
  EXPECT_EQ(*w.Pull<float>(), (std::vector<float>{1, 1}));
  ScopeDefaults cleared;
  cleared.initializer = std::optional<Initializer>();  // removes it
  ASSERT_OK(scope.SetDefaults(cleared));
  ASSERT_OK_AND_ASSIGN(Variable z, client->GetVariable("z", {2}, DataType::kFloat));
  EXPECT_NE(*z.Pull<float>(), (std::vector<float>{1, 1}));  // glorot_uniform
}

}  // namespace
}  // namespace varscope::testing
