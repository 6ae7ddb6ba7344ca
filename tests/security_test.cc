// Security over real gRPC on 127.0.0.1: TLS and mutual TLS with
// certificates made by openssl at test time, bearer tokens against every
// RPC, scope prefixes, session ownership, the per-client in-flight limit,
// quotas over the wire, and a SIGHUP token reload of the real daemon.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "client/src/shared_memory.h"
#include "google/protobuf/descriptor.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "server/core/access/access.h"
#include "tests/daemon.h"
#include "tests/raw_call.h"
#include "tests/test_server.h"
#include "tests/test_util.h"
#include "varscope/client.h"
#include "varscope/v1/admin.grpc.pb.h"
#include "varscope/v1/shared_memory.grpc.pb.h"
#include "varscope/v1/variable_data.grpc.pb.h"
#include "varscope/v1/variable_store.grpc.pb.h"

namespace varscope::testing {
namespace {

constexpr char kAdminToken[] = "admin-token-0123456789abcdef";
constexpr char kTrainerToken[] = "trainer-token-0123456789abcdef";
constexpr char kReaderToken[] = "reader-token-0123456789abcdef";
constexpr char kTowerToken[] = "tower-token-0123456789abcdef";
constexpr char kTowerAdminToken[] = "toweradmin-token-0123456789abcdef";

std::string TempDir() {
  char dir_template[] = "/tmp/varscope_security_XXXXXX";
  return mkdtemp(dir_template);
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

// Certificates for the whole suite (made once; about 0.1 s).
class Certs {
 public:
  static const std::string& Dir() {
    static const std::string* dir = [] {
      auto* d = new std::string(TempDir());
      const std::string command = std::string("bash ") + VARSCOPE_SOURCE_DIR +
                                  "/tests/make_test_certs.sh " + *d;
      EXPECT_EQ(std::system(command.c_str()), 0) << "openssl failed";
      return d;
    }();
    return *dir;
  }
  static std::string Path(const std::string& name) { return Dir() + "/" + name; }
};

service::ServerOptions TlsOptions(bool mutual) {
  service::ServerOptions options;
  options.tls.cert_file = Certs::Path("server.pem");
  options.tls.key_file = Certs::Path("server.key");
  if (mutual) options.tls.client_ca_file = Certs::Path("ca.pem");
  return options;
}

ClientOptions TlsClient(const std::string& ca, const std::string& cert = "") {
  ClientOptions options;
  options.connection.rpc_timeout = absl::Seconds(10);
  options.keep_alive = false;
  options.connection.tls.enabled = true;
  options.connection.tls.ca_file = Certs::Path(ca);
  if (!cert.empty()) {
    options.connection.tls.cert_file = Certs::Path(cert + ".pem");
    options.connection.tls.key_file = Certs::Path(cert + ".key");
  }
  return options;
}

absl::Status RoundTrip(const std::string& address, const ClientOptions& options) {
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(address, options);
  if (!client.ok()) return client.status();
  static int calls = 0;
  absl::StatusOr<Variable> v = (*client)->GetVariable(
      absl::StrCat("tls/w", ++calls), {2}, DataType::kFloat);
  return v.status();
}

TEST(TlsTest, TrustedServerCertificateWorksAndPlaintextDoesNot) {
  auto server = StartTestServer(TlsOptions(/*mutual=*/false));
  ASSERT_NE(server, nullptr);
  EXPECT_OK(RoundTrip(server->address(), TlsClient("ca.pem")));
  // The certificate also names localhost (resolved or overridden).
  EXPECT_OK(RoundTrip("localhost:" + std::to_string(server->port()),
                      TlsClient("ca.pem")));
  ClientOptions by_name = TlsClient("ca.pem");
  by_name.connection.tls.server_name = "localhost";
  EXPECT_OK(RoundTrip(server->address(), by_name));
  by_name.connection.tls.server_name = "varscope.example.com";  // not in the certificate
  EXPECT_CODE(RoundTrip(server->address(), by_name), kUnavailable);
  ClientOptions plaintext;
  plaintext.keep_alive = false;
  plaintext.connection.rpc_timeout = absl::Seconds(5);
  EXPECT_CODE(RoundTrip(server->address(), plaintext), kUnavailable);
}

TEST(TlsTest, ClientRefusesAServerSignedByAnotherCa) {
  auto server = StartTestServer(TlsOptions(/*mutual=*/false));
  ASSERT_NE(server, nullptr);
  EXPECT_CODE(RoundTrip(server->address(), TlsClient("other_ca.pem")),
              kUnavailable);
}

TEST(TlsTest, MutualTlsNeedsAClientCertificateFromTheTrustedCa) {
  auto server = StartTestServer(TlsOptions(/*mutual=*/true));
  ASSERT_NE(server, nullptr);
  EXPECT_OK(RoundTrip(server->address(), TlsClient("ca.pem", "client")));
  EXPECT_CODE(RoundTrip(server->address(), TlsClient("ca.pem")), kUnavailable);
  EXPECT_CODE(RoundTrip(server->address(), TlsClient("ca.pem", "rogue")),
              kUnavailable);
  // Nothing the refused clients tried reached the store.
  EXPECT_EQ(server->store().num_variables(), 1u);
}

TEST(TlsTest, BadTlsConfigurationRefusesToStart) {
  service::ServerOptions no_key = TlsOptions(false);
  no_key.tls.key_file.clear();
  no_key.listen = "127.0.0.1:0";
  EXPECT_CODE(service::Server::Start(no_key), kInvalidArgument);
  service::ServerOptions missing = TlsOptions(false);
  missing.tls.cert_file = Certs::Path("no-such.pem");
  missing.listen = "127.0.0.1:0";
  EXPECT_CODE(service::Server::Start(missing), kInvalidArgument);
  service::ServerOptions not_pem = TlsOptions(false);
  not_pem.tls.key_file = Certs::Path("server.ext");
  not_pem.listen = "127.0.0.1:0";
  EXPECT_CODE(service::Server::Start(not_pem), kInvalidArgument);
  service::ServerOptions ca_only;
  ca_only.tls.client_ca_file = Certs::Path("ca.pem");
  ca_only.listen = "127.0.0.1:0";
  EXPECT_CODE(service::Server::Start(ca_only), kInvalidArgument);
}

// ---- Tokens ----

std::string TokensFile(const std::string& dir) {
  const std::string path = dir + "/tokens";
  WriteFile(path, absl::StrCat(
      "# name role token prefixes\n",
      "chief   admin   ", kAdminToken, "\n",
      "worker  trainer ", kTrainerToken, "\n",
      "dash    reader  ", kReaderToken, "\n",
      "tower   trainer ", kTowerToken, " tower_0\n",
      "tadmin  admin   ", kTowerAdminToken, " tower_0\n"));
  return path;
}

class TokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir();
    service::ServerOptions options;
    options.auth_tokens_file = TokensFile(dir_);
    server_ = StartTestServer(options);
    ASSERT_NE(server_, nullptr);
    channel_ = grpc::CreateChannel(server_->address(),
                                   grpc::InsecureChannelCredentials());
  }
  void TearDown() override {
    server_.reset();
    std::system(("rm -rf " + dir_).c_str());
  }
  ClientOptions WithToken(const std::string& token) {
    ClientOptions options;
    options.connection.auth_token = token;
    options.keep_alive = false;
    options.connection.rpc_timeout = absl::Seconds(10);
    return options;
  }
  // One call of `method` ("/pkg.Service/Method") with an empty request.
  grpc::Status Call(const std::string& method, const std::string& authorization) {
    grpc::GenericStub stub(channel_);
    return RawUnaryCall(stub, method, "", std::chrono::milliseconds(700),
                        authorization);
  }

  std::string dir_;
  std::unique_ptr<service::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

// The expected table, written independently of the server's: the lowest
// role of each method, and whether a scope-limited token is refused.
struct Expected {
  int min_role;  // 1 reader, 2 trainer, 3 admin
  bool global;
};
const std::map<std::string, Expected>& ExpectedTable() {
  static const auto* table = new std::map<std::string, Expected>{
      {"varscope.v1.VariableStore.OpenSession", {2, false}},
      {"varscope.v1.VariableStore.KeepAlive", {2, false}},
      {"varscope.v1.VariableStore.CloseSession", {2, false}},
      {"varscope.v1.VariableStore.OpenScope", {2, false}},
      {"varscope.v1.VariableStore.UpdateScope", {2, false}},
      {"varscope.v1.VariableStore.ReuseVariables", {2, false}},
      {"varscope.v1.VariableStore.CloseScope", {2, false}},
      {"varscope.v1.VariableStore.GetVariable", {2, false}},
      {"varscope.v1.VariableStore.NewVariable", {2, false}},
      {"varscope.v1.VariableStore.OpName", {2, false}},
      {"varscope.v1.VariableStore.ListVariables", {1, false}},
      {"varscope.v1.VariableStore.ListScopes", {1, false}},
      {"varscope.v1.VariableStore.DescribeVariable", {1, false}},
      {"varscope.v1.VariableStore.DeleteVariable", {3, false}},
      {"varscope.v1.VariableData.Pull", {1, false}},
      {"varscope.v1.VariableData.PullStream", {1, false}},
      {"varscope.v1.VariableData.Gather", {1, false}},
      {"varscope.v1.VariableData.DescribeTraining", {1, false}},
      {"varscope.v1.VariableData.WaitVersion", {1, false}},
      {"varscope.v1.VariableData.Watch", {1, false}},
      {"varscope.v1.VariableData.Push", {2, false}},
      {"varscope.v1.VariableData.PushStream", {2, false}},
      {"varscope.v1.VariableData.SetOptimizer", {2, false}},
      {"varscope.v1.Admin.ListCheckpoints", {1, true}},
      {"varscope.v1.Admin.Save", {3, true}},
      {"varscope.v1.Admin.Restore", {3, true}},
      {"varscope.v1.Admin.Import", {3, false}},
      {"varscope.v1.Admin.GetStats", {1, true}},
      {"varscope.v1.Admin.ListSessions", {3, true}},
      {"varscope.v1.Cluster.GetTopology", {1, false}},
      {"varscope.v1.SharedMemory.Attach", {1, false}},
      {"varscope.v1.SharedMemory.Pull", {1, false}},
      {"varscope.v1.SharedMemory.Push", {2, false}},
  };
  return *table;
}

TEST_F(TokenTest, EveryRoleAgainstEveryRpc) {
  // Every method the protos declare is in the table (a new RPC must be).
  std::vector<std::string> methods;
  for (const char* service :
       {"varscope.v1.VariableStore", "varscope.v1.VariableData",
        "varscope.v1.Admin", "varscope.v1.Cluster", "varscope.v1.SharedMemory"}) {
    const google::protobuf::ServiceDescriptor* d =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
            service);
    ASSERT_NE(d, nullptr) << service;
    for (int i = 0; i < d->method_count(); ++i) {
      methods.push_back(d->method(i)->full_name());
      EXPECT_TRUE(ExpectedTable().count(d->method(i)->full_name()))
          << d->method(i)->full_name() << " has no expected access rule";
    }
  }
  EXPECT_EQ(methods.size(), ExpectedTable().size());
  // Plus the Peer service's, which only a cluster serves (and only to the
  // peer token): cluster_test checks them.
  EXPECT_EQ(core::MethodsWithRules().size(),
            methods.size() + google::protobuf::DescriptorPool::generated_pool()
                                 ->FindServiceByName("varscope.v1.Peer")
                                 ->method_count());

  struct Caller {
    const char* label;
    std::string metadata;
    int role;  // 0 = not authenticated
    bool limited;
  };
  const Caller callers[] = {
      {"no token", "", 0, false},
      {"wrong token", "Bearer not-a-valid-token-at-all", 0, false},
      {"not bearer", std::string("Basic ") + kAdminToken, 0, false},
      {"reader", std::string("Bearer ") + kReaderToken, 1, false},
      {"trainer", std::string("Bearer ") + kTrainerToken, 2, false},
      {"admin", std::string("bearer ") + kAdminToken, 3, false},
      {"tower admin", std::string("Bearer ") + kTowerAdminToken, 3, true},
  };
  for (const std::string& method : methods) {
    const size_t dot = method.rfind('.');
    const std::string path =
        "/" + method.substr(0, dot) + "/" + method.substr(dot + 1);
    const Expected expected = ExpectedTable().at(method);
    for (const Caller& caller : callers) {
      const grpc::Status status = Call(path, caller.metadata);
      SCOPED_TRACE(method + " as " + caller.label + ": " +
                   std::to_string(status.error_code()) + " " +
                   status.error_message());
      if (caller.role == 0) {
        EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
      } else if (caller.role < expected.min_role ||
                 (caller.limited && expected.global)) {
        EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
      } else {
        // Admitted: whatever the empty request earns, it is not an auth
        // error. (A scope-limited token is still refused the empty name.)
        EXPECT_NE(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
        EXPECT_NE(status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
        if (status.error_code() == grpc::StatusCode::PERMISSION_DENIED) {
          EXPECT_TRUE(caller.limited);
          EXPECT_NE(status.error_message().find("may not touch"),
                    std::string::npos);
        }
      }
    }
  }
  EXPECT_EQ(server_->store().num_variables(), 0u);
}

TEST_F(TokenTest, ASharedMemorySegmentServesOnlyTheTokenThatAttachedIt) {
  ASSERT_OK_AND_ASSIGN(auto worker,
                       Client::Connect(server_->address(), WithToken(kTrainerToken)));
  ASSERT_OK(worker->GetVariable("w", {1024}, DataType::kFloat));
  auto stub = std::shared_ptr<v1::SharedMemory::Stub>(v1::SharedMemory::NewStub(channel_));
  auto as = [](const std::string& token, grpc::ClientContext* ctx) {
    if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
  };
  auto pool = internal::SharedMemoryPool::Create([&](bool) -> absl::StatusOr<internal::AttachTicket> {
    grpc::ClientContext ctx;
    as(kTrainerToken, &ctx);
    v1::AttachResponse response;
    grpc::Status s = stub->Attach(&ctx, v1::AttachRequest(), &response);
    if (!s.ok()) return absl::UnavailableError(s.error_message());
    return internal::AttachTicket{response.socket_name(), response.ticket(),
                                  response.max_segment_bytes()};
  });
  std::optional<internal::SegmentLease> lease = pool->Acquire(4096);
  ASSERT_TRUE(lease.has_value());
  auto pull_as = [&](const std::string& token) {
    v1::SharedPullRequest request;
    request.mutable_variable()->set_name("w");
    request.mutable_into()->set_segment(lease->id());
    request.mutable_into()->set_length(lease->size());
    grpc::ClientContext ctx;
    as(token, &ctx);
    v1::SharedPullResponse response;
    return stub->Pull(&ctx, request, &response);
  };
  EXPECT_TRUE(pull_as(kTrainerToken).ok());
  // Any other token, even one that may read w, gets no use of the memory.
  for (const char* other : {kReaderToken, kAdminToken}) {
    const grpc::Status denied = pull_as(other);
    EXPECT_EQ(denied.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_NE(denied.error_message().find("another token"), std::string::npos)
        << denied.error_message();
  }
  EXPECT_EQ(pull_as("").error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST(ClientTokenTest, ATokenIsNotSentInPlaintextOffTheMachine) {
  ClientOptions options;
  options.connection.auth_token = kTrainerToken;
  options.connection.rpc_timeout = absl::Seconds(2);
  // 192.0.2.0/24 is TEST-NET-1: refused before any connection is tried.
  auto refused = Client::Connect("192.0.2.1:50051", options);
  EXPECT_CODE(refused, kFailedPrecondition);
  EXPECT_NE(std::string(refused.status().message()).find("without TLS"),
            std::string::npos);
}

TEST_F(TokenTest, HealthAndReflectionStayOpen) {
  auto health = grpc::health::v1::Health::NewStub(channel_);
  grpc::ClientContext ctx;
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  EXPECT_TRUE(health->Check(&ctx, request, &response).ok());
}

TEST_F(TokenTest, ErrorsSayWhatToDoAndNeverEchoTheToken) {
  grpc::Status none = Call("/varscope.v1.VariableStore/ListVariables", "");
  EXPECT_NE(none.error_message().find("authorization: Bearer"), std::string::npos);
  grpc::Status wrong =
      Call("/varscope.v1.VariableStore/ListVariables", "Bearer secret-guess-1234567890");
  EXPECT_EQ(wrong.error_message().find("secret-guess"), std::string::npos);
  grpc::Status low = Call("/varscope.v1.VariableData/Push",
                          std::string("Bearer ") + kReaderToken);
  EXPECT_NE(low.error_message().find("needs role trainer"), std::string::npos)
      << low.error_message();
  EXPECT_EQ(low.error_message().find(kReaderToken), std::string::npos);
}

TEST_F(TokenTest, ScopePrefixesLimitWhatATokenTouches) {
  ASSERT_OK_AND_ASSIGN(auto chief, Client::Connect(server_->address(),
                                                   WithToken(kAdminToken)));
  ASSERT_OK(chief->GetVariable("shared/w", {4}, DataType::kFloat));
  ASSERT_OK_AND_ASSIGN(auto tower, Client::Connect(server_->address(),
                                                   WithToken(kTowerToken)));
  {
    ASSERT_OK_AND_ASSIGN(VariableScope scope, VariableScope::Open(*tower, "tower_0"));
    ASSERT_OK_AND_ASSIGN(Variable w, tower->GetVariable("w", {4}, DataType::kFloat));
    std::vector<float> ones(4, 1.0f);
    EXPECT_OK(w.Push(UpdateOp::kAdd, ones));
    EXPECT_OK(w.Pull<float>());
  }
  // Outside tower_0: refused before anything is created or read.
  EXPECT_CODE(tower->GetVariable("tower_1/w", {4}, DataType::kFloat), kPermissionDenied);
  EXPECT_CODE(tower->GetVariable("shared/w", {4}, DataType::kFloat), kPermissionDenied);
  std::vector<float> ones(4, 1.0f);
  EXPECT_CODE(tower->Push("shared/w", UpdateOp::kAdd, DataType::kFloat, AsBytes(ones.data(), 16)),
              kPermissionDenied);
  EXPECT_CODE(tower->Pull("shared/w", DataType::kFloat, AsWritableBytes(ones.data(), 16)), kPermissionDenied);
  EXPECT_CODE(tower->DescribeVariable("shared/w"), kPermissionDenied);
  // Listings show only what the token may see.
  ASSERT_OK_AND_ASSIGN(auto listed, tower->ListVariables());
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].name(), "tower_0/w:0");
  ASSERT_OK_AND_ASSIGN(auto all, chief->ListVariables());
  EXPECT_EQ(all.size(), 2u);
  EXPECT_FALSE(server_->store().NameInUse("tower_1/w"));
}

TEST_F(TokenTest, ASessionBelongsToTheTokenThatOpenedIt) {
  ASSERT_OK_AND_ASSIGN(auto worker, Client::Connect(server_->address(),
                                                    WithToken(kTrainerToken)));
  auto stub = v1::VariableStore::NewStub(channel_);
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", std::string("Bearer ") + kTowerToken);
  v1::OpenScopeRequest request;
  request.set_session_id(worker->session_id());
  request.set_name("tower_0");
  v1::Scope scope;
  grpc::Status status = stub->OpenScope(&ctx, request, &scope);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(status.error_message().find("another token"), std::string::npos);
}

// A scope handle is re-entered from another session only by the token
// that opened it: handles are easy to guess, names and defaults are not
// another token's to read.
TEST_F(TokenTest, AnotherTokensScopeCannotBeReentered) {
  ASSERT_OK_AND_ASSIGN(auto chief, Client::Connect(server_->address(),
                                                   WithToken(kAdminToken)));
  ASSERT_OK_AND_ASSIGN(VariableScope scope, VariableScope::Open(*chief, "secret"));
  const CapturedScope captured = scope.Capture();
  ASSERT_OK_AND_ASSIGN(auto worker, Client::Connect(server_->address(),
                                                    WithToken(kTrainerToken)));
  auto stolen = VariableScope::Reenter(*worker, captured);
  EXPECT_CODE(stolen, kNotFound);
  EXPECT_EQ(ErrorReason(stolen.status()), "SCOPE_NOT_FOUND");
  ASSERT_OK_AND_ASSIGN(auto chief2, Client::Connect(server_->address(),
                                                    WithToken(kAdminToken)));
  ASSERT_OK_AND_ASSIGN(VariableScope same_owner, VariableScope::Reenter(*chief2, captured));
  EXPECT_EQ(same_owner.name(), "secret");
}

TEST(InFlightTest, AClientAboveItsLimitIsRefusedUntilCallsFinish) {
  service::ServerOptions options;
  options.max_in_flight_per_client = 2;
  auto server = StartTestServer(options);
  ASSERT_NE(server, nullptr);
  auto channel = grpc::CreateChannel(server->address(),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::VariableData::NewStub(channel);
  // Two waits park on the server and hold both slots.
  struct Wait {
    grpc::ClientContext ctx;
    v1::WaitVersionRequest request;
    v1::WaitVersionResponse response;
    absl::Notification done;
    grpc::Status status;
  };
  Wait waits[2];
  for (Wait& w : waits) {
    w.request.set_name("never");
    w.request.set_timeout_ms(3000);
    stub->async()->WaitVersion(&w.ctx, &w.request, &w.response,
                               [&w](grpc::Status s) {
                                 w.status = std::move(s);
                                 w.done.Notify();
                               });
  }
  // Wait until both are admitted (GetStats counts itself).
  auto admin = v1::Admin::NewStub(grpc::CreateCustomChannel(
      server->address(), grpc::InsecureChannelCredentials(), [] {
        grpc::ChannelArguments args;
        args.SetInt("varscope.test.admin", 1);  // its own connection
        return args;
      }()));
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  int64_t in_flight = 0;
  do {
    grpc::ClientContext ctx;
    v1::ServerStats stats;
    ASSERT_TRUE(admin->GetStats(&ctx, v1::GetStatsRequest(), &stats).ok());
    in_flight = stats.calls_in_flight() - 1;
  } while (in_flight < 2 && absl::Now() < deadline);
  ASSERT_EQ(in_flight, 2);
  grpc::Status third;
  {
    grpc::ClientContext ctx;
    v1::DescribeTrainingRequest request;
    request.set_name("x");
    v1::TrainingState response;
    third = stub->DescribeTraining(&ctx, request, &response);
  }
  EXPECT_EQ(third.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(third.error_message().find("--max_in_flight_per_client"),
            std::string::npos);
  // Another connection is another client.
  auto other = v1::VariableData::NewStub(grpc::CreateCustomChannel(
      server->address(), grpc::InsecureChannelCredentials(),
      [] {
        grpc::ChannelArguments args;
        args.SetInt("varscope.test.distinct", 1);  // no subchannel sharing
        return args;
      }()));
  {
    grpc::ClientContext ctx;
    v1::DescribeTrainingRequest request;
    request.set_name("x");
    v1::TrainingState response;
    EXPECT_EQ(other->DescribeTraining(&ctx, request, &response).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  for (Wait& w : waits) {
    w.done.WaitForNotification();
    EXPECT_EQ(w.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  }
  // A slot is given back when the server is done with the call, which may
  // be just after the client has its status.
  const absl::Time released_by = absl::Now() + absl::Seconds(10);
  do {
    grpc::ClientContext stats_ctx;
    v1::ServerStats stats;
    ASSERT_TRUE(admin->GetStats(&stats_ctx, v1::GetStatsRequest(), &stats).ok());
    in_flight = stats.calls_in_flight() - 1;
  } while (in_flight > 0 && absl::Now() < released_by);
  EXPECT_EQ(in_flight, 0);
  grpc::ClientContext ctx;
  v1::DescribeTrainingRequest request;
  request.set_name("x");
  v1::TrainingState response;
  EXPECT_EQ(stub->DescribeTraining(&ctx, request, &response).error_code(),
            grpc::StatusCode::NOT_FOUND);  // slots are back
}

TEST(QuotaOverGrpcTest, MemoryLimitLeavesTheStoreAsItWas) {
  service::ServerOptions options;
  options.store.max_memory_bytes = 1 << 20;
  auto server = StartTestServer(options);
  ASSERT_NE(server, nullptr);
  ClientOptions client_options;
  client_options.keep_alive = false;
  ASSERT_OK_AND_ASSIGN(auto client,
                       Client::Connect(server->address(), client_options));
  ASSERT_OK(client->GetVariable("a", {128 * 1024}, DataType::kFloat));  // 512 KiB
  auto over = client->GetVariable("b", {200 * 1024}, DataType::kFloat);
  EXPECT_CODE(over, kResourceExhausted);
  VariableOptions parts;
  parts.shape = {8, 32 * 1024};
  parts.dtype = DataType::kFloat;
  parts.partitioner = Partitioner::FixedSize(4);
  EXPECT_CODE(client->GetVariable("p", parts), kResourceExhausted);
  ASSERT_OK_AND_ASSIGN(auto listed, client->ListVariables());
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(server->store().total_bytes(), 512 * 1024);
}

TEST(QuotaOverGrpcTest, SessionLimit) {
  service::ServerOptions options;
  options.sessions.max_sessions = 1;
  auto server = StartTestServer(options);
  ASSERT_NE(server, nullptr);
  ClientOptions client_options;
  client_options.keep_alive = false;
  ASSERT_OK_AND_ASSIGN(auto first, Client::Connect(server->address(), client_options));
  auto second = Client::Connect(server->address(), client_options);
  EXPECT_CODE(second, kResourceExhausted);
  EXPECT_NE(std::string(second.status().message()).find("--max_sessions"),
            std::string::npos);
}

TEST(DaemonSecurityTest, InvalidUtf8RequestsDoNotFloodTheLog) {
  Daemon daemon({"--log_level=info"});
  ASSERT_NE(daemon.port(), 0) << daemon.log();
  grpc::GenericStub stub(grpc::CreateChannel(daemon.address(),
                                             grpc::InsecureChannelCredentials()));
  // DescribeVariableRequest{name: "\xff\xfe"}, hand-encoded.
  const std::string body("\x0a\x02\xff\xfe", 4);
  for (int i = 0; i < 20; ++i) {
    EXPECT_FALSE(RawUnaryCall(stub, "/varscope.v1.VariableStore/DescribeVariable",
                              body, std::chrono::seconds(10))
                     .ok());
  }
  EXPECT_EQ(daemon.log().find("UTF-8"), std::string::npos) << daemon.log();
}

TEST(DaemonSecurityTest, SighupReloadsTokensAndTokensNeverReachTheLog) {
  const std::string dir = TempDir();
  const std::string tokens = dir + "/tokens";
  WriteFile(tokens, absl::StrCat("old reader ", kReaderToken, "\n"));
  Daemon daemon({"--auth_tokens_file=" + tokens});
  ASSERT_NE(daemon.port(), 0) << daemon.log();
  auto channel = grpc::CreateChannel(daemon.address(),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::VariableStore::NewStub(channel);
  auto list = [&](const std::string& token) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + token);
    v1::ListVariablesRequest request;
    v1::ListVariablesResponse response;
    return stub->ListVariables(&ctx, request, &response).error_code();
  };
  EXPECT_EQ(list(kReaderToken), grpc::StatusCode::OK);
  EXPECT_EQ(list(kAdminToken), grpc::StatusCode::UNAUTHENTICATED);

  // A broken file keeps the old tokens: once the daemon says so, the old
  // token still works.
  WriteFile(tokens, "new reader short\n");
  daemon.Signal(SIGHUP);
  const absl::Time logged = absl::Now() + absl::Seconds(30);
  while (daemon.log().find("SIGHUP: kept the previous tokens") == std::string::npos &&
         absl::Now() < logged) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(list(kReaderToken), grpc::StatusCode::OK);

  WriteFile(tokens, absl::StrCat("new admin ", kAdminToken, "\n"));
  daemon.Signal(SIGHUP);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (list(kReaderToken) != grpc::StatusCode::UNAUTHENTICATED &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(list(kReaderToken), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(list(kAdminToken), grpc::StatusCode::OK);
  const std::string log = daemon.log();
  EXPECT_NE(log.find("SIGHUP: kept the previous tokens"), std::string::npos) << log;
  EXPECT_EQ(log.find(kReaderToken), std::string::npos);
  EXPECT_EQ(log.find(kAdminToken), std::string::npos);
  std::system(("rm -rf " + dir).c_str());
}

}  // namespace
}  // namespace varscope::testing
