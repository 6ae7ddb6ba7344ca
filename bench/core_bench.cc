// In-process micro-benchmarks of the hot path (no gRPC), each with Abseil's
// deadlock detector in abort mode (Debian's default) and off: an
// uncontended lock, GetVariable of an existing variable, a 4 KiB push, a
// push of two variables, a pull. bench/run prints them; the ratio decides
// whether the Release daemon keeps the detector (bench/RESULTS.md).
#include <benchmark/benchmark.h>

#include <vector>

#include "absl/synchronization/mutex.h"
#include "server/core/data/data_plane.h"
#include "server/core/namespace/variable_store.h"

namespace varscope::core {
namespace {

void SetDetection(const benchmark::State& state) {
  absl::SetMutexDeadlockDetectionMode(state.range(0) != 0
                                          ? absl::OnDeadlockCycle::kAbort
                                          : absl::OnDeadlockCycle::kIgnore);
}

struct Fixture {
  Fixture() : data(&store) {
    for (const char* name : {"a", "b", "w"}) {
      GetVariableRequest r;
      r.name = name;
      r.shape = ShapeSpec::Of({1024});
      (void)store.GetVariable(ScopeContext{}, r);
    }
  }
  Update Add(const std::string& name) {
    Update u;
    u.name = name;
    u.op = UpdateOp::kAdd;
    u.dtype = DType::kFloat;
    u.data = absl::string_view(reinterpret_cast<const char*>(ones.data()), 4096);
    return u;
  }
  VariableStore store{StoreOptions{}};
  DataPlane data;
  std::vector<float> ones = std::vector<float>(1024, 1.0f);
};

void BM_LockUnlock(benchmark::State& state) {
  SetDetection(state);
  absl::Mutex mu;
  for (auto _ : state) {
    absl::MutexLock lock(&mu);
    benchmark::DoNotOptimize(&mu);
  }
}
BENCHMARK(BM_LockUnlock)->Arg(1)->Arg(0);

void BM_GetVariableExisting(benchmark::State& state) {
  SetDetection(state);
  Fixture f;
  ScopeContext reuse;
  reuse.reuse = Reuse::kReuse;
  GetVariableRequest r;
  r.name = "w";
  for (auto _ : state) benchmark::DoNotOptimize(f.store.GetVariable(reuse, r));
}
BENCHMARK(BM_GetVariableExisting)->Arg(1)->Arg(0);

void BM_Push4KiB(benchmark::State& state) {
  SetDetection(state);
  Fixture f;
  const Update u = f.Add("w");
  for (auto _ : state) benchmark::DoNotOptimize(f.data.Push({u}));
}
BENCHMARK(BM_Push4KiB)->Arg(1)->Arg(0);

void BM_PushTwoVariables(benchmark::State& state) {
  SetDetection(state);
  Fixture f;
  const Update a = f.Add("a"), b = f.Add("b");
  for (auto _ : state) benchmark::DoNotOptimize(f.data.Push({a, b}));
}
BENCHMARK(BM_PushTwoVariables)->Arg(1)->Arg(0);

void BM_Pull4KiB(benchmark::State& state) {
  SetDetection(state);
  Fixture f;
  ReadRequest r;
  r.name = "w";
  for (auto _ : state) benchmark::DoNotOptimize(f.data.Read(r));
}
BENCHMARK(BM_Pull4KiB)->Arg(1)->Arg(0);

}  // namespace
}  // namespace varscope::core

BENCHMARK_MAIN();
