#include "server/metrics/server_metrics.h"

#include "absl/strings/str_cat.h"
#include "server/metrics/prometheus_text.h"

namespace varscope::metrics {
namespace {

void Gauge(PrometheusText* out, const char* name, const char* help, double value) {
  out->Family(name, "gauge", help);
  out->Sample(name, {}, value);
}

void Counter(PrometheusText* out, const char* name, const char* help, double value) {
  out->Family(name, "counter", help);
  out->Sample(name, {}, value);
}

void Histogram(PrometheusText* out, const char* name, const char* help,
               const core::Histogram& histogram) {
  out->Family(name, "histogram", help);
  out->Histogram(name, {}, histogram.Read());
}

}  // namespace

std::string RenderServerMetrics(const MetricSources& s) {
  PrometheusText out;
  out.Family("varscope_build_info", "gauge",
             "Always 1; the labels say which varscoped this is.");
  out.Sample("varscope_build_info", {{"version", s.version}, {"shard", absl::StrCat(s.shard)}},
             1);
  Gauge(&out, "varscope_start_time_seconds", "When the daemon started (Unix time).",
        absl::ToDoubleSeconds(s.started - absl::UnixEpoch()));
  if (s.rpcs != nullptr) s.rpcs->Write(&out);

  Gauge(&out, "varscope_variables", "Variables stored here (parts and optimizer slots included).",
        static_cast<double>(s.store->num_variables()));
  Gauge(&out, "varscope_stored_bytes", "Tensor bytes stored here (values and optimizer slots).",
        static_cast<double>(s.store->total_bytes()));
  Gauge(&out, "varscope_max_memory_bytes", "--max_memory_bytes (0 = no limit).",
        static_cast<double>(s.store->options().max_memory_bytes));
  Gauge(&out, "varscope_sessions", "Open sessions homed here.",
        static_cast<double>(s.sessions->num_sessions()));

  const core::DataCounters& data = s.data->counters();
  Counter(&out, "varscope_pushed_bytes_total", "Update bytes of applied pushes.",
          static_cast<double>(data.bytes_pushed.load(std::memory_order_relaxed)));
  Counter(&out, "varscope_pulled_bytes_total", "Value bytes returned by pulls and gathers.",
          static_cast<double>(data.bytes_read.load(std::memory_order_relaxed)));
  Counter(&out, "varscope_stale_gradients_dropped_total",
          "Gradients dropped because their step was older than the variable's sync step.",
          static_cast<double>(data.stale_dropped.load(std::memory_order_relaxed)));

  if (s.shared_segments != nullptr) {
    Gauge(&out, "varscope_shared_memory_segments",
          "Shared-memory segments same-host clients have attached.",
          static_cast<double>(s.shared_segments->segments()));
    Gauge(&out, "varscope_shared_memory_bytes", "Bytes of those segments (the clients' memory).",
          static_cast<double>(s.shared_segments->attached_bytes()));
  }

  if (s.checkpointer != nullptr) {
    Histogram(&out, "varscope_checkpoint_duration_seconds",
              "Successful checkpoint saves, from start to files on disk.",
              s.checkpointer->save_seconds());
    Histogram(&out, "varscope_checkpoint_pause_seconds",
              "How long each checkpoint held changes back (its snapshot).",
              s.checkpointer->pause_seconds());
  }
  if (s.journal != nullptr) {
    Histogram(&out, "varscope_log_sync_duration_seconds",
              "Write-ahead log batches: write plus fdatasync.", s.journal->sync_seconds());
  }
  return out.Take();
}

}  // namespace varscope::metrics
