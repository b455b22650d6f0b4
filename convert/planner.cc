// The mixed-bit planner (see planner.h for the problem and the method).
#include "convert/planner.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "codecs/parallel.h"
#include "convert/metrics.h"  // ExactSum

namespace bitsmith {

namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
constexpr size_t kNone = std::numeric_limits<size_t>::max();

// One hull step of tensor t: from hull point k to k + 1, saving dc error for db
// more bytes (efficiency slope = dc / db, strictly decreasing along a hull).
struct Step {
  uint32_t t;
  uint32_t k;
  uint64_t db;
  double dc;
  double slope;
};

// Everything that does not depend on the budget, computed once per SolvePlan and
// shared (read-only) by the frontier solves.
struct Prep {
  size_t tensors = 0;
  std::vector<size_t> off;    // candidates of tensor t: [off[t], off[t + 1]) in b, c
  std::vector<uint64_t> b;    // bytes
  std::vector<double> c;      // cost n_t · e_tc
  std::vector<size_t> hoff;   // hull of t: hull[hoff[t] .. hoff[t + 1]) (local indices)
  std::vector<uint32_t> hull;
  std::vector<Step> steps;    // all hull steps, by decreasing slope
  uint64_t min_bytes = 0;     // every tensor at its first hull point (fewest bytes)
  uint64_t max_bytes = 0;     // every tensor at its last hull point (least error)
  uint64_t total_params = 0;

  size_t K(size_t t) const { return off[t + 1] - off[t]; }
  uint64_t B(size_t t, size_t j) const { return b[off[t] + j]; }
  double C(size_t t, size_t j) const { return c[off[t] + j]; }
};

// The result of one budget.
struct Solution {
  std::vector<uint32_t> choice;  // local candidate index per tensor
  uint64_t bytes = 0;
  double objective = 0;
  double bound = 0;
  double lambda = 0;
  bool optimal = false;
  size_t free_tensors = 0;
  uint64_t dp_states = 0;
};

double ObjectiveOf(const Prep& p, const std::vector<uint32_t>& choice) {
  ExactSum s;  // exact: the objective does not depend on summation order
  for (size_t t = 0; t < p.tensors; ++t) s.Add(p.C(t, choice[t]));
  return s.Value();
}

uint64_t BytesOf(const Prep& p, const std::vector<uint32_t>& choice) {
  uint64_t s = 0;
  for (size_t t = 0; t < p.tensors; ++t) s += p.B(t, choice[t]);
  return s;
}

std::string CandidateList(const PlanTensor& t) {
  std::string s;
  for (const PlanCandidate& c : t.candidates) {
    if (!s.empty()) s += ", ";
    s += GetDType(c.type).name;
    if (c.requested != c.type) s += fmt::format(" (for {})", GetDType(c.requested).name);
  }
  return s;
}

// Validates the input and builds the hulls and the sorted steps.
Result<Prep> Prepare(std::span<const PlanTensor> tensors) {
  Prep p;
  p.tensors = tensors.size();
  p.off.assign(1, 0);
  p.hoff.assign(1, 0);
  if (tensors.size() > std::numeric_limits<uint32_t>::max())
    return MakeError(ErrorKind::kBadInput, "plan: {} tensors, at most {} supported",
                     tensors.size(), std::numeric_limits<uint32_t>::max());
  for (size_t t = 0; t < tensors.size(); ++t) {
    const PlanTensor& T = tensors[t];
    // 1. Validate: candidates present, errors finite and non-negative, sizes summable.
    if (T.candidates.empty())
      return MakeError(ErrorKind::kBadInput, "plan: tensor '{}' has no candidate type", T.name);
    if (T.candidates.size() > 65535)
      return MakeError(ErrorKind::kBadInput, "plan: tensor '{}' has {} candidates, at most 65535",
                       T.name, T.candidates.size());
    uint64_t tmax = 0;
    for (size_t j = 0; j < T.candidates.size(); ++j) {
      const PlanCandidate& c = T.candidates[j];
      const double cost = static_cast<double>(T.params) * c.error;
      if (!std::isfinite(c.error) || c.error < 0 || !std::isfinite(cost))
        return MakeError(ErrorKind::kBadInput,
                         "plan: tensor '{}', candidate {}: error {} must be finite and >= 0",
                         T.name, GetDType(c.type).name, c.error);
      p.b.push_back(c.bytes);
      p.c.push_back(cost);
      tmax = std::max(tmax, c.bytes);
    }
    if (p.max_bytes > std::numeric_limits<uint64_t>::max() - tmax ||
        p.total_params > std::numeric_limits<uint64_t>::max() - T.params)
      return MakeError(ErrorKind::kBadInput, "plan: total size overflows 64 bits at tensor '{}'",
                       T.name);
    p.max_bytes += tmax;  // provisional, recomputed from the hulls below
    p.total_params += T.params;
    p.off.push_back(p.b.size());

    // 2. Lower convex hull of (bytes, cost): candidates by (bytes, cost, index);
    //    keep strictly decreasing cost (Pareto), then pop points that are not
    //    strictly below the chord of their neighbours (monotone chain).
    std::vector<uint32_t> idx(T.candidates.size());
    std::iota(idx.begin(), idx.end(), 0u);
    std::sort(idx.begin(), idx.end(), [&](uint32_t x, uint32_t y) {
      if (p.B(t, x) != p.B(t, y)) return p.B(t, x) < p.B(t, y);
      if (p.C(t, x) != p.C(t, y)) return p.C(t, x) < p.C(t, y);
      return x < y;
    });
    std::vector<uint32_t> h;
    for (uint32_t j : idx) {
      if (!h.empty() && !(p.C(t, j) < p.C(t, h.back()))) continue;  // dominated
      // h[-2] -> h[-1] must be strictly more efficient than h[-1] -> j:
      // (c0 − c1)(b2 − b1) > (c1 − c2)(b1 − b0), in long double.
      while (h.size() >= 2) {
        const uint32_t a = h[h.size() - 2], m = h.back();
        const long double lhs = (static_cast<long double>(p.C(t, a)) - p.C(t, m)) *
                                static_cast<long double>(p.B(t, j) - p.B(t, m));
        const long double rhs = (static_cast<long double>(p.C(t, m)) - p.C(t, j)) *
                                static_cast<long double>(p.B(t, m) - p.B(t, a));
        if (lhs > rhs) break;
        h.pop_back();
      }
      h.push_back(j);
    }
    for (size_t k = 0; k + 1 < h.size(); ++k) {
      const uint64_t db = p.B(t, h[k + 1]) - p.B(t, h[k]);
      const double dc = p.C(t, h[k]) - p.C(t, h[k + 1]);
      p.steps.push_back({static_cast<uint32_t>(t), static_cast<uint32_t>(k), db, dc,
                         dc / static_cast<double>(db)});
    }
    p.hull.insert(p.hull.end(), h.begin(), h.end());
    p.hoff.push_back(p.hull.size());
  }
  p.min_bytes = p.max_bytes = 0;
  for (size_t t = 0; t < p.tensors; ++t) {
    p.min_bytes += p.B(t, p.hull[p.hoff[t]]);
    p.max_bytes += p.B(t, p.hull[p.hoff[t + 1] - 1]);
  }
  // 3. Steps by decreasing efficiency; ties by tensor, then position on the hull
  //    (which keeps each tensor's steps in hull order).
  std::sort(p.steps.begin(), p.steps.end(), [](const Step& x, const Step& y) {
    if (x.slope != y.slope) return x.slope > y.slope;
    if (x.t != y.t) return x.t < y.t;
    return x.k < y.k;
  });
  return p;
}

// L(λ) = Σ_t min_c (c + λ b) − λ B, summed exactly; also returns the per-tensor minima.
double LagrangianBound(const Prep& p, double lambda, uint64_t budget, std::vector<double>* mins) {
  ExactSum s;
  if (mins) mins->resize(p.tensors);
  for (size_t t = 0; t < p.tensors; ++t) {
    double m = std::numeric_limits<double>::infinity();
    for (size_t j = 0; j < p.K(t); ++j)
      m = std::min(m, p.C(t, j) + lambda * static_cast<double>(p.B(t, j)));
    if (mins) (*mins)[t] = m;
    s.Add(m);
  }
  s.Add(-lambda * static_cast<double>(budget));
  return s.Value();
}

// Step 4 of planner.h: DP over the tensors left with several candidates of
// reduced cost <= G. Returns true and fills `choice` when it found an assignment
// it could compare (always, unless every state was pruned); sets *capped when a
// state cap cut the search.
struct DpResult {
  bool found = false;
  bool capped = false;
  uint64_t states = 0;
  size_t free_tensors = 0;
};

DpResult RepairByDp(const Prep& p, uint64_t budget, double lambda, const std::vector<double>& mins,
                    double gap, double eps, uint64_t max_states,
                    std::vector<uint32_t>& choice /* in: incumbent, out: DP best */) {
  DpResult res;
  // 1. Allowed candidates: reduced cost r <= G + eps (the incumbent's always).
  std::vector<std::vector<uint32_t>> allowed(p.tensors);
  std::vector<size_t> free_list;
  uint64_t base_bytes = 0;
  double base_r = 0;
  auto reduced = [&](size_t t, size_t j) {
    return p.C(t, j) + lambda * static_cast<double>(p.B(t, j)) - mins[t];
  };
  for (size_t t = 0; t < p.tensors; ++t) {
    for (size_t j = 0; j < p.K(t); ++j)
      if (j == choice[t] || reduced(t, j) <= gap + eps) allowed[t].push_back(static_cast<uint32_t>(j));
    if (allowed[t].size() == 1) {
      base_bytes += p.B(t, allowed[t][0]);
      base_r += std::max(0.0, reduced(t, allowed[t][0]));
    } else {
      free_list.push_back(t);
    }
  }
  res.free_tensors = free_list.size();
  if (free_list.empty()) return res;  // nothing to choose: the incumbent stands
  const uint64_t cap_budget = budget - base_bytes;  // >= incumbent's free bytes >= 0

  // 2. Suffix data for the completion bound. For a free tensor, [zlo, zhi] is
  //    the byte range of its candidates of reduced cost ~0 (the Lagrangian
  //    minimisers); a candidate outside costs at least a rate times its distance
  //    to that range: nu per byte above zhi, mu per byte below zlo. Over the
  //    remaining tensors (suffix i) taking y bytes in all, with cap bytes left:
  //      Σ r + λ·(cap − y) >= nu_i·max(0, y − Zhi_i) + mu_i·max(0, Zlo_i − y) + λ·(cap − y)
  //    (Σ of per-tensor distances >= the distance of the sums), minimised over
  //    y in [minrest_i, min(cap, maxrest_i)] at its breakpoints.
  const size_t F = free_list.size();
  constexpr double kInf = std::numeric_limits<double>::infinity();
  std::vector<uint64_t> minrest(F + 1, 0), maxrest(F + 1, 0), zlo(F + 1, 0), zhi(F + 1, 0);
  std::vector<double> nu(F + 1, kInf), mu(F + 1, kInf);
  for (size_t i = F; i-- > 0;) {
    const size_t t = free_list[i];
    uint64_t lo = std::numeric_limits<uint64_t>::max(), hi = 0;
    uint64_t zl = std::numeric_limits<uint64_t>::max(), zh = 0;
    for (uint32_t j : allowed[t]) {
      lo = std::min(lo, p.B(t, j));
      hi = std::max(hi, p.B(t, j));
      if (reduced(t, j) <= 0) {
        zl = std::min(zl, p.B(t, j));
        zh = std::max(zh, p.B(t, j));
      }
    }
    if (zl > zh) {  // no exact minimiser among the allowed (cannot happen: argmin has r = 0)
      zl = lo;        // then the interval spans every candidate: only r >= 0 is used
      zh = hi;
    }
    double n_rate = kInf, m_rate = kInf;
    for (uint32_t j : allowed[t]) {
      const double r = std::max(0.0, reduced(t, j));
      if (p.B(t, j) > zh) n_rate = std::min(n_rate, r / static_cast<double>(p.B(t, j) - zh));
      if (p.B(t, j) < zl) m_rate = std::min(m_rate, r / static_cast<double>(zl - p.B(t, j)));
    }
    minrest[i] = minrest[i + 1] + lo;
    maxrest[i] = maxrest[i + 1] + hi;
    zlo[i] = zlo[i + 1] + zl;
    zhi[i] = zhi[i + 1] + zh;
    nu[i] = std::min(nu[i + 1], n_rate);
    mu[i] = std::min(mu[i + 1], m_rate);
  }
  // Lower bound on Σ r + λ·slack of the completion of suffix i with `cap` bytes.
  auto completion_bound = [&](size_t i, uint64_t cap) {
    const uint64_t ylo = minrest[i], yhi = std::min(cap, maxrest[i]);
    const uint64_t ys[4] = {ylo, yhi, std::clamp(zlo[i], ylo, yhi), std::clamp(zhi[i], ylo, yhi)};
    double best = kInf;
    for (uint64_t y : ys) {
      double h = lambda * static_cast<double>(cap - y);
      if (y > zhi[i]) h += nu[i] * static_cast<double>(y - zhi[i]);  // nu finite: y <= maxrest
      if (y < zlo[i]) h += mu[i] * static_cast<double>(zlo[i] - y);
      best = std::min(best, h);
    }
    return best;
  };

  // 3. Layers. A state is a partial assignment of free_list[0..i): its bytes,
  //    cost and reduced-cost sum; back-pointers are kept per layer.
  struct State {
    uint64_t bytes;
    double cost;
    double rsum;
    double bound;  // lower bound on (objective − L) of any completion
    uint32_t parent;
    uint16_t cand;
  };
  struct Back {
    uint32_t parent;
    uint16_t cand;
  };
  std::vector<std::vector<Back>> back(F);
  std::vector<State> cur{{0, 0.0, 0.0, 0.0, 0, 0}}, next, heads;
  std::vector<size_t> ptr;
  constexpr size_t kMaxLayer = size_t{1} << 18;
  const double limit = gap + eps;
  for (size_t i = 0; i < F; ++i) {
    const size_t t = free_list[i];
    next.clear();
    // cur is sorted by bytes with strictly decreasing cost (Pareto), so for each
    // allowed candidate j the list cur + j is too: merge the lists by (bytes,
    // cost, j's position), keeping a state only if it costs strictly less than
    // every state with fewer bytes (Pareto again), and dropping states that
    // cannot finish within the budget or cannot beat the incumbent.
    const std::vector<uint32_t>& al = allowed[t];
    const size_t K = al.size();
    heads.assign(K, State{});
    ptr.assign(K, 0);
    const uint64_t room_for_rest = cap_budget - minrest[i + 1];  // minrest <= cap_budget
    // Moves list k to its next state that passes both tests (or to the end).
    auto advance = [&](size_t k) {
      const uint32_t j = al[k];
      const uint64_t bj = p.B(t, j);
      const double rj = std::max(0.0, reduced(t, j));
      for (; ptr[k] < cur.size(); ++ptr[k]) {
        const State& s = cur[ptr[k]];
        const uint64_t nb = s.bytes + bj;
        if (nb > room_for_rest) {  // bytes only grow along the list: done
          ptr[k] = cur.size();
          return;
        }
        const double nr = s.rsum + rj;
        const double bound = base_r + nr + completion_bound(i + 1, cap_budget - nb);
        if (bound > limit) continue;  // cannot beat the incumbent
        heads[k] = {nb, s.cost + p.C(t, j), nr, bound, static_cast<uint32_t>(ptr[k]),
                    static_cast<uint16_t>(j)};
        return;
      }
    };
    for (size_t k = 0; k < K; ++k) advance(k);
    double best = std::numeric_limits<double>::infinity();
    while (true) {
      size_t kb = K;
      for (size_t k = 0; k < K; ++k) {
        if (ptr[k] >= cur.size()) continue;
        if (kb == K || heads[k].bytes < heads[kb].bytes ||
            (heads[k].bytes == heads[kb].bytes && heads[k].cost < heads[kb].cost))
          kb = k;
      }
      if (kb == K) break;
      if (heads[kb].cost < best) {
        best = heads[kb].cost;
        next.push_back(heads[kb]);
      }
      ++ptr[kb];
      advance(kb);
    }
    // Cap: keep the states of least bound (a beam; no longer exact).
    const uint64_t remaining_layers = F - i;
    const uint64_t room = max_states > res.states ? (max_states - res.states) / remaining_layers : 0;
    const size_t layer_cap = static_cast<size_t>(std::min<uint64_t>(kMaxLayer, std::max<uint64_t>(64, room)));
    if (next.size() > layer_cap) {
      res.capped = true;
      std::vector<uint32_t> order(next.size());
      std::iota(order.begin(), order.end(), 0u);
      // (bound, position) is a strict total order, so the kept set is unique.
      std::nth_element(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(layer_cap),
                       order.end(), [&](uint32_t x, uint32_t y) {
                         if (next[x].bound != next[y].bound) return next[x].bound < next[y].bound;
                         return x < y;
                       });
      order.resize(layer_cap);
      std::sort(order.begin(), order.end());
      std::vector<State> trimmed;
      trimmed.reserve(layer_cap);
      for (uint32_t x : order) trimmed.push_back(next[x]);
      next.swap(trimmed);
    }
    if (next.empty()) return res;  // everything pruned: the incumbent stands
    back[i].reserve(next.size());
    for (const State& s : next) back[i].push_back({s.parent, s.cand});
    res.states += next.size();
    cur.swap(next);
  }
  // 4. The cheapest complete state (ties: fewer bytes, then order), traced back.
  size_t best_i = 0;
  for (size_t si = 1; si < cur.size(); ++si) {
    const State &a = cur[si], &b = cur[best_i];
    if (a.cost < b.cost || (a.cost == b.cost && a.bytes < b.bytes)) best_i = si;
  }
  for (size_t t = 0; t < p.tensors; ++t)
    if (allowed[t].size() == 1) choice[t] = allowed[t][0];
  size_t si = best_i;
  for (size_t i = F; i-- > 0;) {
    choice[free_list[i]] = back[i][si].cand;
    si = back[i][si].parent;
  }
  res.found = true;
  return res;
}

Solution Solve(const Prep& p, uint64_t budget, uint64_t max_states) {
  Solution sol;
  // 1. Start every tensor at its smallest hull point; walk the steps by decreasing
  //    efficiency. The first step that does not fit is the critical one (its
  //    slope is λ*); later steps that still fit are taken too (fill).
  std::vector<uint32_t> pos(p.tensors, 0);
  uint64_t used = p.min_bytes;
  size_t crit = kNone;
  for (size_t s = 0; s < p.steps.size(); ++s) {
    const Step& st = p.steps[s];
    if (pos[st.t] != st.k) continue;  // an earlier step of this tensor was skipped
    if (st.db <= budget - used) {
      used += st.db;
      pos[st.t] = st.k + 1;
    } else if (crit == kNone) {
      crit = s;
    }
  }
  sol.choice.resize(p.tensors);
  for (size_t t = 0; t < p.tensors; ++t) sol.choice[t] = p.hull[p.hoff[t] + pos[t]];

  // 2. Improvement pass: move a tensor to any candidate (hull or not) of lower
  //    cost (or equal cost, fewer bytes) that fits in the remaining bytes.
  uint64_t slack = budget - used;
  for (int pass = 0; pass < 8; ++pass) {
    bool changed = false;
    for (size_t t = 0; t < p.tensors; ++t) {
      const uint32_t cur = sol.choice[t];
      uint32_t best = cur;
      for (uint32_t j = 0; j < p.K(t); ++j) {
        if (p.B(t, j) > p.B(t, cur) + slack) continue;
        if (p.C(t, j) < p.C(t, best) || (p.C(t, j) == p.C(t, best) && p.B(t, j) < p.B(t, best)))
          best = j;
      }
      if (best != cur) {
        slack = slack + p.B(t, cur) - p.B(t, best);
        sol.choice[t] = best;
        changed = true;
      }
    }
    if (!changed) break;
  }
  sol.objective = ObjectiveOf(p, sol.choice);

  // 3. The bound. Without a critical step every tensor sits at its least-error
  //    point: optimal, λ* = 0.
  if (crit == kNone) {
    sol.lambda = 0;
    sol.bound = LagrangianBound(p, 0.0, budget, nullptr);
    sol.optimal = true;
  } else {
    sol.lambda = p.steps[crit].slope;
    std::vector<double> mins;
    sol.bound = LagrangianBound(p, sol.lambda, budget, &mins);
    const double gap = sol.objective - sol.bound;
    // Tolerance for rounding in the reduced costs: far above the rounding error
    // of the sums (~1e-16 relative), far below any error difference that matters.
    const double scale = sol.objective + 2 * sol.lambda * static_cast<double>(budget);
    const double eps = 1e-10 * scale;
    if (gap <= eps) {
      sol.optimal = true;
    } else {
      // 4. Exact repair over the candidates of reduced cost <= gap.
      std::vector<uint32_t> trial = sol.choice;
      const DpResult dp = RepairByDp(p, budget, sol.lambda, mins, gap, eps, max_states, trial);
      sol.free_tensors = dp.free_tensors;
      sol.dp_states = dp.states;
      if (dp.found && BytesOf(p, trial) <= budget) {
        const double obj = ObjectiveOf(p, trial);
        if (obj < sol.objective) {
          sol.objective = obj;
          sol.choice = std::move(trial);
        }
      }
      sol.optimal = !dp.capped;
    }
  }
  sol.bytes = BytesOf(p, sol.choice);
  return sol;
}

std::vector<UniformResult> Uniforms(std::span<const PlanTensor> tensors, const Prep& p,
                                    uint64_t budget) {
  // Types: the requested types of tensors that have a choice (all tensors if
  // none has), by increasing bits per weight, then table order.
  std::vector<DType> types;
  for (int pass = 0; pass < 2 && types.empty(); ++pass)
    for (const PlanTensor& t : tensors)
      if (pass == 1 || t.candidates.size() > 1)
        for (const PlanCandidate& c : t.candidates)
          if (std::find(types.begin(), types.end(), c.requested) == types.end())
            types.push_back(c.requested);
  std::sort(types.begin(), types.end(), [](DType x, DType y) {
    const double bx = GetDType(x).bits_per_weight(), by = GetDType(y).bits_per_weight();
    if (bx != by) return bx < by;
    return x < y;
  });
  std::vector<UniformResult> out;
  for (DType type : types) {
    UniformResult u;
    u.type = type;
    ExactSum obj;
    for (size_t t = 0; t < tensors.size(); ++t) {
      const auto& cs = tensors[t].candidates;
      size_t pick = kNone;
      for (size_t j = 0; j < cs.size() && pick == kNone; ++j)
        if (cs[j].requested == type) pick = j;
      if (pick == kNone) {  // the tensor's own fallback: its smallest candidate
        ++u.fallbacks;
        pick = 0;
        for (size_t j = 1; j < cs.size(); ++j)
          if (p.B(t, j) < p.B(t, pick) || (p.B(t, j) == p.B(t, pick) && p.C(t, j) < p.C(t, pick)))
            pick = j;
      }
      u.bytes += p.B(t, pick);
      obj.Add(p.C(t, pick));
    }
    u.objective = obj.Value();
    u.fits = u.bytes <= budget;
    out.push_back(u);
  }
  return out;
}

std::string SizeText(uint64_t bytes, uint64_t params) {
  return fmt::format("{} bytes ({:.3f} GiB, {:.4f} bpw)", bytes, static_cast<double>(bytes) / kGiB,
                     params ? 8.0 * static_cast<double>(bytes) / static_cast<double>(params) : 0.0);
}

}  // namespace

double Plan::MeanError() const {
  return total_params ? objective / static_cast<double>(total_params) : 0.0;
}

Result<uint64_t> BudgetForBpw(double bpw, uint64_t total_params) {
  if (!std::isfinite(bpw) || bpw <= 0)
    return MakeError(ErrorKind::kBadUsage, "target bits per weight {} must be finite and > 0", bpw);
  const long double bytes = std::floor(static_cast<long double>(bpw) * total_params / 8.0L);
  if (bytes >= 18446744073709551616.0L)
    return MakeError(ErrorKind::kBadUsage, "target {} bpw over {} parameters overflows 64 bits",
                     bpw, total_params);
  return static_cast<uint64_t>(bytes);
}

Result<std::vector<PlanTensor>> PlanTensorsFromReport(const nlohmann::json& report,
                                                      bool use_imatrix,
                                                      std::span<const DType> types) {
  using nlohmann::json;
  if (!report.is_object() || !report.contains("tensors") || !report["tensors"].is_array())
    return MakeError(ErrorKind::kBadInput, "report: expected an object with a \"tensors\" array");
  const json& arr = report["tensors"];
  std::vector<PlanTensor> out;
  out.reserve(arr.size());
  bool any_imatrix = false;
  for (size_t i = 0; i < arr.size(); ++i) {
    const json& jt = arr[i];
    if (!jt.is_object() || !jt.contains("name") || !jt["name"].is_string())
      return MakeError(ErrorKind::kBadInput, "report: tensors[{}] has no string \"name\"", i);
    PlanTensor t;
    t.name = jt["name"].get<std::string>();
    if (!jt.contains("params") || !jt["params"].is_number_unsigned())
      return MakeError(ErrorKind::kBadInput,
                       "report: tensor '{}': \"params\" must be a non-negative integer", t.name);
    t.params = jt["params"].get<uint64_t>();
    if (!jt.contains("candidates") || !jt["candidates"].is_object() || jt["candidates"].empty())
      return MakeError(ErrorKind::kBadInput,
                       "report: tensor '{}': \"candidates\" must be a non-empty object", t.name);
    for (const auto& [key, jc] : jt["candidates"].items()) {
      const std::optional<DType> requested = FindDType(key);
      if (!requested)
        return MakeError(ErrorKind::kBadInput, "report: tensor '{}': unknown candidate type '{}'",
                         t.name, key);
      PlanCandidate c;
      c.requested = *requested;
      c.type = *requested;
      if (!jc.is_object())
        return MakeError(ErrorKind::kBadInput, "report: tensor '{}', candidate {}: not an object",
                         t.name, key);
      if (jc.contains("type") && !jc["type"].is_null()) {
        const std::optional<DType> stored =
            jc["type"].is_string() ? FindDType(jc["type"].get<std::string>()) : std::nullopt;
        if (!stored)
          return MakeError(ErrorKind::kBadInput, "report: tensor '{}', candidate {}: bad \"type\" {}",
                           t.name, key, jc["type"].dump());
        c.type = *stored;
      }
      if (!jc.contains("bytes") || !jc["bytes"].is_number_unsigned())
        return MakeError(ErrorKind::kBadInput,
                         "report: tensor '{}', candidate {}: \"bytes\" must be a non-negative "
                         "integer",
                         t.name, key);
      c.bytes = jc["bytes"].get<uint64_t>();
      // Structured bindings are captured by init-capture: clang 14 cannot capture them directly.
      auto metric = [&, &key = key, &jc = jc](const char* name) -> Result<std::optional<double>> {
        if (!jc.contains(name) || jc[name].is_null()) return std::optional<double>();
        if (!jc[name].is_number())
          return MakeError(ErrorKind::kBadInput,
                           "report: tensor '{}', candidate {}: \"{}\" must be a number or null, "
                           "found {}",
                           t.name, key, name, jc[name].dump());
        return std::optional<double>(jc[name].get<double>());
      };
      BITSMITH_ASSIGN_OR_RETURN(const std::optional<double> rel, metric("rel_rmse"));
      BITSMITH_ASSIGN_OR_RETURN(const std::optional<double> imat, metric("imatrix_rel_rmse"));
      if (!jc.contains("rel_rmse"))
        return MakeError(ErrorKind::kBadInput, "report: tensor '{}', candidate {}: no \"rel_rmse\"",
                         t.name, key);
      any_imatrix = any_imatrix || imat.has_value();
      // null rel_rmse stands for +inf (metrics.h: all-zero reference, non-zero error).
      const double r = use_imatrix && imat ? *imat : rel.value_or(std::numeric_limits<double>::infinity());
      c.error = r * r;
      t.candidates.push_back(c);
    }
    if (!types.empty()) {
      std::vector<PlanCandidate> kept;
      for (const PlanCandidate& c : t.candidates)
        if (std::find(types.begin(), types.end(), c.requested) != types.end()) kept.push_back(c);
      if (!kept.empty()) t.candidates = std::move(kept);
    }
    out.push_back(std::move(t));
  }
  if (use_imatrix && !any_imatrix)
    return MakeError(ErrorKind::kBadUsage,
                     "report: no candidate has an imatrix_rel_rmse: measure the report with "
                     "--imatrix, or plan without it");
  return out;
}

Status ApplyPinsAndFloors(std::vector<PlanTensor>& tensors, std::span<const RecipeRule> pins,
                          std::span<const RecipeRule> floors) {
  for (PlanTensor& t : tensors) {
    if (t.candidates.size() <= 1) continue;  // a kept type: nothing to choose
    if (const RecipeRule* pin = FirstMatch(pins, t.name)) {
      auto it = std::find_if(t.candidates.begin(), t.candidates.end(),
                             [&](const PlanCandidate& c) { return c.requested == pin->type; });
      if (it == t.candidates.end())
        it = std::find_if(t.candidates.begin(), t.candidates.end(),
                          [&](const PlanCandidate& c) { return c.type == pin->type; });
      if (it == t.candidates.end())
        return MakeError(ErrorKind::kBadUsage,
                         "{}: tensor '{}' is pinned to {} by '{}', but {} is not among its "
                         "measured candidates ({}); add it to --types",
                         pin->where, t.name, GetDType(pin->type).name, pin->pattern,
                         GetDType(pin->type).name, CandidateList(t));
      const PlanCandidate keep = *it;
      t.candidates.assign(1, keep);
      continue;
    }
    if (const RecipeRule* floor = FirstMatch(floors, t.name)) {
      const double min_bpw = GetDType(floor->type).bits_per_weight();
      const std::string before = CandidateList(t);
      std::erase_if(t.candidates, [&](const PlanCandidate& c) {
        return GetDType(c.type).bits_per_weight() < min_bpw;
      });
      if (t.candidates.empty())
        return MakeError(ErrorKind::kBadUsage,
                         "{}: floor '{}={}' ({} bpw) leaves tensor '{}' no candidate (it had: {})",
                         floor->where, floor->pattern, GetDType(floor->type).name, min_bpw, t.name,
                         before);
    }
  }
  return Status::Ok();
}

Result<Plan> SolvePlan(std::span<const PlanTensor> tensors, const PlanOptions& options) {
  BITSMITH_ASSIGN_OR_RETURN(const Prep p, Prepare(tensors));
  const uint64_t budget = options.budget_bytes;
  if (budget < p.min_bytes)
    return MakeError(ErrorKind::kBadUsage,
                     "plan: the budget of {} is below the smallest achievable size, {} (every "
                     "tensor at its smallest candidate)",
                     SizeText(budget, p.total_params), SizeText(p.min_bytes, p.total_params));
  if (options.frontier_points == 1 || options.frontier_points < 0)
    return MakeError(ErrorKind::kBadUsage, "plan: {} frontier points (need 0 or at least 2)",
                     options.frontier_points);

  const Solution sol = Solve(p, budget, options.max_dp_states);
  Plan plan;
  plan.budget_bytes = budget;
  plan.total_params = p.total_params;
  const double params = static_cast<double>(p.total_params);
  plan.target_bpw = p.total_params ? 8.0 * static_cast<double>(budget) / params : 0.0;
  plan.bytes = sol.bytes;
  plan.bpw = p.total_params ? 8.0 * static_cast<double>(sol.bytes) / params : 0.0;
  plan.objective = sol.objective;
  plan.bound = sol.bound;
  plan.lambda = sol.lambda;
  plan.gap = std::max(0.0, plan.objective - plan.bound);  // L can exceed it by rounding only
  plan.rel_gap = plan.objective > 0 ? plan.gap / plan.objective : 0.0;
  plan.proven_optimal = sol.optimal;
  plan.free_tensors = sol.free_tensors;
  plan.dp_states = sol.dp_states;
  for (size_t t = 0; t < tensors.size(); ++t) {
    const PlanCandidate& c = tensors[t].candidates[sol.choice[t]];
    plan.assignments.push_back(
        {tensors[t].name, tensors[t].params, sol.choice[t], c.type, c.requested, c.bytes, c.error});
  }

  // Frontier: evenly spaced budgets from the smallest to the least-error size,
  // each an independent solve (parallel, order-independent), then made monotone.
  if (options.frontier_points >= 2) {
    const size_t n = static_cast<size_t>(options.frontier_points);
    std::vector<FrontierPoint> pts(n);
    const uint64_t span = p.max_bytes - p.min_bytes;
    ParallelFor(n, 1, options.threads, [&](size_t b, size_t e) {
      for (size_t i = b; i < e; ++i) {
        const uint64_t bi =
            p.min_bytes + static_cast<uint64_t>(static_cast<long double>(span) * i / (n - 1));
        const Solution s = Solve(p, bi, options.frontier_dp_states);
        pts[i] = {bi, s.bytes, s.objective, s.bound};
      }
    });
    for (size_t i = 1; i < n; ++i)
      if (pts[i].objective > pts[i - 1].objective) {
        pts[i].objective = pts[i - 1].objective;
        pts[i].bytes = pts[i - 1].bytes;
      }
    plan.frontier = std::move(pts);
  }

  // Uniform comparison.
  plan.uniform = Uniforms(tensors, p, budget);
  for (size_t i = 0; i < plan.uniform.size(); ++i) {
    const UniformResult& u = plan.uniform[i];
    if (u.fits && (plan.best_uniform < 0 || u.objective < plan.uniform[plan.best_uniform].objective))
      plan.best_uniform = static_cast<int>(i);
    if (u.bytes >= plan.bytes) {
      const int s = plan.smallest_uniform_at_least;
      if (s < 0 || u.bytes < plan.uniform[s].bytes ||
          (u.bytes == plan.uniform[s].bytes && u.objective < plan.uniform[s].objective))
        plan.smallest_uniform_at_least = static_cast<int>(i);
    }
  }
  return plan;
}

std::string FormatRecipe(const Plan& plan) {
  std::string out;
  out += "# bitsmith plan: one type per tensor, least total error within the budget\n";
  out += fmt::format("# target:    {}\n", SizeText(plan.budget_bytes, plan.total_params));
  out += fmt::format("# achieved:  {} over {} parameters\n",
                     SizeText(plan.bytes, plan.total_params), plan.total_params);
  out += fmt::format("# objective: {:.9e} (sum of params x mse_rel; mean mse_rel {:.6e})\n",
                     plan.objective, plan.MeanError());
  out += fmt::format("# bound:     {:.9e} (Lagrangian); gap {:.3e} ({:.3e} relative); {}\n",
                     plan.bound, plan.gap, plan.rel_gap,
                     plan.proven_optimal ? "proven optimal" : "not proven optimal");
  out += "# format: REGEX=TYPE, first match wins (bitsmith convert --recipe)\n";
  for (const PlanAssignment& a : plan.assignments) {
    out += RecipeLine(a.name, a.type);
    out += '\n';
  }
  return out;
}

nlohmann::json PlanToJson(const Plan& plan) {
  using nlohmann::json;
  json assignments = json::object();
  for (const PlanAssignment& a : plan.assignments) assignments[a.name] = GetDType(a.type).name;
  json frontier = json::array();
  for (const FrontierPoint& f : plan.frontier)
    frontier.push_back({{"budget", f.budget}, {"bytes", f.bytes}, {"objective", f.objective},
                        {"bound", f.bound}});
  json uniform = json::array();
  const double params = static_cast<double>(plan.total_params);
  for (const UniformResult& u : plan.uniform)
    uniform.push_back({{"type", GetDType(u.type).name},
                       {"bytes", u.bytes},
                       {"bpw", params > 0 ? 8.0 * static_cast<double>(u.bytes) / params : 0.0},
                       {"objective", u.objective},
                       {"fits", u.fits}});
  return json{{"target", {{"bytes", plan.budget_bytes}, {"bpw", plan.target_bpw}}},
              {"achieved", {{"bytes", plan.bytes}, {"bpw", plan.bpw}}},
              {"params", plan.total_params},
              {"objective", plan.objective},
              {"bound", plan.bound},
              {"gap", plan.gap},
              {"proven_optimal", plan.proven_optimal},
              {"assignments", std::move(assignments)},
              {"frontier", std::move(frontier)},
              {"uniform", std::move(uniform)}};
}

}  // namespace bitsmith
