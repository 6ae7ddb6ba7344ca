// Load generator for bench/run: measures varscoped beside the bare gRPC echo
// server in one run and prints one "key value" line per figure.
//
//   varscope_bench --varscope=127.0.0.1:P --echo=127.0.0.1:Q
//       [--redis=127.0.0.1:R] [--server_pid=PID] [--seconds=1]
//       [--h2load_bodies=DIR]
//
// One run is one round on fresh servers: "cold_*" figures are the first
// calls, "warm_*" the rest; bench/run repeats rounds and takes medians.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/support/proto_buffer_reader.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "report.h"
#include "resp_client.h"
#include "echo.grpc.pb.h"
#include "varscope/v1/admin.grpc.pb.h"
#include "raw_stream.h"
#include "varscope/client.h"
#include "varscope/v1/variable_store.grpc.pb.h"

ABSL_FLAG(std::string, varscope, "", "varscoped address");
ABSL_FLAG(std::string, echo, "", "echo_server address");
ABSL_FLAG(int, server_pid, 0, "varscoped's pid, for RSS");
ABSL_FLAG(double, seconds, 1.0, "time per measurement");
ABSL_FLAG(std::string, redis, "", "redis-server address: Redis GET/SET as a peer row");
ABSL_FLAG(std::string, sizes, "4096,65536,1048576,16777216,67108864,268435456",
          "tensor sizes for pull and push");
ABSL_FLAG(std::string, client_counts, "1,4", "concurrent clients (one connection each)");
ABSL_FLAG(double, settle_seconds, 60, "rest before the at-rest RSS is read");
ABSL_FLAG(int, rounds, 1, "alternating rounds of the in-run figures (median reported)");
ABSL_FLAG(int, fill_mib, 0,
          "checkpoint bench: add this many MiB of random float32 variables "
          "(256 MiB each, named fill/<prefix>_<i>) and exit");
ABSL_FLAG(std::string, fill_prefix, "v", "name prefix for --fill_mib");
ABSL_FLAG(bool, push_rate, false,
          "durability bench: 8 threads push 4 KiB ADDs for --seconds; print pushes/s");
ABSL_FLAG(bool, save, false,
          "checkpoint bench: call Admin/Save, print its seconds, and exit");
ABSL_FLAG(std::string, h2load_bodies, "",
          "write gRPC-framed request bodies for h2load here and exit");

namespace {

using Clock = std::chrono::steady_clock;

absl::Span<const uint8_t> AsBytes(const void* data, size_t bytes) {
  return {static_cast<const uint8_t*>(data), bytes};
}
absl::Span<uint8_t> AsWritableBytes(void* data, size_t bytes) {
  return {static_cast<uint8_t*>(data), bytes};
}
constexpr size_t kChunk = (size_t{1} << 20) - 4096;

using varscope::bench::Report;
using varscope::bench::RssKiB;

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

varscope::v1::GetVariableRequest GetVariableHit() {
  varscope::v1::GetVariableRequest r;
  r.set_scope("bench");
  r.set_reuse(varscope::v1::REUSE);
  r.set_name("w");
  r.mutable_shape()->add_dims(16);
  return r;
}

std::string GrpcFrame(const std::string& message) {
  std::string out(5, '\0');
  const uint32_t n = static_cast<uint32_t>(message.size());
  out[1] = static_cast<char>(n >> 24);
  out[2] = static_cast<char>(n >> 16);
  out[3] = static_cast<char>(n >> 8);
  out[4] = static_cast<char>(n);
  return out + message;
}

// Runs `call` repeatedly for --seconds (at least 3 times); returns calls/s
// and fills per-call latencies.
template <typename Call>
double Repeat(Call&& call, std::vector<double>* latencies_us = nullptr,
              int min_calls = 3) {
  const double budget = absl::GetFlag(FLAGS_seconds);
  const auto start = Clock::now();
  int calls = 0;
  while (calls < min_calls || Seconds(Clock::now() - start) < budget) {
    const auto t0 = Clock::now();
    if (!call()) {
      std::fprintf(stderr, "call failed\n");
      std::exit(1);
    }
    if (latencies_us) latencies_us->push_back(Seconds(Clock::now() - t0) * 1e6);
    ++calls;
  }
  return calls / Seconds(Clock::now() - start);
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

// Decodes Blob.data (field 1) of each echo chunk into `out`.
absl::Status CopyBlob(const grpc::ByteBuffer& in, uint8_t* out, size_t cap,
                      size_t* offset) {
  grpc::ByteBuffer copy(in);
  grpc::ProtoBufferReader reader(&copy);
  google::protobuf::io::CodedInputStream stream(&reader);
  while (uint32_t tag = stream.ReadTag()) {
    uint32_t n;
    if (tag != 0x0A || !stream.ReadVarint32(&n) || n > cap - *offset ||
        !stream.ReadRaw(out + *offset, static_cast<int>(n))) {
      return absl::DataLossError("bad blob");
    }
    *offset += n;
  }
  return absl::OkStatus();
}

class EchoClient {
 public:
  explicit EchoClient(const std::string& target) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    args.SetMaxSendMessageSize(64 << 20);
    args.SetInt(GRPC_ARG_HTTP2_MAX_FRAME_SIZE, 1 << 20);
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection of its own
    channel_ = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
    stub_ = varscope::bench::Echo::NewStub(channel_);
    generic_ = std::make_unique<grpc::GenericStub>(channel_);
  }
  bool Small() {
    varscope::bench::Blob req, resp;
    req.set_data(std::string(30, 'x'));
    grpc::ClientContext ctx;
    return stub_->Small(&ctx, req, &resp).ok();
  }
  bool Fetch(uint8_t* out, size_t bytes) {
    varscope::bench::FetchRequest req;
    req.set_bytes(bytes);
    req.set_chunk_bytes(kChunk);
    grpc::ClientContext ctx;
    if (bytes < (size_t{1} << 20)) {
      varscope::bench::Blob resp;
      if (!stub_->FetchUnary(&ctx, req, &resp).ok()) return false;
      std::memcpy(out, resp.data().data(), bytes);
      return true;
    }
    const std::string wire = req.SerializeAsString();
    bool sent = false;
    size_t offset = 0;
    return varscope::internal::RawStreamingCall(
               generic_.get(), &ctx, "/varscope.bench.Echo/Fetch",
               [&](grpc::ByteBuffer* next) {
                 if (sent) return false;
                 sent = true;
                 grpc::Slice s(wire);
                 *next = grpc::ByteBuffer(&s, 1);
                 return true;
               },
               [&](const grpc::ByteBuffer& in) {
                 return CopyBlob(in, out, bytes, &offset);
               })
               .ok() &&
           offset == bytes;
  }
  bool Send(const uint8_t* data, size_t bytes) {
    grpc::ClientContext ctx;
    if (bytes < (size_t{1} << 20)) {
      varscope::bench::Blob req, resp;
      req.set_data(data, bytes);
      return stub_->SendUnary(&ctx, req, &resp).ok();
    }
    size_t sent = 0;
    return varscope::internal::RawStreamingCall(
               generic_.get(), &ctx, "/varscope.bench.Echo/Send",
               [&](grpc::ByteBuffer* next) {
                 if (sent >= bytes) return false;
                 const size_t n = std::min(kChunk, bytes - sent);
                 *next = varscope::internal::BytesField(1, data + sent, n);
                 sent += n;
                 return true;
               },
               [](const grpc::ByteBuffer&) { return absl::OkStatus(); })
        .ok();
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<varscope::bench::Echo::Stub> stub_;
  std::unique_ptr<grpc::GenericStub> generic_;
};

// kVarscopeGrpc: the same daemon with the client's shared memory off.
enum class System { kVarscope, kVarscopeGrpc, kEcho, kRedis };
enum class Op { kPush, kPull };
const char* Name(System s) {
  switch (s) {
    case System::kVarscope:
      return "varscope";
    case System::kVarscopeGrpc:
      return "varscope_grpc";
    case System::kEcho:
      return "echo";
    case System::kRedis:
      return "redis";
  }
  return "";
}
const char* Name(Op op) { return op == Op::kPush ? "push" : "pull"; }

template <typename T>
std::vector<T> ParseList(const std::string& csv) {
  std::vector<T> out;
  for (absl::string_view part : absl::StrSplit(csv, ',')) {
    out.push_back(static_cast<T>(std::strtoll(std::string(part).c_str(), nullptr, 10)));
  }
  return out;
}

// One bench client: its own connection to each system.
class Peer {
 public:
  static absl::StatusOr<std::unique_ptr<Peer>> Connect(const std::string& varscope,
                                                        const std::string& echo,
                                                        const std::string& redis) {
    auto peer = std::unique_ptr<Peer>(new Peer(echo));
    varscope::ClientOptions options;
    options.connection.rpc_timeout = absl::Minutes(5);
    auto client = varscope::Client::Connect(varscope, options);
    if (!client.ok()) return client.status();
    peer->varscope_ = std::move(*client);
    options.connection.shared_memory = false;
    client = varscope::Client::Connect(varscope, options);
    if (!client.ok()) return client.status();
    peer->varscope_grpc_ = std::move(*client);
    if (!redis.empty()) {
      peer->redis_ = std::make_unique<varscope::bench::RespClient>(redis);
      if (!peer->redis_->ok()) return absl::UnavailableError("cannot reach redis");
    }
    return peer;
  }

  // Creates client `i`'s variable and Redis key of `size` bytes.
  absl::Status Prepare(size_t size, int i) {
    varscope::VariableOptions zeros;
    zeros.shape = {static_cast<int64_t>(size / 4)};
    zeros.dtype = varscope::DataType::kFloat;
    zeros.initializer = varscope::Initializer::Zeros();
    if (auto v = varscope_->GetVariable(VariableName(size, i), zeros); !v.ok()) {
      return v.status();
    }
    return absl::OkStatus();
  }

  bool Call(System sys, Op op, size_t size, int i, uint8_t* buffer) {
    switch (sys) {
      case System::kVarscope:
      case System::kVarscopeGrpc: {
        varscope::Client& client =
            sys == System::kVarscope ? *varscope_ : *varscope_grpc_;
        return op == Op::kPush
                   ? client.Push(VariableName(size, i), varscope::UpdateOp::kAssign,
                                     varscope::DataType::kFloat, AsBytes(buffer, size))
                         .ok()
                   : client.Pull(VariableName(size, i), varscope::DataType::kFloat,
                                 AsWritableBytes(buffer, size))
                         .ok();
      }
      case System::kEcho:
        return op == Op::kPush ? echo_.Send(buffer, size) : echo_.Fetch(buffer, size);
      case System::kRedis: {
        const std::string key = absl::StrCat("t", size, "_", i);
        // A GET before any SET of the key would find nothing: set it first.
        if (op == Op::kPull && redis_keys_.insert(key).second &&
            !redis_->Set(key, buffer, size)) {
          return false;
        }
        if (op == Op::kPush) redis_keys_.insert(key);
        return op == Op::kPush ? redis_->Set(key, buffer, size)
                               : redis_->Get(key, buffer, size);
      }
    }
    return false;
  }

 private:
  explicit Peer(const std::string& echo) : echo_(echo) {}
  static std::string VariableName(size_t size, int i) {
    return absl::StrCat("bench/t", size, "_", i);
  }
  std::unique_ptr<varscope::Client> varscope_;
  std::unique_ptr<varscope::Client> varscope_grpc_;
  EchoClient echo_;
  std::unique_ptr<varscope::bench::RespClient> redis_;
  std::set<std::string> redis_keys_;
};

// `n` threads call `call(i)` for --seconds after one untimed call each;
// returns the MiB/s of all of them together (-1 if a call failed).
template <typename Call>
double Concurrently(int n, Call&& call, size_t bytes_per_call) {
  std::atomic<bool> failed{false};
  std::atomic<int64_t> calls{0};
  std::vector<std::thread> pool;
  std::atomic<int> ready{0};
  Clock::time_point start;
  std::atomic<bool> go{false};
  for (int i = 0; i < n; ++i) {
    pool.emplace_back([&, i] {
      if (!call(i)) failed = true;  // warm-up
      if (++ready == n) {
        start = Clock::now();
        go = true;
      }
      while (!go) std::this_thread::yield();
      int mine = 0;
      while (mine == 0 || Seconds(Clock::now() - start) < absl::GetFlag(FLAGS_seconds)) {
        if (!call(i)) {
          failed = true;
          return;
        }
        ++mine;
      }
      calls += mine;
    });
  }
  for (auto& t : pool) t.join();
  if (failed) {
    std::fprintf(stderr, "call failed\n");
    return -1;
  }
  return calls * (bytes_per_call / 1048576.0) / Seconds(Clock::now() - start);
}


}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  if (const std::string dir = absl::GetFlag(FLAGS_h2load_bodies); !dir.empty()) {
    std::ofstream(dir + "/getvariable.bin", std::ios::binary)
        << GrpcFrame(GetVariableHit().SerializeAsString());
    varscope::bench::Blob small;
    small.set_data(std::string(30, 'x'));
    std::ofstream(dir + "/echo_small.bin", std::ios::binary)
        << GrpcFrame(small.SerializeAsString());
    // The variable the GetVariable body asks for.
    auto setup = varscope::Client::Connect(absl::GetFlag(FLAGS_varscope));
    if (!setup.ok()) return 1;
    varscope::ScopeOptions auto_reuse;  // the main run may have made it
    auto_reuse.reuse = varscope::Reuse::kAutoReuse;
    varscope::VariableScope scope(**setup, "bench", auto_reuse);
    return (*setup)->GetVariable("w", {16}, varscope::DataType::kFloat).ok() ? 0 : 1;
  }
  if (absl::GetFlag(FLAGS_save)) {
    auto admin = varscope::v1::Admin::NewStub(grpc::CreateChannel(
        absl::GetFlag(FLAGS_varscope), grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    varscope::v1::CheckpointInfo info;
    const auto t0 = Clock::now();
    grpc::Status s = admin->Save(&ctx, {}, &info);
    if (!s.ok()) {
      std::fprintf(stderr, "Save: %s\n", s.error_message().c_str());
      return 1;
    }
    Report("checkpoint_save_seconds", Seconds(Clock::now() - t0));
    Report("checkpoint_bytes", static_cast<double>(info.bytes()));
    return 0;
  }
  varscope::ClientOptions options;
  options.connection.rpc_timeout = absl::Minutes(5);
  auto client = varscope::Client::Connect(absl::GetFlag(FLAGS_varscope), options);
  if (!client.ok()) {
    std::fprintf(stderr, "%s\n", client.status().ToString().c_str());
    return 1;
  }
  if (const int mib = absl::GetFlag(FLAGS_fill_mib); mib > 0) {
    std::mt19937 rng(mib);
    std::vector<uint32_t> values(size_t{64} << 20);  // 256 MiB
    for (int i = 0; i < mib / 256; ++i) {
      for (uint32_t& v : values) v = rng();
      const std::string name = absl::StrCat("fill/", absl::GetFlag(FLAGS_fill_prefix), "_", i);
      varscope::VariableOptions shape;
      shape.shape = {static_cast<int64_t>(values.size())};
      shape.dtype = varscope::DataType::kFloat;
      shape.initializer = varscope::Initializer::Zeros();
      if (!(*client)->GetVariable(name, shape).ok() ||
          !(*client)->Push(name, varscope::UpdateOp::kAssign, varscope::DataType::kFloat,
                           AsBytes(values.data(), values.size() * 4)).ok()) {
        return 1;
      }
    }
    return 0;
  }
  if (absl::GetFlag(FLAGS_push_rate)) {
    std::atomic<int64_t> pushes{0};
    std::vector<std::thread> pool;
    const auto start = Clock::now();
    for (int t = 0; t < 8; ++t) {
      pool.emplace_back([&, t] {
        const std::string name = absl::StrCat("rate/v", t);
        if (!(*client)->GetVariable(name, {1024}, varscope::DataType::kFloat).ok()) return;
        std::vector<float> ones(1024, 1.0f);
        while (Seconds(Clock::now() - start) < absl::GetFlag(FLAGS_seconds)) {
          if ((*client)->Push(name, varscope::UpdateOp::kAdd, varscope::DataType::kFloat,
                              AsBytes(ones.data(), 4096)).ok()) {
            ++pushes;
          }
        }
      });
    }
    for (auto& th : pool) th.join();
    Report("pushes_per_s_8_threads", pushes / Seconds(Clock::now() - start));
    return 0;
  }
  EchoClient echo(absl::GetFlag(FLAGS_echo));
  const int pid = absl::GetFlag(FLAGS_server_pid);
  if (pid > 0) Report("rss_empty_mib", RssKiB(pid) / 1024.0);

  // GetVariable (reuse hit) at 1 in flight, against the echo's Small call.
  {
    varscope::ScopeOptions auto_reuse;
    auto_reuse.reuse = varscope::Reuse::kAutoReuse;
    varscope::VariableScope scope(**client, "bench", auto_reuse);
    if (!(*client)->GetVariable("w", {16}, varscope::DataType::kFloat).ok()) return 1;
  }
  auto store = varscope::v1::VariableStore::NewStub(grpc::CreateChannel(
      absl::GetFlag(FLAGS_varscope), grpc::InsecureChannelCredentials()));
  const varscope::v1::GetVariableRequest hit = GetVariableHit();
  std::vector<double> lat, echo_lat, rates, echo_rates;
  for (int round = 0; round < absl::GetFlag(FLAGS_rounds); ++round) {
    rates.push_back(Repeat([&] {
      grpc::ClientContext ctx;
      varscope::v1::GetVariableResponse v;
      return store->GetVariable(&ctx, hit, &v).ok();
    }, &lat, 1000));
    echo_rates.push_back(Repeat([&] { return echo.Small(); }, &echo_lat, 1000));
  }
  Report("getvariable_1_calls_per_s", Percentile(rates, 0.5));
  Report("getvariable_1_p50_us", Percentile(lat, 0.5));
  Report("getvariable_1_p99_us", Percentile(lat, 0.99));
  Report("echo_small_1_calls_per_s", Percentile(echo_rates, 0.5));
  Report("echo_small_1_p50_us", Percentile(echo_lat, 0.5));
  Report("echo_small_1_p99_us", Percentile(echo_lat, 0.99));

  // Pull and push per size and client count, varscope beside the echo and
  // Redis. One round per run: bench/run starts fresh servers for each round
  // and takes medians, so the first calls below meet a cold server.
  int64_t stored = 0;
  const std::vector<size_t> sizes = ParseList<size_t>(absl::GetFlag(FLAGS_sizes));
  const std::vector<int> counts = ParseList<int>(absl::GetFlag(FLAGS_client_counts));
  const int most = *std::max_element(counts.begin(), counts.end());
  std::vector<std::unique_ptr<Peer>> peers;
  for (int i = 0; i < most; ++i) {
    auto peer = Peer::Connect(absl::GetFlag(FLAGS_varscope), absl::GetFlag(FLAGS_echo),
                              absl::GetFlag(FLAGS_redis));
    if (!peer.ok()) {
      std::fprintf(stderr, "%s\n", peer.status().ToString().c_str());
      return 1;
    }
    peers.push_back(std::move(*peer));
  }
  std::vector<System> systems = {System::kVarscope, System::kVarscopeGrpc, System::kEcho};
  if (!absl::GetFlag(FLAGS_redis).empty()) systems.push_back(System::kRedis);
  for (size_t size : sizes) {
    for (int i = 0; i < most; ++i) {
      if (!peers[i]->Prepare(size, i).ok()) return 1;
      stored += size;
    }
  }
  // Cold: the first push and pull of each size on fresh servers, 1 client.
  for (size_t size : sizes) {
    std::vector<uint8_t> buffer(size, 7);
    for (System sys : systems) {
      for (Op op : {Op::kPush, Op::kPull}) {
        const auto t0 = Clock::now();
        if (!peers[0]->Call(sys, op, size, 0, buffer.data())) return 1;
        Report(absl::StrCat("cold_", Name(sys), "_", Name(op), "_", size, "_mib_per_s"),
               size / 1048576.0 / Seconds(Clock::now() - t0));
      }
    }
  }
  // Warm: each cell after one untimed call per client; the systems take
  // turns within each cell, so their figures are side by side.
  for (size_t size : sizes) {
    for (int n : counts) {
      std::vector<std::vector<uint8_t>> buffers(n, std::vector<uint8_t>(size, 7));
      for (Op op : {Op::kPush, Op::kPull}) {
        for (System sys : systems) {
          const double mib_per_s = Concurrently(n, [&](int i) {
            return peers[i]->Call(sys, op, size, i, buffers[i].data());
          }, size);
          if (mib_per_s < 0) return 1;
          Report(absl::StrCat("warm_", Name(sys), "_", Name(op), "_", size, "_c", n,
                              "_mib_per_s"),
                 mib_per_s);
        }
      }
    }
  }

  // Sparse gather: 1M x 64 float32, 1024 random rows per call.
  {
    varscope::VariableOptions table;
    table.shape = {1 << 20, 64};
    table.dtype = varscope::DataType::kFloat;
    if (!(*client)->GetVariable("bench/embedding", table).ok()) return 1;
    stored += int64_t{256} << 20;
    // The echo moves the same 256 KiB per call from memory: its calls/s
    // x 1024 is the rows/s a gather could reach with no table behind it.
    for (int threads : {1, 4}) {
      std::vector<double> rates, echo_rates;
      for (int round = 0; round < absl::GetFlag(FLAGS_rounds); ++round) {
        for (bool use_echo : {false, true}) {
          std::atomic<int64_t> rows{0};
          std::vector<std::thread> pool;
          const auto start = Clock::now();
          for (int t = 0; t < threads; ++t) {
            pool.emplace_back([&, t] {
              std::mt19937 rng(t + round * 7);
              std::vector<int64_t> idx(1024);
              std::vector<uint8_t> out(1024 * 64 * 4);
              while (Seconds(Clock::now() - start) < absl::GetFlag(FLAGS_seconds)) {
                bool ok;
                if (use_echo) {
                  ok = echo.Fetch(out.data(), out.size());
                } else {
                  for (int64_t& i : idx) i = rng() % (1 << 20);
                  ok = (*client)->Gather("bench/embedding", idx).ok();
                }
                if (ok) rows += 1024;
              }
            });
          }
          for (auto& th : pool) th.join();
          (use_echo ? echo_rates : rates)
              .push_back(rows / Seconds(Clock::now() - start));
        }
      }
      Report(absl::StrCat("gather_rows_per_s_", threads, "_threads"),
             Percentile(rates, 0.5));
      Report(absl::StrCat("echo_256k_rows_per_s_", threads, "_threads"),
             Percentile(echo_rates, 0.5));
    }
  }

  // Memory: stored tensor bytes against the daemon's RSS, at rest and while
  // four pulls of the largest size stream at once.
  if (pid > 0) {
    // At rest after the mixed load above (recycled buffers go back after
    // 2 s idle; --settle_seconds gives the allocator time to follow).
    std::this_thread::sleep_for(
        std::chrono::duration<double>(absl::GetFlag(FLAGS_settle_seconds)));
    Report("stored_mib", stored / 1048576.0);
    Report("rss_at_rest_mib", RssKiB(pid) / 1024.0);
    std::atomic<bool> stop{false};
    int64_t peak = 0;
    std::thread sampler([&] {
      while (!stop) {
        peak = std::max(peak, RssKiB(pid));
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    });
    std::vector<std::thread> pullers;
    for (int t = 0; t < 4; ++t) {
      pullers.emplace_back([&] {
        std::vector<uint8_t> buf(sizes.back());
        for (int i = 0; i < 3; ++i) {
          (void)(*client)->Pull(absl::StrCat("bench/t", sizes.back(), "_0"), varscope::DataType::kFloat,
                                AsWritableBytes(buf.data(), buf.size()));
        }
      });
    }
    for (auto& th : pullers) th.join();
    stop = true;
    sampler.join();
    Report("rss_peak_during_pulls_mib", peak / 1024.0);
  }
  return 0;
}
