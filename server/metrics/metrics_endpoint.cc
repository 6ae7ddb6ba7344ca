#include "server/metrics/metrics_endpoint.h"

#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "server/metrics/prometheus_text.h"

namespace varscope::metrics {
namespace {

struct HostPort {
  std::string host;
  int port = 0;
};

absl::StatusOr<HostPort> ParseListen(absl::string_view listen) {
  const size_t colon = listen.rfind(':');
  HostPort out;
  if (colon == absl::string_view::npos || colon == 0 ||
      !absl::SimpleAtoi(listen.substr(colon + 1), &out.port) || out.port < 0 ||
      out.port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--metrics_listen=", listen, ": use host:port, e.g. 127.0.0.1:9464"));
  }
  absl::string_view host = listen.substr(0, colon);
  if (absl::ConsumePrefix(&host, "[")) host = absl::StripSuffix(host, "]");
  out.host = std::string(host);
  return out;
}

}  // namespace

MetricsEndpoint::MetricsEndpoint() : http_(std::make_unique<httplib::Server>()) {}

absl::StatusOr<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Bind(
    const std::string& listen) {
  absl::StatusOr<HostPort> where = ParseListen(listen);
  if (!where.ok()) return where.status();
  std::unique_ptr<MetricsEndpoint> endpoint(new MetricsEndpoint());
  httplib::Server& http = *endpoint->http_;
  // Two workers: scrapes are rare, and the daemon's cores are for training.
  http.new_task_queue = [] { return new httplib::ThreadPool(2); };
  // One request per connection: an idle keep-alive client must not hold a
  // worker.
  http.set_keep_alive_max_count(1);
  // httplib's default sets SO_REUSEPORT, which would let a second daemon
  // share the port silently (as gRPC's did); refuse a port in use instead.
  http.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  endpoint->port_ = where->port == 0 ? http.bind_to_any_port(where->host)
                                     : (http.bind_to_port(where->host, where->port)
                                            ? where->port
                                            : -1);
  if (endpoint->port_ <= 0) {
    return absl::UnavailableError(absl::StrCat(
        "could not listen for metrics on ", listen,
        " (address in use or not valid; use host:port, e.g. 127.0.0.1:9464)"));
  }
  return endpoint;
}

absl::Status MetricsEndpoint::Serve(std::function<std::string()> render) {
  httplib::Server& http = *http_;
  http.Get("/metrics", [render = std::move(render)](const httplib::Request&,
                                                    httplib::Response& response) {
    response.set_content(render(), kPrometheusContentType);
  });
  http.Get("/", [](const httplib::Request&, httplib::Response& response) {
    response.set_content("varscoped metrics: GET /metrics\n", "text/plain");
  });
  auto returned = std::make_shared<std::atomic<bool>>(false);
  thread_ = std::thread([&http, returned] {
    http.listen_after_bind();
    *returned = true;
  });
  // httplib's stop() does nothing until its loop runs, and it offers no
  // event to wait for: poll until the loop runs (or has already ended), so
  // a quick shutdown cannot leave the thread serving forever.
  while (!http.is_running() && !*returned) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (*returned) {
    return absl::UnavailableError(absl::StrCat("the metrics endpoint on port ", port_,
                                               " stopped as it started"));
  }
  return absl::OkStatus();
}

MetricsEndpoint::~MetricsEndpoint() {
  http_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace varscope::metrics
