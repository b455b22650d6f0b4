// The search structures of ggml's grid i-quant quantizers (internal to codecs/).
//
// Each grid i-quant quantizes groups of 8 (IQ1, IQ2) or 4 (IQ3) values to a point
// of a fixed lattice subset (the "grid"). ggml's iq2xs_init_impl / iq3xs_init_impl
// build, per lattice:
//   * the grid as lattice coordinates 2l+1 (or, for IQ1, levels l in 0..2);
//   * a map from every level vector u = sum l_k * 2^(bits*k) to its grid index, or,
//     for a point off the grid, to a neighbour list;
//   * the neighbour lists: all grid points whose squared distance to u is among the
//     `nwant` smallest distinct distances, ordered by (distance, grid index).
// The quantizers search those lists in order with a strict `<`, so the lists must
// be the very same for the bytes to be the same.
//
// ggml sorts 43,692 x 2048 distances with qsort, twice (10-21 s for IQ1_S). Here:
// distances are small integers (sum of squared level differences, 0..196), so a
// counting pass finds the nwant smallest distinct ones and a second pass emits the
// points in index order per distance: the same lists, in ~10-40 ms per lattice.
// Only level vectors the quantizers can form get lists (levels 0..2 for the 2-bit
// lattices, 0..7 for the 3-bit ones); ggml also builds lists for 2-bit vectors
// containing level 3, which its quantizers never look up.
#pragma once

#include <cstdint>
#include <vector>

namespace bitsmith::iq {

enum class LatticeId : uint8_t {
  kIQ2XXS,  // kgrid_2bit_256, 8 coords, nwant 2
  kIQ2XS,   // kgrid_2bit_512, nwant 2
  kIQ2S,    // kgrid_2bit_1024, nwant 1
  kIQ1S,    // kgrid_1bit_2048 (IQ1_S and IQ1_M), nwant 3
  kIQ3XXS,  // kgrid_256 (3-bit), 4 coords, nwant 2
  kIQ3S,    // kgrid_512 (3-bit), 4 coords, nwant 3
};
inline constexpr int kNumLattices = 6;

struct Lattice {
  int dim = 0;         // coordinates per grid point: 8 or 4
  int bits = 0;        // bits per level in a map index: 2 or 3
  int max_level = 0;   // largest level a quantizer forms: 2 or 7
  int grid_size = 0;   // 256 .. 2048
  int nwant = 0;       // distinct distances kept in a neighbour list
  // pos[dim*i + k] = 2*l_k + 1, the lattice coordinate of grid point i (ggml's
  // kgrid_q2xs / kgrid_q3xs bytes); level(i, k) = (pos - 1) / 2.
  std::vector<int8_t> pos;
  // Indexed by u = sum l_k << (bits*k): >= 0 the grid index of u; < 0 -(offset+1)
  // of u's neighbour list in `neighbours` (for u with all levels <= max_level);
  // INT32_MIN for u that no quantizer forms.
  std::vector<int32_t> map;
  // Lists back to back: count, then `count` grid indices.
  std::vector<uint16_t> neighbours;

  // The neighbour list of off-grid u: {count, indices...}.
  const uint16_t* NeighboursOf(uint32_t u) const { return neighbours.data() - map[u] - 1; }
  int Level(int i, int k) const { return (pos[dim * i + k] - 1) / 2; }
};

// The tables of one lattice, built on first use (thread-safe, std::call_once) and
// kept for the life of the process (~0.1-0.7 MB each).
const Lattice& GetLattice(LatticeId id);

// Builds the tables afresh, uncached (for tests and the init benchmark).
Lattice BuildLattice(LatticeId id);

// For tests: ggml's construction, literally: for level vector u, sort all
// (distance, index) pairs and keep the nwant smallest distinct distances. Returns
// {count, indices...}, or {} when u is on the grid.
std::vector<uint16_t> BruteForceNeighbours(LatticeId id, uint32_t u);

// The neighbour lists again, laid out for scans that put one neighbour per SIMD
// lane (codecs/quant_iq_grid_simd.cc). The list whose header is neighbours[h]
// (count c) owns coord[dim*h, dim*(h+c+1)): `dim` rows of c+1 bytes, row k
// holding the lattice coordinates 2l+1 (Lattice::pos) of its c neighbours at
// coordinate k (the last byte of a row is unused). Vector loads may run past a
// row into the next one (lanes a scan masks off); `coord` is padded for that.
struct NeighbourChunks {
  static constexpr int kChunk = 16;  // neighbours a scan loads per row at most
  std::vector<int8_t> coord;
  // code[i]: the map index u = sum l_k << (bits*k) of grid point i.
  std::vector<int32_t> code;
};

// Built on first use from GetLattice(id) (thread-safe, cached; a few ms).
const NeighbourChunks& GetNeighbourChunks(LatticeId id);

// Seconds the last construction of `id` took (0 before the first GetLattice).
double LatticeBuildSeconds(LatticeId id);

}  // namespace bitsmith::iq
