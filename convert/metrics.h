// Error metrics of a reconstruction: how far x̂ = dequantize(quantize(x)) is from x.
//
// An ErrorAccumulator is fed a tensor chunk by chunk (whole rows of the reference
// x and the reconstruction x̂, both f32, optionally with one importance weight
// w_j per column j from an imatrix) and accumulates in double:
//   Σe², Σx², Σx·x̂, Σx̂², max|e|, n           with e = x̂ − x (computed in double)
//   Σ_j w_j Σ_i e_ij²,  Σ_j w_j Σ_i x_ij²      (only when weights are given)
// Finish() turns the sums into the metrics `report` prints (ErrorMetrics below).
//
// Determinism (exact summation). Each row is cut into segments of
// kSegmentElems elements starting at the row's first column; the partial sums of
// one segment are computed in double in an order fixed by the code (8 lanes,
// lane k taking elements k, k + 8, ..., lanes summed pairwise; the same on every
// SIMD target and in the scalar reference), and then added to
// exact accumulators (ExactSum: Shewchuk's non-overlapping expansions, the
// algorithm behind Python's math.fsum). An exact sum does not depend on the order
// of its terms, so the result is a function of the values and of n_per_row only:
// any split of the rows into Add() calls, chunks and threads, merged in any order,
// gives bit-identical metrics. Threads therefore accumulate separately and
// Merge() in whatever order they finish.
//
// Reference behaviour avoided: ggml's tests/test-quantize-fns.cpp `array_rmse`
// returns sqrt(Σe²)/n, which is not a root-mean-square error (it shrinks as 1/√n
// for a constant error); rmse here is sqrt(Σe²/n).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "codecs/quant.h"  // Impl
#include "formats/error.h"

namespace bitsmith {

// Exact sum of doubles. Holds the running sum as a list of non-overlapping
// doubles ("partials", increasing magnitude) whose exact sum is the exact sum
// of every value added (Shewchuk 1997, "Adaptive Precision Floating-Point
// Arithmetic and Fast Robust Geometric Predicates", Grow-Expansion; the final
// rounding follows Python's math_fsum). Value() is the exact sum rounded to
// nearest-even, so it does not depend on the order of Add/Merge calls.
// Preconditions: finite inputs whose partial sums do not overflow (true for
// sums of products of f32 values over < 2^64 terms: |term| < 2^256). A
// non-finite input makes the sum non-finite (inf, or NaN for inf − inf), and
// stays so. Cost: O(number of partials) per Add, typically 1-3; allocates
// only when the list grows.
class ExactSum {
 public:
  void Add(double v);
  void Merge(const ExactSum& other);
  double Value() const;

 private:
  std::vector<double> partials_;
  double special_ = 0;  // sum of the non-finite values added (inf or NaN), else 0
};

// The metrics of one tensor (or one chunk) against its reference.
// Edge cases (each is tested; JSON writes non-finite values as null, see below):
//   n == 0 (nothing added): everything as for an exact reconstruction below.
//   Σe² == 0 (exact reconstruction, including all-zero x reproduced as zeros):
//     rmse = rel_rmse = 0, snr_db = +inf, max_abs_err = 0, imatrix_rel_rmse = 0.
//   Σx² == 0 but Σe² > 0 (the reference is all zero, the reconstruction is not):
//     rel_rmse = +inf, snr_db = −inf. Same rule for imatrix_rel_rmse when the
//     weighted Σ w x² is 0 (for instance all weights zero where x is non-zero).
//   cosine: 1 when x and x̂ are both all-zero (identical), 0 when exactly one of
//     them is all-zero (no direction in common); otherwise Σx·x̂/(‖x‖·‖x̂‖)
//     clamped to [−1, 1] (rounding can otherwise give 1 + 2^-52).
//   Non-finite x̂ (an overflowing decode) propagates: sums become inf or NaN,
//   max_abs_err becomes inf/NaN (NaN wins), nothing is hidden.
struct ErrorMetrics {
  uint64_t n = 0;                 // elements compared
  double rmse = 0;                // sqrt(Σe²/n)
  double rel_rmse = 0;            // sqrt(Σe²/Σx²)
  double snr_db = 0;              // −20·log10(rel_rmse)
  double max_abs_err = 0;         // max |e|
  double cosine = 1;              // Σx·x̂ / (‖x‖·‖x̂‖)
  // sqrt(Σ_j w_j Σ_i e_ij² / Σ_j w_j Σ_i x_ij²): the relative error of the layer's
  // output under activations with second moments w. nullopt without weights.
  std::optional<double> imatrix_rel_rmse;

  // The planner's error value mse_rel_t: rel_rmse², or imatrix_rel_rmse² when
  // `use_imatrix` (falls back to rel_rmse² when no weights were given).
  double MseRel(bool use_imatrix) const;
};

// The raw sums behind ErrorMetrics (what Merge combines).
struct ErrorSums {
  uint64_t n = 0;
  double sum_e2 = 0, sum_x2 = 0, sum_xy = 0, sum_y2 = 0;  // y = x̂
  double max_abs_e = 0;
  bool weighted = false;
  double sum_w_e2 = 0, sum_w_x2 = 0;
};

class ErrorAccumulator {
 public:
  // Segment length of the exact-summation scheme (see the file comment).
  static constexpr int64_t kSegmentElems = 1024;

  // kSimd: Highway kernel (dynamic dispatch); kReference: the scalar oracle.
  // Both give bit-identical sums (tested on every compiled target).
  explicit ErrorAccumulator(Impl impl = Impl::kSimd) : impl_(impl) {}

  // Adds whole rows: x and xhat hold rows × n_per_row values, row-major (the same
  // layout QuantizeRows/DequantizeRows use). col_weights is empty or holds
  // n_per_row weights w_j, applied to column j of every row. For 1-D tensors pass
  // n_per_row = x.size() (or any fixed row length, consistently across calls).
  // All calls on one accumulator (and on accumulators later merged) must agree on
  // whether weights are given. Errors (kInternal: a caller bug): sizes differ,
  // x.size() not a multiple of n_per_row, n_per_row <= 0, wrong weight count,
  // weighted and unweighted data mixed. No allocation after the first calls.
  // Cost: one pass, ~12 double operations per element, Highway-vectorised
  // (bench: "metrics accumulate f32 rows"; numbers in the bench file).
  Status Add(std::span<const float> x, std::span<const float> xhat, int64_t n_per_row,
             std::span<const float> col_weights = {});

  // Adds everything `other` accumulated. Order-independent (exact sums).
  // Error (kInternal) when one side is weighted and the other is not (an empty
  // accumulator merges with either).
  Status Merge(const ErrorAccumulator& other);

  // The metrics of everything added so far (may be called repeatedly).
  ErrorMetrics Finish() const;
  ErrorSums Sums() const;
  uint64_t count() const { return n_; }

 private:
  void AddSegment(const float* x, const float* y, const float* w, int64_t len);

  Impl impl_ = Impl::kSimd;
  uint64_t n_ = 0;
  ExactSum e2_, x2_, xy_, y2_, we2_, wx2_;
  double max_abs_e_ = 0;
  std::optional<bool> weighted_;  // unset until the first non-empty Add
};

// The metrics computed from given sums (what Finish() does; exposed so a report
// read back from JSON, or sums gathered elsewhere, use the same definitions).
ErrorMetrics MetricsFromSums(const ErrorSums& s);

// JSON: {"rmse", "rel_rmse", "snr_db", "max_abs_err", "cosine", "imatrix_rel_rmse"}.
// JSON has no infinity: a non-finite value is written as null, and
// imatrix_rel_rmse is null without weights. A null snr_db means +inf when
// rel_rmse is 0 (exact reconstruction) and −inf when rel_rmse is null (+inf).
// MetricsFromJson reads the same object back: null snr_db as above, other null
// errors as +inf, a null cosine as NaN, a null imatrix_rel_rmse as "no weights".
nlohmann::json MetricsToJson(const ErrorMetrics& m);
Result<ErrorMetrics> MetricsFromJson(const nlohmann::json& j);

}  // namespace bitsmith
