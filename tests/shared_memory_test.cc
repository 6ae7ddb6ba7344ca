// Same-host bulk transfer end to end over real gRPC on 127.0.0.1: large
// pulls and pushes go through attached segments and read exactly what the
// gRPC path reads; bad regions fail and change nothing; clients fall back
// to gRPC when the daemon has no shared memory or forgot their segments.
// (Token ownership of segments: security_test.cc; the core:
// core_shared_memory_test.cc.)
#include <grpcpp/grpcpp.h>

#include <numeric>
#include <vector>

#include <gtest/gtest.h>

#include "client/src/shared_memory.h"
#include "client/src/status_util.h"
#include "server/core/shared_memory/segments.h"
#include "tests/test_server.h"
#include "tests/test_util.h"
#include "varscope/client.h"
#include "varscope/v1/shared_memory.grpc.pb.h"

namespace varscope::testing {
namespace {

constexpr int64_t kElements = 1 << 18;  // 1 MiB of floats

std::vector<float> Iota(int64_t n, float start) {
  std::vector<float> v(n);
  std::iota(v.begin(), v.end(), start);
  return v;
}

ClientOptions Options(bool shared_memory) {
  ClientOptions options;
  options.keep_alive = false;
  options.connection.shared_memory = shared_memory;
  return options;
}

int Segments(const service::Server& server) {
  return server.shared_segments() != nullptr ? server.shared_segments()->segments() : -1;
}

TEST(SharedMemory, LargePullsAndPushesGoThroughSegmentsAndReadAsOverGrpc) {
  auto server = StartTestServer();
  ASSERT_NE(server, nullptr);
  ASSERT_OK_AND_ASSIGN(auto shared, Client::Connect(server->address(), Options(true)));
  ASSERT_OK_AND_ASSIGN(auto plain, Client::Connect(server->address(), Options(false)));
  ASSERT_OK_AND_ASSIGN(Variable w, shared->GetVariable("w", {kElements / 64, 64}));
  EXPECT_EQ(Segments(*server), 0);

  const std::vector<float> values = Iota(kElements, 1.0f);
  ASSERT_OK(w.Push(UpdateOp::kAssign, values));
  EXPECT_EQ(Segments(*server), 1);  // attached by the first large call
  EXPECT_EQ(*plain->DescribeVariable("w")->Pull<float>(), values);
  EXPECT_EQ(*w.Pull<float>(), values);

  // ADD, a row range, and a pull that finds nothing newer.
  ASSERT_OK_AND_ASSIGN(UpdateResult added, w.Push(UpdateOp::kAdd, std::vector<float>(kElements, 1.0f)));
  ASSERT_OK_AND_ASSIGN(std::vector<float> after, w.Pull<float>());
  EXPECT_EQ(after, Iota(kElements, 2.0f));
  PullOptions rows;
  rows.rows = RowRange{1024, 2048};  // 512 KiB
  ASSERT_OK_AND_ASSIGN(std::vector<float> part, w.Pull<float>(rows));
  EXPECT_EQ(part, std::vector<float>(after.begin() + 1024 * 64, after.begin() + 3072 * 64));
  std::vector<float> out;
  PullOptions unchanged;
  unchanged.if_newer_than = added.version;
  ASSERT_OK_AND_ASSIGN(PullResult same, w.PullInto(&out, unchanged));
  EXPECT_TRUE(same.unchanged);

  // The asynchronous calls take the same path; the segment is reused.
  std::vector<float> async_values = Iota(kElements, -5.0f);
  auto pushed = shared->PushAsync({PushItem::Of("w", UpdateOp::kAssign, async_values)});
  ASSERT_OK(pushed.get());
  std::vector<float> async_out(kElements);
  auto pulled = shared->PullAsync(
      "w", DataType::kFloat,
      absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(async_out.data()), kElements * 4));
  ASSERT_OK(pulled.get());
  EXPECT_EQ(async_out, async_values);
  EXPECT_EQ(*plain->DescribeVariable("w")->Pull<float>(), async_values);
  EXPECT_EQ(Segments(*server), 1);

  // A size the caller did not expect fails as it does over gRPC.
  std::vector<uint8_t> small(kElements);  // a quarter of the bytes
  absl::StatusOr<PullResult> over_shared = w.Pull(absl::MakeSpan(small));
  absl::StatusOr<PullResult> over_grpc = plain->DescribeVariable("w")->Pull(absl::MakeSpan(small));
  EXPECT_FALSE(over_shared.ok());
  EXPECT_EQ(over_shared.status().code(), over_grpc.status().code()) << over_shared.status();

  // The segment goes when the client does.
  shared.reset();
  w = *plain->DescribeVariable("w");  // the last handle on its connection
  for (int i = 0; i < 30000 && Segments(*server) != 0; ++i) absl::SleepFor(absl::Milliseconds(1));
  EXPECT_EQ(Segments(*server), 0);
}

// A pool attaching as the test client (no token).
std::shared_ptr<internal::SharedMemoryPool> PoolFor(
    std::shared_ptr<grpc::Channel> channel,
    absl::Duration idle = internal::SharedMemoryPool::kIdle) {
  std::shared_ptr<v1::SharedMemory::Stub> stub = v1::SharedMemory::NewStub(channel);
  return internal::SharedMemoryPool::Create(
      [stub](bool) -> absl::StatusOr<internal::AttachTicket> {
        grpc::ClientContext ctx;
        v1::AttachResponse response;
        grpc::Status s = stub->Attach(&ctx, v1::AttachRequest(), &response);
        if (!s.ok()) return absl::UnavailableError(s.error_message());
        return internal::AttachTicket{response.socket_name(), response.ticket(),
                                      response.max_segment_bytes()};
      },
      idle);
}

std::optional<internal::SegmentLease> AttachOne(std::shared_ptr<grpc::Channel> channel,
                                                size_t bytes) {
  return PoolFor(channel)->Acquire(bytes);
}

// The pool reuses the smallest free segment that fits, closes idle ones,
// makes at most kMaxSegments, and closes what it drops.
TEST(SharedMemory, ThePoolReusesClosesIdleSegmentsAndStaysWithinItsCap) {
  auto server = StartTestServer();
  ASSERT_NE(server, nullptr);
  auto channel = grpc::CreateChannel(server->address(), grpc::InsecureChannelCredentials());
  auto pool = PoolFor(channel);
  {
    std::vector<internal::SegmentLease> held;
    for (size_t mib : {1, 2, 4}) held.push_back(*pool->Acquire(mib << 20));
    EXPECT_EQ(Segments(*server), 3);
  }
  // Back in the pool: a 1.5 MiB call takes the 2 MiB one, not the 4 MiB.
  {
    std::optional<internal::SegmentLease> lease = pool->Acquire(3 << 19);
    ASSERT_TRUE(lease.has_value());
    EXPECT_EQ(lease->size(), size_t{2} << 20);
  }
  EXPECT_EQ(Segments(*server), 3);
  // Never more than kMaxSegments at once: the next call goes over gRPC.
  std::vector<internal::SegmentLease> all;
  for (int i = 0; i < internal::SharedMemoryPool::kMaxSegments; ++i) {
    std::optional<internal::SegmentLease> lease = pool->Acquire(1 << 20);
    ASSERT_TRUE(lease.has_value()) << i;
    all.push_back(std::move(*lease));
  }
  EXPECT_FALSE(pool->Acquire(1 << 20).has_value());
  all.clear();

  // With every free segment idle, the next call closes them all (erasing
  // while it looks for one that fits) and makes a fresh one.
  auto eager = PoolFor(channel, absl::ZeroDuration());
  {
    std::vector<internal::SegmentLease> held;
    for (size_t mib : {1, 2, 4}) held.push_back(*eager->Acquire(mib << 20));
  }
  std::optional<internal::SegmentLease> fresh = eager->Acquire(1 << 20);
  ASSERT_TRUE(fresh.has_value());
  EXPECT_EQ(fresh->size(), size_t{1} << 20);
  pool.reset();  // its free segments close with it
  const int want = 1;
  for (int i = 0; i < 30000 && Segments(*server) != want; ++i) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_EQ(Segments(*server), want);
}

TEST(SharedMemory, BadRegionsAndUpdatesFailAndChangeNothing) {
  auto server = StartTestServer();
  ASSERT_NE(server, nullptr);
  ASSERT_OK_AND_ASSIGN(auto client, Client::Connect(server->address(), Options(false)));
  ASSERT_OK_AND_ASSIGN(Variable w, client->GetVariable("w", {1024}));
  ASSERT_OK(w.Push(UpdateOp::kAssign, std::vector<float>(1024, 7.0f)));
  const uint64_t version = client->DescribeVariable("w")->version();

  auto channel = grpc::CreateChannel(server->address(), grpc::InsecureChannelCredentials());
  auto stub = v1::SharedMemory::NewStub(channel);
  std::optional<internal::SegmentLease> lease = AttachOne(channel, 4096);
  ASSERT_TRUE(lease.has_value());
  std::vector<float> ones(1024, 1.0f);
  std::memcpy(lease->data(), ones.data(), 4096);

  auto push = [&](uint64_t offset, uint64_t length, const std::string& segment,
                  const std::string& name = "w", bool inline_data = false) {
    v1::SharedPushRequest request;
    request.mutable_update()->set_name(name);
    request.mutable_update()->set_op(v1::ADD);
    request.mutable_update()->set_dtype(v1::DT_FLOAT);
    if (inline_data) request.mutable_update()->set_data("x");
    request.mutable_data()->set_segment(segment);
    request.mutable_data()->set_offset(offset);
    request.mutable_data()->set_length(length);
    grpc::ClientContext ctx;
    v1::PushResponse response;
    return stub->Push(&ctx, request, &response);
  };
  EXPECT_EQ(push(1, lease->size(), lease->id()).error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_EQ(push(UINT64_MAX, 2, lease->id()).error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_EQ(push(0, 4092, lease->id()).error_code(), grpc::INVALID_ARGUMENT);  // short
  EXPECT_EQ(push(0, 4096, lease->id(), "w", true).error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_EQ(push(0, 4096, lease->id(), "nope").error_code(), grpc::NOT_FOUND);
  // What the client acts on: the reason, and for an unknown segment its
  // metadata (the client then drops its segments).
  const absl::Status unknown = internal::FromGrpc(push(0, 4096, std::string(16, 'z')));
  EXPECT_CODE(unknown, kFailedPrecondition);
  EXPECT_EQ(ErrorReason(unknown), "USE_GRPC_TRANSFER");
  EXPECT_EQ(ErrorMetadata(unknown)["segment"], "unknown");
  EXPECT_EQ(client->DescribeVariable("w")->version(), version);
  EXPECT_EQ(*w.Pull<float>(), std::vector<float>(1024, 7.0f));

  // The well-formed push applies; a pull into too small a region is
  // handed back to gRPC.
  ASSERT_TRUE(push(0, 4096, lease->id()).ok());
  EXPECT_EQ(*w.Pull<float>(), std::vector<float>(1024, 8.0f));
  v1::SharedPullRequest pull;
  pull.mutable_variable()->set_name("w");
  pull.mutable_into()->set_segment(lease->id());
  pull.mutable_into()->set_length(4000);
  grpc::ClientContext ctx;
  v1::SharedPullResponse answer;
  const absl::Status too_small = internal::FromGrpc(stub->Pull(&ctx, pull, &answer));
  EXPECT_CODE(too_small, kFailedPrecondition);
  EXPECT_EQ(ErrorReason(too_small), "USE_GRPC_TRANSFER");
  EXPECT_NE(too_small.message().find("the region holds 4000"), std::string::npos);
}

// A call that fails without the daemon's answer (a deadline, a cancel, a
// broken connection) may leave the daemon's handler using its segment: the
// client closes that segment instead of lending it to the next call. Seen
// from the next daemon: the next call attaches a fresh segment at once
// (a segment lent again would meet "unknown segment" and go over gRPC).
TEST(SharedMemory, ASegmentOfACallThatFailedUnansweredIsNeverLentAgain) {
  auto server = StartTestServer();
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  ASSERT_OK_AND_ASSIGN(auto client, Client::Connect(server->address(), Options(true)));
  ASSERT_OK_AND_ASSIGN(Variable w, client->GetVariable("w", {kElements}));
  ASSERT_OK(w.Push(UpdateOp::kAssign, Iota(kElements, 1.0f)));
  ASSERT_EQ(Segments(*server), 1);

  server.reset();
  std::vector<float> out(kElements);
  const absl::Span<uint8_t> bytes(reinterpret_cast<uint8_t*>(out.data()), kElements * 4);
  PullArgs args;
  args.name = "w";
  EXPECT_CODE(client->connection().Pull(args, DataType::kFloat, bytes, {}), kUnavailable);

  service::ServerOptions same_port;
  same_port.listen = "127.0.0.1:" + std::to_string(port);
  ASSERT_OK_AND_ASSIGN(auto restarted, service::Server::Start(same_port));
  ASSERT_OK_AND_ASSIGN(auto other, Client::Connect(restarted->address(), Options(false)));
  ASSERT_OK_AND_ASSIGN(Variable again, other->GetVariable("w", {kElements}));
  ASSERT_OK(again.Push(UpdateOp::kAssign, Iota(kElements, 5.0f)));
  CallOptions wait;
  wait.wait_for_ready = true;  // the channel reconnects first
  ASSERT_OK(client->connection().Pull(args, DataType::kFloat, bytes, wait));
  EXPECT_EQ(out, Iota(kElements, 5.0f));
  EXPECT_EQ(Segments(*restarted), 1);
}

TEST(SharedMemory, ClientsFallBackToGrpcWithoutItAndAfterARestart) {
  service::ServerOptions off;
  off.shared_memory = false;
  auto without = StartTestServer(off);
  ASSERT_NE(without, nullptr);
  EXPECT_EQ(without->shared_segments(), nullptr);
  {
    ASSERT_OK_AND_ASSIGN(auto client, Client::Connect(without->address(), Options(true)));
    ASSERT_OK_AND_ASSIGN(Variable w, client->GetVariable("w", {kElements}));
    ASSERT_OK(w.Push(UpdateOp::kAssign, Iota(kElements, 0.0f)));
    EXPECT_EQ(*w.Pull<float>(), Iota(kElements, 0.0f));
  }

  auto server = StartTestServer();
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  ClientOptions tolerant = Options(true);
  tolerant.connection.wait_for_ready = true;
  ASSERT_OK_AND_ASSIGN(auto client, Client::Connect(server->address(), tolerant));
  ASSERT_OK(client->GetVariable("w", {kElements}));
  ASSERT_OK(client->DescribeVariable("w")->Push(UpdateOp::kAssign, Iota(kElements, 1.0f)));
  EXPECT_EQ(Segments(*server), 1);

  server.reset();
  service::ServerOptions same_port;
  same_port.listen = "127.0.0.1:" + std::to_string(port);
  ASSERT_OK_AND_ASSIGN(auto restarted, service::Server::Start(same_port));
  // The new daemon does not know the segment: the push goes over gRPC...
  ASSERT_OK(client->GetVariable("w", {kElements}));
  ASSERT_OK(client->DescribeVariable("w")->Push(UpdateOp::kAssign, Iota(kElements, 2.0f)));
  EXPECT_EQ(Segments(*restarted), 0);
  // ...and the next call attaches afresh.
  EXPECT_EQ(*client->DescribeVariable("w")->Pull<float>(), Iota(kElements, 2.0f));
  EXPECT_EQ(Segments(*restarted), 1);

  // Restarted once more without shared memory: the client's segment meets
  // UNIMPLEMENTED, and its calls go over gRPC from then on.
  restarted.reset();
  same_port.shared_memory = false;
  ASSERT_OK_AND_ASSIGN(auto plain, service::Server::Start(same_port));
  ASSERT_OK(client->GetVariable("w", {kElements}));
  ASSERT_OK(client->DescribeVariable("w")->Push(UpdateOp::kAssign, Iota(kElements, 3.0f)));
  EXPECT_EQ(*client->DescribeVariable("w")->Pull<float>(), Iota(kElements, 3.0f));
}

}  // namespace
}  // namespace varscope::testing
