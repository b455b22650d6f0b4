// ggml's reference vectors (tests/data/blocks: the legacy types, k-quants, IQ4;
// tests/data/iquants: tq*, mxfp4, q8_K, the grid i-quants), reproduced by every
// block codec bitsmith has: quantize(input [, imatrix]) must equal the `quant`
// bytes and dequantize(quant) the `dequant` floats bit for bit, through the
// scalar reference and the SIMD path on every compiled Highway target.
//
// Data-driven: cases whose type has no codec yet are listed in a WARN, not
// failed (other families add their codecs independently).
#include <hwy/targets.h>  // hwy::SupportedAndGeneratedTargets, SetSupportedTargetsForTest

#include <cstring>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "codecs/quant.h"
#include "support/block_vectors.h"
#include "support/test_data.h"
#include "support/dump.h"

namespace bitsmith {
namespace {

using test::Bits;
using test::Hex;


struct Counts {
  int matched = 0;
  std::map<std::string, int> no_codec;  // type -> cases skipped
};

// Checks one case through one implementation; returns true when it matched.
bool CheckCase(const test::BlockVectorCase& v, Impl impl, const char* target) {
  const DTypeInfo& info = GetDType(v.dtype);
  const int be = info.block_elems, bb = info.block_bytes;
  const char* impl_name = impl == Impl::kReference ? "scalar" : "simd";
  // 1. Quantize. The destination starts as garbage: ggml's bytes assume a
  //    zero-filled buffer only where it leaves bytes unwritten (q8_K's bsums of
  //    all-zero blocks), and bitsmith writes every byte.
  std::vector<uint8_t> q(v.quant.size(), 0xCD);
  const Status s = QuantizeRows(v.dtype, v.input, q, v.n_per_row,
                                v.imatrix.empty() ? nullptr : v.imatrix.data(), impl, 1);
  if (!s.ok()) {
    FAIL_CHECK(v.id << " (" << impl_name << ", " << target << "): " << s.error().message);
    return false;
  }
  for (size_t i = 0; i < q.size(); ++i) {
    if (q[i] != v.quant[i]) {
      const size_t blk = i / bb;
      const size_t nblk_row = static_cast<size_t>(v.n_per_row / be);
      const size_t row = blk / nblk_row, col = blk % nblk_row * be;
      std::string in;
      for (int j = 0; j < be; ++j)
        in += fmt::format("{}{:a}", j ? "," : "", v.input[row * v.n_per_row + col + j]);
      FAIL_CHECK(v.id << " quantize (" << impl_name << ", target " << target << "): byte " << i
                      << " = block " << blk << " (row " << row << ", columns " << col << ".."
                      << col + be - 1 << ", byte " << i % bb << " of the block) differs\n  input: "
                      << in << "\n  ggml:     " << Hex(v.quant.data() + blk * bb, bb)
                      << "\n  bitsmith: " << Hex(q.data() + blk * bb, bb));
      return false;
    }
  }
  // 2. Dequantize the reference bytes.
  std::vector<float> y(v.dequant.size(), 7.f);
  const Status d = DequantizeRows(v.dtype, v.quant, y, impl, 1);
  if (!d.ok()) {
    FAIL_CHECK(v.id << " dequantize (" << impl_name << "): " << d.error().message);
    return false;
  }
  for (size_t i = 0; i < y.size(); ++i) {
    if (Bits(y[i]) != Bits(v.dequant[i])) {
      const size_t blk = i / be;
      FAIL_CHECK(v.id << " dequantize (" << impl_name << ", target " << target << "): element "
                      << i << " (block " << blk << ", index " << i % be << ")\n  block: "
                      << Hex(v.quant.data() + blk * bb, bb)
                      << fmt::format("\n  ggml: {:a} (0x{:08x})\n  bitsmith: {:a} (0x{:08x})",
                                     v.dequant[i], Bits(v.dequant[i]), y[i], Bits(y[i])));
      return false;
    }
  }
  return true;
}

void RunVectors(const std::filesystem::path& dir, Counts* counts) {
  const auto cases = test::LoadBlockVectors(dir);
  REQUIRE(!cases.empty());
  const std::vector<int64_t> targets = hwy::SupportedAndGeneratedTargets();
  for (const auto& v : cases) {
    if (GetBlockCodec(v.dtype) == nullptr) {
      ++counts->no_codec[v.type];
      continue;
    }
    bool ok = CheckCase(v, Impl::kReference, "-");
    for (int64_t t : targets) {
      hwy::SetSupportedTargetsForTest(t);
      ok = CheckCase(v, Impl::kSimd, hwy::TargetName(t)) && ok;
    }
    hwy::SetSupportedTargetsForTest(0);
    if (ok) ++counts->matched;
  }
}

void Report(const char* set, const Counts& c) {
  std::cout << fmt::format("{}: {} cases matched (scalar and SIMD on every target)\n", set,
                           c.matched);
  if (!c.no_codec.empty()) {
    std::string list;
    for (auto& [type, n] : c.no_codec) list += fmt::format(" {} ({} cases)", type, n);
    std::cout << set << ": no codec yet, not tested:" << list << "\n";
    WARN(set << ": types without a codec yet, their vectors not tested:" << list);
  }
}

TEST_CASE("block vectors: ggml legacy, k-quant and IQ4 vectors reproduced", "[blocks]") {
  Counts c;
  RunVectors(test::DataDir() / "blocks", &c);
  Report("tests/data/blocks", c);
}

TEST_CASE("block vectors: ggml tq, mxfp4, q8_K and grid i-quant vectors reproduced", "[blocks]") {
  Counts c;
  RunVectors(test::DataDir() / "iquants", &c);
  Report("tests/data/iquants", c);
}

TEST_CASE("block vectors: manifests load and every digest checks", "[blocks]") {
  // LoadBlockVectors FAILs on a bad digest or size; this also pins the counts
  // the READMEs document (115 and 75 cases).
  CHECK(test::LoadBlockVectors(test::DataDir() / "blocks").size() == 115);
  CHECK(test::LoadBlockVectors(test::DataDir() / "iquants").size() == 75);
  CHECK(test::LoadBlockVectors(test::DataDir() / "blocks", "Q4_K").size() == 10);
  CHECK(test::LoadBlockVectors(test::DataDir() / "blocks", "q8_0").size() == 5);
  // FNV-1a 64 of the empty string is the offset basis; of "a", 0xaf63dc4c8601ec8c.
  CHECK(test::Fnv1a64("", 0) == 0xcbf29ce484222325ull);
  CHECK(test::Fnv1a64("a", 1) == 0xaf63dc4c8601ec8cull);
}

}  // namespace
}  // namespace bitsmith
