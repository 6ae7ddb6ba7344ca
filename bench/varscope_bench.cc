// Load generator for bench/run: measures varscoped beside the bare gRPC echo
// server in one run and prints one "key value" line per figure.
//
//   varscope_bench --varscope=127.0.0.1:P --echo=127.0.0.1:Q
//       [--server_pid=PID] [--seconds=2] [--h2load_bodies=DIR]
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
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "echo.grpc.pb.h"
#include "varscope/v1/admin.grpc.pb.h"
#include "raw_stream.h"
#include "varscope/client.h"
#include "varscope/v1/variable_store.grpc.pb.h"

ABSL_FLAG(std::string, varscope, "", "varscoped address");
ABSL_FLAG(std::string, echo, "", "echo_server address");
ABSL_FLAG(int, server_pid, 0, "varscoped's pid, for RSS");
ABSL_FLAG(double, seconds, 1.0, "time per measurement");
ABSL_FLAG(int, rounds, 5, "alternating rounds per figure (median reported)");
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

void Report(const std::string& key, double value) {
  std::printf("%s %.6g\n", key.c_str(), value);
  std::fflush(stdout);
}

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

int64_t RssKiB(int pid, const char* field) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field, 0) == 0) return std::atoll(line.c_str() + strlen(field));
  }
  return -1;
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
    varscope::VariableScope scope(**setup, "bench");
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
  if (pid > 0) Report("rss_empty_mib", RssKiB(pid, "VmRSS:") / 1024.0);

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

  // Pull and push MB/s per size.
  int64_t stored = 0;
  for (size_t size : {size_t{4} << 10, size_t{1} << 20, size_t{64} << 20,
                      size_t{256} << 20}) {
    const std::string name = absl::StrCat("bench/t", size);
    varscope::VariableOptions zeros;
    zeros.shape = {static_cast<int64_t>(size / 4)};
    zeros.dtype = varscope::DataType::kFloat;
    zeros.initializer = varscope::Initializer::Zeros();
    if (!(*client)->GetVariable(name, zeros).ok()) return 1;
    stored += size;
    std::vector<uint8_t> buffer(size, 7);
    const double mib = size / 1048576.0;
    // Alternate varscope and echo in rounds and report medians: the
    // machine is shared, so only figures taken side by side compare.
    std::vector<double> push, echo_push, pull, echo_pull;
    for (int round = 0; round < absl::GetFlag(FLAGS_rounds); ++round) {
      push.push_back(mib * Repeat([&] {
        return (*client)->Push(name, varscope::UpdateOp::kAssign, varscope::DataType::kFloat,
                               AsBytes(buffer.data(), size)).ok();
      }));
      echo_push.push_back(mib * Repeat([&] { return echo.Send(buffer.data(), size); }));
      pull.push_back(mib * Repeat([&] {
        return (*client)->Pull(name, varscope::DataType::kFloat, AsWritableBytes(buffer.data(), size)).ok();
      }));
      echo_pull.push_back(mib * Repeat([&] { return echo.Fetch(buffer.data(), size); }));
    }
    Report(absl::StrCat("push_", size, "_mib_per_s"), Percentile(push, 0.5));
    Report(absl::StrCat("echo_push_", size, "_mib_per_s"), Percentile(echo_push, 0.5));
    Report(absl::StrCat("pull_", size, "_mib_per_s"), Percentile(pull, 0.5));
    Report(absl::StrCat("echo_pull_", size, "_mib_per_s"), Percentile(echo_pull, 0.5));
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
  // four 256 MiB pulls stream at once.
  if (pid > 0) {
    // Recycled buffers are returned to the OS after 2 s idle.
    std::this_thread::sleep_for(std::chrono::seconds(4));
    Report("stored_mib", stored / 1048576.0);
    Report("rss_at_rest_mib", RssKiB(pid, "VmRSS:") / 1024.0);
    std::atomic<bool> stop{false};
    int64_t peak = 0;
    std::thread sampler([&] {
      while (!stop) {
        peak = std::max(peak, RssKiB(pid, "VmRSS:"));
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    });
    std::vector<std::thread> pullers;
    for (int t = 0; t < 4; ++t) {
      pullers.emplace_back([&] {
        std::vector<uint8_t> buf(size_t{256} << 20);
        for (int i = 0; i < 3; ++i) {
          (void)(*client)->Pull("bench/t268435456", varscope::DataType::kFloat,
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
