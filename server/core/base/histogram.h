// File: histogram.h
// A fixed-bucket histogram of durations (or any non-negative values) that
// many threads observe without a lock, for the metrics endpoint.
//
//   Histogram sync(Histogram::DurationBounds());
//   sync.Observe(0.0021);                     // seconds
//   Histogram::Reading r = sync.Read();       // r.cumulative.back() == 1
//
// Thread-safety: Observe and Read may run concurrently. A Read taken while
// observations land may count one in `count` and not yet in its bucket (or
// the reverse); it never goes back later.
#ifndef VARSCOPE_SERVER_CORE_BASE_HISTOGRAM_H_
#define VARSCOPE_SERVER_CORE_BASE_HISTOGRAM_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace varscope::core {

class Histogram {
 public:
  // `bounds`: ascending upper bounds; a last +Inf bucket is implied.
  explicit Histogram(std::vector<double> bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  // 100 us .. 60 s, roughly x2.5 apart: RPCs, log syncs, checkpoints.
  static std::vector<double> DurationBounds();

  void Observe(double value);

  struct Reading {
    std::vector<double> bounds;         // without +Inf
    std::vector<uint64_t> cumulative;   // one per bound, then +Inf
    double sum = 0;
    uint64_t count = 0;                 // == cumulative.back()
  };
  Reading Read() const;

 private:
  const std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds_.size() + 1
  std::atomic<double> sum_{0};
};

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_BASE_HISTOGRAM_H_
