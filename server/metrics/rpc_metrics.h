// File: rpc_metrics.h
// Per-RPC counters of a gRPC server, kept by a server interceptor: calls
// finished by method and status code, latency histograms by method, calls
// in flight. Methods are the ones of the services named at construction
// (a fixed table, so a client calling made-up methods cannot grow it; those
// count as method "other").
//
//   RpcMetrics rpcs({"varscope.v1.VariableStore", "grpc.health.v1.Health"});
//   builder.experimental().SetInterceptorCreators(rpcs.InterceptorFactories());
//   rpcs.Write(&text);  // at scrape time
//
// Thread-safety: counting is lock-free; Write may run while calls finish.
#ifndef VARSCOPE_SERVER_METRICS_RPC_METRICS_H_
#define VARSCOPE_SERVER_METRICS_RPC_METRICS_H_

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/server_interceptor.h>

#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "server/core/base/histogram.h"
#include "server/metrics/prometheus_text.h"

namespace varscope::metrics {

class RpcMetrics {
 public:
  // `services`: full protobuf service names whose methods are counted.
  explicit RpcMetrics(const std::vector<std::string>& services);
  RpcMetrics(const RpcMetrics&) = delete;
  RpcMetrics& operator=(const RpcMetrics&) = delete;

  // For ServerBuilder::experimental().SetInterceptorCreators. The factories
  // refer to this object, which must outlive the server.
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
  InterceptorFactories();

  // Called by the interceptor.
  int MethodIndex(const char* path) const;  // "/pkg.Service/Method"
  void Started() { in_flight_.fetch_add(1, std::memory_order_relaxed); }
  void Finished(int method, grpc::StatusCode code, double seconds);

  // varscope_rpc_handled_total, varscope_rpc_duration_seconds,
  // varscope_rpc_in_flight, varscope_quota_refusals_total.
  void Write(PrometheusText* out) const;

 private:
  static constexpr int kCodes = 17;  // OK .. UNAUTHENTICATED
  struct Method {
    explicit Method(std::string name)
        : name(std::move(name)), seconds(core::Histogram::DurationBounds()) {}
    std::string name;  // "varscope.v1.VariableData/Pull"
    std::array<std::atomic<uint64_t>, kCodes> by_code{};
    core::Histogram seconds;
  };
  // Fixed after construction: lookups take no lock.
  std::vector<std::unique_ptr<Method>> methods_;  // last = "other"
  absl::flat_hash_map<std::string, int> index_;   // path -> methods_ index
  std::atomic<int64_t> in_flight_{0};
};

}  // namespace varscope::metrics

#endif  // VARSCOPE_SERVER_METRICS_RPC_METRICS_H_
