// The i-quant grid tables and search structures, checked independently of the
// reference vectors:
//  * every dequantization grid row is its lattice row mapped level by level (ties
//    the ggml-common.h tables to the ggml-quants.c lattice tables, entry by entry);
//  * the fast neighbour lists equal ggml's brute-force construction (sort by
//    (distance, index), keep nwant distinct distances) for every point a
//    quantizer can look up;
//  * decoding blocks built to use every grid row, every sign pattern and every
//    scale gives the value computed from the lattice levels, through the scalar
//    and the SIMD dequantizers on every target (so every table entry is read).
#include <hwy/targets.h>  // hwy::SupportedAndGeneratedTargets, SetSupportedTargetsForTest

#include <chrono>
#include <cmath>
#include <cstring>
#include <iostream>
#include <random>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "codecs/iq_lattice.h"
#include "codecs/quant.h"
#include "formats/blocks_iq.h"
#include "formats/half.h"
#include "formats/iq_grids/iq1s_grid.h"
#include "formats/iq_grids/iq2s_grid.h"
#include "formats/iq_grids/iq2xs_grid.h"
#include "formats/iq_grids/iq2xxs_grid.h"
#include "formats/iq_grids/iq3s_grid.h"
#include "formats/iq_grids/iq3xxs_grid.h"
#include "formats/iq_grids/kgrid_1bit_2048.h"
#include "formats/iq_grids/kgrid_2bit_1024.h"
#include "formats/iq_grids/kgrid_2bit_256.h"
#include "formats/iq_grids/kgrid_2bit_512.h"
#include "formats/iq_grids/kgrid_3bit_256.h"
#include "formats/iq_grids/kgrid_3bit_512.h"
#include "formats/iq_grids/ksigns_iq2xs.h"
#include "formats/iq_grids/kvalues_mxfp4.h"
#include "support/dump.h"

namespace bitsmith {
namespace {

using test::Bits;

using iq::LatticeId;

// Level l of a lattice point as the dequantization grid stores it (README
// section 5: IQ2 {1,3,5} -> {8,25,43}; IQ3_XXS 2l+1 -> 4(2l+1), except 15 -> 62;
// IQ3_S 2l+1; IQ1 l-1).
constexpr int kIQ2Bytes[3] = {8, 25, 43};
constexpr int kIQ3XXSBytes[8] = {4, 12, 20, 28, 36, 44, 52, 62};

template <typename Grid>
void CheckImage(const char* name, const Grid* grid, const uint16_t* kgrid, int n, int dim, int bits,
                const int* levels) {
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < dim; ++k) {
      const int l = (kgrid[i] >> (bits * k)) & ((1 << bits) - 1);
      const int byte = static_cast<int8_t>((grid[i] >> (8 * k)) & 0xFF);
      INFO(name << " row " << i << " coordinate " << k << " level " << l);
      REQUIRE(byte == levels[l]);
    }
}

TEST_CASE("iquant grids: each dequantization grid is the image of its lattice table", "[iquant]") {
  const int iq3s_bytes[8] = {1, 3, 5, 7, 9, 11, 13, 15};
  const int iq1_bytes[3] = {-1, 0, 1};
  CheckImage("iq2xxs_grid", iq_grids::kIQ2XXSGrid, iq_grids::kKGrid2Bit256, 256, 8, 2, kIQ2Bytes);
  CheckImage("iq2xs_grid", iq_grids::kIQ2XSGrid, iq_grids::kKGrid2Bit512, 512, 8, 2, kIQ2Bytes);
  CheckImage("iq2s_grid", iq_grids::kIQ2SGrid, iq_grids::kKGrid2Bit1024, 1024, 8, 2, kIQ2Bytes);
  CheckImage("iq1s_grid", iq_grids::kIQ1SGrid, iq_grids::kKGrid1Bit2048, 2048, 8, 2, iq1_bytes);
  CheckImage("iq3xxs_grid", iq_grids::kIQ3XXSGrid, iq_grids::kKGrid3Bit256, 256, 4, 3, kIQ3XXSBytes);
  CheckImage("iq3s_grid", iq_grids::kIQ3SGrid, iq_grids::kKGrid3Bit512, 512, 4, 3, iq3s_bytes);
  // Lattice rows are distinct and sorted (ggml's tables are ascending), so the
  // map index -> grid row is a bijection.
  for (const auto& [t, n] : {std::pair{iq_grids::kKGrid2Bit256, 256}, {iq_grids::kKGrid2Bit512, 512},
                             {iq_grids::kKGrid2Bit1024, 1024}, {iq_grids::kKGrid1Bit2048, 2048},
                             {iq_grids::kKGrid3Bit256, 256}, {iq_grids::kKGrid3Bit512, 512}})
    for (int i = 1; i < n; ++i) REQUIRE(t[i - 1] < t[i]);
  // ksigns: k | parity(k) << 7; kvalues_mxfp4: doubled E2M1 (OCP MX v1.0 table).
  for (int k = 0; k < 128; ++k)
    REQUIRE(iq_grids::kKSignsIQ2XS[k] == (k | (__builtin_popcount(k) & 1) << 7));
  const int e2m1_doubled[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
  for (int q = 0; q < 16; ++q) REQUIRE(iq_grids::kKValuesMXFP4[q] == e2m1_doubled[q]);
}

struct LatticeCase {
  LatticeId id;
  const char* name;
  int stride;  // check every stride-th formable point (1 = all)
};

void CheckNeighbourLists(const LatticeCase& c) {
  const iq::Lattice lat = iq::BuildLattice(c.id);
  const uint32_t map_size = 1u << (lat.bits * lat.dim);
  int formable = 0, checked = 0, on_grid = 0;
  size_t total = 0;
  for (uint32_t u = 0; u < map_size; ++u) {
    bool ok = true;
    for (int k = 0; k < lat.dim; ++k) ok &= static_cast<int>((u >> (lat.bits * k)) & ((1u << lat.bits) - 1)) <= lat.max_level;
    if (!ok) continue;
    if (formable++ % c.stride != 0) continue;
    ++checked;
    const std::vector<uint16_t> ref = iq::BruteForceNeighbours(c.id, u);
    if (ref.empty()) {  // on the grid: the map gives the row whose lattice point is u
      ++on_grid;
      REQUIRE(lat.map[u] >= 0);
      uint32_t back = 0;
      for (int k = 0; k < lat.dim; ++k) back |= static_cast<uint32_t>(lat.Level(lat.map[u], k)) << (lat.bits * k);
      REQUIRE(back == u);
      continue;
    }
    REQUIRE(lat.map[u] < 0);
    const uint16_t* nb = lat.NeighboursOf(u);
    const std::vector<uint16_t> got(nb, nb + nb[0] + 1);
    total += got.size() - 1;
    if (got != ref) {
      std::string a, b;
      for (auto v : got) a += fmt::format(" {}", v);
      for (auto v : ref) b += fmt::format(" {}", v);
      FAIL(c.name << ": neighbour list of level vector " << u << " differs\n  fast:" << a
                  << "\n  brute force:" << b);
    }
  }
  std::cout << fmt::format("{}: {} of {} formable points checked ({} on the grid), {} neighbours\n",
                           c.name, checked, formable, on_grid, total);
}

TEST_CASE("iquant lattices: neighbour lists equal ggml's brute-force construction", "[iquant]") {
  // Every formable point of every lattice (about 1.5 s in all).
  for (const LatticeCase& c : {LatticeCase{LatticeId::kIQ2XXS, "iq2_xxs", 1}, {LatticeId::kIQ2XS, "iq2_xs", 1},
                               {LatticeId::kIQ2S, "iq2_s", 1}, {LatticeId::kIQ1S, "iq1_s", 1},
                               {LatticeId::kIQ3XXS, "iq3_xxs", 1}, {LatticeId::kIQ3S, "iq3_s", 1}})
    CheckNeighbourLists(c);
}

TEST_CASE("iquant lattices: lazy initialisation is shared and thread-safe", "[iquant]") {
  // Several threads ask for the same lattice at once; all see one object.
  std::vector<const iq::Lattice*> seen(4);
  std::vector<std::thread> th;
  for (int i = 0; i < 4; ++i) th.emplace_back([&, i] { seen[i] = &iq::GetLattice(LatticeId::kIQ2XS); });
  for (auto& t : th) t.join();
  for (auto* p : seen) REQUIRE(p == seen[0]);
  REQUIRE(seen[0]->grid_size == 512);
  // Build times (reported, not asserted: performance lives in bench/).
  for (int id = 0; id < iq::kNumLattices; ++id) {
    const auto t0 = std::chrono::steady_clock::now();
    const iq::Lattice lat = iq::BuildLattice(static_cast<LatticeId>(id));
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::cout << fmt::format("lattice {} (grid {}): built in {:.1f} ms, {} neighbour entries\n", id,
                             lat.grid_size, s * 1e3, lat.neighbours.size());
  }
}

// ---------------------------------------------------------------------------
// Dequantization of blocks that use every grid row.


// Decodes `blocks` through the scalar oracle and the SIMD path on every target and
// compares each element with expected[i] (bit patterns).
void CheckDecode(DType t, const std::vector<uint8_t>& blocks, const std::vector<float>& expected) {
  std::vector<float> y(expected.size());
  auto compare = [&](const char* what) {
    for (size_t i = 0; i < y.size(); ++i)
      if (Bits(y[i]) != Bits(expected[i]))
        FAIL(GetDType(t).name << " " << what << ": element " << i << " (block "
                              << i / GetDType(t).block_elems << ") = " << y[i] << " (0x" << std::hex
                              << Bits(y[i]) << "), expected " << expected[i] << " (0x" << Bits(expected[i])
                              << std::dec << ")");
  };
  REQUIRE(DequantizeRows(t, blocks, y, Impl::kReference).ok());
  compare("scalar");
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    std::fill(y.begin(), y.end(), 7.f);
    REQUIRE(DequantizeRows(t, blocks, y, Impl::kSimd).ok());
    compare(hwy::TargetName(target));
  }
  hwy::SetSupportedTargetsForTest(0);
}

// The value of a grid element, from the lattice table (not the grid table).
float Expect(double db, int level_byte, bool negative) {
  const double v = db * level_byte;  // exact in double; and exactly representable in float
  return negative ? -static_cast<float>(v) : static_cast<float>(v);
}

// Block scales cycled through the blocks: ordinary, tiny subnormal, zero (gives
// -0.0 for negative signs), large.
constexpr uint16_t kScales[] = {0x3C00 /*1*/, 0x2E66 /*0.0999*/, 0x0001 /*2^-24*/, 0x0000, 0x8000 /*-0*/,
                                0x7BFF /*65504*/, 0xB800 /*-0.5*/};

TEST_CASE("iquant dequantize: IQ2_XXS / IQ2_XS / IQ2_S decode every grid row, sign and scale", "[iquant]") {
  std::mt19937 rng(7);
  SECTION("iq2_xxs") {
    std::vector<BlockIQ2XXS> b(256 * 2 / 32 + 8);
    std::vector<float> e;
    int row = 0;
    for (size_t i = 0; i < b.size(); ++i) {
      b[i].d = kScales[i % std::size(kScales)];
      const double d = F16BitsToF32(b[i].d);
      for (int s = 0; s < 8; ++s) {
        int idx[4];
        uint8_t signs[4];
        for (int l = 0; l < 4; ++l) idx[l] = row++ % 256, signs[l] = static_cast<uint8_t>(rng() & 127);
        const int scale = (s + static_cast<int>(i)) % 16;
        StoreIQ2XXSSubBlock(b[i], s, {PackIQ2XXSGridWord(idx), PackIQ2XXSSignWord(signs, scale)});
        const double db = d * (0.5 + scale) * 0.25;
        for (int l = 0; l < 4; ++l) {
          const int sign8 = signs[l] | (__builtin_popcount(signs[l]) & 1) << 7;
          for (int j = 0; j < 8; ++j)
            e.push_back(Expect(db, kIQ2Bytes[(iq_grids::kKGrid2Bit256[idx[l]] >> (2 * j)) & 3], sign8 >> j & 1));
        }
      }
    }
    std::vector<uint8_t> bytes(b.size() * sizeof(BlockIQ2XXS));
    std::memcpy(bytes.data(), b.data(), bytes.size());
    CheckDecode(DType::kIQ2_XXS, bytes, e);
  }
  SECTION("iq2_xs") {
    std::vector<BlockIQ2XS> b(512 / 32 + 8);
    std::vector<float> e;
    int row = 0;
    for (size_t i = 0; i < b.size(); ++i) {
      b[i].d = kScales[i % std::size(kScales)];
      const double d = F16BitsToF32(b[i].d);
      for (int s = 0; s < 8; ++s) {
        b[i].scales[s] = static_cast<uint8_t>(rng());
        for (int l = 0; l < 4; ++l) {
          const int idx = row++ % 512, signs = static_cast<int>(rng() & 127);
          b[i].qs[4 * s + l] = PackIQ2XSGroup(idx, signs);
          const int sc = l < 2 ? LowNibble(b[i].scales[s]) : HighNibble(b[i].scales[s]);
          const int sign8 = signs | (__builtin_popcount(signs) & 1) << 7;
          for (int j = 0; j < 8; ++j)
            e.push_back(Expect(d * (0.5 + sc) * 0.25, kIQ2Bytes[(iq_grids::kKGrid2Bit512[idx] >> (2 * j)) & 3],
                               sign8 >> j & 1));
        }
      }
    }
    std::vector<uint8_t> bytes(b.size() * sizeof(BlockIQ2XS));
    std::memcpy(bytes.data(), b.data(), bytes.size());
    CheckDecode(DType::kIQ2_XS, bytes, e);
  }
  SECTION("iq2_s") {
    std::vector<BlockIQ2S> b(1024 / 32 + 8);
    std::vector<float> e;
    int row = 0;
    for (size_t i = 0; i < b.size(); ++i) {
      std::memset(&b[i], 0, sizeof(b[i]));
      b[i].d = kScales[i % std::size(kScales)];
      const double d = F16BitsToF32(b[i].d);
      for (int s = 0; s < 8; ++s) {
        b[i].scales[s] = static_cast<uint8_t>(rng());
        for (int l = 0; l < 4; ++l) {
          const int g = 4 * s + l, idx = row++ % 1024;
          SetIQ2SGridIndex(b[i], g, idx);
          b[i].signs[g] = static_cast<uint8_t>(rng());
          const int sc = l < 2 ? LowNibble(b[i].scales[s]) : HighNibble(b[i].scales[s]);
          for (int j = 0; j < 8; ++j)
            e.push_back(Expect(d * (0.5 + sc) * 0.25, kIQ2Bytes[(iq_grids::kKGrid2Bit1024[idx] >> (2 * j)) & 3],
                               b[i].signs[g] >> j & 1));
        }
      }
    }
    std::vector<uint8_t> bytes(b.size() * sizeof(BlockIQ2S));
    std::memcpy(bytes.data(), b.data(), bytes.size());
    CheckDecode(DType::kIQ2_S, bytes, e);
  }
}

TEST_CASE("iquant dequantize: IQ3_XXS / IQ3_S decode every grid row, sign and scale", "[iquant]") {
  std::mt19937 rng(11);
  SECTION("iq3_xxs") {
    std::vector<BlockIQ3XXS> b(256 / 64 + 8);
    std::vector<float> e;
    int row = 0;
    for (size_t i = 0; i < b.size(); ++i) {
      b[i].d = kScales[i % std::size(kScales)];
      const double d = F16BitsToF32(b[i].d);
      for (int s = 0; s < 8; ++s) {
        uint8_t signs[4];
        for (auto& v : signs) v = static_cast<uint8_t>(rng() & 127);
        const int scale = static_cast<int>(rng() % 16);
        StoreIQ3XXSSignWord(b[i], s, PackIQ2XXSSignWord(signs, scale));
        for (int g = 0; g < 8; ++g) b[i].qs[8 * s + g] = static_cast<uint8_t>(row++ % 256);
        for (int l = 0; l < 4; ++l) {
          const int sign8 = signs[l] | (__builtin_popcount(signs[l]) & 1) << 7;
          for (int j = 0; j < 8; ++j) {
            const int idx = b[i].qs[8 * s + 2 * l + j / 4];
            e.push_back(Expect(d * (0.5 + scale) * 0.5,
                               kIQ3XXSBytes[(iq_grids::kKGrid3Bit256[idx] >> (3 * (j % 4))) & 7], sign8 >> j & 1));
          }
        }
      }
    }
    std::vector<uint8_t> bytes(b.size() * sizeof(BlockIQ3XXS));
    std::memcpy(bytes.data(), b.data(), bytes.size());
    CheckDecode(DType::kIQ3_XXS, bytes, e);
  }
  SECTION("iq3_s") {
    std::vector<BlockIQ3S> b(512 / 64 + 8);
    std::vector<float> e;
    int row = 0;
    for (size_t i = 0; i < b.size(); ++i) {
      std::memset(&b[i], 0, sizeof(b[i]));
      b[i].d = kScales[i % std::size(kScales)];
      const double d = F16BitsToF32(b[i].d);
      for (auto& v : b[i].scales) v = static_cast<uint8_t>(rng());
      for (auto& v : b[i].signs) v = static_cast<uint8_t>(rng());
      for (int g = 0; g < 64; ++g) SetIQ3SGridIndex(b[i], g, row++ % 512);
      for (int s = 0; s < 8; ++s) {
        const int sc = s % 2 ? HighNibble(b[i].scales[s / 2]) : LowNibble(b[i].scales[s / 2]);
        for (int l = 0; l < 4; ++l)
          for (int j = 0; j < 8; ++j) {
            const int idx = IQ3SGridIndex(b[i], 8 * s + 2 * l + j / 4);
            e.push_back(Expect(d * (1 + 2 * sc), 2 * ((iq_grids::kKGrid3Bit512[idx] >> (3 * (j % 4))) & 7) + 1,
                               b[i].signs[4 * s + l] >> j & 1));
          }
      }
    }
    std::vector<uint8_t> bytes(b.size() * sizeof(BlockIQ3S));
    std::memcpy(bytes.data(), b.data(), bytes.size());
    CheckDecode(DType::kIQ3_S, bytes, e);
  }
}

TEST_CASE("iquant dequantize: IQ1_S / IQ1_M decode every grid row, delta and scale", "[iquant]") {
  std::mt19937 rng(13);
  auto level = [](int idx, int j) { return ((iq_grids::kKGrid1Bit2048[idx] >> (2 * j)) & 3) - 1; };
  SECTION("iq1_s") {
    std::vector<BlockIQ1S> b(2048 / 32 + 8);
    std::vector<float> e;
    int row = 0;
    for (size_t i = 0; i < b.size(); ++i) {
      std::memset(&b[i], 0, sizeof(b[i]));
      b[i].d = kScales[i % std::size(kScales)];
      const double d = F16BitsToF32(b[i].d);
      for (int s = 0; s < 8; ++s) {
        int idx[4];
        for (int l = 0; l < 4; ++l) idx[l] = row++ % 2048, b[i].qs[4 * s + l] = static_cast<uint8_t>(idx[l] & 255);
        const int scale = static_cast<int>(rng() % 8);
        const bool neg = rng() & 1;
        b[i].qh[s] = static_cast<uint16_t>(PackIQ1SQhIndices(idx) | PackIQ1SQhScale(scale, neg));
        const double dl = d * (2 * scale + 1), delta = neg ? -0.125 : 0.125;
        for (int l = 0; l < 4; ++l)
          for (int j = 0; j < 8; ++j) e.push_back(static_cast<float>(dl * (level(idx[l], j) + delta)));
      }
    }
    std::vector<uint8_t> bytes(b.size() * sizeof(BlockIQ1S));
    std::memcpy(bytes.data(), b.data(), bytes.size());
    CheckDecode(DType::kIQ1_S, bytes, e);
  }
  SECTION("iq1_m") {
    std::vector<BlockIQ1M> b(2048 / 32 + 8);
    std::vector<float> e;
    int row = 0;
    for (size_t i = 0; i < b.size(); ++i) {
      std::memset(&b[i], 0, sizeof(b[i]));
      int scale[16];
      for (int h = 0; h < 16; ++h) {
        scale[h] = static_cast<int>(rng() % 8);
        b[i].sc[h / 4] = static_cast<uint16_t>(b[i].sc[h / 4] | scale[h] << (3 * (h % 4)));
      }
      SetIQ1MScaleBits(b[i], kScales[i % std::size(kScales)]);
      REQUIRE(IQ1MScaleBits(b[i]) == kScales[i % std::size(kScales)]);
      const double d = F16BitsToF32(kScales[i % std::size(kScales)]);
      for (int h = 0; h < 16; ++h) {
        int idx[2];
        bool neg[2];
        for (int k = 0; k < 2; ++k) {
          idx[k] = row++ % 2048;
          neg[k] = rng() & 1;
          b[i].qs[2 * h + k] = static_cast<uint8_t>(idx[k] & 255);
        }
        b[i].qh[h] = static_cast<uint8_t>((idx[0] >> 8) | (neg[0] ? 0x08 : 0) | (idx[1] >> 8) << 4 | (neg[1] ? 0x80 : 0));
        REQUIRE(IQ1MScale(b[i], h) == scale[h]);
        for (int k = 0; k < 2; ++k)
          for (int j = 0; j < 8; ++j)
            e.push_back(static_cast<float>(d * (2 * scale[h] + 1) * (level(idx[k], j) + (neg[k] ? -0.125 : 0.125))));
      }
    }
    std::vector<uint8_t> bytes(b.size() * sizeof(BlockIQ1M));
    std::memcpy(bytes.data(), b.data(), bytes.size());
    CheckDecode(DType::kIQ1_M, bytes, e);
  }
}

TEST_CASE("iquant dequantize: MXFP4 every exponent and nibble - TQ1_0 / TQ2_0 every trit byte", "[iquant]") {
  SECTION("mxfp4") {
    std::vector<BlockMXFP4> b(256);
    std::vector<float> e;
    for (int i = 0; i < 256; ++i) {
      b[i].e = static_cast<uint8_t>(i);
      for (int j = 0; j < 16; ++j) b[i].qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4) ^ (i & 0xF0));
      const float d = static_cast<float>(std::ldexp(1.0, i - 128));  // 2^(e-128); e = 255 -> 2^127, no NaN
      for (int j = 0; j < 32; ++j) {
        const int q = j < 16 ? LowNibble(b[i].qs[j]) : HighNibble(b[i].qs[j - 16]);
        e.push_back(iq_grids::kKValuesMXFP4[q] * d);  // fp32 product (12 * 2^127 = inf); 0 * d = +0
      }
    }
    std::vector<uint8_t> bytes(b.size() * sizeof(BlockMXFP4));
    std::memcpy(bytes.data(), b.data(), bytes.size());
    CheckDecode(DType::kMXFP4, bytes, e);
  }
  SECTION("tq1_0 and tq2_0") {
    // TQ1_0: block i puts byte value (i*54 + k) % 256 at byte k: every byte value
    // appears in qs and in qh.
    std::vector<BlockTQ1_0> b1(256);
    std::vector<float> e1;
    for (int i = 0; i < 256; ++i) {
      auto* raw = reinterpret_cast<uint8_t*>(&b1[i]);
      for (int k = 0; k < 52; ++k) raw[k] = static_cast<uint8_t>(i * 53 + k * 7);
      b1[i].d = kScales[i % std::size(kScales)];
      const double d = F16BitsToF32(b1[i].d);
      // Trit n of byte b: digit n of the base-3 fraction b/256, i.e.
      // floor(b * 3^(n+1) / 256) mod 3 (written independently of UnpackTQ1Trit).
      auto trit = [](uint8_t byte, int n) {
        int p = 3;
        for (int k = 0; k < n; ++k) p *= 3;
        return byte * p / 256 % 3;
      };
      for (int n = 0; n < 5; ++n)
        for (int m = 0; m < 32; ++m) e1.push_back(static_cast<float>((trit(b1[i].qs[m], n) - 1) * d));
      for (int n = 0; n < 5; ++n)
        for (int m = 0; m < 16; ++m) e1.push_back(static_cast<float>((trit(b1[i].qs[32 + m], n) - 1) * d));
      for (int n = 0; n < 4; ++n)
        for (int j = 0; j < 4; ++j) e1.push_back(static_cast<float>((trit(b1[i].qh[j], n) - 1) * d));
    }
    std::vector<uint8_t> bytes(b1.size() * sizeof(BlockTQ1_0));
    std::memcpy(bytes.data(), b1.data(), bytes.size());
    CheckDecode(DType::kTQ1_0, bytes, e1);

    std::vector<BlockTQ2_0> b2(64);
    std::vector<float> e2;
    for (int i = 0; i < 64; ++i) {
      for (int k = 0; k < 64; ++k) b2[i].qs[k] = static_cast<uint8_t>(i * 64 + k);
      b2[i].d = kScales[i % std::size(kScales)];
      const double d = F16BitsToF32(b2[i].d);
      for (int h = 0; h < 2; ++h)
        for (int l = 0; l < 4; ++l)
          for (int m = 0; m < 32; ++m)
            e2.push_back(static_cast<float>((((b2[i].qs[32 * h + m] >> (2 * l)) & 3) - 1) * d));
    }
    bytes.resize(b2.size() * sizeof(BlockTQ2_0));
    std::memcpy(bytes.data(), b2.data(), bytes.size());
    CheckDecode(DType::kTQ2_0, bytes, e2);
  }
}

}  // namespace
}  // namespace bitsmith
