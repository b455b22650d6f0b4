// QuantizeRows / DequantizeRows take blocks at any address: the block kernels
// read and write blocks through their structs (2- or 4-byte aligned), so the
// row APIs stage misaligned bytes through an aligned buffer. Found by the
// ggml_diff fuzz target: UBSan reported a misaligned BlockIQ2XXS access when
// the target dequantized its input bytes in place (regression input
// fuzz/corpus/ggml_diff/regression_misaligned_blocks_iq2_xxs, replayed under
// UBSan by `make fuzz-ci`). Here: same bytes and floats at offsets 1-3 as at an
// aligned address, for every block codec, scalar and SIMD.
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include <catch2/catch.hpp>

#include "codecs/quant.h"
#include "formats/dtype.h"

namespace bitsmith {
namespace {

std::vector<uint32_t> Bits(const std::vector<float>& v) {
  std::vector<uint32_t> b(v.size());
  std::memcpy(b.data(), v.data(), v.size() * 4);
  return b;
}

TEST_CASE("block codecs: QuantizeRows and DequantizeRows give the same bytes at any address", "[quant][align]") {
  std::mt19937 rng(20261207);
  std::normal_distribution<float> gauss(0.0f, 0.05f);
  int types = 0;
  for (const DTypeInfo& info : kDTypes) {
    if (!info.is_block() || GetBlockCodec(info.id) == nullptr) continue;
    ++types;
    INFO(info.name);
    const int64_t per_row = info.block_elems * 3, rows = 2;
    std::vector<float> x(static_cast<size_t>(per_row * rows));
    for (float& v : x) v = gauss(rng);
    std::vector<float> imatrix(static_cast<size_t>(per_row), 1.0f);
    const size_t bytes = static_cast<size_t>(*RowBytes(info.id, static_cast<uint64_t>(per_row)) * rows);
    for (Impl impl : {Impl::kReference, Impl::kSimd}) {
      INFO((impl == Impl::kReference ? "reference" : "SIMD"));
      std::vector<uint64_t> aligned_store(bytes / 8 + 1);
      std::span<uint8_t> aligned(reinterpret_cast<uint8_t*>(aligned_store.data()), bytes);
      REQUIRE(QuantizeRows(info.id, x, aligned, per_row, imatrix.data(), impl).ok());
      std::vector<float> want(x.size());
      REQUIRE(DequantizeRows(info.id, aligned, want, impl).ok());
      for (size_t offset = 1; offset < 4; ++offset) {
        INFO("offset " << offset);
        std::vector<uint64_t> store(bytes / 8 + 2);
        std::span<uint8_t> shifted(reinterpret_cast<uint8_t*>(store.data()) + offset, bytes);
        REQUIRE(QuantizeRows(info.id, x, shifted, per_row, imatrix.data(), impl).ok());
        CHECK(std::memcmp(shifted.data(), aligned.data(), bytes) == 0);
        std::vector<float> got(x.size());
        REQUIRE(DequantizeRows(info.id, shifted, got, impl).ok());
        CHECK(Bits(got) == Bits(want));
      }
    }
  }
  CHECK(types >= 25);
}

}  // namespace
}  // namespace bitsmith
