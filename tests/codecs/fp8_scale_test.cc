// The fused block-scaled FP8 row kernel (codecs/fp8_scale.h) against the
// segment kernels' scalar composition (DecodeScaledTo* with Impl::kReference,
// one call per bn-column segment), on every compiled Highway target, and its
// NaN-code flag against a plain scan.
#include <cmath>    // std::isnan, INFINITY, NAN
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <hwy/targets.h>  // SupportedAndGeneratedTargets, SetSupportedTargetsForTest

#include "codecs/element.h"
#include "codecs/fp8_scale.h"
#include "formats/half.h"

namespace bitsmith {
namespace {

using Id = ElementFormatId;

template <typename Fn>
void ForEachTarget(Fn&& body) {
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    INFO("target " << hwy::TargetName(target));
    body();
  }
  hwy::SetSupportedTargetsForTest(0);
}

bool NonFiniteCode(Id id, uint8_t c) {
  return id == Id::kE4M3FN ? (c & 0x7F) == 0x7F : (c & 0x7F) >= 0x7C;
}

// The expected row: each segment through the reference segment kernel.
void SegmentRef(Id id, const uint8_t* in, size_t n, const float* scales, size_t bn, ScaledTarget to,
                std::vector<uint8_t>& out) {
  const size_t es = to == ScaledTarget::kF32 ? 4 : 2;
  out.assign(n * es, 0);
  for (size_t j = 0, b = 0; j < n; j += bn, ++b) {
    const size_t len = std::min(bn, n - j);
    void* o = out.data() + j * es;
    if (to == ScaledTarget::kBF16)
      DecodeScaledToBF16(id, in + j, scales[b], static_cast<uint16_t*>(o), len, Impl::kReference);
    else if (to == ScaledTarget::kF16)
      DecodeScaledToF16(id, in + j, scales[b], static_cast<uint16_t*>(o), len, Impl::kReference);
    else
      DecodeScaledToF32(id, in + j, scales[b], static_cast<float*>(o), len, Impl::kReference);
  }
}

TEST_CASE("fused FP8 row kernel equals the segment composition on every target", "[codecs][element][fp8]") {
  std::mt19937_64 rng(11);
  // Every code, then random ones; rows long enough for many blocks.
  std::vector<uint8_t> codes(7168 + 300);
  for (auto& c : codes) c = static_cast<uint8_t>(rng());
  for (int c = 0; c < 256; ++c) codes[c] = static_cast<uint8_t>(c);
  // Scales that round, overflow bf16/f16, land in subnormals, and a negative one.
  const std::vector<float> pool = {1.0f, 0.5f, 3.0517578e-05f, 1.7f, 2.2e-4f, 1e-38f, 4e30f,
                                   F32FromBits(0x00000003), -0.75f, 123456.7f, 0.0013828278f};
  for (Id id : {Id::kE4M3FN, Id::kE5M2}) {
    for (ScaledTarget to : {ScaledTarget::kBF16, ScaledTarget::kF16, ScaledTarget::kF32}) {
      // (n, bn): whole blocks, ragged last blocks, rows shorter than a block,
      // odd block sizes, one block per row (per-tensor / per-channel).
      for (auto [n, bn] : std::vector<std::pair<size_t, size_t>>{{7168, 128}, {7100, 128}, {1, 128}, {77, 128},
                                                                  {256, 128}, {1000, 64}, {999, 7}, {300, 300},
                                                                  {7468, 128}, {513, 1}}) {
        std::vector<float> scales((n + bn - 1) / bn);
        for (size_t b = 0; b < scales.size(); ++b) scales[b] = pool[(b * 7 + n) % pool.size()];
        std::vector<uint8_t> want;
        SegmentRef(id, codes.data(), n, scales.data(), bn, to, want);
        bool want_nan = false;
        for (size_t j = 0; j < n; ++j) want_nan |= NonFiniteCode(id, codes[j]);
        // The scalar path of the fused kernel, then every SIMD target.
        std::vector<uint8_t> got(want.size(), 0xAB);
        CHECK(DecodeScaledRow(id, codes.data(), n, scales.data(), bn, to, got.data(), Impl::kReference) ==
              want_nan);
        REQUIRE(got == want);
        ForEachTarget([&] {
          std::vector<uint8_t> simd(want.size() + 64, 0xAB);
          const bool nan = DecodeScaledRow(id, codes.data(), n, scales.data(), bn, to, simd.data());
          INFO(GetElementFormat(id).name << " n " << n << " bn " << bn << " target kind " << int(to));
          CHECK(nan == want_nan);
          for (size_t i = 0; i < want.size(); ++i) {
            if (simd[i] != want[i]) {
              const size_t es = to == ScaledTarget::kF32 ? 4 : 2;
              FAIL("element " << i / es << " code 0x" << std::hex << int(codes[i / es]) << std::dec << " scale "
                              << scales[i / es / bn] << ": byte " << i << " is " << int(simd[i]) << ", want "
                              << int(want[i]));
            }
          }
          // Nothing written past the row.
          for (size_t i = want.size(); i < simd.size(); ++i) REQUIRE(simd[i] == 0xAB);
        });
      }
    }
  }
}

// The BF16 fast path (finite codes, finite block scale; codecs/fp8_scale.cc)
// and its fallbacks, element by element against the scalar oracle
// F32ToBF16Bits(DecodeToF32Ref(code) * scale): all 256 codes under every
// scale of a pool that rounds, ties, overflows bf16 and f32, lands in f32
// subnormals, is zero, +-inf or NaN, at row lengths around each vector width
// and at misaligned input and output addresses.
TEST_CASE("fused FP8 row kernel, BF16: every code x every kind of scale, ragged rows, misaligned",
          "[codecs][element][fp8]") {
  const std::vector<float> pool = {
      1.0f, 0.5f, 1.7f, -0.75f, 2.2e-4f, 0.0013828278f, 3.0517578e-05f, 123456.7f,
      1.00390625f,                      // 1 + 2^-8: products tie in bf16
      F32FromBits(0x3F808000),          // ties at other magnitudes
      1e-38f, 1.1754944e-38f,           // near the smallest f32 normal
      F32FromBits(0x00000003), F32FromBits(0x00400000), 2.5e-40f,  // f32 subnormal scales
      4e30f, 7.6e35f, 3.4028235e38f, -3.4028235e38f,  // products overflow bf16 / f32
      0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN};
  std::mt19937_64 rng(23);
  for (Id id : {Id::kE4M3FN, Id::kE5M2}) {
    for (const bool with_nan_codes : {false, true}) {
      // 256 * pool.size() codes: each scale meets all 256 codes in one block.
      const size_t bn = 256;
      std::vector<uint8_t> codes(256 * pool.size());
      std::vector<float> scales(pool.size());
      for (size_t b = 0; b < pool.size(); ++b) {
        scales[b] = pool[b];
        for (int c = 0; c < 256; ++c) codes[b * 256 + c] = static_cast<uint8_t>((c * 37 + b * 11) & 0xFF);
      }
      // Rows without a non-finite code take the fast path everywhere.
      if (!with_nan_codes)
        for (auto& c : codes)
          if (NonFiniteCode(id, c)) c = static_cast<uint8_t>(c & 0x80);
      const size_t n = codes.size();
      std::vector<uint16_t> want(n);
      for (size_t j = 0; j < n; ++j)
        want[j] = F32ToBF16Bits(DecodeToF32Ref(id, codes[j]) * scales[j / bn]);
      // Which NaN an f32 multiply of two NaNs returns is not specified (it is
      // the first operand's on x86, and operand order is the compiler's), so
      // the sign of NaN code x NaN scale is not compared.
      auto skip = [&](size_t j) { return NonFiniteCode(id, codes[j]) && std::isnan(scales[j / bn]); };
      ForEachTarget([&] {
        for (size_t mis : {size_t{0}, size_t{1}, size_t{3}}) {
          std::vector<uint8_t> in(n + mis);
          std::memcpy(in.data() + mis, codes.data(), n);
          std::vector<uint16_t> out(n + mis + 40, 0xABAB);
          const bool nan = DecodeScaledRow(id, in.data() + mis, n, scales.data(), bn, ScaledTarget::kBF16,
                                           out.data() + mis);
          INFO(GetElementFormat(id).name << " misalignment " << mis);
          CHECK(nan == with_nan_codes);
          for (size_t j = 0; j < n; ++j)
            if (out[mis + j] != want[j] && !skip(j))
              FAIL("element " << j << " code 0x" << std::hex << int(codes[j]) << " scale bits 0x"
                              << F32Bits(scales[j / bn]) << ": got 0x" << out[mis + j] << ", want 0x" << want[j]);
          for (size_t j = 0; j < mis; ++j) REQUIRE(out[j] == 0xABAB);
          for (size_t j = mis + n; j < out.size(); ++j) REQUIRE(out[j] == 0xABAB);
        }
        // Ragged rows: lengths around every vector width (16, 32, 64 codes per
        // unit), block sizes that do and do not divide them, random codes.
        for (size_t len : {1, 2, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 191, 255, 257, 1000}) {
          for (size_t bl : {size_t{1}, size_t{5}, size_t{16}, size_t{48}, size_t{64}, size_t{128}, len}) {
            std::vector<uint8_t> row(len);
            for (auto& c : row) {
              c = static_cast<uint8_t>(rng());
              if (!with_nan_codes && NonFiniteCode(id, c)) c = 0x01;  // a subnormal
            }
            std::vector<float> sc((len + bl - 1) / bl);
            for (auto& x : sc) x = pool[rng() % 10];  // the finite non-zero scales
            std::vector<uint16_t> out(len + 40, 0xABAB);
            (void)DecodeScaledRow(id, row.data(), len, sc.data(), bl, ScaledTarget::kBF16, out.data());
            for (size_t j = 0; j < len; ++j) {
              const uint16_t w = F32ToBF16Bits(DecodeToF32Ref(id, row[j]) * sc[j / bl]);
              if (out[j] != w)
                FAIL(GetElementFormat(id).name << " len " << len << " bn " << bl << " element " << j << " code 0x"
                                               << std::hex << int(row[j]) << ": got 0x" << out[j] << ", want 0x"
                                               << w);
            }
            for (size_t j = len; j < out.size(); ++j) REQUIRE(out[j] == 0xABAB);
          }
        }
      });
    }
  }
}

TEST_CASE("fused FP8 row kernel: the NaN-code flag at every position", "[codecs][element][fp8]") {
  std::vector<uint8_t> row(1000, 0x3C);  // finite everywhere
  std::vector<float> scales((row.size() + 127) / 128, 0.25f);
  std::vector<uint16_t> out(row.size());
  for (Id id : {Id::kE4M3FN, Id::kE5M2}) {
    ForEachTarget([&] {
      CHECK_FALSE(DecodeScaledRow(id, row.data(), row.size(), scales.data(), 128, ScaledTarget::kBF16, out.data()));
      for (size_t pos : {size_t{0}, size_t{31}, size_t{64}, size_t{127}, size_t{128}, size_t{990}, size_t{999}}) {
        for (uint8_t bad : {uint8_t{0x7F}, uint8_t{0xFF}, uint8_t{0x7C}, uint8_t{0xFD}, uint8_t{0x7E}}) {
          std::vector<uint8_t> r = row;
          r[pos] = bad;
          INFO(GetElementFormat(id).name << " code 0x" << std::hex << int(bad) << std::dec << " at " << pos);
          CHECK(DecodeScaledRow(id, r.data(), r.size(), scales.data(), 128, ScaledTarget::kBF16, out.data()) ==
                NonFiniteCode(id, bad));
        }
      }
    });
  }
}

}  // namespace
}  // namespace bitsmith
