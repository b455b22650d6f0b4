// Scale searches shared by ggml's k-quants and the imatrix paths of the legacy
// types: scalar reproductions of the static helpers in ggml/src/ggml-quants.c
// (ggml-org/ggml d99724f2), byte-identical to them.
//
// Bit-exactness rules kept by every function here (see tests/data/blocks/README.md):
//  * the same float operations, in the same order and the same types as ggml
//    (a C expression `w*x[i]*l` with int l is ((w * x[i]) * float(l)): every
//    product and sum below is written in exactly that association);
//  * no FMA: the project compiles with -ffp-contract=off, and nothing here may
//    use std::fma;
//  * integer levels go through ggml's nearest_int bit trick (ties to even), and
//    into the same storage types (int8_t / uint8_t) as ggml, wrap-around included;
//  * a group whose largest magnitude is below kGroupMaxEps (ggml's GROUP_MAX_EPS)
//    is "all zero".
//
// These are the scalar oracles. The SIMD codecs (codecs/quant_k*.cc) run the same
// sequences with one sub-block per vector lane and are tested against them.
// All functions are header-only so that every codec inlines them; none allocates.
#pragma once

#include <cmath>    // std::fabs, std::sqrt
#include <cstdint>
#include <cstring>  // std::memcpy, std::memset

namespace bitsmith::quant {

// ggml's GROUP_MAX_EPS: a group with max |x| (or max x) below this is all zero.
inline constexpr float kGroupMaxEps = 1e-15f;

// ggml's nearest_int(): round to nearest, ties to even, by adding 1.5 * 2^23
// (12582912.f) so that the integer lands in the low mantissa bits. Valid for
// |x| <= 4194303 (2^22 - 1); outside that range ggml's result is the same
// garbage this function returns (both just read the mantissa bits), which some
// degenerate inputs (subnormal scales) really reach, so no assert here.
inline int NearestInt(float x) {
  const float biased = x + 12582912.f;  // 0x4B400000: exponent 2^23, bit 22 set
  int32_t bits;
  std::memcpy(&bits, &biased, sizeof bits);
  return (bits & 0x007FFFFF) - 0x00400000;
}

// ---------------------------------------------------------------------------
// make_qx_quants: symmetric levels in [-nmax, nmax-1], scale fitted by weighted
// least squares over 19 candidate inverse scales.
// ---------------------------------------------------------------------------

// ggml's `rmse_type` argument of make_qx_quants: which weight w_i the least-
// squares fit uses when no importance weights are given, and whether to search.
enum class QxFit : int8_t {
  kNoFit = 0,        // rmse_type 0: levels from -nmax/max, scale 1/iscale, no fit
  kXSquared = 1,     // rmse_type 1: w = x^2 (q6_k, q3_k); the one k-quants use
  kUnweighted = 2,   // rmse_type 2: w = 1
  kAbsX = 3,         // rmse_type 3: w = |x|
  kSqrtAbsX = 4,     // rmse_type 4: w = sqrt|x|
};

struct QxSearch {
  int nmax;               // levels are stored as l + nmax in [0, 2*nmax-1]
  QxFit fit = QxFit::kXSquared;
  bool return_early = false;  // ggml's negative rmse_type: one fit, no 19-step search
};

namespace detail {
inline float QxWeight(QxFit fit, const float* qw, int i, float x) {
  if (qw != nullptr) return qw[i];
  switch (fit) {
    case QxFit::kXSquared: return x * x;
    case QxFit::kUnweighted: return 1.f;
    case QxFit::kAbsX: return std::fabs(x);
    default: return std::sqrt(std::fabs(x));
  }
}
inline int ClampSym(int l, int nmax) { return l < -nmax ? -nmax : (l > nmax - 1 ? nmax - 1 : l); }
}  // namespace detail

// Reproduces ggml make_qx_quants(n, nmax, x, L, rmse_type, qw). Writes n levels
// L[i] = l + nmax and returns the scale d (value ~ d * (L[i] - nmax)).
// `qw` (optional) are the per-element importance weights; when null the weight
// comes from `search.fit`. Steps, in ggml's order:
//  1. max = the element of largest |x| (first one on ties); below kGroupMaxEps:
//     all levels 0, scale 0.
//  2. iscale = -nmax / max; kNoFit stops here with scale 1/iscale.
//  3. Levels for iscale, sums sumlx = sum (w*x)*l and suml2 = sum (w*l)*l,
//     scale = sumlx/suml2 (best = scale*sumlx). return_early stops here.
//  4. For is = -9..9 (not 0): iscale = -(nmax + 0.1*is)/max; keep the levels and
//     scale when sumlx^2 > best*suml2 (strictly: the first of equal fits wins).
inline float MakeQxQuants(int n, const float* x, int8_t* L, const QxSearch& search,
                          const float* qw = nullptr) {
  const int nmax = search.nmax;
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {  // 1.
    const float ax = std::fabs(x[i]);
    if (ax > amax) { amax = ax; max = x[i]; }
  }
  if (amax < kGroupMaxEps) {
    std::memset(L, 0, static_cast<size_t>(n));
    return 0.f;
  }
  float iscale = static_cast<float>(-nmax) / max;  // 2.
  if (search.fit == QxFit::kNoFit) {
    for (int i = 0; i < n; ++i)
      L[i] = static_cast<int8_t>(nmax + detail::ClampSym(NearestInt(iscale * x[i]), nmax));
    return 1 / iscale;
  }
  float sumlx = 0, suml2 = 0;  // 3.
  for (int i = 0; i < n; ++i) {
    const int l = detail::ClampSym(NearestInt(iscale * x[i]), nmax);
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = detail::QxWeight(search.fit, qw, i, x[i]);
    sumlx += w * x[i] * static_cast<float>(l);
    suml2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
  float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
  if (search.return_early) return suml2 > 0 ? 0.5f * (scale + 1 / iscale) : 1 / iscale;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {  // 4.
    if (is == 0) continue;
    iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = detail::ClampSym(NearestInt(iscale * x[i]), nmax);
      const float w = detail::QxWeight(search.fit, qw, i, x[i]);
      sumlx += w * x[i] * static_cast<float>(l);
      suml2 += w * static_cast<float>(l) * static_cast<float>(l);
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i)
        L[i] = static_cast<int8_t>(nmax + detail::ClampSym(NearestInt(iscale * x[i]), nmax));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// ---------------------------------------------------------------------------
// make_q3_quants: q3_k's plain path. Symmetric levels in [-nmax, nmax-1] with
// w = x^2, refined one element at a time (coordinate descent).
// ---------------------------------------------------------------------------

// Reproduces ggml make_q3_quants(n, nmax, x, L, do_rmse). Writes L[i] = l + nmax
// and returns the scale. Steps:
//  1. max = element of largest |x|; below kGroupMaxEps: L = 0 (note: 0, not
//     nmax, exactly as ggml) and scale 0.
//  2. iscale = -nmax/max; without do_rmse: levels and 1/iscale.
//  3. Levels, sumlx = sum (w*x)*l, suml2 = sum (w*l)*l with w = x*x.
//  4. Up to 5 passes over i: drop element i from the sums; if the rest still
//     correlates (slx > 0), try new_l = nearest(x*sl2/slx) and keep it when it
//     raises slx^2/sl2 (compared as slx*slx*suml2 > sumlx*sumlx*sl2). Stop after
//     a pass without changes.
//  5. Levels += nmax, scale = sumlx/suml2.
inline float MakeQ3Quants(int n, int nmax, const float* x, int8_t* L, bool do_rmse) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {  // 1.
    const float ax = std::fabs(x[i]);
    if (ax > amax) { amax = ax; max = x[i]; }
  }
  if (amax < kGroupMaxEps) {
    std::memset(L, 0, static_cast<size_t>(n));
    return 0.f;
  }
  const float iscale = static_cast<float>(-nmax) / max;  // 2.
  if (!do_rmse) {
    for (int i = 0; i < n; ++i)
      L[i] = static_cast<int8_t>(detail::ClampSym(NearestInt(iscale * x[i]), nmax) + nmax);
    return 1 / iscale;
  }
  float sumlx = 0, suml2 = 0;  // 3.
  for (int i = 0; i < n; ++i) {
    const int l = detail::ClampSym(NearestInt(iscale * x[i]), nmax);
    L[i] = static_cast<int8_t>(l);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * static_cast<float>(l);
    suml2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
  for (int itry = 0; itry < 5; ++itry) {  // 4.
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      const float li = static_cast<float>(L[i]);
      float slx = sumlx - w * x[i] * li;
      if (slx > 0) {
        float sl2 = suml2 - w * li * li;
        const int new_l = detail::ClampSym(NearestInt(x[i] * sl2 / slx), nmax);
        if (new_l != L[i]) {
          const float nl = static_cast<float>(new_l);
          slx += w * x[i] * nl;
          sl2 += w * nl * nl;
          if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = static_cast<int8_t>(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++n_changed;
          }
        }
      }
    }
    if (n_changed == 0) break;
  }
  for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(L[i] + nmax);  // 5.
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

// ---------------------------------------------------------------------------
// make_qkx2_quants / make_qkx3_quants: asymmetric levels in [0, nmax] with a
// min <= 0, fitted by weighted least squares over nstep+1 candidate scales.
// ---------------------------------------------------------------------------

// How a candidate's error is measured (ggml's `use_mad`).
enum class ErrorMetric : uint8_t {
  kSquared,   // use_mad = false: sum w * diff^2
  kAbsolute,  // use_mad = true:  sum w * |diff|
};

// The search grid: candidate inverse scales (rmin + rdelta*is + nmax)/(max - min)
// for is = 0..nstep, plus the plain nmax/(max - min) start.
struct MinMaxSearch {
  int nmax;       // levels 0..nmax
  float rmin;     // first candidate offset from nmax
  float rdelta;   // step between candidates
  int nstep;      // candidates is = 0..nstep (nstep < 1: no search)
  ErrorMetric metric;
};

// The grids ggml's callers use (ggml-quants.c call sites).
inline constexpr MinMaxSearch kQ2KRefSearch{.nmax = 3, .rmin = -0.5f, .rdelta = 0.1f, .nstep = 15,
                                            .metric = ErrorMetric::kAbsolute};
inline constexpr MinMaxSearch kQ4KRefSearch{.nmax = 15, .rmin = -1.f, .rdelta = 0.1f, .nstep = 20,
                                            .metric = ErrorMetric::kSquared};
inline constexpr MinMaxSearch kQ5KRefSearch{.nmax = 31, .rmin = -0.5f, .rdelta = 0.1f, .nstep = 15,
                                            .metric = ErrorMetric::kSquared};
// make_qkx3_quants with imatrix weights: q2_k (nmax 3), q4_k / q4_1 (15), q5_k / q5_1 (31).
constexpr MinMaxSearch ImatrixMinMaxSearch(int nmax) {
  return {.nmax = nmax, .rmin = -0.9f, .rdelta = 0.05f, .nstep = 36,
          .metric = ErrorMetric::kSquared};
}

namespace detail {
// The body shared by make_qkx2_quants and make_qkx3_quants (identical float
// sequences; they differ only in the degenerate-range test and in qkx3's
// optional x^2 weights). `weight(i)` gives w_i. Returns the scale; *the_min = -min.
template <bool kQkx3, typename WeightFn>
inline float MinMaxFit(int n, const float* x, WeightFn weight, uint8_t* L, float* the_min,
                       uint8_t* Laux, const MinMaxSearch& s) {
  const int nmax = s.nmax;
  const bool use_mad = s.metric == ErrorMetric::kAbsolute;
  // 1. Range, sum of weights and weighted sum of x (sequential, from element 0).
  float min = x[0], max = x[0];
  float sum_w = weight(0);
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weight(i);
    sum_w += w;
    sum_x += w * x[i];
  }
  if (min > 0) min = 0;
  // 2. Degenerate range: qkx2 tests max == min, qkx3 max <= min (same for finite x).
  if (kQkx3 ? max <= min : max == min) {
    std::memset(L, 0, static_cast<size_t>(n));
    *the_min = -min;
    return 0.f;
  }
  // 3. Start: levels for iscale = nmax/(max-min), scale = 1/iscale, its error.
  float iscale = static_cast<float>(nmax) / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    const int l = NearestInt(iscale * (x[i] - min));
    L[i] = static_cast<uint8_t>(l < 0 ? 0 : (l > nmax ? nmax : l));
    float diff = scale * static_cast<float>(L[i]) + min - x[i];
    diff = use_mad ? std::fabs(diff) : diff * diff;
    best_error += weight(i) * diff;
  }
  if (s.nstep < 1) {
    *the_min = -min;
    return scale;
  }
  // 4. Candidates: levels, then the least-squares (scale, min) for those levels
  //    (min clamped to <= 0, refitting the scale alone), kept when the error drops.
  //    A kept candidate's min replaces `min`, so later candidates compute both
  //    (max - min) and x - min against it (ggml's behaviour; easy to miss).
  for (int is = 0; is <= s.nstep; ++is) {
    iscale = (s.rmin + s.rdelta * static_cast<float>(is) + static_cast<float>(nmax)) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      int l = NearestInt(iscale * (x[i] - min));
      l = l < 0 ? 0 : (l > nmax ? nmax : l);
      Laux[i] = static_cast<uint8_t>(l);
      const float w = weight(i);
      const float fl = static_cast<float>(l);
      sum_l += w * fl;
      sum_l2 += w * fl * fl;
      sum_xl += w * fl * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0;
      for (int i = 0; i < n; ++i) {
        float diff = this_scale * static_cast<float>(Laux[i]) + this_min - x[i];
        diff = use_mad ? std::fabs(diff) : diff * diff;
        cur_error += weight(i) * diff;
      }
      if (cur_error < best_error) {
        std::memcpy(L, Laux, static_cast<size_t>(n));
        best_error = cur_error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}
}  // namespace detail

// Reproduces ggml make_qkx2_quants(n, nmax, x, weights, L, the_min, Laux, rmin,
// rdelta, nstep, use_mad): the plain paths of q2_k, q4_k and q5_k. Writes levels
// L[i] in [0, nmax], sets *the_min = -min >= 0 (value ~ scale*L - the_min) and
// returns the scale. `Laux` is n bytes of scratch.
inline float MakeQkx2Quants(int n, const float* x, const float* weights, uint8_t* L,
                            float* the_min, uint8_t* Laux, const MinMaxSearch& search) {
  return detail::MinMaxFit<false>(n, x, [weights](int i) { return weights[i]; }, L, the_min, Laux,
                                  search);
}

// Reproduces ggml make_qkx3_quants(...): the imatrix paths of q2_k, q4_k, q5_k
// and of q4_1 / q5_1. Same as MakeQkx2Quants except that `weights` may be null
// (then w = x*x) and a range with max <= min is degenerate.
inline float MakeQkx3Quants(int n, const float* x, const float* weights, uint8_t* L,
                            float* the_min, uint8_t* Laux, const MinMaxSearch& search) {
  if (weights != nullptr)
    return detail::MinMaxFit<true>(n, x, [weights](int i) { return weights[i]; }, L, the_min,
                                   Laux, search);
  return detail::MinMaxFit<true>(n, x, [x](int i) { return x[i] * x[i]; }, L, the_min, Laux,
                                 search);
}

// ---------------------------------------------------------------------------
// make_qp_quants: non-negative levels in [0, nmax] for non-negative x (the
// sub-block scales and mins of q2_k/q4_k/q5_k's imatrix paths), weighted.
// ---------------------------------------------------------------------------

// Reproduces ggml make_qp_quants(n, nmax, x, L, quant_weights). Writes L[i]
// (uint8, ggml's wrap-around kept for the impossible negative case) and returns
// the scale. Steps:
//  1. max = largest x (not |x|); below kGroupMaxEps: L = 0, scale 0.
//  2. iscale = nmax/max; L = nearest(iscale*x); error sum w*diff*diff with
//     diff = x - (1/iscale)*L.
//  3. For is = -4..4 (not 0): iscale_is = (0.1*is + nmax)/max, levels capped at
//     nmax; keep iscale_is when its error is smaller.
//  4. Levels for the chosen iscale (capped at nmax), sumlx, suml2; then up to 5
//     coordinate-descent passes as in MakeQ3Quants (here requiring slx > 0 and
//     sl2 > 0 before trying).
//  5. scale = sumlx/suml2 (0 when suml2 == 0).
inline float MakeQpQuants(int n, int nmax, const float* x, uint8_t* L, const float* quant_weights) {
  float max = 0;
  for (int i = 0; i < n; ++i) max = max > x[i] ? max : x[i];  // 1. (ggml's MAX macro)
  if (max < kGroupMaxEps) {
    std::memset(L, 0, static_cast<size_t>(n));
    return 0.f;
  }
  float iscale = static_cast<float>(nmax) / max;  // 2.
  for (int i = 0; i < n; ++i) L[i] = static_cast<uint8_t>(NearestInt(iscale * x[i]));
  const float scale = 1 / iscale;
  float best_mse = 0;
  for (int i = 0; i < n; ++i) {
    const float diff = x[i] - scale * static_cast<float>(L[i]);
    best_mse += quant_weights[i] * diff * diff;
  }
  for (int is = -4; is <= 4; ++is) {  // 3.
    if (is == 0) continue;
    const float iscale_is = (0.1f * static_cast<float>(is) + static_cast<float>(nmax)) / max;
    const float scale_is = 1 / iscale_is;
    float mse = 0;
    for (int i = 0; i < n; ++i) {
      int l = NearestInt(iscale_is * x[i]);
      l = l < nmax ? l : nmax;
      const float diff = x[i] - scale_is * static_cast<float>(l);
      mse += quant_weights[i] * diff * diff;
    }
    if (mse < best_mse) {
      best_mse = mse;
      iscale = iscale_is;
    }
  }
  float sumlx = 0, suml2 = 0;  // 4.
  for (int i = 0; i < n; ++i) {
    int l = NearestInt(iscale * x[i]);
    l = l < nmax ? l : nmax;
    L[i] = static_cast<uint8_t>(l);
    const float w = quant_weights[i];
    sumlx += w * x[i] * static_cast<float>(l);
    suml2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
  for (int itry = 0; itry < 5; ++itry) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = quant_weights[i];
      const float li = static_cast<float>(L[i]);
      float slx = sumlx - w * x[i] * li;
      float sl2 = suml2 - w * li * li;
      if (slx > 0 && sl2 > 0) {
        int new_l = NearestInt(x[i] * sl2 / slx);
        new_l = new_l < nmax ? new_l : nmax;
        if (new_l != L[i]) {
          const float nl = static_cast<float>(new_l);
          slx += w * x[i] * nl;
          sl2 += w * nl * nl;
          if (slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = static_cast<uint8_t>(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++n_changed;
          }
        }
      }
    }
    if (n_changed == 0) break;
  }
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;  // 5.
}

}  // namespace bitsmith::quant
