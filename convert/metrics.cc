// Error metrics: exact accumulation of per-segment double sums (see metrics.h).
#include "convert/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include <nlohmann/json.hpp>

namespace bitsmith {

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
// double, then added exactly. One fused pass keeps kLanes independent partial
// sums per quantity (lane k takes elements k, k + kLanes, ...), which the
// compiler vectorises (SLP) without reassociating anything: the order of every
// addition is fixed by the code, so the partial sums depend only on the
// segment's values and length. (Eigen reductions were measured first: one
// pass per quantity, each converting f32 to double again, ran at less than
// half this speed.) A NaN e makes Σe² NaN, which marks max|e| NaN below.
namespace {

// The partial sums of one segment, kLanes lanes per quantity (see AddSegment).
struct SegmentSums {
  static constexpr int kLanes = 8;
  double se[kLanes] = {}, sx[kLanes] = {}, sxy[kLanes] = {}, sy[kLanes] = {}, mx[kLanes] = {};
  double swe[kLanes] = {}, swx[kLanes] = {};

  template <bool kWeighted>
  void Run(const float* x, const float* y, const float* w, int64_t len) {
    const int64_t body = len - len % kLanes;
    for (int64_t i = 0; i < body; i += kLanes)
      for (int k = 0; k < kLanes; ++k) Element<kWeighted>(k, x[i + k], y[i + k], w, i + k);
    for (int64_t i = body; i < len; ++i)  // the tail goes to lanes 0..len % kLanes
      Element<kWeighted>(static_cast<int>(i - body), x[i], y[i], w, i);
  }

  template <bool kWeighted>
  void Element(int k, double xd, double yd, const float* w, int64_t i) {
    const double e = yd - xd;  // e = x̂ − x, exact for most pairs, always deterministic
    const double e2 = e * e, x2 = xd * xd;
    se[k] += e2;
    sx[k] += x2;
    sxy[k] += xd * yd;
    sy[k] += yd * yd;
    const double a = std::fabs(e);
    mx[k] = mx[k] < a ? a : mx[k];
    if constexpr (kWeighted) {
      const double wd = w[i];
      swe[k] += wd * e2;
      swx[k] += wd * x2;
    }
  }
};

}  // namespace

void ErrorAccumulator::AddSegment(const float* x, const float* y, const float* w, int64_t len) {
  SegmentSums s;
  if (w == nullptr) {
    s.Run<false>(x, y, nullptr, len);
  } else {
    s.Run<true>(x, y, w, len);
    we2_.Add(SumLanes(s.swe));
    wx2_.Add(SumLanes(s.swx));
  }
  const double sum_e2 = SumLanes(s.se);
  e2_.Add(sum_e2);
  x2_.Add(SumLanes(s.sx));
  xy_.Add(SumLanes(s.sxy));
  y2_.Add(SumLanes(s.sy));
  double seg_max = 0;
  for (double m : s.mx) seg_max = std::max(seg_max, m);
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
