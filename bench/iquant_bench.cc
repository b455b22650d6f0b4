// Benchmarks of the i-quant family (issue 8): TQ1_0, TQ2_0, ggml's MXFP4 and the
// grid i-quants IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S. Each case
// is timed against ggml's own code (ggml_quantize_chunk / to_float from the
// dlopen'ed libggml-base.so, bench/ggml_ref.h) in the same run, so "vs ggml" is a
// same-machine, same-moment ratio.
//
// Inputs: N(0, 0.02^2) rows of 4096 and an imatrix exp(N(0,1)), the
// distributions of tests/data/iquants. The grid types are quantized with the
// imatrix (the way llama-quantize makes them; IQ1_S, IQ2_XXS and IQ2_XS require
// it), TQ1_0/TQ2_0/MXFP4 without (they ignore it). Both sides build their grids
// during the harness's warm-up pass, so the timings exclude initialisation
// (first-call latency is measured on its own: docs/PERFORMANCE.md, "Grid
// initialisation"). The workloads are bench/workload.h's, as for the k-quants.
#include <algorithm>
#include <cstdint>
#include <string>

#include "bench/registry.h"
#include "bench/workload.h"  // QuantizeWorkload, DequantizeWorkload (ggml's side included)
#include "formats/dtype.h"

namespace bitsmith::bench {
namespace {

struct IQType {
  DType type;
  const char* name;
  bool imatrix;    // quantize with the imatrix
  bool fast;       // ternary / MXFP4: hundreds of Melem/s, size like the k-quants
};
constexpr IQType kTypes[] = {
    {DType::kTQ1_0, "tq1_0", false, true},     {DType::kTQ2_0, "tq2_0", false, true},
    {DType::kMXFP4, "mxfp4", false, true},     {DType::kIQ1_S, "iq1_s", true, false},
    {DType::kIQ1_M, "iq1_m", true, false},     {DType::kIQ2_XXS, "iq2_xxs", true, false},
    {DType::kIQ2_XS, "iq2_xs", true, false},   {DType::kIQ2_S, "iq2_s", true, false},
    {DType::kIQ3_XXS, "iq3_xxs", true, false}, {DType::kIQ3_S, "iq3_s", true, false},
};

// The grid quantizers run at a few Melem/s in ggml: 256 MiB -> 64 rows of 4096
// (256K elements, ~0.1 s per ggml pass); the fast ones like the k-quants.
int64_t QuantizeRowsFor(const IQType& t, const Config& c) {
  const uint64_t per = t.fast ? 256 : 4096;
  return std::max<int64_t>(8, static_cast<int64_t>(c.bytes / per) / kBenchRow);
}

// Two cases per type: "quantize iq2_xxs imatrix" (or "quantize tq1_0"),
// "dequantize iq2_xxs".
const bool kRegistered = [] {
  for (const IQType& t : kTypes) {
    Register({std::string("quantize ") + t.name + (t.imatrix ? " imatrix" : ""), "iquant",
              [t](const Config& c) { return QuantizeWorkload(t.type, t.imatrix, QuantizeRowsFor(t, c)); }});
    Register({std::string("dequantize ") + t.name, "iquant",
              [t](const Config& c) { return DequantizeWorkload(t.type, c, /*seed_imatrix=*/true); }});
  }
  return true;
}();

}  // namespace
}  // namespace bitsmith::bench
