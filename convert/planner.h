// The mixed-bit planner: one storage type per tensor, least total error within
// a byte budget.
//
// Problem (a multiple-choice knapsack). Tensor t has n_t parameters and a list of
// candidates c, each with a size b_tc in bytes (everything the tensor stores,
// scales included) and an error e_tc = mse_rel (rel_rmse², or imatrix_rel_rmse²
// with an imatrix; see convert/metrics.h). Choose one candidate per tensor to
//     minimise  Σ_t n_t · e_t,c(t)    subject to  Σ_t b_t,c(t) <= B.
//
// Method (SolvePlan):
//  1. Per tensor, the lower convex hull of its (bytes, n·error) points.
//  2. Lagrangian relaxation. For a multiplier λ >= 0,
//         L(λ) = Σ_t min_c (n_t e_tc + λ b_tc) − λ B
//     is a lower bound on every feasible objective (weak duality). Its maximum
//     over λ equals the LP relaxation over the hulls, reached at λ* = the
//     efficiency (error saved per byte) of the "critical" hull step: walking all
//     hull steps by decreasing efficiency from the smallest assignment, the first
//     step that no longer fits. The walk is exact (no bisection): `bound` = L(λ*).
//  3. Incumbent: the same walk continued past the critical step (any later step
//     that still fits), then a pass that moves a tensor to any candidate, hull or
//     not, that lowers the error within the remaining bytes.
//  4. Exact repair by reduced costs. With r_tc = n_t e_tc + λ* b_tc − min_c(...) >= 0
//     every assignment x satisfies  objective(x) = L(λ*) + Σ_t r_t,x(t) + λ*·slack(x),
//     so a better solution than the incumbent (gap G) can only use candidates with
//     r_tc <= G. Tensors left with one such candidate are fixed; a dynamic program
//     over the others (states = (bytes, error) Pareto-pruned, and dropped when
//     Σ r + λ*·(least possible slack) exceeds G) finds the optimum among them.
//     Optimal when the DP ran to completion (`proven_optimal`); past a state cap
//     (PlanOptions::max_dp_states) it keeps the states of least reduced cost and
//     the result is a heuristic — `gap` = objective − bound is then the honest
//     distance to optimal (it always is an upper bound on it).
// Determinism: no threads inside one solve; every sort has a full tie-break (tensor
// order, then candidate order), so the same input gives the same plan. Frontier
// points are independent solves, optionally in parallel, identical for any thread
// count. Cost: O(K T log(K T)) for T tensors of K candidates plus the DP, bounded
// by max_dp_states. Measured (bench/planner_bench.cc, one thread on a busy
// 2-core machine): 2,000 tensors x 12 types 10-150 ms, relative gap <= 4e-5
// (often proven optimal); 90,000 x 12 (a per-expert safetensors checkpoint)
// about 1 s, relative gap ~1e-7; a 50-point frontier adds ~0.3 s.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "convert/recipe.h"
#include "formats/dtype.h"
#include "formats/error.h"

namespace bitsmith {

struct PlanCandidate {
  DType type;       // the type the tensor is stored in (after the converter's fallback)
  DType requested;  // the --types entry this candidate answers (== type without fallback)
  uint64_t bytes;   // stored bytes of the tensor at this type, scales included
  double error;     // mse_rel: rel_rmse² or imatrix_rel_rmse²; finite, >= 0
};

struct PlanTensor {
  std::string name;
  uint64_t params = 0;  // n_t (elements)
  // At least one. A tensor that keeps its type (1-D norms and biases in F32) has
  // exactly one; pins and floors leave single-candidate tensors alone.
  std::vector<PlanCandidate> candidates;
};

struct PlanOptions {
  uint64_t budget_bytes = 0;
  // Budgets swept for the frontier, evenly spaced from the smallest achievable
  // size to the size of the least-error assignment (0: none; else >= 2).
  int frontier_points = 50;
  int threads = 1;           // frontier solves in parallel (<= 0: all cores)
  // DP state cap (states kept for backtracking, over all layers; 8 bytes each).
  // Past it the repair step becomes a beam search (the states of least bound
  // survive) and proven_optimal is false. 2^20 states take about 0.2 s.
  uint64_t max_dp_states = uint64_t{1} << 20;
  uint64_t frontier_dp_states = uint64_t{1} << 16;  // the same, per frontier point
};

// The choice for one tensor.
struct PlanAssignment {
  std::string name;
  uint64_t params = 0;
  size_t candidate = 0;  // index into PlanTensor::candidates
  DType type;            // stored type
  DType requested;
  uint64_t bytes = 0;
  double error = 0;      // mse_rel of the chosen candidate
};

// One point of the size/error frontier: the best plan found with bytes <= budget.
// Made monotone: objective never rises as the budget grows (a larger budget
// keeps a smaller budget's plan when that one is better).
struct FrontierPoint {
  uint64_t budget = 0;
  uint64_t bytes = 0;    // achieved
  double objective = 0;
  double bound = 0;      // Lagrangian bound at this budget
};

// Every tensor at one requested type: the candidate with requested == type, or,
// for a tensor without one (kept types, floors), its smallest candidate.
struct UniformResult {
  DType type;
  uint64_t bytes = 0;
  double objective = 0;
  bool fits = false;     // bytes <= budget
  int fallbacks = 0;     // tensors that had no candidate for `type`
};

struct Plan {
  uint64_t budget_bytes = 0;
  uint64_t total_params = 0;
  double target_bpw = 0;       // budget_bytes · 8 / total_params
  uint64_t bytes = 0;          // achieved Σ bytes (<= budget_bytes)
  double bpw = 0;              // bytes · 8 / total_params
  double objective = 0;        // Σ_t n_t · e_t (exactly summed, tensor order irrelevant)
  double bound = 0;            // Lagrangian dual bound L(λ*) <= optimal objective
  double lambda = 0;           // λ*: error per byte at the margin (0: budget not binding)
  double gap = 0;              // max(0, objective − bound)
  double rel_gap = 0;          // gap / objective (0 when objective is 0)
  bool proven_optimal = false; // the DP completed: no assignment within budget is better
  std::vector<PlanAssignment> assignments;  // one per tensor, input order
  std::vector<FrontierPoint> frontier;      // increasing budget
  std::vector<UniformResult> uniform;       // by increasing bits per weight of the type
  int best_uniform = -1;             // least objective among uniform.fits (−1: none fits)
  int smallest_uniform_at_least = -1;  // fewest bytes among uniform with bytes >= bytes
  // Statistics of the repair step.
  size_t free_tensors = 0;     // tensors with more than one candidate of r <= gap
  uint64_t dp_states = 0;      // DP states stored

  // Size-weighted mean of mse_rel: objective / total_params.
  double MeanError() const;
};

// floor(bpw · total_params / 8): the byte budget of a bits-per-weight target.
// Error (kBadUsage) unless bpw is finite and > 0.
Result<uint64_t> BudgetForBpw(double bpw, uint64_t total_params);

// The planner's input from a `report --json` document (the shape in issue 6:
// {"tensors": [{"name", "params", "candidates": {TYPE: {"type", "bytes",
// "rel_rmse", "imatrix_rel_rmse", ...}}}]}). The TYPE key is the requested type,
// "type" the stored one (missing: the key). error = rel_rmse², or
// imatrix_rel_rmse² when use_imatrix and the candidate has one (a tensor
// without it, e.g. a 1-D one, uses rel_rmse²); use_imatrix with no
// imatrix_rel_rmse anywhere is an error. A null rel_rmse (+inf) is kept as +inf,
// which SolvePlan rejects naming the tensor. `types` (empty: all) keeps only
// the candidates requested as one of them, except that a tensor left with none
// (a kept type such as f32) keeps all of its own. Tensors keep report order;
// candidates come in key order (nlohmann::json objects are sorted by key).
// Errors (kBadInput) name the tensor index/name, the key and what was found.
Result<std::vector<PlanTensor>> PlanTensorsFromReport(const nlohmann::json& report,
                                                      bool use_imatrix,
                                                      std::span<const DType> types = {});

// Pins and floors by tensor name (first matching rule wins, recipe.h rules):
//  - a pin (`--keep REGEX=TYPE`) leaves exactly one candidate: the first with
//    requested == TYPE, else the first with type == TYPE; error (kBadUsage) when
//    the tensor has neither, listing its candidates;
//  - a floor (`--min-type REGEX=TYPE`) drops the candidates whose stored type has
//    fewer bits per weight than TYPE; error when none is left;
//  - a tensor matched by a pin ignores the floors; tensors with a single
//    candidate (kept types) are left alone by both.
Status ApplyPinsAndFloors(std::vector<PlanTensor>& tensors, std::span<const RecipeRule> pins,
                          std::span<const RecipeRule> floors);

// Solves the plan for options.budget_bytes, then the frontier and the uniform
// comparison. Errors: kBadInput for a tensor without candidates or a candidate
// whose error is negative or not finite (naming tensor and candidate);
// kBadUsage when the budget is below the smallest achievable size (the message
// gives that size in bytes, GiB and bpw).
Result<Plan> SolvePlan(std::span<const PlanTensor> tensors, const PlanOptions& options);

// The recipe `plan -o` writes: a '#' header (target, achieved bytes/GiB/bpw,
// objective, bound, gap, optimality) then one anchored line per tensor,
// "^name$=type" with the stored type, in tensor order. ParseRecipe reads it back.
std::string FormatRecipe(const Plan& plan);

// {"target": {"bytes", "bpw"}, "achieved": {"bytes", "bpw"}, "objective", "bound",
//  "gap", "proven_optimal", "assignments": {NAME: TYPE},
//  "frontier": [{"bytes", "objective"}],
//  "uniform": [{"type", "bytes", "bpw", "objective", "fits"}]}
nlohmann::json PlanToJson(const Plan& plan);

}  // namespace bitsmith
