#include "server/metrics/rpc_metrics.h"

#include <google/protobuf/descriptor.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace varscope::metrics {
namespace {

using grpc::experimental::InterceptionHookPoints;

// gRPC's canonical code names, as grpcurl and the gRPC docs print them.
constexpr const char* kCodeNames[] = {
    "OK",        "CANCELLED",         "UNKNOWN",          "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",   "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
    "UNIMPLEMENTED", "INTERNAL",      "UNAVAILABLE",      "DATA_LOSS",
    "UNAUTHENTICATED"};

// One per call: counts it from its start until its status is about to be
// sent, so a client that has its answer also sees it counted. A call that
// ends without sending a status (the client went away) counts as CANCELLED
// when gRPC destroys it.
class CallInterceptor final : public grpc::experimental::Interceptor {
 public:
  CallInterceptor(RpcMetrics* metrics, int method)
      : metrics_(metrics), method_(method), start_(absl::Now()) {
    metrics_->Started();
  }
  ~CallInterceptor() override {
    if (!counted_) Count(grpc::StatusCode::CANCELLED);
  }
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS) &&
        !counted_) {
      Count(methods->GetSendStatus().error_code());
    }
    methods->Proceed();
  }

 private:
  void Count(grpc::StatusCode code) {
    counted_ = true;
    metrics_->Finished(method_, code, absl::ToDoubleSeconds(absl::Now() - start_));
  }

  RpcMetrics* const metrics_;
  const int method_;
  const absl::Time start_;
  bool counted_ = false;  // gRPC runs one call's hooks one at a time
};

class CallInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit CallInterceptorFactory(RpcMetrics* metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new CallInterceptor(metrics_, metrics_->MethodIndex(info->method()));
  }

 private:
  RpcMetrics* const metrics_;
};

}  // namespace

RpcMetrics::RpcMetrics(const std::vector<std::string>& services) {
  const google::protobuf::DescriptorPool* pool =
      google::protobuf::DescriptorPool::generated_pool();
  for (const std::string& service_name : services) {
    const google::protobuf::ServiceDescriptor* service = pool->FindServiceByName(service_name);
    if (service == nullptr) continue;  // not linked in: not served either
    for (int i = 0; i < service->method_count(); ++i) {
      const std::string name = absl::StrCat(service_name, "/", service->method(i)->name());
      index_.emplace(absl::StrCat("/", name), static_cast<int>(methods_.size()));
      methods_.push_back(std::make_unique<Method>(name));
    }
  }
  methods_.push_back(std::make_unique<Method>("other"));
}

std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
RpcMetrics::InterceptorFactories() {
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> out;
  out.push_back(std::make_unique<CallInterceptorFactory>(this));
  return out;
}

int RpcMetrics::MethodIndex(const char* path) const {
  if (path != nullptr) {
    if (auto it = index_.find(absl::string_view(path)); it != index_.end()) return it->second;
  }
  return static_cast<int>(methods_.size()) - 1;
}

void RpcMetrics::Finished(int method, grpc::StatusCode code, double seconds) {
  Method& m = *methods_[method];
  const int c = static_cast<int>(code);
  m.by_code[c >= 0 && c < kCodes ? c : static_cast<int>(grpc::StatusCode::UNKNOWN)].fetch_add(
      1, std::memory_order_relaxed);
  m.seconds.Observe(seconds);
  in_flight_.fetch_sub(1, std::memory_order_relaxed);
}

void RpcMetrics::Write(PrometheusText* out) const {
  constexpr int kExhausted = static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED);
  out->Family("varscope_rpc_handled_total", "counter",
              "RPCs finished, by method and gRPC status code (since the daemon started).");
  for (const auto& m : methods_) {
    for (int c = 0; c < kCodes; ++c) {
      const uint64_t n = m->by_code[c].load(std::memory_order_relaxed);
      if (n > 0) {
        out->Sample("varscope_rpc_handled_total", {{"method", m->name}, {"code", kCodeNames[c]}},
                    static_cast<double>(n));
      }
    }
  }
  out->Family("varscope_rpc_duration_seconds", "histogram",
              "Time from an RPC's start until its status is sent, by method (streams: their whole life).");
  for (const auto& m : methods_) {
    core::Histogram::Reading r = m->seconds.Read();
    if (r.count > 0) out->Histogram("varscope_rpc_duration_seconds", {{"method", m->name}}, r);
  }
  out->Family("varscope_rpc_in_flight", "gauge", "RPCs started whose status is not yet sent.");
  out->Sample("varscope_rpc_in_flight", {},
              static_cast<double>(in_flight_.load(std::memory_order_relaxed)));
  out->Family("varscope_quota_refusals_total", "counter",
              "RPCs refused with RESOURCE_EXHAUSTED (calls in flight per client, "
              "--max_memory_bytes, --max_sessions, scopes per session), by method.");
  for (const auto& m : methods_) {
    const uint64_t n = m->by_code[kExhausted].load(std::memory_order_relaxed);
    if (n > 0) {
      out->Sample("varscope_quota_refusals_total", {{"method", m->name}}, static_cast<double>(n));
    }
  }
}

}  // namespace varscope::metrics
