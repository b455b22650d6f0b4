// Error metrics: definitions (hand-computed literals), a naive long-double
// oracle, exact summation, chunk/thread independence, edge cases, JSON.
#include "convert/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstring>  // std::memcmp
#include <iterator>  // std::size
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include <catch2/catch.hpp>
#include <hwy/targets.h>  // hwy::SupportedAndGeneratedTargets, SetSupportedTargetsForTest
#include <nlohmann/json.hpp>

#include "codecs/parallel.h"

namespace bitsmith {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

ErrorMetrics Measure(const std::vector<float>& x, const std::vector<float>& y, int64_t n_per_row,
                     const std::vector<float>& w = {}) {
  ErrorAccumulator acc;
  const Status st = acc.Add(x, y, n_per_row, w);
  REQUIRE(st.ok());
  return acc.Finish();
}

// The naive oracle: the metric definitions written out directly, in long double.
struct Naive {
  long double e2 = 0, x2 = 0, xy = 0, y2 = 0, we2 = 0, wx2 = 0, maxe = 0;
  uint64_t n = 0;
};
Naive NaiveSums(const std::vector<float>& x, const std::vector<float>& y, size_t cols,
                const std::vector<float>& w) {
  Naive s;
  for (size_t i = 0; i < x.size(); ++i) {
    const long double xi = x[i], yi = y[i], e = yi - xi;
    s.e2 += e * e;
    s.x2 += xi * xi;
    s.xy += xi * yi;
    s.y2 += yi * yi;
    s.maxe = std::max(s.maxe, std::fabs(e));
    if (!w.empty()) {
      s.we2 += w[i % cols] * e * e;
      s.wx2 += w[i % cols] * xi * xi;
    }
    ++s.n;
  }
  return s;
}

bool SameBits(double a, double b) {
  return std::memcmp(&a, &b, sizeof a) == 0;
}
bool SameSums(const ErrorSums& a, const ErrorSums& b) {
  return a.n == b.n && SameBits(a.sum_e2, b.sum_e2) && SameBits(a.sum_x2, b.sum_x2) &&
         SameBits(a.sum_xy, b.sum_xy) && SameBits(a.sum_y2, b.sum_y2) &&
         SameBits(a.max_abs_e, b.max_abs_e) && a.weighted == b.weighted &&
         SameBits(a.sum_w_e2, b.sum_w_e2) && SameBits(a.sum_w_x2, b.sum_w_x2);
}

// A tensor with a quantization-like error: x ~ N(0, 1) with outliers, x̂ = x
// rounded to a grid of step `step` (so e is bounded and correlated with x).
void MakeTensor(std::mt19937_64& rng, size_t rows, size_t cols, double step,
                std::vector<float>& x, std::vector<float>& y, std::vector<float>& w) {
  std::normal_distribution<float> nd(0.f, 1.f);
  std::uniform_real_distribution<float> ud(0.f, 4.f);
  x.resize(rows * cols);
  y.resize(rows * cols);
  w.resize(cols);
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = nd(rng) * (i % 97 == 0 ? 30.f : 1.f);
    y[i] = static_cast<float>(std::round(x[i] / step) * step);
  }
  for (auto& v : w) v = ud(rng);
}

TEST_CASE("metrics: hand-computed literals for x = {3, 4}, x^ = {3, 3}", "[metrics]") {
  // e = {0, -1}: Σe² = 1, n = 2, Σx² = 25, Σx·x̂ = 9 + 12 = 21, Σx̂² = 18.
  const ErrorMetrics m = Measure({3.f, 4.f}, {3.f, 3.f}, 2);
  CHECK(m.n == 2);
  CHECK(m.rmse == Approx(0.70710678118654752).epsilon(1e-15));    // sqrt(1/2)
  CHECK(m.rel_rmse == Approx(0.2).epsilon(1e-15));                 // sqrt(1/25)
  CHECK(m.snr_db == Approx(13.979400086720376).epsilon(1e-14));    // -20 log10(0.2)
  CHECK(m.max_abs_err == 1.0);
  CHECK(m.cosine == Approx(0.98994949366116653).epsilon(1e-15));   // 21 / (5 · sqrt(18))
  CHECK(!m.imatrix_rel_rmse.has_value());
  CHECK(m.MseRel(false) == Approx(0.04).epsilon(1e-15));
  CHECK(m.MseRel(true) == Approx(0.04).epsilon(1e-15));  // no weights: falls back

  // With column weights w = {1, 3}: Σ w e² = 3, Σ w x² = 9 + 48 = 57.
  const ErrorMetrics mw = Measure({3.f, 4.f}, {3.f, 3.f}, 2, {1.f, 3.f});
  REQUIRE(mw.imatrix_rel_rmse.has_value());
  CHECK(*mw.imatrix_rel_rmse == Approx(0.22941573387056177).epsilon(1e-15));  // sqrt(3/57)
  CHECK(mw.MseRel(true) == Approx(3.0 / 57.0).epsilon(1e-15));
  CHECK(mw.rel_rmse == m.rel_rmse);  // the weights change only the imatrix metric

  // Two rows of two columns: weights apply per column. x = {{3,4},{1,2}},
  // x̂ = {{3,3},{2,2}}: e = {{0,-1},{1,0}}. Σ w e² = 3·1 + 1·1 = 4,
  // Σ w x² = (9 + 3·16) + (1 + 3·4) = 70.
  const ErrorMetrics m2 = Measure({3.f, 4.f, 1.f, 2.f}, {3.f, 3.f, 2.f, 2.f}, 2, {1.f, 3.f});
  CHECK(*m2.imatrix_rel_rmse == Approx(std::sqrt(4.0 / 70.0)).epsilon(1e-15));
  CHECK(m2.rmse == Approx(std::sqrt(2.0 / 4.0)).epsilon(1e-15));
  CHECK(m2.rel_rmse == Approx(std::sqrt(2.0 / 30.0)).epsilon(1e-15));
}

TEST_CASE("metrics: rmse is the true RMSE, not ggml's array_rmse sqrt(sum)/n", "[metrics]") {
  // A constant error of 0.5 on 1000 values: RMSE 0.5 whatever n is. ggml's
  // tests/test-quantize-fns.cpp array_rmse would give sqrt(1000 · 0.25)/1000 = 0.0158.
  for (size_t n : {1u, 4u, 1000u, 5000u}) {
    std::vector<float> x(n, 1.f), y(n, 1.5f);
    const ErrorMetrics m = Measure(x, y, static_cast<int64_t>(n));
    INFO("n = " << n);
    CHECK(m.rmse == 0.5);
    CHECK(m.rel_rmse == 0.5);
    if (n > 1) CHECK(m.rmse != Approx(std::sqrt(0.25 * n) / n));
  }
}

TEST_CASE("metrics: match a naive long-double computation", "[metrics]") {
  std::mt19937_64 rng(1234);
  struct Shape { size_t rows, cols; };
  for (Shape sh : {Shape{1, 1}, Shape{1, 7}, Shape{3, 32}, Shape{5, 1023}, Shape{4, 1024},
                   Shape{3, 1025}, Shape{2, 4096 + 17}, Shape{17, 256}}) {
    for (double step : {0.5, 0.01}) {
      std::vector<float> x, y, w;
      MakeTensor(rng, sh.rows, sh.cols, step, x, y, w);
      const ErrorMetrics m = Measure(x, y, static_cast<int64_t>(sh.cols), w);
      const Naive s = NaiveSums(x, y, sh.cols, w);
      INFO("rows " << sh.rows << " cols " << sh.cols << " step " << step);
      CHECK(m.n == s.n);
      CHECK(m.rmse == Approx(static_cast<double>(std::sqrt(s.e2 / s.n))).epsilon(1e-13));
      CHECK(m.rel_rmse == Approx(static_cast<double>(std::sqrt(s.e2 / s.x2))).epsilon(1e-13));
      CHECK(m.snr_db ==
            Approx(static_cast<double>(-20 * std::log10(std::sqrt(s.e2 / s.x2)))).epsilon(1e-13));
      CHECK(m.max_abs_err == static_cast<double>(s.maxe));  // |x̂ − x| is exact in double here
      CHECK(m.cosine ==
            Approx(static_cast<double>(s.xy / std::sqrt(s.x2 * s.y2))).epsilon(1e-13));
      REQUIRE(m.imatrix_rel_rmse.has_value());
      CHECK(*m.imatrix_rel_rmse ==
            Approx(static_cast<double>(std::sqrt(s.we2 / s.wx2))).epsilon(1e-13));
    }
  }
}

TEST_CASE("metrics: result independent of chunking, merge order and thread count", "[metrics]") {
  std::mt19937_64 rng(99);
  const size_t rows = 64, cols = 1536;  // 1.5 segments per row
  std::vector<float> x, y, w;
  MakeTensor(rng, rows, cols, 0.03, x, y, w);
  for (bool weighted : {false, true}) {
    const std::vector<float> ww = weighted ? w : std::vector<float>{};
    ErrorAccumulator whole;
    REQUIRE(whole.Add(x, y, cols, ww).ok());
    const ErrorSums ref = whole.Sums();

    // Random chunkings into row ranges, each in its own accumulator, merged in a
    // random order.
    for (int trial = 0; trial < 20; ++trial) {
      std::vector<size_t> cuts{0, rows};
      std::uniform_int_distribution<size_t> cut(1, rows - 1);
      for (int k = 0; k < trial % 7; ++k) cuts.push_back(cut(rng));
      std::sort(cuts.begin(), cuts.end());
      std::vector<ErrorAccumulator> parts(cuts.size() - 1);
      for (size_t p = 0; p + 1 < cuts.size(); ++p) {
        const size_t b = cuts[p] * cols, n = (cuts[p + 1] - cuts[p]) * cols;
        REQUIRE(parts[p].Add(std::span(x).subspan(b, n), std::span(y).subspan(b, n), cols, ww).ok());
      }
      std::shuffle(parts.begin(), parts.end(), rng);
      ErrorAccumulator merged;
      for (const auto& p : parts) REQUIRE(merged.Merge(p).ok());
      INFO("trial " << trial << " weighted " << weighted << " parts " << parts.size());
      CHECK(SameSums(merged.Sums(), ref));
    }

    // ParallelFor with 1..4 threads: one accumulator per range, merged at the end.
    for (int threads = 1; threads <= 4; ++threads) {
      std::vector<ErrorAccumulator> per(rows);
      ParallelFor(rows, 3, threads, [&](size_t b, size_t e) {
        for (size_t r = b; r < e; ++r)
          REQUIRE(per[r].Add(std::span(x).subspan(r * cols, cols),
                             std::span(y).subspan(r * cols, cols), cols, ww).ok());
      });
      ErrorAccumulator merged;
      for (size_t r = rows; r-- > 0;) REQUIRE(merged.Merge(per[r]).ok());  // reverse order
      INFO("threads " << threads);
      CHECK(SameSums(merged.Sums(), ref));
    }
  }
}

TEST_CASE("metrics: SIMD sums equal the scalar reference bit for bit on every target",
          "[metrics]") {
  std::mt19937_64 rng(31);
  // Row lengths around the 8-lane body, the vector widths and the segment size.
  const size_t lens[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 63, 65, 1023, 1024, 1025, 2049, 3000};
  std::vector<std::vector<float>> xs, ys, ws;
  for (size_t cols : lens) {
    std::vector<float> x, y, w;
    MakeTensor(rng, 3, cols, 0.07, x, y, w);
    // Grid rounding makes e short (e² exact); give half the values a
    // reconstruction of another magnitude so e has 30+ significant bits and e²
    // rounds: a fused multiply-add on some target would then show.
    for (size_t i = 1; i < y.size(); i += 2) y[i] = x[i] * 1e-4f + 1e-7f * static_cast<float>(i);
    if (cols == 17) y[5] = std::numeric_limits<float>::quiet_NaN();  // NaN in the body
    if (cols == 9) y[8] = std::numeric_limits<float>::infinity();    // inf in the tail
    xs.push_back(x);
    ys.push_back(y);
    ws.push_back(w);
  }
  int targets = 0;
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    ++targets;
    for (size_t c = 0; c < std::size(lens); ++c) {
      for (bool weighted : {false, true}) {
        const std::vector<float> w = weighted ? ws[c] : std::vector<float>{};
        ErrorAccumulator simd(Impl::kSimd), ref(Impl::kReference);
        REQUIRE(simd.Add(xs[c], ys[c], static_cast<int64_t>(lens[c]), w).ok());
        REQUIRE(ref.Add(xs[c], ys[c], static_cast<int64_t>(lens[c]), w).ok());
        const ErrorSums a = simd.Sums(), b = ref.Sums();
        INFO("target " << hwy::TargetName(target) << " cols " << lens[c] << " weighted "
                       << weighted << " simd e2 " << a.sum_e2 << " ref e2 " << b.sum_e2);
        if (std::isnan(b.sum_e2)) {  // NaN payloads may differ; NaN-ness may not
          CHECK(std::isnan(a.sum_e2));
          CHECK(std::isnan(a.max_abs_e));
          CHECK(std::isnan(b.max_abs_e));
        } else {
          CHECK(SameSums(a, b));
        }
      }
    }
  }
  hwy::SetSupportedTargetsForTest(0);
  CHECK(targets >= 1);
}

TEST_CASE("metrics: edge cases", "[metrics]") {
  SECTION("empty accumulator reads as an exact reconstruction") {
    const ErrorMetrics m = ErrorAccumulator().Finish();
    CHECK(m.n == 0);
    CHECK(m.rmse == 0);
    CHECK(m.rel_rmse == 0);
    CHECK(m.snr_db == kInf);
    CHECK(m.max_abs_err == 0);
    CHECK(m.cosine == 1);
    CHECK(!m.imatrix_rel_rmse);
  }
  SECTION("exact reconstruction: snr +inf, cosine 1") {
    const ErrorMetrics m = Measure({1.f, -2.f, 3.f}, {1.f, -2.f, 3.f}, 3, {1.f, 1.f, 1.f});
    CHECK(m.rmse == 0);
    CHECK(m.rel_rmse == 0);
    CHECK(m.snr_db == kInf);
    CHECK(m.max_abs_err == 0);
    CHECK(m.cosine == 1.0);
    CHECK(*m.imatrix_rel_rmse == 0);
  }
  SECTION("all-zero x reproduced as zeros: 0/0 is 0, cosine 1") {
    const ErrorMetrics m = Measure({0.f, 0.f, -0.f}, {0.f, -0.f, 0.f}, 3, {2.f, 0.f, 1.f});
    CHECK(m.rel_rmse == 0);
    CHECK(m.snr_db == kInf);
    CHECK(m.cosine == 1.0);
    CHECK(*m.imatrix_rel_rmse == 0);
  }
  SECTION("all-zero x, non-zero reconstruction: rel_rmse +inf, snr -inf, cosine 0") {
    const ErrorMetrics m = Measure({0.f, 0.f}, {0.f, 0.5f}, 2, {1.f, 1.f});
    CHECK(m.rmse == Approx(std::sqrt(0.125)));
    CHECK(m.rel_rmse == kInf);
    CHECK(m.snr_db == -kInf);
    CHECK(m.cosine == 0.0);
    CHECK(*m.imatrix_rel_rmse == kInf);
    CHECK(m.MseRel(true) == kInf);
  }
  SECTION("zero reconstruction of non-zero x: rel_rmse 1, snr 0 dB, cosine 0") {
    const ErrorMetrics m = Measure({3.f, 4.f}, {0.f, 0.f}, 2);
    CHECK(m.rel_rmse == 1.0);
    CHECK(m.snr_db == 0.0);
    CHECK(m.cosine == 0.0);
    CHECK(m.max_abs_err == 4.0);
  }
  SECTION("weights zero where x is non-zero: weighted 0/0 = 0 or e/0 = inf") {
    // Column 0 carries all of x, weight 0; column 1 is zero in x.
    CHECK(*Measure({3.f, 0.f}, {2.f, 0.f}, 2, {0.f, 1.f}).imatrix_rel_rmse == 0.0);
    CHECK(*Measure({3.f, 0.f}, {2.f, 1.f}, 2, {0.f, 1.f}).imatrix_rel_rmse == kInf);
  }
  SECTION("x^ = -x: cosine exactly -1 (clamped), rel_rmse 2") {
    std::vector<float> x{0.1f, 0.7f, -0.3f, 1e-3f, 5.5f}, y;
    for (float v : x) y.push_back(-v);
    const ErrorMetrics m = Measure(x, y, 5);
    CHECK(m.cosine == -1.0);
    CHECK(m.rel_rmse == Approx(2.0).epsilon(1e-15));
    CHECK(m.snr_db == Approx(-6.0205999132796239).epsilon(1e-14));
  }
  SECTION("x^ = 2x: cosine 1 (never above), rel_rmse 1") {
    std::vector<float> x{0.1f, 0.7f, -0.3f, 1e-3f, 5.5f, 1e-20f, 3e20f}, y;
    for (float v : x) y.push_back(2 * v);
    const ErrorMetrics m = Measure(x, y, 7);
    CHECK(m.cosine == 1.0);
    CHECK(m.rel_rmse == 1.0);
  }
  SECTION("non-finite reconstruction propagates") {
    const float inf = std::numeric_limits<float>::infinity();
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const ErrorMetrics mi = Measure({1.f, 2.f}, {1.f, inf}, 2);
    CHECK(mi.rmse == kInf);
    CHECK(mi.max_abs_err == kInf);
    const ErrorMetrics mn = Measure({1.f, 2.f, 3.f}, {nan, 2.f, 30.f}, 3);
    CHECK(std::isnan(mn.rmse));
    CHECK(std::isnan(mn.max_abs_err));  // NaN wins over the finite 27
    // NaN survives a merge with a larger finite error, in either order.
    ErrorAccumulator a, b;
    REQUIRE(a.Add(std::vector<float>{1.f}, std::vector<float>{nan}, 1).ok());
    REQUIRE(b.Add(std::vector<float>{1.f}, std::vector<float>{100.f}, 1).ok());
    ErrorAccumulator ab = a, ba = b;
    REQUIRE(ab.Merge(b).ok());
    REQUIRE(ba.Merge(a).ok());
    CHECK(std::isnan(ab.Finish().max_abs_err));
    CHECK(std::isnan(ba.Finish().max_abs_err));
  }
  SECTION("subnormal and huge f32 values keep their precision in double") {
    const float tiny = std::numeric_limits<float>::denorm_min();
    const ErrorMetrics m = Measure({2 * tiny, 3e38f}, {3 * tiny, 3e38f}, 2);
    CHECK(m.max_abs_err == static_cast<double>(tiny));
    CHECK(m.rmse > 0);
    CHECK(m.rel_rmse > 0);
  }
}

TEST_CASE("metrics: caller errors are reported, not ignored", "[metrics]") {
  ErrorAccumulator acc;
  std::vector<float> a(6, 1.f), b(5, 1.f), w3(3, 1.f), w2(2, 1.f);
  CHECK(!acc.Add(a, b, 3).ok());                  // size mismatch
  CHECK(!acc.Add(a, a, 4).ok());                  // not whole rows
  CHECK(!acc.Add(a, a, 0).ok());                  // bad row length
  CHECK(!acc.Add(a, a, 3, w2).ok());              // wrong weight count
  REQUIRE(acc.Add(a, a, 3, w3).ok());
  const Status mixed = acc.Add(a, a, 3);          // unweighted into weighted
  REQUIRE(!mixed.ok());
  CHECK(mixed.error().message.find("unweighted") != std::string::npos);
  ErrorAccumulator plain;
  REQUIRE(plain.Add(a, a, 3).ok());
  CHECK(!acc.Merge(plain).ok());
  CHECK(acc.Merge(ErrorAccumulator()).ok());      // empty merges with anything
  ErrorAccumulator empty;
  CHECK(empty.Merge(acc).ok());
  CHECK(empty.Finish().imatrix_rel_rmse.has_value());
}

TEST_CASE("metrics: ExactSum is exact and order-independent", "[metrics]") {
  auto sum_of = [](const std::vector<double>& v) {
    ExactSum s;
    for (double d : v) s.Add(d);
    return s.Value();
  };
  CHECK(sum_of({1e100, 1.0, -1e100}) == 1.0);          // naive: 0
  CHECK(sum_of({1e-16, 1.0, 1e16}) == 10000000000000002.0);  // tie broken by 1e-16
  CHECK(sum_of({0.1, 0.2, 0.3, -0.6}) == Approx(2.7755575615628914e-17).epsilon(1e-15));
  CHECK(sum_of({}) == 0.0);
  CHECK(sum_of({1.0, kInf}) == kInf);
  CHECK(std::isnan(sum_of({kInf, -kInf})));

  // Random values spanning 80 binades, shuffled and split across merged parts:
  // always the same bits. Integers up to 2^40 sum exactly, compare with int64.
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> mant(-1.0, 1.0);
  std::uniform_int_distribution<int> ex(-40, 40);
  std::vector<double> v(2000);
  for (auto& d : v) d = std::ldexp(mant(rng), ex(rng));
  const double ref = sum_of(v);
  for (int t = 0; t < 30; ++t) {
    std::shuffle(v.begin(), v.end(), rng);
    ExactSum a, b, c;
    for (size_t i = 0; i < v.size(); ++i) (i % 3 == 0 ? a : i % 3 == 1 ? b : c).Add(v[i]);
    c.Merge(a);
    b.Merge(c);
    INFO("trial " << t);
    CHECK(SameBits(b.Value(), ref));
  }
  std::uniform_int_distribution<int64_t> id(-(int64_t{1} << 40), int64_t{1} << 40);
  std::vector<double> ints(5000);
  int64_t isum = 0;
  for (auto& d : ints) {
    const int64_t k = id(rng);
    isum += k;
    d = static_cast<double>(k);
  }
  CHECK(sum_of(ints) == static_cast<double>(isum));
}

TEST_CASE("metrics: JSON writes non-finite values as null and reads them back", "[metrics]") {
  const ErrorMetrics m = Measure({3.f, 4.f}, {3.f, 3.f}, 2, {1.f, 3.f});
  const nlohmann::json j = MetricsToJson(m);
  CHECK(j.size() == 6);
  CHECK(j["rel_rmse"].get<double>() == m.rel_rmse);
  CHECK(j["imatrix_rel_rmse"].get<double>() == *m.imatrix_rel_rmse);
  auto back = MetricsFromJson(nlohmann::json::parse(j.dump()));
  REQUIRE(back.ok());
  CHECK(back->rel_rmse == m.rel_rmse);
  CHECK(back->snr_db == m.snr_db);
  CHECK(back->cosine == m.cosine);
  CHECK(*back->imatrix_rel_rmse == *m.imatrix_rel_rmse);

  const ErrorMetrics exact = Measure({1.f}, {1.f}, 1);
  const nlohmann::json je = MetricsToJson(exact);
  CHECK(je["snr_db"].is_null());
  CHECK(je["imatrix_rel_rmse"].is_null());
  CHECK(je.dump().find("inf") == std::string::npos);
  auto eb = MetricsFromJson(je);
  REQUIRE(eb.ok());
  CHECK(eb->snr_db == kInf);
  CHECK(!eb->imatrix_rel_rmse);

  const ErrorMetrics zero_ref = Measure({0.f}, {1.f}, 1);
  const nlohmann::json jz = MetricsToJson(zero_ref);
  CHECK(jz["rel_rmse"].is_null());
  CHECK(jz["snr_db"].is_null());
  auto zb = MetricsFromJson(jz);
  REQUIRE(zb.ok());
  CHECK(zb->rel_rmse == kInf);
  CHECK(zb->snr_db == -kInf);

  CHECK(!MetricsFromJson(nlohmann::json::array()).ok());
  CHECK(!MetricsFromJson(nlohmann::json{{"rel_rmse", "x"}}).ok());
  CHECK(!MetricsFromJson(nlohmann::json{{"rmse", 1.0}}).ok());
}

}  // namespace
}  // namespace bitsmith
