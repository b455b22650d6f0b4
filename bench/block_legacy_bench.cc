// Benchmarks of the legacy block codecs (q4_0 q4_1 q5_0 q5_1 q8_0 iq4_nl iq4_xs,
// and the activation type q8_k): quantize without and with an importance
// matrix, and dequantize, each timed against ggml's own code
// (ggml_quantize_chunk / to_float from the dlopen'ed libggml-base.so,
// bench/ggml_ref.h) in the same run, so "vs ggml" is a same-machine,
// same-moment ratio. Inputs and workloads as in block_k_bench.cc
// (bench/workload.h): N(0, 0.02^2) rows of 4096, imatrix exp(N(0,1)) (the
// distributions of tests/data/blocks).
#include <algorithm>  // std::max
#include <cstdint>
#include <string>

#include "bench/registry.h"
#include "bench/workload.h"
#include "formats/dtype.h"

namespace bitsmith::bench {
namespace {

// Plain q8_0/q4_0 quantize at several hundred Melem/s, the search paths
// (imatrix, iq4_*) at tens: size the input so one pass takes ~10-100 ms.
int64_t RowsFor(const Config& c, bool search) {
  const uint64_t div = search ? 256 : 16;
  return std::max<int64_t>(16, static_cast<int64_t>(c.bytes / div) / kBenchRow);
}

Workload QuantizeCase(DType t, bool with_imatrix, bool search, const Config& c) {
  return QuantizeWorkload(t, with_imatrix, RowsFor(c, search || with_imatrix));
}

struct LegacyType {
  DType t;
  const char* name;
  bool imatrix_case;  // ggml's quantizer reads the importance weights
  bool search;        // the plain path is already a search (iq4_*)
};

// Cases: "quantize q4_0", "quantize q4_0 imatrix", "dequantize q4_0".
const bool kRegistered = [] {
  const LegacyType types[] = {
      {DType::kQ4_0, "q4_0", true, false},   {DType::kQ4_1, "q4_1", true, false},
      {DType::kQ5_0, "q5_0", true, false},   {DType::kQ5_1, "q5_1", true, false},
      {DType::kQ8_0, "q8_0", false, false},  {DType::kIQ4_NL, "iq4_nl", true, true},
      {DType::kIQ4_XS, "iq4_xs", true, true}};
  for (const LegacyType& lt : types) {
    const LegacyType l = lt;
    Register({std::string("quantize ") + l.name, "block",
              [l](const Config& c) { return QuantizeCase(l.t, false, l.search, c); }});
    if (l.imatrix_case)
      Register({std::string("quantize ") + l.name + " imatrix", "block",
                [l](const Config& c) { return QuantizeCase(l.t, true, l.search, c); }});
    Register({std::string("dequantize ") + l.name, "block",
              [l](const Config& c) { return DequantizeWorkload(l.t, c); }});
  }
  Register({"quantize q8_k", "block",
            [](const Config& c) { return QuantizeCase(DType::kQ8_K, false, false, c); }});
  Register({"dequantize q8_k", "block", [](const Config& c) { return DequantizeWorkload(DType::kQ8_K, c); }});
  return true;
}();

}  // namespace
}  // namespace bitsmith::bench
