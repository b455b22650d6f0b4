// The cost goal of `report` (issue 6): measuring N types must cost at most 1.2x
// quantizing the model to those N types.
//
// Workload: a synthetic F32 safetensors file (Gaussian weights, 4096-column
// rows, ~config.bytes / 4 of tensor data, at most 64 MiB) written once to /tmp.
//  - "report measure <types>": MeasureReport, i.e. per row chunk one read, one
//    decode, then per type quantize + dequantize + exact error sums.
//  - "report baseline quantize <types>": what quantizing to those N types costs
//    at least: per type, every tensor read (pread, as convert does) and
//    QuantizeRows -- no dequantization, no metrics, no writing. A real
//    `convert` also writes its output, so this baseline is the harsher one.
// The ratio of the two median times is the figure quoted in
// docs/PERFORMANCE.md ("report" section).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench/registry.h"
#include "codecs/parallel.h"
#include "codecs/quant.h"
#include "convert/checkpoint.h"
#include "convert/file_io.h"
#include "convert/report.h"
#include "convert/safetensors.h"

namespace bitsmith::bench {
namespace {

constexpr uint64_t kCols = 4096;

// Writes (once per process and size) the synthetic model; returns its path.
std::string SyntheticModel(const Config& c) {
  const uint64_t bytes = std::min<uint64_t>(c.bytes / 4, uint64_t{64} << 20);
  const uint64_t rows_total = std::max<uint64_t>(256, bytes / 4 / kCols / 256 * 256);
  const uint64_t tensors = std::max<uint64_t>(1, rows_total / 1024);
  const uint64_t rows = rows_total / tensors;
  const std::string path =
      (std::filesystem::temp_directory_path() / ("bitsmith-report-bench-" + std::to_string(rows_total) + ".safetensors"))
          .string();
  if (std::filesystem::exists(path)) return path;
  std::vector<SafetensorsTensorSpec> specs;
  for (uint64_t t = 0; t < tensors; ++t)
    specs.push_back({"model.layers." + std::to_string(t) + ".mlp.down_proj.weight", "F32", {rows, kCols}});
  auto plan = PlanSafetensors(path + ".tmp", specs, std::nullopt);
  if (!plan.ok()) std::abort();
  auto out = BeginPlannedFile(*plan);
  if (!out.ok()) std::abort();
  std::mt19937 rng(7);
  std::normal_distribution<float> g(0.f, 0.02f);
  std::vector<float> v(rows * kCols);
  for (uint64_t t = 0; t < tensors; ++t) {
    for (float& x : v) x = g(rng);
    if (!out->WriteAt(plan->tensors[t].offset,
                      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(v.data()), v.size() * 4))
             .ok())
      std::abort();
  }
  if (!out->Commit().ok()) std::abort();
  std::filesystem::rename(path + ".tmp", path);
  return path;
}

const std::vector<DType> kTypes3 = {DType::kQ4_K, DType::kQ6_K, DType::kQ8_0};
const std::vector<DType> kTypes6 = {DType::kQ2_K, DType::kQ3_K, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K, DType::kQ8_0};

Workload MeasureWorkload(const std::vector<DType>& types, const Config& c) {
  const std::string path = SyntheticModel(c);
  Workload w;
  const uint64_t n = std::filesystem::file_size(path) / 4;
  w.bytes_read = n * 4;
  w.elements = n * types.size();
  w.run = [path, types](int threads) {
    ReportOptions o;
    o.types = types;
    o.threads = threads;
    auto r = MeasureReport(path, o);
    if (!r.ok()) std::abort();
  };
  return w;
}

Workload QuantizeWorkload(const std::vector<DType>& types, const Config& c) {
  const std::string path = SyntheticModel(c);
  auto ck = std::make_shared<Checkpoint>();
  {
    auto r = OpenCheckpoint(path);
    if (!r.ok()) std::abort();
    *ck = std::move(*r);
  }
  Workload w;
  const uint64_t n = ck->params();
  w.bytes_read = n * 4;
  w.elements = n * types.size();
  w.run = [ck, types](int threads) {
    auto f = InputFile::Open(ck->files[0]);
    if (!f.ok()) std::abort();
    std::vector<float> x;
    std::vector<uint8_t> q;
    for (DType t : types) {
      for (const TensorInfo& ti : ck->tensors) {
        x.resize(ti.elements());
        if (!f->ReadAt(ti.offset, std::span<uint8_t>(reinterpret_cast<uint8_t*>(x.data()), ti.nbytes)).ok())
          std::abort();
        const uint64_t rows = ti.rows(), cols = ti.row_length();
        q.resize(rows * cols / GetDType(t).block_elems * GetDType(t).block_bytes);
        if (!QuantizeRows(t, x, q, static_cast<int64_t>(cols), nullptr, Impl::kSimd, threads).ok()) std::abort();
      }
    }
  };
  return w;
}

BITSMITH_BENCH_CASE("report measure q4_k,q6_k,q8_0", "report",
                    [](const Config& c) { return MeasureWorkload(kTypes3, c); });
BITSMITH_BENCH_CASE("report baseline quantize q4_k,q6_k,q8_0", "report",
                    [](const Config& c) { return QuantizeWorkload(kTypes3, c); });
BITSMITH_BENCH_CASE("report measure q2_k..q8_0 (6)", "report",
                    [](const Config& c) { return MeasureWorkload(kTypes6, c); });
BITSMITH_BENCH_CASE("report baseline quantize q2_k..q8_0 (6)", "report",
                    [](const Config& c) { return QuantizeWorkload(kTypes6, c); });

}  // namespace
}  // namespace bitsmith::bench
