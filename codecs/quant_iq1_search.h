// IQ1_S / IQ1_M quantizer drivers with a pluggable split search (internal to
// codecs/). The drivers are ggml d99724f2's quantize_row_iq1_{s,m}_impl
// (codecs/quant_iq_iq1_ref.cc) with step "exhaustive split search" passed in:
// the scalar oracle passes the scalar search, the SIMD path (codecs/quant_iq1_simd.cc)
// a vectorised one that returns the same split, scale and shift bit for bit.
#pragma once

#include <cstdint>

namespace bitsmith::iq {

// Result of one split search: levels -1 | 0 | +1 for the sorted values [0, i1) |
// [i1, i2) | [i2, n), the scale sumqx/sumq2 of the first strict maximum, and the
// shift (IQ1_S: +1 / -1; IQ1_M: code k = 0..3). i1 < 0: no candidate accepted.
struct IQ1Split {
  float scale = 0;
  int i1 = -1, i2 = -1, shift = 0;
};

// IQ1_S: the 8 sub-blocks (32 values) of a super-block. For each active one,
// sumx / sumw are the 33 prefix sums over the sorted values (sumx[0] = 0) and
// `max` = max |x| is the initial scale; candidates (i1, i2), i1 <= i2, then shift
// +delta before -delta. Inactive sub-blocks are ignored (result not read).
inline constexpr int kIQ1SPrefixPad = 33 + 16;
struct IQ1SSub {
  float sumx[kIQ1SPrefixPad] = {}, sumw[kIQ1SPrefixPad] = {};
  float max = 0;
  bool active = false;
};
using IQ1SSearchFn = void (*)(const IQ1SSub* subs, IQ1Split* out);  // 8 each

// IQ1_M: the 16 half-sub-blocks (16 values) of a super-block. For each active one
// the search considers every split (i1, i2), i1 <= i2 <= 16, and code k = 0..3
// in that order, each candidate's sums accumulated over the sorted values in
// order (see QuantizeIQ1MRef). Inactive halves (max |x| below ggml's epsilon)
// are ignored (their result is not read).
struct IQ1MHalf {
  const float* xb = nullptr;  // the 16 values
  float weight[16] = {};
  int idx[16] = {};  // stable ascending order of xb
  float max = 0;
  bool active = false;
};
using IQ1MSearchFn = void (*)(const IQ1MHalf* halves, IQ1Split* out);  // 16 each

// The exchangeable steps of both drivers. All inputs are finite (QuantizeRows
// refuses the others); sums may still overflow to inf.
struct IQ1Hooks {
  // Stable ascending order of n (16 or 32) values: idx[j] = index of the j-th
  // smallest, equal values in index order (glibc qsort = merge sort here).
  void (*sort)(const float* xb, int n, int* idx);
  // ggml's iq1_find_best_neighbour2: of the neighbour list nb = {count, g1, g2, ...},
  // the grid point minimising sum_i w[i]*(scale*xx[level_i] - x[i])^2 (each sum in
  // i order), first strict minimum below FLT_MAX; nb[1] when none is.
  int (*neighbour)(const uint16_t* nb, const float* xval, const float* weight, float scale, const float* xx);
  IQ1SSearchFn search_s;
  IQ1MSearchFn search_m;
};

void QuantizeIQ1SWith(const IQ1Hooks& hooks, const float* x, void* y, int64_t nrows, int64_t n_per_row,
                      const float* imatrix);
void QuantizeIQ1MWith(const IQ1Hooks& hooks, const float* x, void* y, int64_t nrows, int64_t n_per_row,
                      const float* imatrix);

// The scalar steps of the oracles (d99724f2).
void SortIQ1Ref(const float* xb, int n, int* idx);
int NeighbourIQ1Ref(const uint16_t* nb, const float* xval, const float* weight, float scale, const float* xx);
void SearchIQ1SRef(const IQ1SSub* subs, IQ1Split* out);
void SearchIQ1MRef(const IQ1MHalf* halves, IQ1Split* out);
// NeighbourIQ1Ref's scan alone: -1 when no distance is below FLT_MAX. That is the
// one case where ggml's iq1_find_best_neighbour2 is undefined (it then scans the
// whole grid reading xval[i] for grid index i < 2048, past the 8 values) and
// bitsmith defines the answer as nb[1]: the differential tests use it to find
// the blocks where ggml's bytes are not comparable.
int NeighbourIQ1Scan(const uint16_t* nb, const float* xval, const float* weight, float scale, const float* xx);
// IQ1_M's split search as llama.cpp computes it since PR #28706 (prefix sums;
// QuantizeIQ1MLlamaCpp28706Ref's step), for the differential tests' hooks.
void SearchIQ1MLlamaCpp28706(const IQ1MHalf* halves, IQ1Split* out);

// The levels (0..2) of IQ1 grid point g (2048 points), 2 bits per coordinate
// (coordinate i in bits 2i..2i+1), from the lattice tables.
const uint32_t* IQ1LevelCodes();

}  // namespace bitsmith::iq
