// The hostile-input suite: malformed and hostile requests to every service
// (VariableStore, VariableData, Admin), sent as raw bytes over real gRPC.
// Each case names its expected code; after each one the store (names,
// versions, values, optimizer state), the sessions and the session's scope
// handles must be exactly as before.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "tests/raw_call.h"
#include "tests/test_server.h"
#include "tests/test_util.h"
#include "varscope/v1/admin.pb.h"
#include "varscope/v1/variable_data.pb.h"
#include "varscope/v1/variable_store.pb.h"

namespace varscope::testing {
namespace {

namespace pb = ::varscope::v1;
using Code = grpc::StatusCode;

struct Case {
  std::string label;
  std::string method;  // "/varscope.v1.Service/Method"
  std::string body;    // the serialized request (or garbage)
  Code expected;
};

template <typename M>
std::string Bytes(const M& message) {
  return message.SerializeAsString();
}

class HostileInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir_template[] = "/tmp/varscope_hostile_XXXXXX";
    dir_ = mkdtemp(dir_template);
    service::ServerOptions options;
    options.data_dir = dir_ + "/data";
    options.checkpoint_interval = absl::ZeroDuration();
    options.store.max_variable_bytes = 1 << 20;
    options.max_message_bytes = 1 << 20;
    server_ = StartTestServer(options);
    ASSERT_NE(server_, nullptr);
    grpc::ChannelArguments args;
    args.SetMaxSendMessageSize(8 << 20);
    stub_ = std::make_unique<grpc::GenericStub>(grpc::CreateCustomChannel(
        server_->address(), grpc::InsecureChannelCredentials(), args));
    // State to protect: a session with a scope, a dense and a sparse
    // variable with an optimizer.
    pb::OpenSessionRequest open;
    pb::OpenSessionResponse session;
    ASSERT_EQ(Call("/varscope.v1.VariableStore/OpenSession", Bytes(open), &session),
              Code::OK);
    session_ = session.session_id();
    pb::OpenScopeRequest scope;
    scope.set_session_id(session_);
    scope.set_name("outer");
    pb::Scope outer;
    ASSERT_EQ(Call("/varscope.v1.VariableStore/OpenScope", Bytes(scope), &outer),
              Code::OK);
    scope_ = outer.scope_id();
    for (auto [name, rows] : {std::pair<const char*, int>{"w", 4}, {"emb", 8}}) {
      pb::GetVariableRequest get;
      get.set_name(name);
      get.mutable_shape()->add_dims(rows);
      get.mutable_shape()->add_dims(2);
      get.set_dtype(pb::DT_FLOAT);
      pb::GetVariableResponse v;
      ASSERT_EQ(Call("/varscope.v1.VariableStore/GetVariable", Bytes(get), &v), Code::OK);
    }
    pb::SetOptimizerRequest sgd;
    sgd.add_names("emb");
    sgd.mutable_optimizer()->mutable_sgd()->set_learning_rate(0.5);
    pb::SetOptimizerResponse set;
    ASSERT_EQ(Call("/varscope.v1.VariableData/SetOptimizer", Bytes(sgd), &set), Code::OK);
    {
      pb::GetVariableRequest get;  // a synchronous variable, and an int one
      get.set_name("sync");
      get.mutable_shape()->add_dims(2);
      pb::GetVariableResponse v;
      ASSERT_EQ(Call("/varscope.v1.VariableStore/GetVariable", Bytes(get), &v), Code::OK);
      get.set_name("ints");
      get.set_dtype(pb::DT_INT32);
      ASSERT_EQ(Call("/varscope.v1.VariableStore/GetVariable", Bytes(get), &v), Code::OK);
      pb::SetOptimizerRequest sync;
      sync.add_names("sync");
      sync.mutable_optimizer()->mutable_sgd()->set_learning_rate(0.5);
      sync.set_replicas_to_aggregate(2);
      ASSERT_EQ(Call("/varscope.v1.VariableData/SetOptimizer", Bytes(sync), &set), Code::OK);
    }
    WriteFile(dir_ + "/garbage.safetensors", "\x10\0\0\0\0\0\0\0{not json at all");
    {
      // "fresh" is free, "w" is taken.
      const std::string header =
          R"({"fresh":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
          R"("w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})";
      std::string file(8, '\0');
      for (int i = 0; i < 8; ++i) file[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
      file += header + std::string(16, '\0');
      WriteFile(dir_ + "/collides.safetensors", file);
    }
    for (const char* name : {"kept", "damaged"}) {
      pb::SaveRequest save;
      save.set_name(name);
      pb::CheckpointInfo info;
      ASSERT_EQ(Call("/varscope.v1.Admin/Save", Bytes(save), &info), Code::OK);
    }
    {
      // Flip a byte in the middle of the damaged checkpoint's tensors.
      const std::string model = dir_ + "/data/checkpoints/damaged/model.safetensors";
      std::fstream f(model, std::ios::in | std::ios::out | std::ios::binary);
      f.seekg(0, std::ios::end);
      const auto size = static_cast<std::streamoff>(f.tellg());
      f.seekp(size - 4);
      f.put('\x7f');
    }
  }
  void TearDown() override {
    server_.reset();
    std::system(("rm -rf " + dir_).c_str());
  }
  static void WriteFile(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary) << bytes;
  }

  template <typename Response = pb::ServerStats>
  Code Call(const std::string& method, const std::string& body,
            Response* parsed = nullptr, std::string* message = nullptr) {
    std::string bytes;
    const grpc::Status status =
        RawUnaryCall(*stub_, method, body, std::chrono::seconds(10), "", &bytes);
    if (status.ok() && parsed != nullptr) {
      EXPECT_TRUE(parsed->ParseFromString(bytes));
    }
    if (message != nullptr) *message = status.error_message();
    return status.error_code();
  }

  // Everything a failed request must not change.
  std::string Fingerprint() {
    std::string out;
    core::StoreSnapshot snapshot = server_->store().Snapshot();
    for (const core::VariableState& v : snapshot.variables) {
      absl::StrAppend(&out, v.info.name, "@", v.info.version, " opt=",
                      v.optimizer.has_value() ? static_cast<int>(v.optimizer->kind) : -1,
                      " steps=", v.optimizer_steps, " r=", v.replicas_to_aggregate,
                      " sync=", v.sync_step, " stale=", v.stale_dropped,
                      " trainable=", v.info.trainable, " in=");
      for (const std::string& c : v.info.collections) absl::StrAppend(&out, c, ",");
      out += " bytes=";
      out.append(reinterpret_cast<const char*>(v.value->data()), v.value->size());
      out += "\n";
    }
    for (const core::PartitionedState& p : snapshot.partitioned) out += p.name + "\n";
    absl::StrAppend(&out, "sessions=", server_->sessions().num_sessions());
    auto handles = server_->sessions().ListHandles(session_);
    if (handles.ok()) {
      for (const core::ScopeInfo& h : *handles) {
        absl::StrAppend(&out, " h", h.id, h.name, h.open ? "+" : "-");
      }
    }
    return absl::StrCat(std::hash<std::string>{}(out), " (", out.size(), " bytes)");
  }

  std::string dir_;
  std::unique_ptr<service::Server> server_;
  std::unique_ptr<grpc::GenericStub> stub_;
  uint64_t session_ = 0;
  uint64_t scope_ = 0;
};

pb::Update FloatUpdate(const std::string& name, pb::UpdateOp op, size_t floats) {
  pb::Update u;
  u.set_name(name);
  u.set_op(op);
  u.set_dtype(pb::DT_FLOAT);
  u.set_data(std::string(floats * sizeof(float), '\0'));
  return u;
}

std::string PushOf(std::vector<pb::Update> updates) {
  pb::PushRequest r;
  for (pb::Update& u : updates) *r.add_updates() = std::move(u);
  return Bytes(r);
}

TEST_F(HostileInputTest, EveryCaseGetsItsCodeAndLeavesTheStoreAlone) {
  const std::string kStore = "/varscope.v1.VariableStore/";
  const std::string kData = "/varscope.v1.VariableData/";
  const std::string kAdmin = "/varscope.v1.Admin/";
  const std::string garbage("\xff\xff\xff\xff\x0f\x08\x96", 7);
  std::vector<Case> cases;
  auto add = [&](std::string label, std::string method, std::string body, Code code) {
    cases.push_back({std::move(label), std::move(method), std::move(body), code});
  };

  // ---- VariableStore ----
  {
    pb::OpenSessionRequest r;
    r.set_lease_ttl_ms(-1);
    add("negative lease", kStore + "OpenSession", Bytes(r), Code::INVALID_ARGUMENT);
    r.set_lease_ttl_ms(0);
    r.set_client_name(std::string(300, 'c'));
    add("client name over 256 bytes", kStore + "OpenSession", Bytes(r), Code::INVALID_ARGUMENT);
  }
  {
    pb::KeepAliveRequest r;
    r.set_session_id(session_ + 1000);
    add("keep-alive of an unknown session", kStore + "KeepAlive", Bytes(r), Code::NOT_FOUND);
    pb::CloseSessionRequest c;
    c.set_session_id(12345);
    add("close of an unknown session", kStore + "CloseSession", Bytes(c), Code::NOT_FOUND);
  }
  {
    pb::OpenScopeRequest base;
    base.set_session_id(session_);
    base.set_name("ok");
    pb::OpenScopeRequest r = base;
    r.set_session_id(999999);
    add("scope in an unknown session", kStore + "OpenScope", Bytes(r), Code::NOT_FOUND);
    r = base;
    r.set_parent_scope_id(4242);
    add("scope under an unknown handle", kStore + "OpenScope", Bytes(r), Code::NOT_FOUND);
    r = base;
    r.set_name("bad name!");
    add("scope name with a space and '!'", kStore + "OpenScope", Bytes(r), Code::INVALID_ARGUMENT);
    r.set_name("a//b");
    add("scope name with an empty component", kStore + "OpenScope", Bytes(r), Code::INVALID_ARGUMENT);
    r.set_name(std::string(2000, 'a'));
    add("scope name of 2000 bytes", kStore + "OpenScope", Bytes(r), Code::INVALID_ARGUMENT);
    r = base;
    r.set_reuse(static_cast<pb::Reuse>(99));
    add("unknown reuse enum", kStore + "OpenScope", Bytes(r), Code::INVALID_ARGUMENT);
    r = base;
    r.set_kind(static_cast<pb::ScopeKind>(77));
    add("unknown scope kind enum", kStore + "OpenScope", Bytes(r), Code::INVALID_ARGUMENT);
    r = base;
    r.clear_name();
    add("scope with neither name nor default_name", kStore + "OpenScope", Bytes(r),
        Code::INVALID_ARGUMENT);
  }
  {
    pb::ReuseVariablesRequest r;
    r.set_session_id(session_);
    r.set_scope_id(777);
    add("reuse of an unknown handle", kStore + "ReuseVariables", Bytes(r), Code::NOT_FOUND);
    pb::CloseScopeRequest c;
    c.set_session_id(session_);
    c.set_scope_id(778);
    add("close of an unknown handle", kStore + "CloseScope", Bytes(c), Code::NOT_FOUND);
  }
  {
    pb::GetVariableRequest base;
    base.set_name("fresh");
    base.set_dtype(pb::DT_FLOAT);
    pb::GetVariableRequest r = base;
    r.mutable_shape()->add_dims(-5);
    r.mutable_shape()->add_dims(3);
    add("negative dimension", kStore + "GetVariable", Bytes(r), Code::INVALID_ARGUMENT);
    r = base;
    r.mutable_shape()->add_dims(int64_t{1} << 40);
    r.mutable_shape()->add_dims(int64_t{1} << 40);
    add("shape whose size overflows", kStore + "GetVariable", Bytes(r), Code::INVALID_ARGUMENT);
    r = base;
    r.mutable_shape()->add_dims(1 << 20);
    r.mutable_shape()->add_dims(1 << 10);
    add("4 GiB variable above --max_variable_bytes", kStore + "GetVariable", Bytes(r),
        Code::RESOURCE_EXHAUSTED);
    r = base;
    r.mutable_shape()->add_dims(2);
    r.set_dtype(static_cast<pb::DataType>(999));
    add("unknown dtype enum", kStore + "GetVariable", Bytes(r), Code::INVALID_ARGUMENT);
    r = base;
    r.set_name("w");
    r.mutable_shape()->add_dims(5);
    r.set_reuse(pb::AUTO_REUSE);
    add("reuse with a different shape", kStore + "GetVariable", Bytes(r), Code::INVALID_ARGUMENT);
    r = base;
    r.set_name(std::string(2000, 'n'));
    r.mutable_shape()->add_dims(1);
    add("variable name of 2000 bytes", kStore + "GetVariable", Bytes(r), Code::INVALID_ARGUMENT);
    r = base;
    r.set_name(std::string("a\0b", 3));
    r.mutable_shape()->add_dims(1);
    add("NUL byte in a name", kStore + "GetVariable", Bytes(r), Code::INVALID_ARGUMENT);
    r.set_name("caf\xc3\xa9");
    add("non-ASCII name", kStore + "GetVariable", Bytes(r), Code::INVALID_ARGUMENT);
    r = base;
    r.set_session_id(31337);
    r.mutable_shape()->add_dims(1);
    add("get in an unknown session", kStore + "GetVariable", Bytes(r), Code::NOT_FOUND);
    r = base;
    r.mutable_shape()->add_dims(2);
    r.mutable_initializer()->mutable_constant()->add_values(1);
    r.mutable_initializer()->mutable_constant()->add_values(2);
    r.mutable_initializer()->mutable_constant()->add_values(3);
    r.mutable_initializer()->mutable_constant()->set_verify_shape(true);
    add("constant initializer of the wrong size", kStore + "GetVariable", Bytes(r),
        Code::INVALID_ARGUMENT);
  }
  {
    pb::NewVariableRequest r;
    r.set_session_id(session_);
    r.set_name("nv");
    r.mutable_value()->set_dtype(pb::DT_FLOAT);
    r.mutable_value()->add_shape(4);
    r.mutable_value()->set_data(std::string(3, '\0'));
    add("value bytes do not match the shape", kStore + "NewVariable", Bytes(r),
        Code::INVALID_ARGUMENT);
  }
  {
    pb::OpNameRequest r;
    r.set_session_id(424242);
    r.set_name("add");
    add("op name in an unknown session", kStore + "OpName", Bytes(r), Code::NOT_FOUND);
    pb::DescribeVariableRequest d;
    d.set_name("missing");
    add("describe a missing variable", kStore + "DescribeVariable", Bytes(d), Code::NOT_FOUND);
    pb::DeleteVariableRequest del;
    del.set_name("missing");
    add("delete a missing variable", kStore + "DeleteVariable", Bytes(del), Code::NOT_FOUND);
    del.set_name("w/Momentum/../../emb");
    add("delete with a traversal-like name", kStore + "DeleteVariable", Bytes(del),
        Code::NOT_FOUND);
  }
  // Typed methods: gRPC itself refuses a body that does not parse.
  add("ListVariables that is not a protobuf", kStore + "ListVariables", garbage,
      Code::UNIMPLEMENTED);

  // ---- VariableData ----
  add("Pull of nothing", kData + "Pull", "", Code::INVALID_ARGUMENT);
  add("Pull that is not a protobuf", kData + "Pull", garbage, Code::INVALID_ARGUMENT);
  {
    pb::PullRequest r;
    r.add_variables()->set_name("missing");
    add("Pull of a missing variable", kData + "Pull", Bytes(r), Code::NOT_FOUND);
    r.mutable_variables(0)->set_name("w");
    r.mutable_variables(0)->mutable_rows()->set_start(3);
    r.mutable_variables(0)->mutable_rows()->set_count(5);
    add("Pull of rows past the end", kData + "Pull", Bytes(r), Code::OUT_OF_RANGE);
    pb::PullStreamRequest s;
    s.mutable_variable()->set_name("missing");
    add("PullStream of a missing variable", kData + "PullStream", Bytes(s), Code::NOT_FOUND);
  }
  add("Push of nothing", kData + "Push", PushOf({}), Code::INVALID_ARGUMENT);
  add("Push with 3 bytes for 8 floats", kData + "Push",
      [&] {
        pb::Update u = FloatUpdate("w", pb::ASSIGN, 8);
        u.set_data("abc");
        return PushOf({u});
      }(),
      Code::INVALID_ARGUMENT);
  add("Push of doubles into a float variable", kData + "Push",
      [&] {
        pb::Update u = FloatUpdate("w", pb::ASSIGN, 8);
        u.set_dtype(pb::DT_DOUBLE);
        u.set_data(std::string(64, '\0'));
        return PushOf({u});
      }(),
      Code::INVALID_ARGUMENT);
  add("Push with an unknown op enum", kData + "Push",
      PushOf({FloatUpdate("w", static_cast<pb::UpdateOp>(42), 8)}), Code::INVALID_ARGUMENT);
  add("sparse Push with an index out of range", kData + "Push",
      [&] {
        pb::Update u = FloatUpdate("emb", pb::ADD, 4);
        u.add_indices(1);
        u.add_indices(8);
        return PushOf({u});
      }(),
      Code::INVALID_ARGUMENT);
  add("sparse Push with a negative index", kData + "Push",
      [&] {
        pb::Update u = FloatUpdate("emb", pb::ADD, 2);
        u.add_indices(-1);
        return PushOf({u});
      }(),
      Code::INVALID_ARGUMENT);
  add("compare-and-set on a stale version", kData + "Push",
      [&] {
        pb::Update u = FloatUpdate("w", pb::ASSIGN, 8);
        u.set_expected_version(77);
        return PushOf({u});
      }(),
      Code::ABORTED);
  add("one variable twice in a Push", kData + "Push",
      PushOf({FloatUpdate("w", pb::ADD, 8), FloatUpdate("w", pb::ADD, 8)}),
      Code::INVALID_ARGUMENT);
  add("atomic Push whose second update is bad", kData + "Push",
      PushOf({FloatUpdate("w", pb::ADD, 8), FloatUpdate("emb", pb::ADD, 3)}),
      Code::INVALID_ARGUMENT);
  add("gradient with an optimizer config of no kind", kData + "Push",
      [&] {
        pb::Update u = FloatUpdate("w", pb::APPLY_GRADIENT, 8);
        u.mutable_optimizer();
        return PushOf({u});
      }(),
      Code::INVALID_ARGUMENT);
  add("gradient with Adam's beta1 of 1", kData + "Push",
      [&] {
        pb::Update u = FloatUpdate("w", pb::APPLY_GRADIENT, 8);
        u.mutable_optimizer()->mutable_adam()->set_beta1(1);
        return PushOf({u});
      }(),
      Code::INVALID_ARGUMENT);
  add("gradient on a stale version that would create Adam slots", kData + "Push",
      [&] {
        pb::Update u = FloatUpdate("w", pb::APPLY_GRADIENT, 8);
        u.mutable_optimizer()->mutable_adam();
        u.set_expected_version(77);
        return PushOf({u});
      }(),
      Code::ABORTED);
  add("atomic Push: Adam gradient, then a bad update", kData + "Push",
      [&] {
        pb::Update g = FloatUpdate("w", pb::APPLY_GRADIENT, 8);
        g.mutable_optimizer()->mutable_adam();
        return PushOf({g, FloatUpdate("emb", pb::ADD, 3)});
      }(),
      Code::INVALID_ARGUMENT);
  add("gradient without a step on a synchronous variable", kData + "Push",
      PushOf({FloatUpdate("sync", pb::APPLY_GRADIENT, 2)}), Code::INVALID_ARGUMENT);
  add("gradient without any optimizer", kData + "Push",
      PushOf({FloatUpdate("w", pb::APPLY_GRADIENT, 8)}), Code::FAILED_PRECONDITION);
  add("Push larger than --max_message_bytes", kData + "Push",
      PushOf({FloatUpdate("w", pb::ASSIGN, 512 << 10)}), Code::RESOURCE_EXHAUSTED);
  add("PushStream without an update header", kData + "PushStream",
      [] {
        pb::PushChunk c;
        c.set_data("1234");
        return Bytes(c);
      }(),
      Code::INVALID_ARGUMENT);
  add("PushStream that is not a protobuf", kData + "PushStream", garbage,
      Code::INVALID_ARGUMENT);
  add("PushStream that ends short", kData + "PushStream",
      [] {
        pb::PushChunk c;
        *c.mutable_update() = FloatUpdate("w", pb::ASSIGN, 8);
        c.mutable_update()->set_data("1234");
        return Bytes(c);
      }(),
      Code::INVALID_ARGUMENT);
  {
    pb::GatherRequest g;
    g.set_name("emb");
    g.add_indices(8);
    add("Gather past the last row", kData + "Gather", Bytes(g), Code::INVALID_ARGUMENT);
    g.set_indices(0, -3);
    add("Gather of a negative row", kData + "Gather", Bytes(g), Code::INVALID_ARGUMENT);
  }
  {
    pb::SetOptimizerRequest r;
    r.mutable_optimizer()->mutable_sgd()->set_learning_rate(0.1);
    add("SetOptimizer without names", kData + "SetOptimizer", Bytes(r),
        Code::INVALID_ARGUMENT);
    r.add_names("w");
    r.mutable_optimizer()->Clear();
    add("optimizer config of no kind", kData + "SetOptimizer", Bytes(r),
        Code::INVALID_ARGUMENT);
    r.mutable_optimizer()->mutable_sgd()->set_learning_rate(0.1);
    r.set_replicas_to_aggregate(-4);
    add("negative replicas_to_aggregate", kData + "SetOptimizer", Bytes(r),
        Code::INVALID_ARGUMENT);
    r.set_replicas_to_aggregate(0);
    r.add_names("missing");
    add("SetOptimizer on a missing variable (first one valid)", kData + "SetOptimizer",
        Bytes(r), Code::NOT_FOUND);
    r.clear_names();
    r.add_names("w");
    r.add_names("ints");
    r.mutable_optimizer()->mutable_adam();
    add("Adam on w and an int variable (no slots for w either)", kData + "SetOptimizer",
        Bytes(r), Code::INVALID_ARGUMENT);
  }
  {
    pb::DescribeTrainingRequest r;
    r.set_name("missing");
    add("DescribeTraining of a missing variable", kData + "DescribeTraining", Bytes(r),
        Code::NOT_FOUND);
    pb::WaitVersionRequest w;
    w.set_name("w");
    w.set_version(1000);
    w.set_timeout_ms(50);
    add("WaitVersion for a version that never comes", kData + "WaitVersion", Bytes(w),
        Code::DEADLINE_EXCEEDED);
  }

  // ---- Admin ----
  {
    pb::SaveRequest s;
    s.set_name("../escape");
    add("checkpoint name with a path", kAdmin + "Save", Bytes(s), Code::INVALID_ARGUMENT);
    pb::RestoreRequest r;
    r.set_name("no-such-checkpoint");
    add("restore of a missing checkpoint", kAdmin + "Restore", Bytes(r), Code::NOT_FOUND);
    pb::ImportRequest i;
    i.set_path(dir_ + "/missing.safetensors");
    i.set_scope("imported");
    add("import of a missing file", kAdmin + "Import", Bytes(i), Code::NOT_FOUND);
    i.set_path(dir_ + "/garbage.safetensors");
    add("import of a damaged file", kAdmin + "Import", Bytes(i), Code::DATA_LOSS);
    i.set_path("/dev/stdin");
    add("import of a device, which could block forever", kAdmin + "Import", Bytes(i),
        Code::FAILED_PRECONDITION);
    i.set_path(dir_);
    add("import of a directory", kAdmin + "Import", Bytes(i), Code::FAILED_PRECONDITION);
    i.set_path(dir_ + "/garbage.safetensors");
    i.set_scope("bad scope!");
    add("import into an invalid scope name", kAdmin + "Import", Bytes(i),
        Code::INVALID_ARGUMENT);
    // Two tensors, the second named like an existing variable: neither is
    // created.
    i.set_path(dir_ + "/collides.safetensors");
    i.set_scope("");
    add("import whose second tensor name is taken", kAdmin + "Import", Bytes(i),
        Code::ALREADY_EXISTS);
    pb::SaveRequest again;
    again.set_name("kept");
    add("save under a name that exists", kAdmin + "Save", Bytes(again),
        Code::ALREADY_EXISTS);
    pb::RestoreRequest damaged;
    damaged.set_name("damaged");
    add("restore of a damaged checkpoint", kAdmin + "Restore", Bytes(damaged),
        Code::DATA_LOSS);
  }
  add("Admin call that is not a protobuf", kAdmin + "Restore", garbage,
      Code::UNIMPLEMENTED);

  ASSERT_GE(cases.size(), 40u);
  const std::string before = Fingerprint();
  for (const Case& c : cases) {
    std::string message;
    const Code code = Call<pb::ServerStats>(c.method, c.body, nullptr, &message);
    EXPECT_EQ(code, c.expected) << c.label << ": " << message;
    if (std::getenv("VARSCOPE_SHOW_MESSAGES")) std::printf("%-50s %s\n", c.label.c_str(), message.c_str());
    if (code != Code::OK && code != Code::UNIMPLEMENTED) {
      EXPECT_FALSE(message.empty()) << c.label << ": no message";
    }
    EXPECT_EQ(Fingerprint(), before) << c.label << " changed the store";
  }
  std::printf("hostile-input cases: %zu\n", cases.size());
}

}  // namespace
}  // namespace varscope::testing
