// File: prometheus_text.h
// Writes metrics in Prometheus' text exposition format (version 0.0.4):
// one family at a time, HELP and TYPE first, then its samples.
//
//   PrometheusText out;
//   out.Family("varscope_sessions", "gauge", "Open sessions.");
//   out.Sample("varscope_sessions", {}, 3);
//   std::string body = out.Take();
//
// Thread-safety: a plain value; one writer.
#ifndef VARSCOPE_SERVER_METRICS_PROMETHEUS_TEXT_H_
#define VARSCOPE_SERVER_METRICS_PROMETHEUS_TEXT_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "server/core/base/histogram.h"

namespace varscope::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

class PrometheusText {
 public:
  // Starts a family: `type` is counter, gauge or histogram.
  void Family(absl::string_view name, absl::string_view type, absl::string_view help);
  // One sample line: `name{labels} value`.
  void Sample(absl::string_view name, const Labels& labels, double value);
  // A histogram's _bucket lines (cumulative, with le="+Inf"), _sum and _count.
  void Histogram(absl::string_view name, const Labels& labels,
                 const core::Histogram::Reading& reading);
  std::string Take() { return std::move(out_); }

 private:
  void AppendLabels(const Labels& labels);
  std::string out_;
};

// The content type Prometheus expects for this format.
inline constexpr char kPrometheusContentType[] = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace varscope::metrics

#endif  // VARSCOPE_SERVER_METRICS_PROMETHEUS_TEXT_H_
