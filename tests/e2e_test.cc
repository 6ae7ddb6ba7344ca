// End-to-end: the real varscoped binary, health, reflection, client calls,
// and a graceful SIGTERM with exit code 0.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <grpcpp/grpcpp.h>

#include <cstdlib>
#include <fstream>
#include <set>

#include "absl/time/clock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "varscope_testing/reflection.pb.h"
#include "tests/test_util.h"
#include "varscope/client.h"

namespace varscope::testing {
namespace {

class Daemon {
 public:
  Daemon() {
    char dir_template[] = "/tmp/varscope_e2e_XXXXXX";
    dir_ = mkdtemp(dir_template);
    const std::string port_file = dir_ + "/port";
    pid_ = fork();
    if (pid_ == 0) {
      execl(VARSCOPED_PATH, VARSCOPED_PATH, "--listen=127.0.0.1:0",
            ("--port_file=" + port_file).c_str(), "--log_level=debug",
            static_cast<char*>(nullptr));
      _exit(127);
    }
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (port_ == 0 && absl::Now() < deadline) {
      std::ifstream in(port_file);
      in >> port_;
      if (port_ == 0) absl::SleepFor(absl::Milliseconds(20));
    }
  }
  ~Daemon() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    std::system(("rm -rf " + dir_).c_str());
  }
  // Sends SIGTERM and returns the exit status.
  int Terminate() {
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }

 private:
  std::string dir_;
  pid_t pid_ = -1;
  int port_ = 0;
};

TEST(EndToEnd, DaemonServesHealthReflectionAndVariables) {
  Daemon daemon;
  ASSERT_NE(daemon.port(), 0) << "varscoped did not report its port";
  auto channel =
      grpc::CreateChannel(daemon.address(), grpc::InsecureChannelCredentials());

  // Health (standard grpc.health.v1).
  auto health = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext health_ctx;
  grpc::health::v1::HealthCheckRequest health_request;
  grpc::health::v1::HealthCheckResponse health_response;
  ASSERT_TRUE(health->Check(&health_ctx, health_request, &health_response).ok());
  EXPECT_EQ(health_response.status(),
            grpc::health::v1::HealthCheckResponse::SERVING);

  // Reflection: what `grpcurl list` and `grpcurl describe` use.
  namespace refl = ::varscope::testing::reflection;
  grpc::ClientContext refl_ctx;
  const grpc::internal::RpcMethod method(
      "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
      grpc::internal::RpcMethod::BIDI_STREAMING, channel);
  std::unique_ptr<grpc::ClientReaderWriter<refl::ServerReflectionRequest,
                                           refl::ServerReflectionResponse>>
      stream(grpc::internal::ClientReaderWriterFactory<
             refl::ServerReflectionRequest,
             refl::ServerReflectionResponse>::Create(channel.get(), method,
                                                     &refl_ctx));
  refl::ServerReflectionRequest list_request;
  list_request.set_list_services("");
  ASSERT_TRUE(stream->Write(list_request));
  refl::ServerReflectionResponse list_response;
  ASSERT_TRUE(stream->Read(&list_response));
  std::set<std::string> services;
  for (const auto& s : list_response.list_services_response().service()) {
    services.insert(s.name());
  }
  EXPECT_TRUE(services.count("varscope.v1.VariableStore"));
  EXPECT_TRUE(services.count("varscope.v1.VariableData"));
  EXPECT_TRUE(services.count("grpc.health.v1.Health"));
  refl::ServerReflectionRequest describe_request;
  describe_request.set_file_containing_symbol("varscope.v1.VariableStore");
  ASSERT_TRUE(stream->Write(describe_request));
  refl::ServerReflectionResponse describe_response;
  ASSERT_TRUE(stream->Read(&describe_response));
  EXPECT_GT(describe_response.file_descriptor_response().file_descriptor_proto_size(), 0);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());

  // Variables through the client library.
  {
    auto client = Client::Connect(daemon.address());
    ASSERT_OK(client);
    VariableScope scope1(**client, "scope1");
    VariableScope scope2(**client, "scope2");
    ASSERT_OK_AND_ASSIGN(Variable v, (*client)->GetVariable("variable1", {1}));
    EXPECT_EQ(v.name(), "scope1/scope2/variable1:0");
  }

  const int status = daemon.Terminate();
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace varscope::testing
