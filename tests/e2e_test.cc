// End-to-end: the real varscoped binary, health, reflection, client calls,
// and a graceful SIGTERM with exit code 0.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <grpcpp/grpcpp.h>

#include <cstdlib>
#include <fstream>
#include <atomic>
#include <map>
#include <set>
#include <thread>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "varscope_testing/reflection.pb.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "server/logging/log_format.h"
#include "tests/daemon.h"
#include "tests/test_util.h"
#include "varscope/v1/admin.grpc.pb.h"
#include "varscope/client.h"

namespace varscope::testing {
namespace {

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
  // Every listed service can be described, the health service included
  // (grpcurl needs its descriptor to call grpc.health.v1.Health/Check).
  for (const char* symbol : {"varscope.v1.VariableStore", "grpc.health.v1.Health",
                             "grpc.health.v1.HealthCheckRequest"}) {
    refl::ServerReflectionRequest describe_request;
    describe_request.set_file_containing_symbol(symbol);
    ASSERT_TRUE(stream->Write(describe_request));
    refl::ServerReflectionResponse describe_response;
    ASSERT_TRUE(stream->Read(&describe_response));
    EXPECT_FALSE(describe_response.has_error_response())
        << symbol << ": " << describe_response.error_response().error_message();
    EXPECT_GT(describe_response.file_descriptor_response().file_descriptor_proto_size(), 0)
        << symbol;
  }
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

std::string TempDataDir() {
  char dir_template[] = "/tmp/varscope_data_XXXXXX";
  return mkdtemp(dir_template);
}

std::vector<float> Ramp(size_t n, float scale) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = scale * static_cast<float>(i);
  return v;
}

// Creates persist/w with an Adam step and persist/ids through a daemon.
void Train(const std::string& address, float scale) {
  auto client = *Client::Connect(address);
  ScopeOptions auto_reuse;
  auto_reuse.reuse = Reuse::kAutoReuse;
  VariableScope scope(*client, "persist", auto_reuse);
  ASSERT_OK_AND_ASSIGN(Variable w, client->GetVariable("w", {1000}, DataType::kFloat));
  ASSERT_OK(w.Push<float>(UpdateOp::kAssign, Ramp(1000, scale)));
  ASSERT_OK(client->SetOptimizer({"persist/w"}, OptimizerConfig::Adam()));
  ASSERT_OK(w.ApplyGradient<float>(std::vector<float>(1000, 1.0f)));
  ASSERT_OK(client->GetVariable("ids", {4}, DataType::kInt64));
}

TEST(EndToEnd, RestartRestoresTheDataDirectory) {
  const std::string data = TempDataDir();
  std::vector<float> trained;
  uint64_t served = 0;
  {
    Daemon daemon({"--data_dir=" + data});
    ASSERT_NE(daemon.port(), 0) << daemon.log();
    Train(daemon.address(), 0.5f);
    auto client = *Client::Connect(daemon.address());
    trained = *client->DescribeVariable("persist/w")->Pull<float>();
    served = client->DescribeVariable("persist/w")->version();
    const int status = daemon.Terminate();  // checkpoints at shutdown
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
    EXPECT_NE(daemon.log().find("shutdown checkpoint ckpt-000001"),
              std::string::npos) << daemon.log();
  }
  Daemon again({"--data_dir=" + data});
  ASSERT_NE(again.port(), 0) << again.log();
  EXPECT_NE(again.log().find("restored 4 variables"), std::string::npos)
      << again.log();
  auto client = *Client::Connect(again.address());
  ASSERT_OK_AND_ASSIGN(Variable w, client->DescribeVariable("persist/w"));
  EXPECT_GT(w.version(), served);  // versions never go back
  EXPECT_EQ(*w.Pull<float>(), trained);
  ASSERT_OK_AND_ASSIGN(TrainingState state,
                       client->DescribeTraining("persist/w"));
  EXPECT_EQ(state.optimizer, "Adam");
  EXPECT_EQ(state.optimizer_steps, 1);
  EXPECT_EQ(client->ListVariables("persist")->size(), 4u);  // w, 2 slots, ids
  std::system(("rm -rf " + data).c_str());
}

TEST(EndToEnd, JsonLogsAreOneObjectPerLine) {
  // Escaping first: quotes, backslashes, newlines and control bytes.
  EXPECT_EQ(logging::JsonLogLine("warning", "a \"b\"\\c\nd\x01", 1796121361618),
            "{\"time\":\"2026-12-01T10:36:01.618Z\",\"level\":\"warning\","
            "\"msg\":\"a \\\"b\\\"\\\\c\\nd\\u0001\"}\n");

  // Bytes that are not UTF-8 (a client's name, say) become U+FFFD.
  EXPECT_EQ(logging::JsonLogLine("info", "bad \xff\xc3 ok \xc3\xa9", 0),
            "{\"time\":\"1970-01-01T00:00:00.000Z\",\"level\":\"info\","
            "\"msg\":\"bad \\ufffd\\ufffd ok \xc3\xa9\"}\n");

  Daemon daemon({"--log_format=json"});
  ASSERT_NE(daemon.port(), 0);
  EXPECT_EQ(daemon.Terminate(), 0);
  const std::string log = daemon.log();
  int lines = 0;
  bool listening = false;
  for (absl::string_view line : absl::StrSplit(log, '\n', absl::SkipEmpty())) {
    ++lines;
    nlohmann::json entry = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(entry.is_object()) << line;
    EXPECT_TRUE(entry["time"].is_string() && entry["level"].is_string() &&
                entry["msg"].is_string())
        << line;
    if (entry["msg"].get<std::string>().find("listening on " + daemon.address()) !=
        std::string::npos) {
      listening = true;
    }
  }
  EXPECT_GE(lines, 3);
  EXPECT_TRUE(listening) << log;
}

TEST(EndToEnd, DamagedCheckpointStopsStartUnlessRecover) {
  const std::string data = TempDataDir();
  {
    Daemon daemon({"--data_dir=" + data});
    ASSERT_NE(daemon.port(), 0) << daemon.log();
    Train(daemon.address(), 1.0f);
    ASSERT_EQ(daemon.Terminate(), 0);  // ckpt-000001
  }
  {
    Daemon daemon({"--data_dir=" + data});
    Train(daemon.address(), 2.0f);  // changes the values
    ASSERT_EQ(daemon.Terminate(), 0);  // ckpt-000002
  }
  const std::string model = data + "/checkpoints/ckpt-000002/model.safetensors";
  {
    std::fstream f(model, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-17, std::ios::end);
    f.put('\x5a');
  }
  Daemon refused({"--data_dir=" + data});
  EXPECT_EQ(refused.port(), 0);
  ASSERT_TRUE(WIFEXITED(refused.exit_status()));
  EXPECT_EQ(WEXITSTATUS(refused.exit_status()), 1);
  EXPECT_NE(refused.log().find(model), std::string::npos) << refused.log();
  EXPECT_NE(refused.log().find("--recover"), std::string::npos);

  Daemon recovered({"--data_dir=" + data, "--recover"});
  ASSERT_NE(recovered.port(), 0) << recovered.log();
  EXPECT_NE(recovered.log().find("skipped damaged checkpoint"), std::string::npos);
  auto client = *Client::Connect(recovered.address());
  ASSERT_OK_AND_ASSIGN(Variable w, client->DescribeVariable("persist/w"));
  // The first checkpoint's value: ramp * 1.0 after one Adam step.
  EXPECT_NEAR(w.Pull<float>()->at(10), 10.0f - 0.001f, 1e-4);
  std::system(("rm -rf " + data).c_str());
}

// What one client knows it got acknowledged for one variable.
struct Acked {
  std::vector<float> value = std::vector<float>(64, 0.0f);
  std::vector<float> pending;  // sent, no answer yet (may or may not be in)
};

TEST(EndToEnd, StrictDurabilityLosesNothingAcknowledgedAcrossKill9) {
  const std::string data = TempDataDir();
  const std::vector<std::string> flags = {"--data_dir=" + data, "--durability=strict",
                                          "--checkpoint_interval=300ms"};
  std::vector<std::map<std::string, Acked>> acked(8);
  {
    Daemon daemon(flags);
    ASSERT_NE(daemon.port(), 0) << daemon.log();
    std::atomic<bool> stop{false};
    std::atomic<int> acknowledged_pushes{0};
    absl::Notification enough;  // the crash comes in the middle of the load
    std::vector<std::thread> clients;
    for (int c = 0; c < 8; ++c) {
      clients.emplace_back([&, c] {
        ClientOptions options;
        options.connection.rpc_timeout = absl::Seconds(5);
        auto client = Client::Connect(daemon.address(), options);
        if (!client.ok()) return;
        auto& mine = acked[c];
        for (int step = 0; !stop; ++step) {
          if (step % 10 == 0) {  // a new variable every 10 steps
            const std::string name = absl::StrCat("c", c, "/v", step / 10);
            VariableOptions zeros;
            zeros.shape = {64};
            zeros.dtype = DataType::kFloat;
            zeros.initializer = Initializer::Zeros();
            if (!(*client)->GetVariable(name, zeros).ok()) return;
            mine[name];  // acknowledged create
            continue;
          }
          // ADD a value distinct per step to one or two variables at once,
          // so a lost or doubled push shows.
          std::vector<PushItem> items;
          std::vector<std::vector<float>> deltas;
          std::vector<std::string> names;
          for (auto it = mine.rbegin(); it != mine.rend() && names.size() < 2; ++it) {
            names.push_back(it->first);
          }
          deltas.assign(names.size(), std::vector<float>(64, static_cast<float>(step + c)));
          for (size_t i = 0; i < names.size(); ++i) {
            items.push_back(PushItem::Of(names[i], UpdateOp::kAdd, deltas[i]));
            mine[names[i]].pending = deltas[i];
          }
          auto pushed = (*client)->PushMany(items);
          if (!pushed.ok()) return;  // the daemon is gone
          for (size_t i = 0; i < names.size(); ++i) {
            Acked& a = mine[names[i]];
            for (int k = 0; k < 64; ++k) a.value[k] += a.pending[k];
            a.pending.clear();
          }
          if (++acknowledged_pushes == 2000) enough.Notify();
        }
      });
    }
    // After 2000 acknowledged pushes (several checkpoints in), while all
    // eight clients are still pushing.
    enough.WaitForNotificationWithTimeout(absl::Minutes(5));
    daemon.Crash();
    stop = true;
    for (auto& t : clients) t.join();
  }
  Daemon again(flags);
  ASSERT_NE(again.port(), 0) << again.log();
  auto client = *Client::Connect(again.address());
  int variables = 0;
  for (int c = 0; c < 8; ++c) {
    for (auto& [name, a] : acked[c]) {
      ++variables;
      auto var = client->DescribeVariable(name);
      ASSERT_OK(var) << name << " was acknowledged but is gone\n" << again.log();
      ASSERT_OK_AND_ASSIGN(std::vector<float> got, var->Pull<float>());
      std::vector<float> with_pending = a.value;
      for (size_t k = 0; k < a.pending.size(); ++k) with_pending[k] += a.pending[k];
      EXPECT_TRUE(got == a.value || (!a.pending.empty() && got == with_pending))
          << name << ": got " << got[0] << ", acknowledged " << a.value[0];
    }
  }
  EXPECT_GT(variables, 8);
  EXPECT_NE(again.log().find("replayed"), std::string::npos) << again.log();
  std::system(("rm -rf " + data).c_str());
}

TEST(EndToEnd, RelaxedDurabilityKeepsCheckpointPlusLoggedNamespace) {
  const std::string data = TempDataDir();
  const std::vector<std::string> flags = {"--data_dir=" + data,
                                          "--checkpoint_interval=0"};
  {
    Daemon daemon(flags);
    ASSERT_NE(daemon.port(), 0) << daemon.log();
    auto client = *Client::Connect(daemon.address());
    ASSERT_OK_AND_ASSIGN(Variable a, client->GetVariable("a", {2}, DataType::kFloat));
    ASSERT_OK(a.Push<float>(UpdateOp::kAssign, {1, 2}));
    ASSERT_OK(client->GetVariable("doomed", {1}, DataType::kFloat));
    auto admin = v1::Admin::NewStub(grpc::CreateChannel(
        daemon.address(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    v1::CheckpointInfo saved;
    ASSERT_TRUE(admin->Save(&ctx, {}, &saved).ok());
    ASSERT_OK(a.Push<float>(UpdateOp::kAssign, {5, 5}));  // lost: relaxed, no log
    VariableOptions zeros;
    zeros.shape = {3};
    zeros.initializer = Initializer::Zeros();
    ASSERT_OK_AND_ASSIGN(Variable b, client->GetVariable("b", zeros));  // logged
    ASSERT_OK(b.Push<float>(UpdateOp::kAssign, {7, 7, 7}));  // lost
    ASSERT_OK(client->DeleteVariable("doomed"));  // logged
    daemon.Crash();
  }
  Daemon again(flags);
  ASSERT_NE(again.port(), 0) << again.log();
  auto client = *Client::Connect(again.address());
  EXPECT_EQ(*client->DescribeVariable("a")->Pull<float>(), (std::vector<float>{1, 2}));
  ASSERT_OK_AND_ASSIGN(Variable b, client->DescribeVariable("b"));
  EXPECT_EQ(*b.Pull<float>(), (std::vector<float>{0, 0, 0}));
  EXPECT_CODE(client->DescribeVariable("doomed"), kNotFound);
  std::system(("rm -rf " + data).c_str());
}

}  // namespace
}  // namespace varscope::testing
