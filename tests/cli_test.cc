// The `varscope` CLI binary against a real server on 127.0.0.1: what it
// prints (text and --json), .npy files NumPy reads, checkpoints, sessions,
// watch, tokens, and the exit codes scripts rely on.
#include <gmock/gmock.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "tests/test_server.h"
#include "tests/test_util.h"
#include "varscope/client.h"

namespace varscope::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using json = nlohmann::json;

struct CliRun {
  int code = -1;
  std::string out, err;
};

std::string Quote(const std::string& arg) {
  std::string out = "'";
  for (char c : arg) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/varscope_cli_XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  void TearDown() override {
    client_.reset();
    server_.reset();
    (void)system(("rm -rf " + dir_).c_str());
  }
  void Start(service::ServerOptions options = {}) {
    options.data_dir = dir_ + "/data";
    options.checkpoint_interval = absl::ZeroDuration();
    server_ = StartTestServer(options);
    ASSERT_NE(server_, nullptr);
  }
  void ConnectClient(ClientOptions options = {}) {
    options.client_name = "trainer-0";
    absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(server_->address(), options);
    ASSERT_OK(client.status());
    client_ = *std::move(client);
  }
  // Runs the CLI against the server; `env` is prepended (VAR=value ...).
  CliRun Cli(const std::vector<std::string>& args, const std::string& env = "") {
    std::string command = env + " " + Quote(VARSCOPE_CLI_PATH) + " --addr " +
                          Quote(server_ != nullptr ? server_->address() : "127.0.0.1:1");
    for (const std::string& a : args) command += " " + Quote(a);
    const std::string err_file = dir_ + "/stderr";
    command += " 2>" + Quote(err_file);
    CliRun run;
    FILE* pipe = popen(command.c_str(), "r");
    if (pipe == nullptr) return run;
    char buffer[4096];
    size_t n;
    while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) run.out.append(buffer, n);
    const int status = pclose(pipe);
    run.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    run.err = ReadAll(err_file);
    return run;
  }
  json Json(const std::vector<std::string>& args) {
    std::vector<std::string> with = {"--json"};
    with.insert(with.end(), args.begin(), args.end());
    CliRun run = Cli(with);
    EXPECT_EQ(run.code, 0) << run.err;
    return json::parse(run.out, nullptr, /*allow_exceptions=*/false);
  }

  std::string dir_;
  std::unique_ptr<service::Server> server_;
  std::unique_ptr<Client> client_;
};

TEST_F(CliTest, ShowsTheNamespaceAsTrainersBuiltIt) {
  Start();
  ConnectClient();
  {
    VariableScope model(*client_, "model");
    VariableScope dense(*client_, "dense");
    ASSERT_OK(client_->GetVariable("kernel", {4, 3}).status());
    ASSERT_OK(client_->GetVariable("bias", {3}).status());
  }
  VariableOptions emb;
  emb.shape = {6, 2};
  emb.partitioner = Partitioner::FixedSize(2);
  ASSERT_OK(client_->GetVariable("emb", emb).status());
  ASSERT_OK(client_->SetOptimizer({"model/dense/kernel"}, OptimizerConfig::Adam()).status());

  CliRun tree = Cli({"tree"});
  ASSERT_EQ(tree.code, 0) << tree.err;
  EXPECT_THAT(tree.out, HasSubstr("model/\n  dense/\n    bias  float32  [3]  12 B  v"));
  EXPECT_THAT(tree.out, HasSubstr("    kernel  float32  [4,3]  48 B  v"));
  EXPECT_THAT(tree.out, HasSubstr("emb  float32  [6,2]  48 B  v"));
  EXPECT_THAT(tree.out, HasSubstr("partitioned (2 parts)\n  part_0  float32  [3,2]"));

  EXPECT_THAT(tree.out, HasSubstr("    kernel  float32  [4,3]  48 B  v1  trainable\n"
                                  "      Adam  float32  [4,3]  48 B  v"));  // its slots

  json listed = Json({"ls", "model"});
  ASSERT_TRUE(listed.is_array());
  ASSERT_EQ(listed.size(), 4u);  // bias, kernel and kernel's two Adam slots
  EXPECT_EQ(listed[0]["name"], "model/dense/bias");
  EXPECT_EQ(listed[1]["shape"], json::array({4, 3}));
  EXPECT_EQ(listed[1]["bytes"], 48);
  EXPECT_EQ(listed[1]["trainable"], true);
  EXPECT_EQ(listed[2]["name"], "model/dense/kernel/Adam");
  EXPECT_EQ(listed[2]["trainable"], false);

  CliRun described = Cli({"describe", "model/dense/kernel"});
  ASSERT_EQ(described.code, 0) << described.err;
  EXPECT_THAT(described.out, HasSubstr("name:        model/dense/kernel:0"));
  EXPECT_THAT(described.out, HasSubstr("optimizer:   Adam"));
  json training = Json({"describe", "model/dense/kernel"})["training"];
  EXPECT_EQ(training["optimizer"], "Adam");
}

TEST_F(CliTest, PullsStatisticsAndNpyThatPushReadsBack) {
  Start();
  ConnectClient();
  ASSERT_OK_AND_ASSIGN(Variable w, client_->GetVariable("w", {2, 3}));
  ASSERT_OK(w.Push(UpdateOp::kAssign, std::vector<float>{1, -2, 3, 4, 5, 6}).status());

  json pulled = Json({"pull", "w", "--out", dir_ + "/w.npy"});
  EXPECT_EQ(pulled["min"], -2);
  EXPECT_EQ(pulled["max"], 6);
  EXPECT_DOUBLE_EQ(pulled["mean"].get<double>(), 17.0 / 6);
  EXPECT_DOUBLE_EQ(pulled["norm"].get<double>(), std::sqrt(91.0));
  EXPECT_EQ(pulled["first"], json::array({1, -2, 3, 4, 5, 6}));

  // What numpy.save writes for this array: header padded to 64 bytes.
  const std::string npy = ReadAll(dir_ + "/w.npy");
  ASSERT_EQ(npy.size(), 128u + 24u);
  EXPECT_EQ(npy.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  EXPECT_EQ(npy.substr(10, 59),
            std::string("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"));
  EXPECT_EQ(npy[127], '\n');

  CliRun added = Cli({"push", "w", "--from", dir_ + "/w.npy", "--op", "add"});
  ASSERT_EQ(added.code, 0) << added.err;
  EXPECT_THAT(added.out, HasSubstr("w: applied, version"));
  ASSERT_OK_AND_ASSIGN(std::vector<float> doubled, w.Pull<float>());
  EXPECT_EQ(doubled, (std::vector<float>{2, -4, 6, 8, 10, 12}));

  // Large values come in row chunks, still one consistent value.
  ASSERT_OK_AND_ASSIGN(Variable big, client_->GetVariable("big", {3000, 1024}));
  std::vector<float> values(3000 * 1024);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i % 977);
  ASSERT_OK(big.Push(UpdateOp::kAssign, values).status());
  ASSERT_EQ(Cli({"pull", "big", "--out", dir_ + "/big.npy"}).code, 0);
  const std::string big_npy = ReadAll(dir_ + "/big.npy");
  ASSERT_EQ(big_npy.size(), 128u + values.size() * 4) << "header of (3000, 1024) is 128 bytes";
  EXPECT_EQ(0, std::memcmp(big_npy.data() + 128, values.data(), values.size() * 4));

  // Wrong shape or dtype: refused, nothing written.
  CliRun wrong = Cli({"push", "big", "--from", dir_ + "/w.npy"});
  EXPECT_EQ(wrong.code, 1);
  EXPECT_THAT(wrong.err, HasSubstr("has shape [2,3] but big has shape [3000,1024]"));
  EXPECT_EQ(Cli({"push", "w", "--from", dir_ + "/missing.npy"}).code, 6);
}

TEST_F(CliTest, CheckpointsSessionsStatsAndWatch) {
  Start();
  ConnectClient();
  VariableScope scope(*client_, "layer");
  ASSERT_OK_AND_ASSIGN(Variable w, client_->GetVariable("w", {4}));

  ASSERT_OK_AND_ASSIGN(std::vector<float> initial, w.Pull<float>());
  json saved = Json({"save", "before"});
  EXPECT_EQ(saved["name"], "before");
  ASSERT_OK(w.Push(UpdateOp::kAssign, std::vector<float>{9, 9, 9, 9}).status());
  json listed = Json({"checkpoints"});
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0]["bytes"], saved["bytes"]);  // Save and ListCheckpoints agree
  ASSERT_EQ(Cli({"restore", "before"}).code, 0);
  ASSERT_OK_AND_ASSIGN(std::vector<float> restored, w.Pull<float>());
  EXPECT_EQ(restored, initial);

  json sessions = Json({"sessions"});
  ASSERT_EQ(sessions.size(), 1u);
  EXPECT_EQ(sessions[0]["client_name"], "trainer-0");
  EXPECT_EQ(sessions[0]["open_scopes"], 1);
  EXPECT_EQ(Json({"stats"})["variables"], 1);

  CliRun watched = Cli({"watch", "layer", "--initial", "--count", "1"});
  ASSERT_EQ(watched.code, 0) << watched.err;
  EXPECT_THAT(watched.out, HasSubstr("EXISTING layer/w v"));

  // A safetensors file on the server's disk (8-byte header length, JSON
  // header, data).
  const std::string header =
      R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  std::string file(8, '\0');
  file[0] = static_cast<char>(header.size());
  file += header;
  const float two[] = {1.5f, 2.5f};
  file.append(reinterpret_cast<const char*>(two), sizeof(two));
  std::ofstream(dir_ + "/in.safetensors", std::ios::binary) << file;
  json imported = Json({"import", dir_ + "/in.safetensors", "--scope", "pretrained"});
  EXPECT_EQ(imported["names"], json::array({"pretrained/t"}));
  EXPECT_EQ(Json({"pull", "pretrained/t"})["first"], json::array({1.5, 2.5}));
}

TEST_F(CliTest, ExitCodesAndErrorsFitScripts) {
  Start();
  CliRun health = Cli({"health"});
  EXPECT_EQ(health.code, 0);
  EXPECT_EQ(health.out, "SERVING\n");
  CliRun missing = Cli({"describe", "no/such"});
  EXPECT_EQ(missing.code, 4);
  EXPECT_THAT(missing.err, HasSubstr("varscope: NOT_FOUND: "));
  EXPECT_EQ(Cli({"no-such-command"}).code, 2);
  EXPECT_EQ(Cli({"push", "w"}).code, 2);  // --from is required
  server_.reset();
  CliRun down = Cli({"--timeout", "2", "stats"});
  EXPECT_EQ(down.code, 3);
  EXPECT_THAT(down.err, HasSubstr("UNAVAILABLE"));
}

TEST_F(CliTest, TokensComeFromTheEnvironmentOrAFileAndAreNeverShown) {
  const std::string tokens = dir_ + "/tokens";
  std::ofstream(tokens) << "ops admin ops-token-0123456789abcdef\n"
                        << "dash reader dash-token-0123456789abcdef\n";
  service::ServerOptions options;
  options.auth_tokens_file = tokens;
  Start(options);
  CliRun health = Cli({"health"});  // probes carry no token
  EXPECT_EQ(health.code, 0) << health.err;
  EXPECT_EQ(Cli({"stats"}).code, 1);  // UNAUTHENTICATED
  EXPECT_EQ(Cli({"stats"}, "VARSCOPE_TOKEN=dash-token-0123456789abcdef").code, 0);
  CliRun denied = Cli({"sessions"}, "VARSCOPE_TOKEN=dash-token-0123456789abcdef");
  EXPECT_EQ(denied.code, 1);
  EXPECT_THAT(denied.err, HasSubstr("PERMISSION_DENIED"));
  EXPECT_THAT(denied.err + denied.out, Not(HasSubstr("dash-token")));
  std::ofstream(dir_ + "/ops") << "ops-token-0123456789abcdef\n";
  EXPECT_EQ(Cli({"--token_file", dir_ + "/ops", "sessions"}).code, 0);
  CliRun wrong = Cli({"stats"}, "VARSCOPE_TOKEN=wrong-token-0123456789abcdef");
  EXPECT_EQ(wrong.code, 1);
  EXPECT_THAT(wrong.err, HasSubstr("UNAUTHENTICATED"));
  EXPECT_THAT(wrong.err, Not(HasSubstr("wrong-token")));
}

}  // namespace
}  // namespace varscope::testing
