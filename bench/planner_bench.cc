// Benchmarks of the report/plan core: the mixed-bit planner on synthetic models
// (2,000 tensors x 12 types, a GGUF-style DeepSeek with fused experts; 90,000 x
// 12, a per-expert safetensors checkpoint) and the error accumulator that rides
// on every quantized chunk of `report`.
//
// Planner cases print, once per case on stderr, the quality of the answer they
// time (relative gap to the Lagrangian bound, proven optimality), since a fast
// solve with a loose gap would be no result.
//
// Measured on the 2-core AVX-512 dev VM while other builds ran (load 8-23, so
// absolute times are pessimistic): plan 2000x12 10-150 ms per solve across
// 2.2-9 bpw budgets, rel_gap 8e-7..3.5e-5, about half of them proven optimal;
// +50-point frontier ~0.3-0.5 s more; 90000x12 ~1 s, rel_gap ~1e-7. Metrics:
// the Highway kernel runs at 1.1x memcpy speed single-threaded (memory bound),
// 7-10x the scalar reference.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "bench/registry.h"
#include "codecs/parallel.h"
#include "convert/metrics.h"
#include "convert/planner.h"

namespace bitsmith::bench {
namespace {

// Tensors of very different sizes (every 20th a 1-D norm kept in f32), 12
// candidate types, error ~ sensitivity · 2^(−2·bpw) with per-tensor sensitivity
// spread over a factor e^3 (what per-tensor reports of real models look like).
std::vector<PlanTensor> SyntheticModel(int T, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u01(0.0, 1.0);
  const DType types[12] = {DType::kIQ2_XXS, DType::kIQ2_XS, DType::kQ2_K, DType::kIQ3_XXS,
                           DType::kQ3_K,    DType::kIQ4_XS, DType::kQ4_K, DType::kQ5_K,
                           DType::kQ6_K,    DType::kQ8_0,   DType::kBF16, DType::kF32};
  std::vector<PlanTensor> ts(static_cast<size_t>(T));
  for (int t = 0; t < T; ++t) {
    PlanTensor& pt = ts[static_cast<size_t>(t)];
    pt.name = "blk." + std::to_string(t / 20) + ".t" + std::to_string(t % 20) + ".weight";
    const int kind = t % 20;
    if (kind == 19) {
      pt.params = 7168;
      pt.candidates = {{DType::kF32, DType::kF32, 7168 * 4, 0.0}};
      continue;
    }
    pt.params = uint64_t{256} * (kind < 3 ? 7 * 1024 * 1024 : 1536 * (1 + kind % 5) * 28);
    const double sens = std::exp(3 * (u01(rng) - 0.5));
    for (DType d : types) {
      const double bpw = GetDType(d).bits_per_weight();
      const double err = sens * std::pow(2.0, -2 * bpw) * (0.8 + 0.4 * u01(rng));
      pt.candidates.push_back({d, d, static_cast<uint64_t>(bpw * pt.params / 8), err});
    }
  }
  return ts;
}

Workload PlanWorkload(int T, double bpw, int frontier_points) {
  auto ts = std::make_shared<std::vector<PlanTensor>>(SyntheticModel(T, 11));
  uint64_t params = 0, cands = 0;
  for (const PlanTensor& t : *ts) {
    params += t.params;
    cands += t.candidates.size();
  }
  PlanOptions opt;
  opt.budget_bytes = *BudgetForBpw(bpw, params);
  opt.frontier_points = frontier_points;
  {
    const auto t0 = std::chrono::steady_clock::now();
    auto plan = SolvePlan(*ts, opt);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!plan.ok()) std::abort();
    std::fprintf(stderr,
                 "  [plan %d x 12 @ %.2f bpw, frontier %d] achieved %.5f bpw, rel_gap %.2e, "
                 "%s, %zu free tensors, %llu DP states, first solve %.0f ms\n",
                 T, bpw, frontier_points, plan->bpw, plan->rel_gap,
                 plan->proven_optimal ? "proven optimal" : "not proven optimal",
                 plan->free_tensors, static_cast<unsigned long long>(plan->dp_states), s * 1e3);
  }
  Workload wl;
  wl.bytes_read = cands * sizeof(PlanCandidate);
  wl.elements = cands;
  wl.run = [=](int threads) {
    PlanOptions o = opt;
    o.threads = threads;
    if (!SolvePlan(*ts, o).ok()) std::abort();
  };
  return wl;
}

BITSMITH_BENCH_CASE("plan 2000x12 @3.0bpw", "plan",
                    [](const Config&) { return PlanWorkload(2000, 3.0, 0); });
BITSMITH_BENCH_CASE("plan 2000x12 @4.37bpw", "plan",
                    [](const Config&) { return PlanWorkload(2000, 4.37, 0); });
BITSMITH_BENCH_CASE("plan 2000x12 @3.0bpw +frontier50", "plan",
                    [](const Config&) { return PlanWorkload(2000, 3.0, 50); });
BITSMITH_BENCH_CASE("plan 90000x12 @3.0bpw", "plan",
                    [](const Config&) { return PlanWorkload(90000, 3.0, 0); });

// ErrorAccumulator over rows of 7168 (DeepSeek's hidden size), with and without
// imatrix weights; rows split across threads, one accumulator per range, merged.
Workload MetricsWorkload(bool weighted, Impl impl, const Config& c) {
  constexpr int64_t kCols = 7168;
  const int64_t rows = std::max<int64_t>(4, static_cast<int64_t>(c.bytes / 8 / 4) / kCols);
  auto x = std::make_shared<std::vector<float>>(static_cast<size_t>(rows * kCols));
  auto y = std::make_shared<std::vector<float>>(x->size());
  auto w = std::make_shared<std::vector<float>>(weighted ? kCols : 0);
  std::mt19937 rng(3);
  std::normal_distribution<float> g(0.f, 0.02f);
  for (size_t i = 0; i < x->size(); ++i) {
    (*x)[i] = g(rng);
    (*y)[i] = std::round((*x)[i] * 512.f) / 512.f;
  }
  for (float& v : *w) v = std::exp(g(rng) * 50.f);
  Workload wl;
  wl.bytes_read = (x->size() + y->size()) * sizeof(float);
  wl.elements = x->size();
  wl.run = [=](int threads) {
    std::mutex mu;
    ErrorAccumulator all;  // merge order is irrelevant: the sums are exact
    ParallelFor(static_cast<size_t>(rows), 1, threads, [&](size_t r0, size_t r1) {
      ErrorAccumulator part(impl);
      const size_t b = r0 * kCols, n = (r1 - r0) * kCols;
      if (!part.Add(std::span(*x).subspan(b, n), std::span(*y).subspan(b, n), kCols, *w).ok())
        std::abort();
      std::lock_guard<std::mutex> lock(mu);
      if (!all.Merge(part).ok()) std::abort();
    });
    volatile double sink = all.Finish().rel_rmse;
    (void)sink;
  };
  return wl;
}

BITSMITH_BENCH_CASE("metrics accumulate f32 rows", "metrics",
                    [](const Config& c) { return MetricsWorkload(false, Impl::kSimd, c); });
BITSMITH_BENCH_CASE("metrics accumulate f32 rows (scalar ref)", "metrics",
                    [](const Config& c) { return MetricsWorkload(false, Impl::kReference, c); });
BITSMITH_BENCH_CASE("metrics accumulate f32 rows +imatrix", "metrics",
                    [](const Config& c) { return MetricsWorkload(true, Impl::kSimd, c); });

}  // namespace
}  // namespace bitsmith::bench
