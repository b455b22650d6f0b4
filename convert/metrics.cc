// Error metrics: exact accumulation of per-segment double sums (see metrics.h).
//
// Layout after hwy/examples/skeleton.cc: the per-target segment kernel
// (SegmentLanesSimd) is compiled once per Highway target above HWY_ONCE; the rest
// (scalar reference kernel, exact sums, metrics, JSON) is compiled once below.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "convert/metrics.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

// ---- Per-target segment kernel ---------------------------------------------
//
// Lane layout shared with the scalar reference (SegmentLanesRef below): 8 lanes
// per quantity; lane k accumulates elements k, k + 8, k + 16, ... of the body
// (the first len − len % 8 elements), in that order. A target with N double
// lanes (N = 1, 2, 4 or 8: always a divisor of 8) keeps 8 / N vectors per
// quantity, vector a holding lanes a·N .. a·N + N − 1, so every lane sees the
// same additions in the same order on every target: the results are identical
// to the reference bit for bit. Mul and Add stay separate (no MulAdd: the
// reference rounds twice, and -ffp-contract=off keeps the compiler from fusing).
// Output: out[q·8 + k] for the quantities q = 0..6 (Σe², Σx², Σx·x̂, Σx̂², max|e|,
// Σw·e², Σw·x²); the weighted ones only when w != nullptr.
HWY_BEFORE_NAMESPACE();
namespace bitsmith {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

template <bool kWeighted>
HWY_INLINE void SegmentLanesImpl(const float* HWY_RESTRICT x, const float* HWY_RESTRICT y,
                                 const float* HWY_RESTRICT w, int64_t body,
                                 double* HWY_RESTRICT out) {
  const hn::CappedTag<double, 8> d;
  const hn::Rebind<float, decltype(d)> df;  // N floats, promoted to N doubles
  using V = hn::Vec<decltype(d)>;
  const size_t N = hn::Lanes(d);
  const size_t nv = 8 / N;  // vectors per quantity
  V se[8], sx[8], sxy[8], sy[8], mx[8], swe[8], swx[8];
  for (size_t a = 0; a < nv; ++a)
    se[a] = sx[a] = sxy[a] = sy[a] = mx[a] = swe[a] = swx[a] = hn::Zero(d);
  for (int64_t i = 0; i < body; i += 8) {
    for (size_t a = 0; a < nv; ++a) {
      const V xd = hn::PromoteTo(d, hn::LoadU(df, x + i + a * N));
      const V yd = hn::PromoteTo(d, hn::LoadU(df, y + i + a * N));
      const V e = hn::Sub(yd, xd);
      const V e2 = hn::Mul(e, e);
      const V x2 = hn::Mul(xd, xd);
      se[a] = hn::Add(se[a], e2);
      sx[a] = hn::Add(sx[a], x2);
      sxy[a] = hn::Add(sxy[a], hn::Mul(xd, yd));
      sy[a] = hn::Add(sy[a], hn::Mul(yd, yd));
      mx[a] = hn::Max(mx[a], hn::Abs(e));  // NaN handled by the caller (via Σe²)
      if constexpr (kWeighted) {
        const V wd = hn::PromoteTo(d, hn::LoadU(df, w + i + a * N));
        swe[a] = hn::Add(swe[a], hn::Mul(wd, e2));
        swx[a] = hn::Add(swx[a], hn::Mul(wd, x2));
      }
    }
  }
  for (size_t a = 0; a < nv; ++a) {
    hn::StoreU(se[a], d, out + 0 * 8 + a * N);
    hn::StoreU(sx[a], d, out + 1 * 8 + a * N);
    hn::StoreU(sxy[a], d, out + 2 * 8 + a * N);
    hn::StoreU(sy[a], d, out + 3 * 8 + a * N);
    hn::StoreU(mx[a], d, out + 4 * 8 + a * N);
    if constexpr (kWeighted) {
      hn::StoreU(swe[a], d, out + 5 * 8 + a * N);
      hn::StoreU(swx[a], d, out + 6 * 8 + a * N);
    }
  }
}

// body: a multiple of 8; out: 7 × 8 doubles.
void SegmentLanesSimd(const float* x, const float* y, const float* w, int64_t body, double* out) {
  if (w == nullptr) {
    SegmentLanesImpl<false>(x, y, nullptr, body, out);
  } else {
    SegmentLanesImpl<true>(x, y, w, body, out);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace bitsmith
HWY_AFTER_NAMESPACE();

#if HWY_ONCE

#include "convert/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include <nlohmann/json.hpp>

namespace bitsmith {

HWY_EXPORT(SegmentLanesSimd);

// ---- ExactSum ---------------------------------------------------------------

// Grow-Expansion (Shewchuk 1997, Theorem 10 with Two-Sum): adding v to the
// non-overlapping partials p[0..m) (increasing magnitude) gives new partials
// whose exact sum is the old exact sum plus v. Each step splits x + p[i] into
// its rounded sum hi and the exact rounding error lo (Two-Sum with the larger
// operand first, Dekker's Fast-Two-Sum, which needs |x| >= |y|). Zero errors are
// dropped so the list stays short. Requires IEEE double arithmetic without
// extended precision or contraction (x86-64 SSE2 and -ffp-contract=off, set
// globally in CMakeLists.txt).
void ExactSum::Add(double v) {
  if (!std::isfinite(v)) {  // inf/NaN: kept apart, they dominate the result
    special_ += v;
    return;
  }
  double x = v;
  size_t kept = 0;
  for (size_t i = 0; i < partials_.size(); ++i) {
    double y = partials_[i];
    if (std::fabs(x) < std::fabs(y)) std::swap(x, y);
    const double hi = x + y;
    const double lo = y - (hi - x);
    if (lo != 0.0) partials_[kept++] = lo;
    x = hi;
  }
  partials_.resize(kept);
  if (x != 0.0) partials_.push_back(x);
}

void ExactSum::Merge(const ExactSum& other) {
  for (double p : other.partials_) Add(p);
  special_ += other.special_;
}

// Rounds the exact sum of the partials to nearest-even (the end of Python's
// math_fsum): sum from the largest partial down while the sum stays exact; at
// the first inexact step, hi is the rounded sum and lo its error. If lo is
// exactly half an ulp in a tie case, hi may be wrong by one ulp when the next
// lower partial has the sign of lo (it breaks the tie): then round away.
double ExactSum::Value() const {
  if (special_ != 0) return special_;  // inf, or NaN (NaN != 0 is true)
  size_t n = partials_.size();
  if (n == 0) return 0.0;
  double hi = partials_[--n];
  double lo = 0.0;
  while (n > 0) {
    const double x = hi;
    const double y = partials_[--n];
    hi = x + y;
    const double yr = hi - x;
    lo = y - yr;
    if (lo != 0.0) break;
  }
  if (n > 0 && ((lo < 0.0 && partials_[n - 1] < 0.0) || (lo > 0.0 && partials_[n - 1] > 0.0))) {
    const double y = lo * 2.0;
    const double x = hi + y;
    const double yr = x - hi;
    if (y == yr) hi = x;
  }
  return hi;
}

// ---- ErrorMetrics -----------------------------------------------------------

double ErrorMetrics::MseRel(bool use_imatrix) const {
  const double r = use_imatrix && imatrix_rel_rmse ? *imatrix_rel_rmse : rel_rmse;
  return r * r;
}

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// max(a, b), NaN if either is NaN (a NaN error must not be hidden).
double MaxPropagatingNan(double a, double b) {
  if (std::isnan(a)) return a;
  if (std::isnan(b)) return b;
  return std::max(a, b);
}

// Σ of 8 lane sums in a fixed pairwise order.
double SumLanes(const double (&v)[8]) {
  return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
}

// sqrt(num/den) with the documented 0/0 = 0 and num/0 = +inf rules.
double RelativeRoot(double num, double den) {
  if (num == 0) return 0.0;  // exact (also when den == 0)
  if (den == 0) return num > 0 ? kInf : num / den;  // NaN num stays NaN
  return std::sqrt(num / den);
}

}  // namespace

ErrorMetrics MetricsFromSums(const ErrorSums& s) {
  ErrorMetrics m;
  m.n = s.n;
  // 1. Absolute error: rmse = sqrt(Σe²/n) (not ggml's sqrt(Σe²)/n), max |e|.
  m.rmse = (s.n == 0 || s.sum_e2 == 0) ? 0.0 : std::sqrt(s.sum_e2 / static_cast<double>(s.n));
  m.max_abs_err = s.max_abs_e;
  // 2. Relative error and SNR: 0/0 = 0 (exact), e/0 = +inf.
  m.rel_rmse = RelativeRoot(s.sum_e2, s.sum_x2);
  m.snr_db = m.rel_rmse == 0 ? kInf : -20.0 * std::log10(m.rel_rmse);  // log10(inf) = inf
  // 3. Cosine similarity, with the zero-vector conventions of metrics.h.
  if (s.sum_x2 == 0 && s.sum_y2 == 0) {
    m.cosine = 1.0;
  } else if (s.sum_x2 == 0 || s.sum_y2 == 0) {
    m.cosine = 0.0;
  } else {
    const double c = s.sum_xy / (std::sqrt(s.sum_x2) * std::sqrt(s.sum_y2));
    m.cosine = std::isnan(c) ? c : std::clamp(c, -1.0, 1.0);
  }
  // 4. imatrix-weighted relative error, same 0/0 and e/0 rules as rel_rmse.
  if (s.weighted) m.imatrix_rel_rmse = RelativeRoot(s.sum_w_e2, s.sum_w_x2);
  return m;
}

// ---- ErrorAccumulator -------------------------------------------------------

// One segment (at most kSegmentElems values of one row): partial sums in
// double in the 8-lane layout described at the top of this file (SIMD kernel or
// the scalar reference below, identical bit for bit), then added exactly.
// (Eigen reductions were measured first: one pass per quantity, each
// converting f32 to double again, ran at less than half the speed of one fused
// pass.) A NaN e makes Σe² NaN, which marks max|e| NaN below.
namespace {

constexpr int kLanes = 8;
enum Quantity { kE2, kX2, kXY, kY2, kMax, kWE2, kWX2, kQuantities };

// The scalar reference of SegmentLanesSimd, also used for the tail (the last
// len % 8 elements go to lanes 0.. after the body, on every target).
template <bool kWeighted>
void SegmentLanesRef(const float* x, const float* y, const float* w, int64_t begin, int64_t end,
                     double (&out)[kQuantities][kLanes]) {
  for (int64_t i = begin; i < end; ++i) {
    const int k = static_cast<int>((i - begin) % kLanes);
    const double xd = x[i], yd = y[i], e = yd - xd;  // e = x̂ − x
    const double e2 = e * e, x2 = xd * xd;
    out[kE2][k] += e2;
    out[kX2][k] += x2;
    out[kXY][k] += xd * yd;
    out[kY2][k] += yd * yd;
    const double a = std::fabs(e);
    out[kMax][k] = out[kMax][k] < a ? a : out[kMax][k];
    if constexpr (kWeighted) {
      const double wd = w[i];
      out[kWE2][k] += wd * e2;
      out[kWX2][k] += wd * x2;
    }
  }
}

}  // namespace

void ErrorAccumulator::AddSegment(const float* x, const float* y, const float* w, int64_t len) {
  double lanes[kQuantities][kLanes] = {};
  const int64_t body = len - len % kLanes;
  if (impl_ == Impl::kSimd && body > 0) {
    HWY_DYNAMIC_DISPATCH(SegmentLanesSimd)(x, y, w, body, &lanes[0][0]);
  } else if (w == nullptr) {
    SegmentLanesRef<false>(x, y, w, 0, body, lanes);
  } else {
    SegmentLanesRef<true>(x, y, w, 0, body, lanes);
  }
  if (w == nullptr) {
    SegmentLanesRef<false>(x, y, w, body, len, lanes);
  } else {
    SegmentLanesRef<true>(x, y, w, body, len, lanes);
    we2_.Add(SumLanes(lanes[kWE2]));
    wx2_.Add(SumLanes(lanes[kWX2]));
  }
  const double sum_e2 = SumLanes(lanes[kE2]);
  e2_.Add(sum_e2);
  x2_.Add(SumLanes(lanes[kX2]));
  xy_.Add(SumLanes(lanes[kXY]));
  y2_.Add(SumLanes(lanes[kY2]));
  double seg_max = 0;
  for (double m : lanes[kMax]) seg_max = std::max(seg_max, m);
  if (std::isnan(sum_e2)) seg_max = sum_e2;  // a NaN error: max|e| is NaN too
  max_abs_e_ = MaxPropagatingNan(max_abs_e_, seg_max);
  n_ += static_cast<uint64_t>(len);
}

Status ErrorAccumulator::Add(std::span<const float> x, std::span<const float> xhat,
                             int64_t n_per_row, std::span<const float> col_weights) {
  if (x.size() != xhat.size())
    return MakeError(ErrorKind::kInternal,
                     "error metrics: reference has {} values but reconstruction has {}", x.size(),
                     xhat.size());
  if (n_per_row <= 0 || x.size() % static_cast<uint64_t>(n_per_row) != 0)
    return MakeError(ErrorKind::kInternal,
                     "error metrics: {} values are not whole rows of n_per_row = {}", x.size(),
                     n_per_row);
  const bool weighted = !col_weights.empty();
  if (weighted && col_weights.size() != static_cast<uint64_t>(n_per_row))
    return MakeError(ErrorKind::kInternal,
                     "error metrics: {} column weights for rows of {} values (must be equal)",
                     col_weights.size(), n_per_row);
  if (x.empty()) return Status::Ok();
  if (weighted_ && *weighted_ != weighted)
    return MakeError(ErrorKind::kInternal,
                     "error metrics: {} data added to an accumulator holding {} data",
                     weighted ? "weighted" : "unweighted", *weighted_ ? "weighted" : "unweighted");
  weighted_ = weighted;
  // Rows, then segments of kSegmentElems starting at each row's first column.
  const size_t rows = x.size() / static_cast<size_t>(n_per_row);
  for (size_t r = 0; r < rows; ++r) {
    const size_t base = r * static_cast<size_t>(n_per_row);
    for (int64_t c = 0; c < n_per_row; c += kSegmentElems) {
      const int64_t len = std::min(kSegmentElems, n_per_row - c);
      AddSegment(x.data() + base + c, xhat.data() + base + c,
                 weighted ? col_weights.data() + c : nullptr, len);
    }
  }
  return Status::Ok();
}

Status ErrorAccumulator::Merge(const ErrorAccumulator& other) {
  if (other.n_ == 0) return Status::Ok();
  if (weighted_ && other.weighted_ && *weighted_ != *other.weighted_)
    return MakeError(ErrorKind::kInternal,
                     "error metrics: cannot merge weighted and unweighted accumulators");
  if (!weighted_) weighted_ = other.weighted_;
  n_ += other.n_;
  e2_.Merge(other.e2_);
  x2_.Merge(other.x2_);
  xy_.Merge(other.xy_);
  y2_.Merge(other.y2_);
  we2_.Merge(other.we2_);
  wx2_.Merge(other.wx2_);
  max_abs_e_ = MaxPropagatingNan(max_abs_e_, other.max_abs_e_);
  return Status::Ok();
}

ErrorSums ErrorAccumulator::Sums() const {
  ErrorSums s;
  s.n = n_;
  s.sum_e2 = e2_.Value();
  s.sum_x2 = x2_.Value();
  s.sum_xy = xy_.Value();
  s.sum_y2 = y2_.Value();
  s.max_abs_e = max_abs_e_;
  s.weighted = weighted_.value_or(false);
  if (s.weighted) {
    s.sum_w_e2 = we2_.Value();
    s.sum_w_x2 = wx2_.Value();
  }
  return s;
}

ErrorMetrics ErrorAccumulator::Finish() const { return MetricsFromSums(Sums()); }

// ---- JSON -------------------------------------------------------------------

namespace {

nlohmann::json FiniteOrNull(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

}  // namespace

nlohmann::json MetricsToJson(const ErrorMetrics& m) {
  return nlohmann::json{
      {"rmse", FiniteOrNull(m.rmse)},
      {"rel_rmse", FiniteOrNull(m.rel_rmse)},
      {"snr_db", FiniteOrNull(m.snr_db)},
      {"max_abs_err", FiniteOrNull(m.max_abs_err)},
      {"cosine", FiniteOrNull(m.cosine)},
      {"imatrix_rel_rmse",
       m.imatrix_rel_rmse ? FiniteOrNull(*m.imatrix_rel_rmse) : nlohmann::json(nullptr)},
  };
}

Result<ErrorMetrics> MetricsFromJson(const nlohmann::json& j) {
  if (!j.is_object())
    return MakeError(ErrorKind::kBadInput, "metrics: expected a JSON object, found {}",
                     j.type_name());
  // A missing or null number: nullopt; anything else must be a number.
  auto get = [&](const char* key, std::optional<double>& out) -> Status {
    out.reset();
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return Status::Ok();
    if (!it->is_number())
      return MakeError(ErrorKind::kBadInput, "metrics: \"{}\" must be a number or null, found {}",
                       key, it->dump());
    out = it->get<double>();
    return Status::Ok();
  };
  std::optional<double> rmse, rel, snr, maxe, cosine, imat;
  BITSMITH_RETURN_IF_ERROR(get("rmse", rmse));
  BITSMITH_RETURN_IF_ERROR(get("rel_rmse", rel));
  BITSMITH_RETURN_IF_ERROR(get("snr_db", snr));
  BITSMITH_RETURN_IF_ERROR(get("max_abs_err", maxe));
  BITSMITH_RETURN_IF_ERROR(get("cosine", cosine));
  BITSMITH_RETURN_IF_ERROR(get("imatrix_rel_rmse", imat));
  if (!j.contains("rel_rmse"))
    return MakeError(ErrorKind::kBadInput, "metrics: missing \"rel_rmse\" in {}", j.dump());
  ErrorMetrics m;
  // null stands for a non-finite value: +inf for the errors, NaN for cosine.
  m.rmse = rmse.value_or(kInf);
  m.rel_rmse = rel.value_or(kInf);
  m.snr_db = snr ? *snr : (m.rel_rmse == 0 ? kInf : -kInf);
  m.max_abs_err = maxe.value_or(kInf);
  m.cosine = cosine.value_or(std::numeric_limits<double>::quiet_NaN());
  if (j.contains("imatrix_rel_rmse") && !j["imatrix_rel_rmse"].is_null()) m.imatrix_rel_rmse = imat;
  return m;
}

}  // namespace bitsmith

#endif  // HWY_ONCE
