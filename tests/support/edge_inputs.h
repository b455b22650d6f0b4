// Edge-case inputs and the checks the block-codec edge tests share
// (tests/codecs/kquant_edge_test.cc, legacy_edge_test.cc): inputs the shared
// vectors do not cover (zeros, tiny values whose fp16 scales underflow, huge
// values, constant rows, exact ties, spikes, sign patterns, odd imatrices),
// decided by the rules of tests/data/blocks/README.md section 4, and one loop
// that checks a type on all of them:
//  1. the scalar reference against ggml itself (the dlopen'ed libggml-base.so
//     of bench/ggml_ref.h), quantized bytes and dequantized floats -- skipped
//     when the library is not loaded;
//  2. the SIMD kernels against the reference on every compiled Highway target;
//  3. optionally, QuantizeRows / DequantizeRows with 2, 3 and all threads
//     against the reference.
// Failures name the type, case, path (plain / imatrix i) and first differing byte.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <random>
#include <string>
#include <vector>

#include "codecs/quant.h"  // BlockCodec
#include "formats/dtype.h"

namespace bitsmith::test {

struct EdgeCase {
  std::string name;
  std::vector<float> x;  // whole rows
};

// Builds a list of edge cases of whole rows of `row` floats. Random values come
// from one N(0, 1) stream (mt19937 seeded with `seed`), drawn in the order the
// cases are added, so the same calls give the same inputs on every run.
class EdgeCaseBuilder {
 public:
  EdgeCaseBuilder(int64_t row, uint32_t seed) : row_(row), rng_(seed) {}

  // `rows` rows whose element i (counted over the whole case) is f(i).
  void Add(std::string name, int rows, const std::function<float(int64_t)>& f);
  // The next N(0, 1) value of the stream.
  float Gauss() { return g_(rng_); }

  // The groups both edge tests use, each adding its cases in this order:
  // "zeros" (2 rows), "negative zeros", "tiny gaussian <s>" per scale,
  // "tiny constant 1e-8".
  void AddZerosAndTiny(std::initializer_list<float> tiny_scales);
  // "huge gaussian <s>" per scale, "max float", "constant <c>" per value,
  // "exact ties (halves)" and "small integers" (2 rows each).
  void AddHugeAndConstants(std::initializer_list<float> huge_scales, std::initializer_list<float> constants);
  // "single spike", "spike in noise" (2 rows each).
  void AddSpikes();
  // "all positive", "all negative", "alternating signs", "subnormal mix", "two levels".
  void AddSignPatterns();

  std::vector<EdgeCase> Take() { return std::move(cases_); }

 private:
  int64_t row_;
  std::mt19937 rng_;
  std::normal_distribution<float> g_{0.f, 1.f};
  std::vector<EdgeCase> cases_;
};

// Five importance matrices of `row` weights, from mt19937(seed): exp(N(0,1))
// (what llama-quantize passes), uniform 1, every third zero (others
// exp(2 N(0,1))), all zero, extreme (1e12 every 97th, else 1e-6).
std::vector<std::vector<float>> EdgeImatrices(int64_t row, uint32_t seed);

// The first byte where a and b differ; a.size() when b is a longer copy of a
// prefix, -1 when equal.
int64_t FirstDiff(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b);
// Bitwise equality of two float arrays (NaN payloads and signed zeros count).
bool SameBits(const std::vector<float>& a, const std::vector<float>& b);

// Quantizes x (whole rows of `row`) to `t` with one kernel, into a buffer
// prefilled with 0xCD so bytes the kernel fails to write show.
std::vector<uint8_t> QuantizeWholeRows(BlockCodec::QuantizeFn quantize, DType t, int64_t row,
                                       const std::vector<float>& x, const float* imatrix);

// Checks 1-3 above for type `t` (its BlockCodec) on every case, plain and with
// each imatrix. ggml's activation types q8_1 / q8_k have a row quantizer only:
// they are checked plain, against quantize_row_*_ref. Returns how many
// (case, imatrix) pairs were compared with ggml (0 when it is not loaded).
int CheckEdgeCases(DType t, int64_t row, const std::vector<EdgeCase>& cases,
                   const std::vector<std::vector<float>>& imatrices, bool check_threads);

}  // namespace bitsmith::test
