// Benchmarks of the k-quant codecs (q2_k..q6_k): quantize without and with an
// importance matrix, and dequantize, each timed against ggml's own code
// (ggml_quantize_chunk / to_float from the dlopen'ed libggml-base.so,
// bench/ggml_ref.h) in the same run, so the "vs ggml" column is a same-machine,
// same-moment ratio. Inputs (bench/workload.h): N(0, 0.02^2) rows of 4096 (a
// typical weight row), imatrix exp(N(0,1)) -- the distributions of
// tests/data/blocks.
#include <algorithm>  // std::max
#include <cstdint>
#include <string>
#include <utility>  // std::pair

#include "bench/registry.h"
#include "bench/workload.h"
#include "formats/dtype.h"

namespace bitsmith::bench {
namespace {

// Quantizing is ~100x slower than copying: size the input from the byte budget
// (256 MiB -> 1M elements), whole rows, at least 16 rows.
int64_t QuantizeRowsFor(const Config& c) {
  return std::max<int64_t>(16, static_cast<int64_t>(c.bytes / 256) / kBenchRow);
}

// Three cases per type: "quantize q4_k", "quantize q4_k imatrix", "dequantize q4_k".
const bool kRegistered = [] {
  const std::pair<DType, const char*> types[] = {{DType::kQ2_K, "q2_k"}, {DType::kQ3_K, "q3_k"},
                                                 {DType::kQ4_K, "q4_k"}, {DType::kQ5_K, "q5_k"},
                                                 {DType::kQ6_K, "q6_k"}};
  for (const auto& [t, name] : types) {
    const DType type = t;
    Register({std::string("quantize ") + name, "block",
              [type](const Config& c) { return QuantizeWorkload(type, false, QuantizeRowsFor(c)); }});
    Register({std::string("quantize ") + name + " imatrix", "block",
              [type](const Config& c) { return QuantizeWorkload(type, true, QuantizeRowsFor(c)); }});
    Register({std::string("dequantize ") + name, "block",
              [type](const Config& c) { return DequantizeWorkload(type, c); }});
  }
  return true;
}();

}  // namespace
}  // namespace bitsmith::bench
