// File: metrics_endpoint.h
// The HTTP endpoint Prometheus scrapes (--metrics_listen): GET /metrics
// answers with what `render` returns, in the text exposition format.
// Served by cpp-httplib on one thread of its own; it has no
// authentication, so it binds loopback unless told otherwise.
//
//   auto endpoint = MetricsEndpoint::Bind("127.0.0.1:9464");  // fails early
//   (*endpoint)->Serve([&] { ... });
//   (*endpoint)->port();  // the bound port (useful with port 0)
//
// Thread-safety: Start and destruction from one thread; `render` runs on
// the endpoint's thread.
#ifndef VARSCOPE_SERVER_METRICS_METRICS_ENDPOINT_H_
#define VARSCOPE_SERVER_METRICS_METRICS_ENDPOINT_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace httplib {
class Server;
}  // namespace httplib

namespace varscope::metrics {

class MetricsEndpoint {
 public:
  // Binds `listen` ("host:port", "[v6]:port"; port 0 = any free), so that
  // a bad or taken address fails before anything else starts.
  static absl::StatusOr<std::unique_ptr<MetricsEndpoint>> Bind(const std::string& listen);
  // Serves GET /metrics with what `render` returns, on its own thread.
  absl::Status Serve(std::function<std::string()> render);
  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;
  // Stops serving and joins the thread.
  ~MetricsEndpoint();

  int port() const { return port_; }

 private:
  MetricsEndpoint();
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace varscope::metrics

#endif  // VARSCOPE_SERVER_METRICS_METRICS_ENDPOINT_H_
