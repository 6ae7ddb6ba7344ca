// The metrics endpoint (--metrics_listen): a real scrape over HTTP, checked
// line by line against Prometheus' text format, and counters that move by
// exactly the calls made.
#include <gmock/gmock.h>
#include <gtest/gtest-spi.h>
#include <httplib.h>
#include <stdlib.h>

#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/core/base/histogram.h"
#include "server/metrics/prometheus_text.h"
#include "tests/test_server.h"
#include "tests/test_util.h"
#include "varscope/client.h"

namespace varscope::testing {
namespace {

std::string Scrape(int port, std::string* content_type = nullptr) {
  httplib::Client http("127.0.0.1", port);
  httplib::Result result = http.Get("/metrics");
  EXPECT_TRUE(result) << "no answer from the metrics endpoint";
  if (!result) return "";
  EXPECT_EQ(result->status, 200);
  if (content_type != nullptr) *content_type = result->get_header_value("Content-Type");
  return result->body;
}

// Samples by "name{labels}" as written, after checking every line of the
// exposition: HELP then TYPE once per family before its samples, valid
// names, label syntax and numbers, counters named *_total, histogram
// buckets cumulative and ending in +Inf == _count.
std::map<std::string, double> ParseStrict(const std::string& text) {
  static const std::regex kHelp(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S.*)");
  static const std::regex kType(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram))");
  static const std::regex kSample(
      R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")*\})? (\S+))");
  std::map<std::string, double> samples;
  std::map<std::string, std::string> types;
  std::string helped, family, type;
  std::map<std::string, std::vector<double>> buckets;  // histogram series -> counts
  EXPECT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n') << "the exposition must end with a newline";
  for (absl::string_view line_view : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    const std::string line(line_view);
    std::smatch m;
    if (std::regex_match(line, m, kHelp)) {
      EXPECT_EQ(types.count(m[1]), 0u) << "family declared twice: " << line;
      helped = m[1];
    } else if (std::regex_match(line, m, kType)) {
      EXPECT_EQ(helped, m[1]) << "TYPE without its HELP first: " << line;
      family = m[1];
      type = m[2];
      types[family] = type;
      if (type == "counter") {
        EXPECT_TRUE(absl::EndsWith(family, "_total")) << line;
      }
    } else if (std::regex_match(line, m, kSample)) {
      const std::string name = m[1];
      double value = 0;
      const std::string number = m[m.size() - 1];
      EXPECT_TRUE(number == "+Inf" || absl::SimpleAtod(number, &value)) << line;
      EXPECT_GE(value, 0) << line;
      if (type == "histogram") {
        EXPECT_TRUE(name == family + "_bucket" || name == family + "_sum" ||
                    name == family + "_count")
            << "sample outside its family: " << line;
        if (name == family + "_bucket") {
          const std::string labels = m[2];
          const size_t le = labels.find("le=\"");
          EXPECT_NE(le, std::string::npos) << line;
          if (le == std::string::npos) continue;
          const std::string series = name + labels.substr(0, le);
          std::vector<double>& counts = buckets[series];
          if (!counts.empty()) {
            EXPECT_GE(value, counts.back()) << "buckets not cumulative: " << line;
          }
          counts.push_back(value);
        }
      } else {
        EXPECT_EQ(name, family) << "sample outside its family: " << line;
      }
      samples[absl::StrCat(name, std::string(m[2]))] = value;
    } else {
      ADD_FAILURE() << "not a Prometheus text line: " << line;
    }
  }
  for (const auto& [series, counts] : buckets) {
    // The +Inf bucket (last) equals _count.
    const std::string count_key = std::regex_replace(
        series, std::regex("_bucket(\\{?)"), "_count$1");
    std::string key = count_key;
    if (absl::EndsWith(key, ",")) key.back() = '}';
    if (absl::EndsWith(key, "{")) key.pop_back();
    EXPECT_EQ(samples.count(key), 1u) << "no _count for " << series;
    EXPECT_EQ(counts.back(), samples[key]) << series;
  }
  return samples;
}

TEST(PrometheusText, EscapesAndFormatsAsTheFormatSays) {
  metrics::PrometheusText out;
  out.Family("m_total", "counter", "back\\slash and\nnewline");
  out.Sample("m_total", {{"l", "q\"b\\n\nx"}, {"k", "v"}}, 3);
  core::Histogram h({0.5, 1});
  h.Observe(0.25);
  h.Observe(2);
  out.Family("h", "histogram", "h");
  out.Histogram("h", {}, h.Read());
  EXPECT_EQ(out.Take(),
            "# HELP m_total back\\\\slash and\\nnewline\n"
            "# TYPE m_total counter\n"
            "m_total{l=\"q\\\"b\\\\n\\nx\",k=\"v\"} 3\n"
            "# HELP h h\n# TYPE h histogram\n"
            "h_bucket{le=\"0.5\"} 1\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
            "h_sum 2.25\nh_count 2\n");
}

// The checker itself fails on what Prometheus would reject.
TEST(MetricsFormatCheck, CatchesBrokenExpositions) {
  EXPECT_NONFATAL_FAILURE(ParseStrict("# HELP a_total x\n# TYPE a_total counter\nb_total 1\n"),
                          "sample outside its family");
  EXPECT_NONFATAL_FAILURE(ParseStrict("# HELP a x\n# TYPE a counter\na 1\n"), "_total");
  EXPECT_NONFATAL_FAILURE(ParseStrict("# TYPE a gauge\na 1\n"), "TYPE without its HELP");
  EXPECT_NONFATAL_FAILURE(ParseStrict("# HELP a x\n# TYPE a gauge\na{l=unquoted} 1\n"),
                          "not a Prometheus text line");
  EXPECT_NONFATAL_FAILURE(
      ParseStrict("# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\n"
                  "h_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n"),
      "buckets not cumulative");
  EXPECT_NONFATAL_FAILURE(
      ParseStrict("# HELP h x\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\n"
                  "h_count 3\n"),
      "h_bucket");
}

class MetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/varscope_metrics_XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    service::ServerOptions options;
    options.metrics_listen = "127.0.0.1:0";
    options.data_dir = dir_ + "/data";
    options.checkpoint_interval = absl::ZeroDuration();
    server_ = StartTestServer(options);
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(server_->metrics_port(), 0);
    ClientOptions quiet;
    quiet.keep_alive = false;  // no background call in flight during a scrape
    client_ = *Client::Connect(server_->address(), quiet);
  }
  void TearDown() override {
    client_.reset();
    server_.reset();
    if (!dir_.empty()) (void)system(("rm -rf " + dir_).c_str());
  }
  std::map<std::string, double> Metrics() { return ParseStrict(Scrape(server_->metrics_port())); }

  std::string dir_;
  std::unique_ptr<service::Server> server_;
  std::unique_ptr<Client> client_;
};

constexpr char kPushOk[] =
    R"(varscope_rpc_handled_total{method="varscope.v1.VariableData/Push",code="OK"})";

TEST_F(MetricsTest, ExpositionIsValidAndCountersMoveWithCalls) {
  std::string content_type;
  ParseStrict(Scrape(server_->metrics_port(), &content_type));
  EXPECT_EQ(content_type, "text/plain; version=0.0.4; charset=utf-8");

  ASSERT_OK_AND_ASSIGN(Variable w, client_->GetVariable("w", {256}));
  std::map<std::string, double> before = Metrics();
  EXPECT_EQ(before["varscope_variables"], 1);
  EXPECT_EQ(before["varscope_stored_bytes"], 1024);
  EXPECT_EQ(before["varscope_sessions"], 1);
  EXPECT_GE(before["varscope_log_sync_duration_seconds_count"], 1);  // the creation

  const std::vector<float> ones(256, 1.0f);
  for (int i = 0; i < 3; ++i) ASSERT_OK(w.Push(UpdateOp::kAdd, ones).status());
  ASSERT_OK(w.Pull<float>().status());
  // Wrong length: refused, counted under its code.
  EXPECT_CODE(w.Push(UpdateOp::kAdd, std::vector<float>(3, 1.0f)).status(), kInvalidArgument);
  ASSERT_OK(client_->connection().Save("m1", {}).status());

  std::map<std::string, double> after = Metrics();
  EXPECT_EQ(after[kPushOk] - before[kPushOk], 3);
  EXPECT_EQ(after[R"(varscope_rpc_handled_total{method="varscope.v1.VariableData/Push",code="INVALID_ARGUMENT"})"],
            1);
  EXPECT_EQ(after["varscope_pushed_bytes_total"] - before["varscope_pushed_bytes_total"],
            3 * 1024);
  EXPECT_EQ(after["varscope_pulled_bytes_total"] - before["varscope_pulled_bytes_total"], 1024);
  EXPECT_EQ(after["varscope_checkpoint_duration_seconds_count"], 1);
  EXPECT_EQ(after["varscope_checkpoint_pause_seconds_count"], 1);
  EXPECT_EQ(after[R"(varscope_rpc_duration_seconds_count{method="varscope.v1.VariableData/Push"})"],
            4);
  // The scrape itself is not an RPC; nothing is left running.
  EXPECT_EQ(after["varscope_rpc_in_flight"], 0);

  // A large tensor goes through a shared-memory segment the client attaches.
  EXPECT_EQ(after["varscope_shared_memory_segments"], 0);
  ASSERT_OK_AND_ASSIGN(Variable big, client_->GetVariable("big", {1 << 18}));
  ASSERT_OK(big.Push(UpdateOp::kAssign, std::vector<float>(1 << 18, 1.0f)).status());
  std::map<std::string, double> attached = Metrics();
  EXPECT_EQ(attached["varscope_shared_memory_segments"], 1);
  EXPECT_EQ(attached["varscope_shared_memory_bytes"], 1 << 20);
  EXPECT_EQ(attached[R"(varscope_rpc_handled_total{method="varscope.v1.SharedMemory/Push",code="OK"})"],
            1);
  ASSERT_OK(big.Pull<float>().status());
  std::map<std::string, double> pulled = Metrics();
  EXPECT_EQ(pulled[R"(varscope_rpc_handled_total{method="varscope.v1.SharedMemory/Pull",code="OK"})"],
            1);
  EXPECT_EQ(pulled["varscope_pulled_bytes_total"] - attached["varscope_pulled_bytes_total"],
            1 << 20);
  EXPECT_EQ(pulled["varscope_shared_memory_segments"], 1);  // the same one again
}

TEST_F(MetricsTest, NeverShowsVariableNames) {
  ASSERT_OK(client_->GetVariable("secret_layer/kernel", {4}).status());
  EXPECT_THAT(Scrape(server_->metrics_port()), ::testing::Not(::testing::HasSubstr("secret_layer")));
}

TEST(MetricsEndpoint, RefusesBadAddressesAndPortsInUse) {
  service::ServerOptions options;
  options.metrics_listen = "no-port-here";
  options.listen = "127.0.0.1:0";
  absl::StatusOr<std::unique_ptr<service::Server>> bad = service::Server::Start(options);
  EXPECT_CODE(bad.status(), kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), ::testing::HasSubstr("127.0.0.1:9464"));

  options.metrics_listen = "127.0.0.1:0";
  auto first = StartTestServer(options);
  ASSERT_NE(first, nullptr);
  options.metrics_listen = absl::StrCat("127.0.0.1:", first->metrics_port());
  absl::StatusOr<std::unique_ptr<service::Server>> second = service::Server::Start(options);
  EXPECT_CODE(second.status(), kUnavailable);
  EXPECT_THAT(std::string(second.status().message()), ::testing::HasSubstr("in use"));
}

TEST(MetricsEndpoint, OffByDefault) {
  auto server = StartTestServer();
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(server->metrics_port(), 0);
}

}  // namespace
}  // namespace varscope::testing
