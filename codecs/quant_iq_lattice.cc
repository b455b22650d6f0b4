// Lattice tables of the grid i-quants: grids, maps and neighbour lists
// (see codecs/iq_lattice.h for what they are and why they are built this way).
#include <algorithm>
#include <array>
#include <chrono>
#include <climits>  // INT32_MIN
#include <mutex>    // std::call_once

#include "codecs/iq_lattice.h"
#include "formats/iq_grids/kgrid_1bit_2048.h"
#include "formats/iq_grids/kgrid_2bit_1024.h"
#include "formats/iq_grids/kgrid_2bit_256.h"
#include "formats/iq_grids/kgrid_2bit_512.h"
#include "formats/iq_grids/kgrid_3bit_256.h"
#include "formats/iq_grids/kgrid_3bit_512.h"

namespace bitsmith::iq {
namespace {

struct LatticeDesc {
  const uint16_t* kgrid;  // packed levels, `bits` per coordinate
  int grid_size;
  int dim;
  int bits;
  int max_level;
  int nwant;  // ggml: 3 for IQ1_S/IQ1_M, 1 for IQ2_S, 2 for IQ2_XXS/IQ2_XS; 2/3 for IQ3_XXS/IQ3_S
};

// Row order = LatticeId order.
constexpr std::array<LatticeDesc, kNumLattices> kDescs = {{
    {iq_grids::kKGrid2Bit256, 256, 8, 2, 2, 2},
    {iq_grids::kKGrid2Bit512, 512, 8, 2, 2, 2},
    {iq_grids::kKGrid2Bit1024, 1024, 8, 2, 2, 1},
    {iq_grids::kKGrid1Bit2048, 2048, 8, 2, 2, 3},
    {iq_grids::kKGrid3Bit256, 256, 4, 3, 7, 2},
    {iq_grids::kKGrid3Bit512, 512, 4, 3, 7, 3},
}};

int Digit(uint32_t u, int k, int bits) { return (u >> (bits * k)) & ((1 << bits) - 1); }

// True when every level of u is one a quantizer can form (<= max_level).
bool Formable(uint32_t u, const LatticeDesc& d) {
  for (int k = 0; k < d.dim; ++k)
    if (Digit(u, k, d.bits) > d.max_level) return false;
  return true;
}

void Build(LatticeId id, Lattice& lat) {
  const LatticeDesc& d = kDescs[static_cast<int>(id)];
  lat.dim = d.dim;
  lat.bits = d.bits;
  lat.max_level = d.max_level;
  lat.grid_size = d.grid_size;
  lat.nwant = d.nwant;
  const int G = d.grid_size;

  // 1. Grid: lattice coordinates 2l+1, and the levels transposed (one array per
  //    coordinate) for the distance loop below.
  lat.pos.resize(static_cast<size_t>(G) * d.dim);
  std::vector<uint8_t> level_t(static_cast<size_t>(G) * d.dim);
  for (int i = 0; i < G; ++i)
    for (int k = 0; k < d.dim; ++k) {
      const int l = Digit(d.kgrid[i], k, d.bits);
      lat.pos[static_cast<size_t>(d.dim) * i + k] = static_cast<int8_t>(2 * l + 1);
      level_t[static_cast<size_t>(k) * G + i] = static_cast<uint8_t>(l);
    }

  // 2. Map: grid points first (kgrid values are the map indices themselves).
  const uint32_t map_size = 1u << (d.bits * d.dim);
  lat.map.assign(map_size, INT32_MIN);
  for (int i = 0; i < G; ++i) lat.map[d.kgrid[i]] = i;

  // 3. Neighbour lists of the formable off-grid points. The squared distance in
  //    lattice coordinates is 4 * sum (l_k - m_k)^2; the factor 4 does not change
  //    the order, so we work with s = sum (l_k - m_k)^2 <= 8*4 or 4*49.
  constexpr int kMaxS = 256;
  std::vector<uint8_t> s(static_cast<size_t>(G));
  lat.neighbours.clear();
  lat.neighbours.reserve(map_size * 8);
  for (uint32_t u = 0; u < map_size; ++u) {
    if (lat.map[u] >= 0 || !Formable(u, d)) continue;
    // 3a. Distances to every grid point (vectorisable: uint8 lanes).
    std::fill(s.begin(), s.end(), 0);
    for (int k = 0; k < d.dim; ++k) {
      const uint8_t a = static_cast<uint8_t>(Digit(u, k, d.bits));
      const uint8_t* lv = &level_t[static_cast<size_t>(k) * G];
      for (int i = 0; i < G; ++i) {
        const uint8_t diff = a > lv[i] ? static_cast<uint8_t>(a - lv[i]) : static_cast<uint8_t>(lv[i] - a);
        s[i] = static_cast<uint8_t>(s[i] + diff * diff);
      }
    }
    // 3b. The nwant smallest distinct distances.
    std::array<uint16_t, kMaxS> count{};
    for (int i = 0; i < G; ++i) ++count[s[i]];
    int limit = -1;  // largest distance kept
    for (int v = 0, have = 0; v < kMaxS && have < d.nwant; ++v)
      if (count[v]) limit = v, ++have;
    // 3c. Emit by (distance, index): one pass per kept distance.
    const size_t head = lat.neighbours.size();
    lat.map[u] = -static_cast<int32_t>(head) - 1;
    lat.neighbours.push_back(0);
    for (int v = 0; v <= limit; ++v) {
      if (!count[v]) continue;
      for (int i = 0; i < G; ++i)
        if (s[i] == v) lat.neighbours.push_back(static_cast<uint16_t>(i));
    }
    lat.neighbours[head] = static_cast<uint16_t>(lat.neighbours.size() - head - 1);
  }
  lat.neighbours.shrink_to_fit();
}

struct Slot {
  std::once_flag once;
  Lattice lattice;
  double seconds = 0;
};
std::array<Slot, kNumLattices>& Slots() {
  static std::array<Slot, kNumLattices> slots;
  return slots;
}

}  // namespace

const Lattice& GetLattice(LatticeId id) {
  Slot& slot = Slots()[static_cast<int>(id)];
  std::call_once(slot.once, [&] {
    const auto t0 = std::chrono::steady_clock::now();
    Build(id, slot.lattice);
    slot.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  });
  return slot.lattice;
}

Lattice BuildLattice(LatticeId id) {
  Lattice lat;
  Build(id, lat);
  return lat;
}

const NeighbourChunks& GetNeighbourChunks(LatticeId id) {
  static std::array<std::once_flag, kNumLattices> once;
  static std::array<NeighbourChunks, kNumLattices> chunks;
  const int k = static_cast<int>(id);
  std::call_once(once[k], [&] {
    const Lattice& lat = GetLattice(id);
    NeighbourChunks& nc = chunks[k];
    nc.code.assign(static_cast<size_t>(lat.grid_size), 0);
    for (int i = 0; i < lat.grid_size; ++i)
      for (int c = 0; c < lat.dim; ++c) nc.code[i] |= lat.Level(i, c) << (lat.bits * c);
    const size_t dim = static_cast<size_t>(lat.dim);
    nc.coord.assign(lat.neighbours.size() * dim + 64 * dim, 0);
    for (size_t u = 0; u < lat.map.size(); ++u) {
      if (lat.map[u] >= 0 || lat.map[u] == INT32_MIN) continue;
      const size_t h = static_cast<size_t>(-(lat.map[u] + 1));
      const uint16_t* nb = lat.neighbours.data() + h;
      for (size_t c = 0; c < dim; ++c)
        for (int j = 0; j < nb[0]; ++j) nc.coord[dim * h + c * (nb[0] + 1u) + j] = lat.pos[dim * nb[1 + j] + c];
    }
  });
  return chunks[k];
}

double LatticeBuildSeconds(LatticeId id) { return Slots()[static_cast<int>(id)].seconds; }

std::vector<uint16_t> BruteForceNeighbours(LatticeId id, uint32_t u) {
  const LatticeDesc& d = kDescs[static_cast<int>(id)];
  // ggml: pos = 2l+1 per coordinate; d2 = sum (pg - pos)^2; sort (d2, j); keep the
  // points until the (nwant+1)-th distinct distance.
  std::vector<std::pair<int, int>> dist;
  for (int j = 0; j < d.grid_size; ++j) {
    if (d.kgrid[j] == u) return {};
    int d2 = 0;
    for (int k = 0; k < d.dim; ++k) {
      const int pg = 2 * Digit(d.kgrid[j], k, d.bits) + 1, pos = 2 * Digit(u, k, d.bits) + 1;
      d2 += (pg - pos) * (pg - pos);
    }
    dist.emplace_back(d2, j);
  }
  std::sort(dist.begin(), dist.end());
  std::vector<uint16_t> out{0};
  int have = 1, last = dist[0].first;
  for (const auto& [d2, j] : dist) {
    if (d2 > last) {
      if (have == d.nwant) break;
      last = d2;
      ++have;
    }
    out.push_back(static_cast<uint16_t>(j));
  }
  out[0] = static_cast<uint16_t>(out.size() - 1);
  return out;
}

}  // namespace bitsmith::iq
