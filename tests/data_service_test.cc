// The data plane over real gRPC on 127.0.0.1: pull/push (unary and
// streamed, up to 1 GiB), bad input, concurrent clients, synchronous
// aggregation, version waits, GetVariable waits, watch streams, and the
// zero-copy tensor encoder against protobuf's own serializer.
#include <atomic>
#include <cstring>
#include <numeric>
#include <thread>

#include "absl/time/clock.h"
#include "server/service/tensor_coding.h"
#include "tests/test_server.h"
#include "tests/test_util.h"
#include "varscope/client.h"
#include "varscope/v1/admin.grpc.pb.h"
#include "varscope/v1/variable_data.grpc.pb.h"
#include "varscope/v1/variable_store.grpc.pb.h"

namespace varscope::testing {
namespace {

class DataServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = StartTestServer();
    ASSERT_NE(server_, nullptr);
    auto client = Client::Connect(server_->address());
    ASSERT_OK(client);
    client_ = *std::move(client);
  }
  Variable Make(const std::string& name, std::vector<int64_t> shape,
                DataType dtype = DataType::kFloat) {
    VariableOptions options;
    options.shape = std::move(shape);
    options.scalar = options.shape.empty();
    options.dtype = dtype;
    options.initializer = Initializer::Zeros();
    auto v = client_->GetVariable(name, options);
    EXPECT_OK(v);
    return *std::move(v);
  }
  std::vector<float> Floats(const std::string& name) {
    auto var = client_->DescribeVariable(name);
    EXPECT_OK(var);
    auto values = var->Pull<float>();
    EXPECT_OK(values);
    return values.ok() ? *values : std::vector<float>{};
  }

  // Blocks until a waiting call (WaitVersion, GetVariable with a wait)
  // has subscribed to the server's change feed.
  void WaitUntilSomeoneWaits() {
    const absl::Time limit = absl::Now() + absl::Seconds(30);
    while (server_->store().feed().num_subscribers() == 0 && absl::Now() < limit) {
      absl::SleepFor(absl::Milliseconds(1));
    }
  }

  std::unique_ptr<service::Server> server_;
  std::unique_ptr<Client> client_;
};

TEST_F(DataServiceTest, PushPullRoundTripTypedAndRows) {
  Variable w = Make("layer/w", {3, 2});
  ASSERT_OK_AND_ASSIGN(UpdateResult assigned,
                       w.Push<float>(UpdateOp::kAssign, {1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(assigned.version, 2u);
  EXPECT_EQ(w.version(), 1u);  // a handle is a value: pushes never change it
  PushOptions rows;
  rows.rows = RowRange{1, 2};
  ASSERT_OK_AND_ASSIGN(UpdateResult added,
                       w.Push<float>(UpdateOp::kAdd, {10, 10, 20, 20}, rows));
  ASSERT_OK_AND_ASSIGN(std::vector<float> all, w.Pull<float>());
  EXPECT_EQ(all, (std::vector<float>{1, 2, 13, 14, 25, 26}));
  PullOptions row2;
  row2.rows = RowRange{2, 1};
  ASSERT_OK_AND_ASSIGN(std::vector<float> last, w.Pull<float>(row2));
  EXPECT_EQ(last, (std::vector<float>{25, 26}));
  // Typed pulls check the dtype.
  EXPECT_CODE(w.Pull<double>(), kInvalidArgument);
  // if_newer_than: no data when unchanged.
  float buffer[6] = {0};
  PullOptions poll;
  poll.if_newer_than = added.version;
  ASSERT_OK_AND_ASSIGN(PullResult same, w.Pull(AsWritableBytes(buffer, sizeof buffer), poll));
  EXPECT_TRUE(same.unchanged);
  EXPECT_EQ(buffer[0], 0);
  // Many variables in one pull.
  Make("layer/b", {2});
  ASSERT_OK_AND_ASSIGN(std::vector<Tensor> many,
                       client_->PullMany({"layer/w:0", "layer/b"}));
  ASSERT_EQ(many.size(), 2u);
  EXPECT_EQ(many[0].data.size(), 24u);
  EXPECT_EQ(many[1].shape, (std::vector<int64_t>{2}));
}

TEST_F(DataServiceTest, AtomicMultiVariablePushAndGatherScatter) {
  Make("a", {2});
  Make("emb", {100, 4});
  std::vector<float> ones(2, 1.0f), row(4, 2.0f), bad(3, 0.0f);
  PushItem a;
  a.name = "a";
  a.op = UpdateOp::kAdd;
  a.dtype = DataType::kFloat;
  a.data = AsBytes(ones.data(), 8);
  PushItem e = a;
  e.name = "emb";
  e.data = AsBytes(bad.data(), 12);
  EXPECT_CODE(client_->PushMany({a, e}), kInvalidArgument);
  EXPECT_EQ(Floats("a"), (std::vector<float>{0, 0}));
  e.data = AsBytes(row.data(), 16);
  e.indices = {7};
  ASSERT_OK_AND_ASSIGN(auto results, client_->PushMany({a, e}));
  // One revision for the whole push.
  EXPECT_EQ(results[1].version, results[0].version);
  EXPECT_EQ(client_->DescribeVariable("emb")->version(), results[1].version);
  ASSERT_OK_AND_ASSIGN(Variable emb, client_->DescribeVariable("emb"));
  ASSERT_OK_AND_ASSIGN(std::vector<float> rows, emb.Gather<float>({7, 0, 7}));
  EXPECT_EQ(rows, (std::vector<float>{2, 2, 2, 2, 0, 0, 0, 0, 2, 2, 2, 2}));
  EXPECT_CODE(emb.Gather<float>({100}), kInvalidArgument);
}

TEST_F(DataServiceTest, BadInputsLeaveVariableUnchanged) {
  Variable w = Make("w", {4, 2});
  ASSERT_OK(w.Push<float>(UpdateOp::kAssign, {1, 2, 3, 4, 5, 6, 7, 8}));
  const std::vector<float> before = Floats("w");
  std::vector<float> three(3, 1.0f), two(2, 1.0f), eight(8, 1.0f);
  EXPECT_CODE(client_->Push("w", UpdateOp::kAssign, DataType::kFloat, AsBytes(three.data(), 12)),
              kInvalidArgument);  // wrong byte length
  EXPECT_CODE(client_->Push("w", UpdateOp::kAssign, DataType::kInt32, AsBytes(eight.data(), 32)),
              kInvalidArgument);  // dtype mismatch
  PushOptions index;
  index.indices = {4};
  EXPECT_CODE(client_->Push("w", UpdateOp::kAdd, DataType::kFloat, AsBytes(two.data(), 8), index),
              kInvalidArgument);  // index out of range
  PushOptions rows;
  rows.rows = RowRange{3, 2};
  EXPECT_CODE(client_->Push("w", UpdateOp::kAdd, DataType::kFloat, AsBytes(eight.data(), 16), rows),
              kOutOfRange);  // row range out of bounds
  PushOptions bad_optimizer;
  bad_optimizer.optimizer = OptimizerConfig::Adagrad(0.1, /*initial_accumulator_value=*/0);
  auto s = client_->Push("w", UpdateOp::kApplyGradient, DataType::kFloat,
                         AsBytes(eight.data(), 32), bad_optimizer);
  EXPECT_CODE(s, kInvalidArgument);  // TensorFlow's Adagrad needs > 0
  EXPECT_NE(std::string(s.status().message()).find("initial_accumulator_value"),
            std::string::npos);
  EXPECT_CODE(client_->Push("w", static_cast<UpdateOp>(99), DataType::kFloat,
                            AsBytes(eight.data(), 32)),
              kInvalidArgument);  // unknown op
  EXPECT_CODE(client_->Push("nope", UpdateOp::kAdd, DataType::kFloat, AsBytes(eight.data(), 32)),
              kNotFound);
  std::vector<float> out(8);
  PullOptions bad_rows;
  bad_rows.rows = RowRange{2, 5};
  EXPECT_CODE(client_->Pull("w", DataType::kFloat, AsWritableBytes(out.data(), 20), bad_rows),
              kOutOfRange);
  EXPECT_EQ(Floats("w"), before);
  EXPECT_EQ(client_->DescribeVariable("w")->version(), 2u);
  // No slot variables appeared.
  EXPECT_EQ(client_->ListVariables()->size(), 1u);
}

TEST_F(DataServiceTest, OversizeUnaryPushIsRejectedAndStoreUnchanged) {
  service::ServerOptions options;
  options.max_message_bytes = 1 << 20;
  auto small = StartTestServer(options);
  auto client = *Client::Connect(small->address());
  ASSERT_OK(client->GetVariable("big", {1 << 19}));  // 2 MiB of float32
  // A raw unary Push above the limit (the client library would stream it).
  auto stub = v1::VariableData::NewStub(grpc::CreateChannel(
      small->address(), grpc::InsecureChannelCredentials()));
  v1::PushRequest request;
  v1::Update* update = request.add_updates();
  update->set_name("big");
  update->set_op(v1::ASSIGN);
  update->set_dtype(v1::DT_FLOAT);
  update->set_data(std::string(2 << 20, '\1'));
  v1::PushResponse response;
  grpc::ClientContext context;
  grpc::Status status = stub->Push(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(client->DescribeVariable("big")->version(), 1u);
  // The streamed push and pull work at any size.
  std::vector<float> values(1 << 19, 3.0f);
  ASSERT_OK(client->Push("big", UpdateOp::kAssign, DataType::kFloat, AsBytes(values.data(),
                         values.size() * 4)));
  std::vector<float> back(values.size());
  ASSERT_OK(client->Pull("big", DataType::kFloat, AsWritableBytes(back.data(), back.size() * 4)));
  EXPECT_EQ(back, values);
  // A unary Pull above the limit explains what to do instead.
  v1::PullRequest pull;
  pull.add_variables()->set_name("big");
  v1::PullResponse pulled;
  grpc::ClientContext pull_context;
  status = stub->Pull(&pull_context, pull, &pulled);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(status.error_message().find("PullStream"), std::string::npos);
}

TEST_F(DataServiceTest, MalformedPushStreamsChangeNothing) {
  Make("v", {1024});
  auto stub = v1::VariableData::NewStub(grpc::CreateChannel(
      server_->address(), grpc::InsecureChannelCredentials()));
  auto run = [&](const std::vector<v1::PushChunk>& chunks) {
    grpc::ClientContext context;
    v1::PushResponse response;
    auto writer = stub->PushStream(&context, &response);
    for (const v1::PushChunk& c : chunks) {
      if (!writer->Write(c)) break;
    }
    writer->WritesDone();
    return writer->Finish();
  };
  v1::PushChunk head;
  head.mutable_update()->set_name("v");
  head.mutable_update()->set_op(v1::ASSIGN);
  head.mutable_update()->set_dtype(v1::DT_FLOAT);
  v1::PushChunk half;
  half.set_data(std::string(2048, '\1'));
  // Ends after half the bytes.
  EXPECT_EQ(run({head, half}).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // Sends more than the variable holds.
  EXPECT_EQ(run({head, half, half, half}).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  // No update in the first message; an update in a later one.
  EXPECT_EQ(run({half}).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(run({head, half, head}).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  // Empty stream; unknown variable.
  EXPECT_EQ(run({}).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  v1::PushChunk unknown = head;
  unknown.mutable_update()->set_name("nope");
  EXPECT_EQ(run({unknown, half}).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(client_->DescribeVariable("v")->version(), 1u);
  // The well-formed stream applies.
  EXPECT_TRUE(run({head, half, half}).ok());
  EXPECT_EQ(client_->DescribeVariable("v")->version(), 2u);
}

// Multi-GiB tests carry "Large" in their suite name (CTest label "large").
class DataServiceLarge : public DataServiceTest {};

TEST_F(DataServiceLarge, OneGibibyteRoundTripIsByteIdentical) {
  constexpr int64_t kElements = int64_t{1} << 28;  // 1 GiB of float32
  Make("huge", {kElements});
  std::vector<uint32_t> values(kElements);
  for (int64_t i = 0; i < kElements; ++i) {
    values[i] = static_cast<uint32_t>(i * 2654435761u);  // every byte varies
  }
  ASSERT_OK_AND_ASSIGN(UpdateResult pushed,
                       client_->Push("huge", UpdateOp::kAssign, DataType::kFloat,
                                     AsBytes(values.data(), kElements * 4)));
  EXPECT_EQ(pushed.version, 2u);
  std::vector<uint32_t> back(kElements, 0);
  ASSERT_OK_AND_ASSIGN(PullResult pulled,
                       client_->Pull("huge", DataType::kFloat, AsWritableBytes(back.data(),
                                     kElements * 4)));
  EXPECT_EQ(pulled.version, 2u);
  EXPECT_EQ(std::memcmp(back.data(), values.data(), kElements * 4), 0);
}

TEST_F(DataServiceTest, EightClientsAddExactlyAndCasConflictsAreReported) {
  Make("sum", {16}, DataType::kInt64);
  Make("cas", {}, DataType::kInt64);
  std::atomic<int> wins{0}, conflicts{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < 8; ++c) {
    threads.emplace_back([&] {
      auto client = *Client::Connect(server_->address());
      std::vector<int64_t> ones(16, 1);
      int64_t one = 1;
      for (int i = 0; i < 1000; ++i) {
        ASSERT_OK(client->Push("sum", UpdateOp::kAdd, DataType::kInt64, AsBytes(ones.data(), 128)));
        if (i % 10 == 0) {
          PushOptions cas;
          cas.expected_version = client->DescribeVariable("cas")->version();
          auto r = client->Push("cas", UpdateOp::kAdd, DataType::kInt64, AsBytes(&one, 8), cas);
          if (r.ok()) {
            ++wins;
          } else {
            ASSERT_EQ(r.status().code(), absl::StatusCode::kAborted);
            ++conflicts;
          }
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_OK_AND_ASSIGN(Variable sum, client_->DescribeVariable("sum"));
  ASSERT_OK_AND_ASSIGN(std::vector<int64_t> total, sum.Pull<int64_t>());
  EXPECT_EQ(total, std::vector<int64_t>(16, 8000));
  EXPECT_GE(sum.version(), 8001u);  // a revision per push (cas took some)
  ASSERT_OK_AND_ASSIGN(Variable cas, client_->DescribeVariable("cas"));
  EXPECT_EQ(cas.Pull<int64_t>()->at(0), wins.load());
  EXPECT_EQ(wins + conflicts, 800);
}

TEST_F(DataServiceTest, SyncAggregationOfFourReplicasWithAStaleGradient) {
  Variable w = Make("sync/w", {2}, DataType::kDouble);
  ASSERT_OK(w.Push<double>(UpdateOp::kAssign, {1.0, 1.0}));
  ASSERT_OK(client_->SetOptimizer({"sync/w"}, OptimizerConfig::Sgd(1.0), 4));
  // Four workers push gradients for step 0 concurrently; one mean applies.
  std::vector<std::thread> workers;
  std::atomic<int> applied{0};
  for (int r = 0; r < 4; ++r) {
    workers.emplace_back([&, r] {
      auto client = *Client::Connect(server_->address());
      std::vector<double> g = {double(r), 2.0 * r};
      PushOptions o;
      o.step = 0;
      auto result = client->Push("sync/w", UpdateOp::kApplyGradient, DataType::kDouble,
                                 AsBytes(g.data(), 16), o);
      ASSERT_OK(result);
      if (result->applied) ++applied;
      // Every worker waits for the step's update before going on.
      ASSERT_OK(client->WaitVersion("sync/w", 2, absl::Seconds(10)));
    });
  }
  for (auto& t : workers) t.join();
  EXPECT_EQ(applied, 1);
  ASSERT_OK_AND_ASSIGN(std::vector<double> after, w.Pull<double>());
  EXPECT_EQ(after, (std::vector<double>{1.0 - 1.5, 1.0 - 3.0}));  // mean 1.5, 3
  // A straggler still on step 0 is dropped and counted.
  std::vector<double> g = {100, 100};
  PushOptions late;
  late.step = 0;
  ASSERT_OK_AND_ASSIGN(UpdateResult stale,
                       w.Push<double>(UpdateOp::kApplyGradient, g, late));
  EXPECT_TRUE(stale.stale);
  EXPECT_EQ(stale.sync_step, 1);
  ASSERT_OK_AND_ASSIGN(TrainingState state,
                       client_->DescribeTraining("sync/w"));
  EXPECT_EQ(state.stale_dropped, 1);
  EXPECT_EQ(state.optimizer, "GradientDescent");
  EXPECT_EQ(*w.Pull<double>(), after);
}

TEST_F(DataServiceTest, WaitVersionWithAndWithoutTheChief) {
  // Nobody creates "later": the wait ends at its deadline.
  const absl::Time start = absl::Now();
  EXPECT_CODE(client_->WaitVersion("later", 0, absl::Milliseconds(300)),
              kDeadlineExceeded);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(250));
  // The chief creates it once the worker is waiting (its wait subscribed).
  std::thread chief([&] {
    WaitUntilSomeoneWaits();
    auto chief_client = *Client::Connect(server_->address());
    ASSERT_OK(chief_client->GetVariable("later", {2}));
  });
  ASSERT_OK_AND_ASSIGN(uint64_t version,
                       client_->WaitVersion("later", 0, absl::Seconds(30)));
  EXPECT_EQ(version, client_->DescribeVariable("later")->version());
  chief.join();
}

TEST_F(DataServiceTest, GetVariableUnderReuseWaitsForTheChief) {
  VariableOptions wait;
  wait.wait = absl::Milliseconds(300);
  // Without a chief the wait fails with NOT_FOUND after the deadline.
  {
    ScopeOptions reuse;
    reuse.reuse = Reuse::kReuse;
    VariableScope scope(*client_, "model", reuse);
    auto missing = client_->GetVariable("w", wait);
    EXPECT_CODE(missing, kNotFound);
    EXPECT_NE(std::string(missing.status().message()).find("waited"),
              std::string::npos);
  }
  std::thread chief([&] {
    WaitUntilSomeoneWaits();
    auto chief_client = *Client::Connect(server_->address());
    VariableScope scope(*chief_client, "model");
    ASSERT_OK(chief_client->GetVariable("w", {3}));
  });
  ScopeOptions reuse;
  reuse.reuse = Reuse::kReuse;
  VariableScope scope(*client_, "model", reuse);
  wait.wait = absl::Seconds(30);
  ASSERT_OK_AND_ASSIGN(Variable w, client_->GetVariable("w", wait));
  EXPECT_EQ(w.name(), "model/w:0");
  EXPECT_FALSE(w.created());
  chief.join();
}

// The crash of issue #10: a one-shot GetVariable with wait_ms under
// AUTO_REUSE for a name that does not exist creates it in its first
// attempt; the creation notifies the same waiting call. It must simply
// answer, created, and the server must go on serving.
TEST_F(DataServiceTest, WaitingOneShotGetVariableThatCreatesAnswersOnce) {
  auto channel = grpc::CreateChannel(server_->address(),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::VariableStore::NewStub(channel);
  v1::GetVariableRequest request;
  request.set_scope("s");
  request.set_name("w");
  request.mutable_shape()->add_dims(2);
  request.set_reuse(v1::AUTO_REUSE);
  request.set_wait_ms(1000);
  for (int i = 0; i < 2; ++i) {  // creates, then fetches
    grpc::ClientContext ctx;
    v1::GetVariableResponse response;
    grpc::Status status = stub->GetVariable(&ctx, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.variable().tensor_name(), "s/w:0");
    EXPECT_EQ(response.created(), i == 0);
  }
  ASSERT_OK_AND_ASSIGN(Variable w, client_->DescribeVariable("s/w"));
  EXPECT_EQ(w.shape(), (std::vector<int64_t>{2}));
}

TEST_F(DataServiceTest, FastWatcherSeesEveryVersionInOrder) {
  Make("m/w", {1});
  Make("other", {1});
  auto watch = client_->Watch("m", /*send_initial=*/true);
  WatchEvent event;
  ASSERT_TRUE(watch->Next(&event));
  EXPECT_EQ(event.kind, WatchEvent::Kind::kExisting);
  EXPECT_EQ(event.name, "m/w");
  std::thread writer([&] {
    for (int i = 0; i < 50; ++i) {
      float one = 1;
      ASSERT_OK(client_->Push("m/w", UpdateOp::kAdd, DataType::kFloat, AsBytes(&one, 4)));
      ASSERT_OK(client_->Push("other", UpdateOp::kAdd, DataType::kFloat, AsBytes(&one, 4)));
    }
  });
  uint64_t previous = event.version;
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(watch->Next(&event));
    EXPECT_EQ(event.kind, WatchEvent::Kind::kUpdated);
    EXPECT_EQ(event.name, "m/w");
    EXPECT_GT(event.version, previous);  // every push, in order
    previous = event.version;
  }
  EXPECT_EQ(client_->DescribeVariable("m/w")->version(), previous);
  writer.join();
  watch->Cancel();
  while (watch->Next(&event)) {
  }
  EXPECT_CODE(watch->status(), kCancelled);
}

TEST_F(DataServiceTest, SlowWatcherGetsResyncAndWritersNeverWait) {
  // A watcher with a small HTTP/2 receive window that reads nothing: 2000
  // events of ~500 bytes fill the window, then the server's buffer of 4.
  const std::string name = "s/" + std::string(500, 'w');
  Make(name, {1});
  grpc::ChannelArguments args;
  args.SetInt("grpc.http2.lookahead_bytes", 4096);
  args.SetInt("grpc.http2.bdp_probe", 0);
  auto stub = v1::VariableData::NewStub(grpc::CreateCustomChannel(
      server_->address(), grpc::InsecureChannelCredentials(), args));
  grpc::ClientContext context;
  // A bound, so that a lost final event fails the test instead of hanging.
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  v1::WatchRequest request;
  request.set_prefix("s");
  request.set_buffer_events(4);
  // The server subscribes before it lists, so once the EXISTING event is
  // here the subscription is live and no write can slip past it.
  request.set_send_initial(true);
  auto watch = stub->Watch(&context, request);
  v1::WatchEvent event;
  ASSERT_TRUE(watch->Read(&event));
  EXPECT_EQ(event.kind(), v1::WatchEvent::EXISTING);
  float one = 1;
  ASSERT_OK(client_->Push(name, UpdateOp::kAdd, DataType::kFloat, AsBytes(&one, 4)));
  ASSERT_TRUE(watch->Read(&event));
  EXPECT_EQ(event.version(), 2u);
  // The watcher reads nothing meanwhile: the server's buffer of 4
  // overflows, and the writes still complete.
  for (int i = 0; i < 2000; ++i) {
    ASSERT_OK(client_->Push(name, UpdateOp::kAdd, DataType::kFloat, AsBytes(&one, 4)));
  }
  bool resync = false;
  uint64_t last = 0;
  int received = 0;
  while (watch->Read(&event)) {
    ++received;
    if (event.kind() == v1::WatchEvent::RESYNC) resync = true;
    last = event.version();
    if (last == 2002) break;
  }
  EXPECT_TRUE(resync);
  EXPECT_LT(received, 2000);  // events were dropped, not queued without bound
  EXPECT_EQ(last, 2002u);     // and it catches up with the newest version
  context.TryCancel();
  while (watch->Read(&event)) {
  }
  watch->Finish();
}

// ---- The zero-copy encoder writes exactly protobuf's bytes. ----

TEST(TensorCoding, MatchesProtobufSerialization) {
  for (int64_t size : {0, 1, 127, 128, 1023, 1024, 1 << 14, 1 << 21}) {
    for (int rank : {0, 1, 3, 8}) {
      auto buffer = core::TensorBuffer::Allocate(size);
      for (int64_t i = 0; i < size; ++i) buffer->data()[i] = uint8_t(i * 7);
      service::TensorFrame f;
      f.name = "scope/v";
      f.dtype = v1::DT_BFLOAT16;
      for (int d = 0; d < rank; ++d) f.shape.push_back(d * 300 + 1);
      f.version = 1ull << 40;
      f.row_start = 5;
      f.offset = 130;
      f.total_bytes = size;
      f.owner = buffer;
      f.bytes = buffer->data();
      f.length = size;
      v1::Tensor t;
      t.set_name(f.name);
      t.set_dtype(v1::DT_BFLOAT16);
      for (int64_t d : f.shape) t.add_shape(d);
      t.set_version(f.version);
      t.set_row_start(5);
      t.set_offset(130);
      t.set_total_bytes(size);
      t.set_data(std::string(reinterpret_cast<char*>(buffer->data()), size));
      std::vector<grpc::Slice> slices;
      service::AppendTensor(f, 0, &slices);
      std::string wire;
      for (const grpc::Slice& s : slices) {
        wire.append(reinterpret_cast<const char*>(s.begin()), s.size());
      }
      EXPECT_EQ(wire, t.SerializeAsString()) << "size " << size << " rank " << rank;
      // Framed as PullResponse.tensors.
      v1::PullResponse response;
      *response.add_tensors() = t;
      slices.clear();
      service::AppendTensor(f, 1, &slices);
      service::AppendTensor(f, 1, &slices);
      *response.add_tensors() = t;
      wire.clear();
      for (const grpc::Slice& s : slices) {
        wire.append(reinterpret_cast<const char*>(s.begin()), s.size());
      }
      EXPECT_EQ(wire, response.SerializeAsString());
    }
  }
}

TEST(TensorCoding, EncoderKnowsEveryTensorField) {
  // Adding a field to Tensor must come with a change to tensor_coding.cc.
  EXPECT_EQ(v1::Tensor::descriptor()->field_count(), 9);
  EXPECT_EQ(v1::Tensor::descriptor()->FindFieldByName("data")->number(), 15);
}

}  // namespace
}  // namespace varscope::testing

namespace varscope::testing {
namespace {

TEST(AdminService, SaveListRestoreOverGrpc) {
  char dir_template[] = "/tmp/varscope_admin_XXXXXX";
  const std::string data = mkdtemp(dir_template);
  service::ServerOptions options;
  options.data_dir = data;
  options.checkpoint_interval = absl::ZeroDuration();
  auto server = StartTestServer(options);
  auto client = *Client::Connect(server->address());
  ASSERT_OK_AND_ASSIGN(Variable w, client->GetVariable("w", {4}, DataType::kFloat));
  ASSERT_OK(w.Push<float>(UpdateOp::kAssign, {1, 2, 3, 4}));
  auto admin = v1::Admin::NewStub(grpc::CreateChannel(
      server->address(), grpc::InsecureChannelCredentials()));
  v1::SaveRequest save;
  save.set_name("before-change");
  v1::CheckpointInfo saved;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(admin->Save(&ctx, save, &saved).ok());
  }
  EXPECT_EQ(saved.name(), "before-change");
  EXPECT_EQ(saved.variables(), 1);
  EXPECT_GT(saved.bytes(), 16);
  {
    grpc::ClientContext ctx;
    v1::CheckpointInfo again;
    EXPECT_EQ(admin->Save(&ctx, save, &again).error_code(),
              grpc::StatusCode::ALREADY_EXISTS);
  }
  ASSERT_OK(w.Push<float>(UpdateOp::kAssign, {9, 9, 9, 9}));
  ASSERT_OK(client->GetVariable("later", {1}));
  {
    grpc::ClientContext ctx;
    v1::ListCheckpointsResponse list;
    ASSERT_TRUE(admin->ListCheckpoints(&ctx, {}, &list).ok());
    ASSERT_EQ(list.checkpoints_size(), 1);
    EXPECT_EQ(list.checkpoints(0).name(), "before-change");
  }
  v1::RestoreRequest restore;
  restore.set_name("before-change");
  v1::RestoreResponse restored;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(admin->Restore(&ctx, restore, &restored).ok());
  }
  EXPECT_EQ(restored.variables(), 1);
  EXPECT_EQ(*w.Pull<float>(), (std::vector<float>{1, 2, 3, 4}));
  EXPECT_CODE(client->DescribeVariable("later"), kNotFound);
  {
    grpc::ClientContext ctx;
    restore.set_name("no-such");
    EXPECT_EQ(admin->Restore(&ctx, restore, &restored).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  server.reset();
  std::system(("rm -rf " + data).c_str());
}

TEST(AdminService, ImportsASafetensorsFileWrittenByASave) {
  // A checkpoint's model.safetensors imported into another scope.
  char dir_template[] = "/tmp/varscope_import_XXXXXX";
  const std::string data = mkdtemp(dir_template);
  service::ServerOptions options;
  options.data_dir = data;
  auto server = StartTestServer(options);
  auto client = *Client::Connect(server->address());
  ASSERT_OK_AND_ASSIGN(Variable w, client->GetVariable("net/w", {3}, DataType::kFloat));
  ASSERT_OK(w.Push<float>(UpdateOp::kAssign, {7, 8, 9}));
  auto admin = v1::Admin::NewStub(grpc::CreateChannel(
      server->address(), grpc::InsecureChannelCredentials()));
  v1::CheckpointInfo saved;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(admin->Save(&ctx, {}, &saved).ok());
  }
  v1::ImportRequest import;
  import.set_path(saved.path() + "/model.safetensors");
  import.set_scope("copy");
  v1::ImportResponse imported;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(admin->Import(&ctx, import, &imported).ok());
  }
  ASSERT_EQ(imported.names_size(), 1);
  EXPECT_EQ(imported.names(0), "copy/net/w");
  ASSERT_OK_AND_ASSIGN(Variable copy, client->DescribeVariable("copy/net/w"));
  EXPECT_EQ(*copy.Pull<float>(), (std::vector<float>{7, 8, 9}));
  {
    grpc::ClientContext ctx;  // the names are taken now
    EXPECT_EQ(admin->Import(&ctx, import, &imported).error_code(),
              grpc::StatusCode::ALREADY_EXISTS);
  }
  server.reset();
  std::system(("rm -rf " + data).c_str());
}

TEST(AdminService, WithoutDataDirCheckpointsAreRefused) {
  auto server = StartTestServer();
  auto admin = v1::Admin::NewStub(grpc::CreateChannel(
      server->address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  v1::CheckpointInfo saved;
  const grpc::Status status = admin->Save(&ctx, {}, &saved);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(status.error_message().find("--data_dir"), std::string::npos);
}

}  // namespace
}  // namespace varscope::testing
