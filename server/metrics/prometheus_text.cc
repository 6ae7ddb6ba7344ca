#include "server/metrics/prometheus_text.h"

#include <cmath>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace varscope::metrics {
namespace {

// HELP text escapes backslash and newline; label values also '"'.
std::string Escape(absl::string_view text, bool quote) {
  std::string out;
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quote && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Number(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  // Integers print exactly (counters up to 2^53); others with full precision.
  if (value == std::floor(value) && std::fabs(value) < 9.007199254740992e15) {
    return absl::StrFormat("%.0f", value);
  }
  // The shortest of 15 or 17 digits that reads back exactly.
  std::string text = absl::StrFormat("%.15g", value);
  if (std::strtod(text.c_str(), nullptr) != value) text = absl::StrFormat("%.17g", value);
  return text;
}

}  // namespace

void PrometheusText::Family(absl::string_view name, absl::string_view type,
                            absl::string_view help) {
  absl::StrAppend(&out_, "# HELP ", name, " ", Escape(help, false), "\n", "# TYPE ", name,
                  " ", type, "\n");
}

void PrometheusText::AppendLabels(const Labels& labels) {
  if (labels.empty()) return;
  out_ += '{';
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) out_ += ',';
    absl::StrAppend(&out_, labels[i].first, "=\"", Escape(labels[i].second, true), "\"");
  }
  out_ += '}';
}

void PrometheusText::Sample(absl::string_view name, const Labels& labels, double value) {
  out_.append(name.data(), name.size());
  AppendLabels(labels);
  absl::StrAppend(&out_, " ", Number(value), "\n");
}

void PrometheusText::Histogram(absl::string_view name, const Labels& labels,
                               const core::Histogram::Reading& reading) {
  const std::string bucket = absl::StrCat(name, "_bucket");
  for (size_t i = 0; i < reading.cumulative.size(); ++i) {
    Labels with_le = labels;
    with_le.emplace_back("le", i < reading.bounds.size() ? Number(reading.bounds[i]) : "+Inf");
    Sample(bucket, with_le, static_cast<double>(reading.cumulative[i]));
  }
  Sample(absl::StrCat(name, "_sum"), labels, reading.sum);
  Sample(absl::StrCat(name, "_count"), labels, static_cast<double>(reading.count));
}

}  // namespace varscope::metrics
