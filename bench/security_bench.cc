// What security costs: the same calls against varscoped configured three
// ways (plaintext; plaintext with bearer tokens; mutual TLS with tokens),
// in alternating rounds, medians reported as "key value" lines.
//
//   security_bench --plain=ADDR --tokens=ADDR --tls=ADDR --token=T
//       --ca=ca.pem --cert=client.pem --key=client.key [--seconds=1]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "varscope/client.h"

ABSL_FLAG(std::string, plain, "", "plaintext varscoped, no tokens");
ABSL_FLAG(std::string, tokens, "", "plaintext varscoped with --auth_tokens_file");
ABSL_FLAG(std::string, tls, "", "varscoped with mutual TLS and tokens");
ABSL_FLAG(std::string, token, "", "a trainer token valid on --tokens and --tls");
ABSL_FLAG(std::string, ca, "", "CA of the TLS server certificate");
ABSL_FLAG(std::string, cert, "", "client certificate");
ABSL_FLAG(std::string, key, "", "client key");
ABSL_FLAG(double, seconds, 1.0, "time per measurement");
ABSL_FLAG(int, rounds, 5, "alternating rounds (median reported)");

namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

template <typename Call>
double PerSecond(Call&& call) {
  const auto start = Clock::now();
  int n = 0;
  while (n < 3 || Since(start) < absl::GetFlag(FLAGS_seconds)) {
    if (!call()) {
      std::fprintf(stderr, "call failed\n");
      std::exit(1);
    }
    ++n;
  }
  return n / Since(start);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Target {
  std::string label;
  std::unique_ptr<varscope::Client> client;
  std::vector<double> get_rate, push_rate, pull_mbs;
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  std::vector<Target> targets(3);
  for (int i = 0; i < 3; ++i) {
    varscope::ClientOptions options;
    options.connection.rpc_timeout = absl::Minutes(2);
    std::string address;
    if (i == 0) {
      targets[i].label = "plain";
      address = absl::GetFlag(FLAGS_plain);
    } else {
      options.connection.auth_token = absl::GetFlag(FLAGS_token);
      targets[i].label = i == 1 ? "tokens" : "mtls_tokens";
      address = absl::GetFlag(i == 1 ? FLAGS_tokens : FLAGS_tls);
      if (i == 2) {
        options.connection.tls.enabled = true;
        options.connection.tls.ca_file = absl::GetFlag(FLAGS_ca);
        options.connection.tls.cert_file = absl::GetFlag(FLAGS_cert);
        options.connection.tls.key_file = absl::GetFlag(FLAGS_key);
      }
    }
    auto client = varscope::Client::Connect(address, options);
    if (!client.ok()) {
      std::fprintf(stderr, "%s: %s\n", targets[i].label.c_str(),
                   client.status().ToString().c_str());
      return 1;
    }
    targets[i].client = *std::move(client);
    varscope::VariableOptions zeros;
    zeros.shape = {16 << 20};  // 64 MiB of float32
    zeros.dtype = varscope::DataType::kFloat;
    zeros.initializer = varscope::Initializer::Zeros();
    if (!targets[i].client->GetVariable("big", zeros).ok() ||
        !targets[i].client->GetVariable("small", {1024}, varscope::DataType::kFloat).ok()) {
      return 1;
    }
  }
  varscope::ScopeOptions auto_reuse;
  auto_reuse.reuse = varscope::Reuse::kAutoReuse;
  std::vector<varscope::VariableScope> scopes;  // one per client, held open
  for (Target& t : targets) scopes.emplace_back(*t.client, "b", auto_reuse);
  std::vector<float> big(16 << 20);
  std::vector<float> ones(1024, 1.0f);
  for (int round = 0; round < absl::GetFlag(FLAGS_rounds); ++round) {
    for (Target& t : targets) {
      varscope::Client& c = *t.client;
      t.get_rate.push_back(PerSecond([&] {
        return c.GetVariable("w", {1024}, varscope::DataType::kFloat).ok();
      }));
      t.push_rate.push_back(PerSecond([&] {
        return c.Push("small", varscope::UpdateOp::kAdd, varscope::DataType::kFloat,
                      {reinterpret_cast<const uint8_t*>(ones.data()), ones.size() * 4})
            .ok();
      }));
      const double pulls = PerSecond([&] {
        return c.Pull("big", varscope::DataType::kFloat,
                      {reinterpret_cast<uint8_t*>(big.data()), big.size() * 4})
            .ok();
      });
      t.pull_mbs.push_back(pulls * big.size() * 4 / 1e6);
    }
  }
  for (const Target& t : targets) {
    std::printf("%s_getvariable_calls_per_s %.0f\n", t.label.c_str(), Median(t.get_rate));
    std::printf("%s_push_4k_per_s %.0f\n", t.label.c_str(), Median(t.push_rate));
    std::printf("%s_pull_64m_mb_per_s %.0f\n", t.label.c_str(), Median(t.pull_mbs));
  }
  return 0;
}
