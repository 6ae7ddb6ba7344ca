// The cost of one forwarding hop in a cluster: a raw gRPC caller (what
// grpcurl or a load-balanced Service address does) pulling and pushing a
// 4 KiB variable through the shard that owns it versus through another
// shard, which forwards the call. One call in flight, interleaved rounds;
// each figure is the median over rounds (min-max), the ratio the median of
// per-round ratios.
//
//   cluster_hop_bench --shards=127.0.0.1:5001,127.0.0.1:5002 --rounds=5
//
// With --save=NAME it only asks shard 0 for cluster checkpoint NAME
// (bench/cluster_compare reads the cut's pause from its manifest).
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_split.h"
#include "common/placement/placement.h"
#include "varscope/v1/admin.grpc.pb.h"
#include "varscope/v1/variable_data.grpc.pb.h"
#include "varscope/v1/variable_store.grpc.pb.h"

ABSL_FLAG(std::string, shards, "", "the cluster's shards, host:port,... in shard order");
ABSL_FLAG(int, rounds, 5, "interleaved rounds");
ABSL_FLAG(double, seconds, 1.0, "time per measurement");
ABSL_FLAG(std::string, save, "", "only save a cluster checkpoint of this name through shard 0");

namespace {

namespace pb = varscope::v1;

// Calls per second of `call` for `seconds`.
double Rate(const std::function<bool()>& call, double seconds) {
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  int64_t n = 0;
  while (std::chrono::steady_clock::now() < end) {
    if (!call()) {
      std::fprintf(stderr, "a call failed\n");
      std::exit(1);
    }
    ++n;
  }
  return n / std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::vector<std::string> shards = absl::StrSplit(absl::GetFlag(FLAGS_shards), ',');
  if (!absl::GetFlag(FLAGS_save).empty()) {
    auto admin = pb::Admin::NewStub(
        grpc::CreateChannel(shards[0], grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    pb::SaveRequest save;
    save.set_name(absl::GetFlag(FLAGS_save));
    pb::CheckpointInfo saved;
    const grpc::Status status = admin->Save(&ctx, save, &saved);
    if (!status.ok()) {
      std::fprintf(stderr, "save: %s\n", status.error_message().c_str());
      return 1;
    }
    return 0;
  }
  if (shards.size() < 2) {
    std::fprintf(stderr, "--shards needs at least two shards\n");
    return 1;
  }
  auto table = varscope::placement::SlotTable::Static(static_cast<int>(shards.size()));
  const std::string name = "hopbench/w";
  const int owner = table->OwnerOf(name);
  const int other = (owner + 1) % static_cast<int>(shards.size());
  auto channel = [&](int shard) {
    return grpc::CreateChannel(shards[shard], grpc::InsecureChannelCredentials());
  };
  {
    auto store = pb::VariableStore::NewStub(channel(other));
    grpc::ClientContext ctx;
    pb::GetVariableRequest get;
    get.set_scope("hopbench");
    get.set_name("w");
    get.mutable_shape()->add_dims(1024);
    get.set_reuse(pb::AUTO_REUSE);
    pb::GetVariableResponse got;
    if (!store->GetVariable(&ctx, get, &got).ok()) {
      std::fprintf(stderr, "could not create %s\n", name.c_str());
      return 1;
    }
  }
  pb::PullRequest pull;
  pull.add_variables()->set_name(name);
  pb::PushRequest push;
  pb::Update* update = push.add_updates();
  update->set_name(name);
  update->set_op(pb::ADD);
  update->set_dtype(pb::DT_FLOAT);
  update->set_data(std::string(4096, '\0'));
  struct Path {
    const char* label;
    std::unique_ptr<pb::VariableData::Stub> stub;
  };
  Path paths[] = {{"owner", pb::VariableData::NewStub(channel(owner))},
                  {"one hop", pb::VariableData::NewStub(channel(other))}};
  const double seconds = absl::GetFlag(FLAGS_seconds);
  struct Metric {
    const char* name;
    std::function<bool(pb::VariableData::Stub&)> call;
  };
  const Metric metrics[] = {
      {"Pull 4 KiB", [&](pb::VariableData::Stub& s) {
         grpc::ClientContext ctx;
         pb::PullResponse r;
         return s.Pull(&ctx, pull, &r).ok();
       }},
      {"Push 4 KiB", [&](pb::VariableData::Stub& s) {
         grpc::ClientContext ctx;
         pb::PushResponse r;
         return s.Push(&ctx, push, &r).ok();
       }},
  };
  std::printf("| calls/s, 1 in flight (median, min-max) | through the owner | through another shard | hop / owner |\n");
  std::printf("| --- | --- | --- | --- |\n");
  for (const Metric& m : metrics) {
    std::vector<double> direct, hop, ratio;
    for (int r = 0; r < absl::GetFlag(FLAGS_rounds); ++r) {
      direct.push_back(Rate([&] { return m.call(*paths[0].stub); }, seconds));
      hop.push_back(Rate([&] { return m.call(*paths[1].stub); }, seconds));
      ratio.push_back(hop.back() / direct.back());
    }
    auto [dmin, dmax] = std::minmax_element(direct.begin(), direct.end());
    auto [hmin, hmax] = std::minmax_element(hop.begin(), hop.end());
    std::printf("| %s | %.0f (%.0f-%.0f) | %.0f (%.0f-%.0f) | %.2f |\n", m.name, Median(direct),
                *dmin, *dmax, Median(hop), *hmin, *hmax, Median(ratio));
  }
  return 0;
}
