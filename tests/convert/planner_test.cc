// The mixed-bit planner against brute force, uniform assignments, its own
// frontier, pins/floors, infeasible budgets, determinism, and a 2,000 x 12
// synthetic model.
#include "convert/planner.h"

#include <algorithm>
#include <cmath>
#include <cstring>  // std::memcmp
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "convert/recipe.h"

namespace bitsmith {
namespace {

constexpr DType kTypes[] = {DType::kQ2_K, DType::kQ3_K, DType::kQ4_K, DType::kQ5_K,
                            DType::kQ6_K, DType::kQ8_0, DType::kIQ4_XS, DType::kBF16};

// Random instances built to contain the awkward cases: equal sizes, equal errors,
// dominated candidates (more bytes and more error), zero errors, zero-parameter
// tensors, tensors with one candidate, and sizes not tied to the type's bpw.
std::vector<PlanTensor> RandomInstance(std::mt19937_64& rng, int T, int K) {
  std::uniform_int_distribution<int> pick(0, 99);
  std::uniform_real_distribution<double> u01(0.0, 1.0);
  std::vector<PlanTensor> ts(T);
  for (int t = 0; t < T; ++t) {
    PlanTensor& pt = ts[t];
    pt.name = "blk." + std::to_string(t) + ".ffn_down.weight";
    const int shape_kind = pick(rng);
    pt.params = shape_kind < 5 ? 0 : static_cast<uint64_t>(256 * (1 + pick(rng) % 8));
    if (t > 0 && shape_kind > 80) pt.params = ts[t - 1].params;  // repeated shapes: ties
    const int k = (pick(rng) < 10) ? 1 : K;
    std::vector<DType> types(std::begin(kTypes), std::end(kTypes));
    std::shuffle(types.begin(), types.end(), rng);
    for (int j = 0; j < k; ++j) {
      PlanCandidate c;
      c.type = c.requested = types[j];
      const double bpw = GetDType(c.type).bits_per_weight();
      c.bytes = pick(rng) < 20 ? static_cast<uint64_t>(1 + pick(rng) * 7)
                               : static_cast<uint64_t>(std::ceil(bpw * pt.params / 8));
      c.error = std::ldexp(0.5 + u01(rng), -static_cast<int>(2 * bpw));
      const int quirk = pick(rng);
      if (quirk < 8) c.error = 0;                                       // exact
      else if (quirk < 16 && j > 0) c.error = pt.candidates[j - 1].error;  // tie
      else if (quirk < 22 && j > 0) c.bytes = pt.candidates[j - 1].bytes;  // same size
      else if (quirk < 30) c.error *= 50;                               // likely dominated
      pt.candidates.push_back(c);
    }
    if (t > 0 && shape_kind > 90) pt.candidates = ts[t - 1].candidates;  // identical tensors
  }
  return ts;
}

struct Brute {
  bool feasible = false;
  double best = std::numeric_limits<double>::infinity();
  uint64_t min_bytes = 0;
};

// Enumerates every assignment (objective summed in tensor order, in long double).
Brute BruteForce(const std::vector<PlanTensor>& ts, uint64_t budget) {
  Brute r;
  for (const auto& t : ts) {
    uint64_t m = std::numeric_limits<uint64_t>::max();
    for (const auto& c : t.candidates) m = std::min(m, c.bytes);
    r.min_bytes += m;
  }
  std::vector<size_t> idx(ts.size(), 0);
  while (true) {
    uint64_t bytes = 0;
    long double obj = 0;
    for (size_t t = 0; t < ts.size(); ++t) {
      bytes += ts[t].candidates[idx[t]].bytes;
      obj += static_cast<long double>(ts[t].params) * ts[t].candidates[idx[t]].error;
    }
    if (bytes <= budget) {
      r.feasible = true;
      r.best = std::min(r.best, static_cast<double>(obj));
    }
    size_t t = 0;
    while (t < ts.size() && ++idx[t] == ts[t].candidates.size()) idx[t++] = 0;
    if (t == ts.size()) break;
  }
  return r;
}

double PlanObjective(const std::vector<PlanTensor>& ts, const Plan& plan, uint64_t* bytes) {
  long double obj = 0;
  *bytes = 0;
  for (size_t t = 0; t < ts.size(); ++t) {
    const PlanCandidate& c = ts[t].candidates[plan.assignments[t].candidate];
    obj += static_cast<long double>(ts[t].params) * c.error;
    *bytes += c.bytes;
  }
  return static_cast<double>(obj);
}

bool Close(double a, double b) {
  return std::fabs(a - b) <= 1e-12 * std::max({1e-300, std::fabs(a), std::fabs(b)});
}

TEST_CASE("planner: equals brute force on random small instances", "[planner]") {
  std::mt19937_64 rng(2024);
  int instances = 0, budgets_checked = 0, infeasible_checked = 0;
  for (int seed = 0; seed < 300; ++seed) {
    const int T = 1 + seed % 8;
    const int K = 1 + (seed / 8) % 4;
    const auto ts = RandomInstance(rng, T, K);
    uint64_t max_bytes = 0;
    for (const auto& t : ts) {
      uint64_t m = 0;
      for (const auto& c : t.candidates) m = std::max(m, c.bytes);
      max_bytes += m;
    }
    const uint64_t min_bytes = BruteForce(ts, 0).min_bytes;
    ++instances;
    std::vector<uint64_t> budgets{min_bytes, max_bytes, max_bytes + 100};
    std::uniform_int_distribution<uint64_t> bd(min_bytes, max_bytes);
    for (int i = 0; i < 6; ++i) budgets.push_back(bd(rng));
    if (min_bytes > 0) budgets.push_back(min_bytes - 1);
    for (uint64_t budget : budgets) {
      const Brute br = BruteForce(ts, budget);
      PlanOptions opt;
      opt.budget_bytes = budget;
      opt.frontier_points = 5;
      auto plan = SolvePlan(ts, opt);
      INFO("seed " << seed << " T " << T << " K " << K << " budget " << budget << " min "
                   << min_bytes << " max " << max_bytes);
      if (!br.feasible) {
        REQUIRE(!plan.ok());
        CHECK(plan.error().kind == ErrorKind::kBadUsage);
        CHECK(plan.error().message.find(std::to_string(min_bytes) + " bytes") != std::string::npos);
        ++infeasible_checked;
        continue;
      }
      REQUIRE(plan.ok());
      uint64_t bytes = 0;
      const double obj = PlanObjective(ts, *plan, &bytes);
      CHECK(bytes == plan->bytes);
      CHECK(plan->bytes <= budget);
      INFO("plan " << plan->objective << " brute " << br.best << " bound " << plan->bound);
      CHECK(Close(obj, plan->objective));
      CHECK(Close(plan->objective, br.best));
      CHECK(plan->proven_optimal);
      CHECK(plan->bound <= br.best * (1 + 1e-12) + 1e-300);  // a valid lower bound
      CHECK(plan->gap >= 0);
      // Beats or equals every uniform assignment that fits.
      for (const UniformResult& u : plan->uniform)
        if (u.fits) CHECK(plan->objective <= u.objective * (1 + 1e-12) + 1e-300);
      // Frontier points are optimal at their own budgets (before monotone
      // smoothing, which cannot change an optimal sequence) and monotone.
      for (size_t i = 0; i < plan->frontier.size(); ++i) {
        const FrontierPoint& f = plan->frontier[i];
        CHECK(f.bytes <= f.budget);
        CHECK(Close(f.objective, BruteForce(ts, f.budget).best));
        if (i > 0) {
          CHECK(f.budget >= plan->frontier[i - 1].budget);
          CHECK(f.objective <= plan->frontier[i - 1].objective);
        }
      }
      ++budgets_checked;
    }
  }
  INFO("instances " << instances << " budgets " << budgets_checked << " infeasible "
                    << infeasible_checked);
  CHECK(budgets_checked > 2000);
  CHECK(infeasible_checked > 100);
}

TEST_CASE("planner: hand-made instance with a known answer", "[planner]") {
  // Two tensors of 100 params. A: q4 (50 B, err 0.01) or q8 (100 B, err 0.001).
  // B: q4 (50 B, err 0.02) or q8 (100 B, err 0.0001). Budget 150: upgrade B
  // (saves 100·0.0199 = 1.99) rather than A (saves 0.9): objective 1 + 0.01 = 1.01.
  std::vector<PlanTensor> ts{
      {"a", 100, {{DType::kQ4_K, DType::kQ4_K, 50, 0.01}, {DType::kQ8_0, DType::kQ8_0, 100, 0.001}}},
      {"b", 100, {{DType::kQ4_K, DType::kQ4_K, 50, 0.02}, {DType::kQ8_0, DType::kQ8_0, 100, 0.0001}}},
  };
  PlanOptions opt;
  opt.budget_bytes = 150;
  opt.frontier_points = 3;
  auto plan = SolvePlan(ts, opt);
  REQUIRE(plan.ok());
  CHECK(plan->assignments[0].type == DType::kQ4_K);
  CHECK(plan->assignments[1].type == DType::kQ8_0);
  CHECK(plan->objective == Approx(1.01));
  CHECK(plan->bytes == 150);
  CHECK(plan->bpw == Approx(6.0));
  CHECK(plan->target_bpw == Approx(6.0));
  // λ* is A's step: (1 − 0.1)/50 = 0.018 per byte; L = (1 + 0.9) + (0.01 + 1.8)
  // − 0.018·150 — the budget is exactly used, so the bound is tight.
  CHECK(plan->lambda == Approx(0.018));
  CHECK(plan->bound == Approx(1.01));
  CHECK(plan->gap == Approx(0).margin(1e-12));
  // Uniform: q4_k everywhere = 100 B, objective 3; q8_0 = 200 B (does not fit).
  REQUIRE(plan->uniform.size() == 2);
  CHECK(plan->uniform[0].type == DType::kQ4_K);
  CHECK(plan->uniform[0].objective == Approx(3.0));
  CHECK(plan->uniform[0].fits);
  CHECK(!plan->uniform[1].fits);
  CHECK(plan->best_uniform == 0);
  CHECK(plan->smallest_uniform_at_least == 1);
  CHECK(plan->frontier.front().budget == 100);
  CHECK(plan->frontier.back().budget == 200);
  CHECK(plan->frontier.back().objective == Approx(0.11));

  // Budget 149: only q4_k everywhere fits; the fractional LP bound is below.
  opt.budget_bytes = 149;
  auto tight = SolvePlan(ts, opt);
  REQUIRE(tight.ok());
  CHECK(tight->objective == Approx(3.0));
  CHECK(tight->bound < 3.0);
  CHECK(tight->bound == Approx(3.0 - 1.99 * 49.0 / 50.0));  // LP: 49/50 of B's step
  CHECK(tight->proven_optimal);
}

TEST_CASE("planner: infeasible budget names the minimum size", "[planner]") {
  std::vector<PlanTensor> ts{
      {"a", 256, {{DType::kQ2_K, DType::kQ2_K, 84, 0.1}, {DType::kQ4_K, DType::kQ4_K, 144, 0.01}}},
      {"norm", 256, {{DType::kF32, DType::kF32, 1024, 0.0}}},
  };
  PlanOptions opt;
  opt.budget_bytes = 1107;
  auto plan = SolvePlan(ts, opt);
  REQUIRE(!plan.ok());
  CHECK(plan.error().kind == ErrorKind::kBadUsage);
  INFO(plan.error().message);
  CHECK(plan.error().message.find("1108 bytes") != std::string::npos);
  CHECK(plan.error().message.find("smallest achievable") != std::string::npos);
  opt.budget_bytes = 1108;
  CHECK(SolvePlan(ts, opt).ok());
}

TEST_CASE("planner: bad input is rejected", "[planner]") {
  PlanOptions opt;
  opt.budget_bytes = 1000;
  std::vector<PlanTensor> none{{"a", 10, {}}};
  CHECK(!SolvePlan(none, opt).ok());
  for (double bad : {-1.0, std::numeric_limits<double>::infinity(),
                     std::numeric_limits<double>::quiet_NaN()}) {
    std::vector<PlanTensor> ts{{"a", 10, {{DType::kQ4_K, DType::kQ4_K, 10, bad}}}};
    auto r = SolvePlan(ts, opt);
    REQUIRE(!r.ok());
    CHECK(r.error().kind == ErrorKind::kBadInput);
    CHECK(r.error().message.find("'a'") != std::string::npos);
  }
  std::vector<PlanTensor> ok{{"a", 10, {{DType::kQ4_K, DType::kQ4_K, 10, 0.1}}}};
  opt.frontier_points = 1;
  CHECK(!SolvePlan(ok, opt).ok());
  CHECK(!BudgetForBpw(0, 100).ok());
  CHECK(!BudgetForBpw(std::numeric_limits<double>::quiet_NaN(), 100).ok());
  CHECK(*BudgetForBpw(4.5, 1000) == 562);  // floor(4500/8)
  CHECK(*BudgetForBpw(2.0, 671'000'000'000ull) == 167'750'000'000ull);
}

std::vector<PlanTensor> ThreeTypeModel() {
  auto t = [](std::string name, uint64_t n, double scale) {
    PlanTensor pt{std::move(name), n, {}};
    for (DType d : {DType::kQ2_K, DType::kQ4_K, DType::kQ6_K, DType::kQ8_0}) {
      const double bpw = GetDType(d).bits_per_weight();
      pt.candidates.push_back({d, d, static_cast<uint64_t>(bpw * n / 8), scale * std::ldexp(1.0, -2 * static_cast<int>(bpw))});
    }
    return pt;
  };
  return {t("token_embd.weight", 4096, 1.0), t("blk.0.attn_q.weight", 8192, 3.0),
          t("blk.0.ffn_down.weight", 16384, 2.0), t("blk.1.ffn_down.weight", 16384, 1.0),
          PlanTensor{"blk.0.attn_norm.weight", 64, {{DType::kF32, DType::kF32, 256, 0.0}}},
          t("output.weight", 4096, 0.5)};
}

TEST_CASE("planner: pins and floors", "[planner]") {
  auto pins = ParseRecipe("^token_embd\\.=q8_0\n^output\\.weight$=q6_k\nattn_norm=q4_k\n", "keep");
  auto floors = ParseRecipe("ffn_down=q4_k\ntoken_embd=q8_0\n", "min-type");
  REQUIRE(pins.ok());
  REQUIRE(floors.ok());
  auto ts = ThreeTypeModel();
  REQUIRE(ApplyPinsAndFloors(ts, *pins, *floors).ok());
  REQUIRE(ts[0].candidates.size() == 1);
  CHECK(ts[0].candidates[0].type == DType::kQ8_0);
  CHECK(ts[1].candidates.size() == 4);  // no rule
  REQUIRE(ts[2].candidates.size() == 3);  // q2_k (2.625 bpw) dropped
  for (const auto& c : ts[2].candidates) CHECK(GetDType(c.type).bits_per_weight() >= 4.5);
  CHECK(ts[4].candidates.size() == 1);  // single-candidate tensors are left alone
  CHECK(ts[4].candidates[0].type == DType::kF32);
  REQUIRE(ts[5].candidates.size() == 1);
  CHECK(ts[5].candidates[0].type == DType::kQ6_K);

  // The plan respects them at every budget, and the uniform rows use each
  // tensor's own fallback where the type was filtered out.
  uint64_t min_bytes = 0;
  for (const auto& t : ts) {
    uint64_t m = std::numeric_limits<uint64_t>::max();
    for (const auto& c : t.candidates) m = std::min(m, c.bytes);
    min_bytes += m;
  }
  for (uint64_t extra : {0ull, 2000ull, 8000ull, 100000ull}) {
    PlanOptions opt;
    opt.budget_bytes = min_bytes + extra;
    auto plan = SolvePlan(ts, opt);
    REQUIRE(plan.ok());
    CHECK(plan->assignments[0].type == DType::kQ8_0);
    CHECK(plan->assignments[5].type == DType::kQ6_K);
    CHECK(GetDType(plan->assignments[2].type).bits_per_weight() >= 4.5);
    CHECK(GetDType(plan->assignments[3].type).bits_per_weight() >= 4.5);
    CHECK(Close(plan->objective, BruteForce(ts, opt.budget_bytes).best));
    for (const auto& u : plan->uniform)
      if (u.type == DType::kQ2_K) CHECK(u.fallbacks == 5);  // all but blk.0.attn_q
  }

  // A pin to a type that was not measured, and a floor that leaves nothing.
  auto bad_pin = ParseRecipe("attn_q=iq2_xxs\n", "keep");
  auto ts2 = ThreeTypeModel();
  auto st = ApplyPinsAndFloors(ts2, *bad_pin, {});
  REQUIRE(!st.ok());
  INFO(st.error().message);
  CHECK(st.error().message.find("blk.0.attn_q.weight") != std::string::npos);
  CHECK(st.error().message.find("iq2_xxs") != std::string::npos);
  CHECK(st.error().message.find("q2_k, q4_k, q6_k, q8_0") != std::string::npos);
  auto high_floor = ParseRecipe("attn_q=bf16\n", "min-type");
  auto ts3 = ThreeTypeModel();
  auto st2 = ApplyPinsAndFloors(ts3, {}, *high_floor);
  REQUIRE(!st2.ok());
  CHECK(st2.error().message.find("no candidate") != std::string::npos);

  // A pin matches on the requested type, so a fallback candidate can be pinned.
  std::vector<PlanTensor> fb{{"odd", 288,
                              {{DType::kQ5_0, DType::kQ4_K, 180, 0.01},
                               {DType::kQ8_0, DType::kQ8_0, 306, 0.001}}}};
  auto pin_q4k = ParseRecipe("odd=q4_k\n", "keep");
  REQUIRE(ApplyPinsAndFloors(fb, *pin_q4k, {}).ok());
  REQUIRE(fb[0].candidates.size() == 1);
  CHECK(fb[0].candidates[0].type == DType::kQ5_0);
}

TEST_CASE("planner: deterministic across runs and thread counts", "[planner]") {
  std::mt19937_64 rng(5);
  const auto ts = RandomInstance(rng, 300, 6);
  uint64_t lo = 0, hi = 0;
  for (const auto& t : ts) {
    uint64_t a = std::numeric_limits<uint64_t>::max(), b = 0;
    for (const auto& c : t.candidates) {
      a = std::min(a, c.bytes);
      b = std::max(b, c.bytes);
    }
    lo += a;
    hi += b;
  }
  auto same = [](double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; };
  PlanOptions opt;
  opt.budget_bytes = lo + (hi - lo) / 3;
  opt.frontier_points = 20;
  opt.threads = 1;
  auto ref = SolvePlan(ts, opt);
  REQUIRE(ref.ok());
  for (int threads : {1, 2, 3, 8}) {
    opt.threads = threads;
    auto p = SolvePlan(ts, opt);
    REQUIRE(p.ok());
    INFO("threads " << threads);
    CHECK(FormatRecipe(*p) == FormatRecipe(*ref));
    CHECK(PlanToJson(*p).dump() == PlanToJson(*ref).dump());
    CHECK(same(p->objective, ref->objective));
    CHECK(same(p->bound, ref->bound));
    for (size_t t = 0; t < ts.size(); ++t) CHECK(p->assignments[t].candidate == ref->assignments[t].candidate);
    REQUIRE(p->frontier.size() == ref->frontier.size());
    for (size_t i = 0; i < p->frontier.size(); ++i) {
      CHECK(p->frontier[i].bytes == ref->frontier[i].bytes);
      CHECK(same(p->frontier[i].objective, ref->frontier[i].objective));
    }
  }
  // Reversing the candidate order of every tensor changes no objective.
  auto rev = ts;
  for (auto& t : rev) std::reverse(t.candidates.begin(), t.candidates.end());
  opt.threads = 1;
  auto r = SolvePlan(rev, opt);
  REQUIRE(r.ok());
  CHECK(Close(r->objective, ref->objective));
}

TEST_CASE("planner: a DP state cap still gives a feasible plan with an honest gap", "[planner]") {
  std::mt19937_64 rng(77);
  int capped_seen = 0;
  for (int seed = 0; seed < 10; ++seed) {
    const auto ts = RandomInstance(rng, 400, 6);
    uint64_t lo = 0, hi = 0;
    for (const auto& t : ts) {
      uint64_t a = std::numeric_limits<uint64_t>::max(), b = 0;
      for (const auto& c : t.candidates) {
        a = std::min(a, c.bytes);
        b = std::max(b, c.bytes);
      }
      lo += a;
      hi += b;
    }
    PlanOptions full;
    full.budget_bytes = lo + (hi - lo) * (seed + 1) / 12;
    full.frontier_points = 0;
    PlanOptions tiny = full;
    tiny.max_dp_states = 0;  // 64 states per layer: a narrow beam
    auto a = SolvePlan(ts, full);
    auto b = SolvePlan(ts, tiny);
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    INFO("seed " << seed << " full " << a->objective << " capped " << b->objective);
    CHECK(b->bytes <= full.budget_bytes);
    CHECK(b->bound == a->bound);  // the bound does not depend on the repair
    CHECK(b->objective >= a->objective * (1 - 1e-12));
    if (a->proven_optimal) CHECK(b->objective >= a->objective);
    CHECK(b->gap == Approx(std::max(0.0, b->objective - b->bound)));
    if (!b->proven_optimal) ++capped_seen;
  }
  CHECK(capped_seen > 0);  // the cap path was exercised
}

// A synthetic DeepSeek-like model: 2,000 tensors of very different sizes, 12
// candidate types each, errors ~ 2^(−2·bpw) times a per-tensor sensitivity.
std::vector<PlanTensor> BigInstance(int T, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u01(0.0, 1.0);
  const DType types[12] = {DType::kIQ2_XXS, DType::kIQ2_XS, DType::kQ2_K, DType::kIQ3_XXS,
                           DType::kQ3_K, DType::kIQ4_XS, DType::kQ4_K, DType::kQ5_K,
                           DType::kQ6_K, DType::kQ8_0, DType::kBF16, DType::kF32};
  std::vector<PlanTensor> ts(T);
  for (int t = 0; t < T; ++t) {
    ts[t].name = "blk." + std::to_string(t / 20) + ".t" + std::to_string(t % 20) + ".weight";
    const int kind = t % 20;
    ts[t].params = kind == 19 ? 7168 : uint64_t{256} * (kind < 3 ? 7 * 1024 * 1024 : 1536 * (1 + kind % 5) * 28);
    if (kind == 19) {  // a norm: kept in f32
      ts[t].candidates = {{DType::kF32, DType::kF32, 7168 * 4, 0.0}};
      continue;
    }
    const double sens = std::exp(3 * (u01(rng) - 0.5));
    for (DType d : types) {
      const double bpw = GetDType(d).bits_per_weight();
      const double err = sens * std::pow(2.0, -2 * bpw) * (0.8 + 0.4 * u01(rng));
      ts[t].candidates.push_back({d, d, static_cast<uint64_t>(bpw * ts[t].params / 8), err});
    }
  }
  return ts;
}

TEST_CASE("planner: 2,000 tensors x 12 types solve with a tiny gap", "[planner]") {
  const auto ts = BigInstance(2000, 11);
  uint64_t params = 0;
  for (const auto& t : ts) params += t.params;
  for (double bpw : {2.2, 3.0, 4.1, 5.5, 7.0}) {
    PlanOptions opt;
    opt.budget_bytes = *BudgetForBpw(bpw, params);
    opt.frontier_points = 0;
    auto plan = SolvePlan(ts, opt);
    REQUIRE(plan.ok());
    INFO("bpw " << bpw << " objective " << plan->objective << " bound " << plan->bound
                << " rel_gap " << plan->rel_gap << " free " << plan->free_tensors << " states "
                << plan->dp_states << " optimal " << plan->proven_optimal);
    CHECK(plan->bytes <= opt.budget_bytes);
    CHECK(plan->rel_gap <= 1e-3);
    CHECK(plan->bound <= plan->objective);
    for (const auto& u : plan->uniform)
      if (u.fits) CHECK(plan->objective <= u.objective);
  }
}

TEST_CASE("planner: recipe and JSON output", "[planner]") {
  auto ts = ThreeTypeModel();
  PlanOptions opt;
  opt.budget_bytes = 40000;
  opt.frontier_points = 4;
  auto plan = SolvePlan(ts, opt);
  REQUIRE(plan.ok());
  const std::string recipe = FormatRecipe(*plan);
  CHECK(recipe.find("# target:    40000 bytes") != std::string::npos);
  CHECK(recipe.find("^blk\\.0\\.attn_q\\.weight$=") != std::string::npos);
  auto rules = ParseRecipe(recipe, "plan.txt");
  REQUIRE(rules.ok());
  REQUIRE(rules->size() == ts.size());
  for (size_t t = 0; t < ts.size(); ++t) {
    const RecipeRule* r = FirstMatch(*rules, ts[t].name);
    REQUIRE(r != nullptr);
    CHECK(r->type == plan->assignments[t].type);
    CHECK(r == &(*rules)[t]);  // each name is matched by its own line only
  }
  const nlohmann::json j = PlanToJson(*plan);
  for (const char* key : {"target", "achieved", "objective", "bound", "assignments", "frontier"})
    CHECK(j.contains(key));
  CHECK(j["target"]["bytes"] == 40000);
  CHECK(j["achieved"]["bytes"] == plan->bytes);
  CHECK(j["assignments"].size() == ts.size());
  CHECK(j["assignments"]["blk.0.attn_norm.weight"] == "f32");
  CHECK(j["frontier"].size() == 4);
  CHECK(j["frontier"][0].contains("bytes"));
  CHECK(j["frontier"][0].contains("objective"));
}

}  // namespace
}  // namespace bitsmith

namespace bitsmith {
namespace {

TEST_CASE("planner: input from a report JSON", "[planner]") {
  const auto report = nlohmann::json::parse(R"({
    "model": "m", "params": 2304, "types": ["q4_k", "q8_0"],
    "tensors": [
      {"name": "blk.0.attn_q.weight", "shape": [8, 256], "params": 2048, "source_dtype": "bf16",
       "candidates": {
         "q4_k": {"type": "q4_k", "bytes": 1152, "bpw": 4.5, "rmse": 0.1, "rel_rmse": 0.1,
                  "snr_db": 20, "max_abs_err": 0.3, "cosine": 0.99, "imatrix_rel_rmse": 0.05},
         "q8_0": {"type": "q8_0", "bytes": 2176, "bpw": 8.5, "rmse": 0.01, "rel_rmse": 0.01,
                  "snr_db": 40, "max_abs_err": 0.03, "cosine": 0.9999, "imatrix_rel_rmse": 0.004}}},
      {"name": "blk.0.odd.weight", "shape": [1, 288], "params": 288, "source_dtype": "bf16",
       "candidates": {
         "q4_k": {"type": "q5_0", "bytes": 198, "bpw": 5.5, "rel_rmse": 0.03, "imatrix_rel_rmse": null},
         "q8_0": {"type": "q8_0", "bytes": 306, "bpw": 8.5, "rel_rmse": 0.002}}},
      {"name": "blk.0.attn_norm.weight", "shape": [256], "params": 256, "source_dtype": "f32",
       "candidates": {"f32": {"type": "f32", "bytes": 1024, "bpw": 32, "rel_rmse": 0, "snr_db": null}}}
    ]})");
  auto ts = PlanTensorsFromReport(report, false);
  REQUIRE(ts.ok());
  REQUIRE(ts->size() == 3);
  CHECK((*ts)[0].params == 2048);
  REQUIRE((*ts)[0].candidates.size() == 2);
  CHECK((*ts)[0].candidates[0].requested == DType::kQ4_K);
  CHECK((*ts)[0].candidates[0].error == Approx(0.01));  // rel_rmse²
  CHECK((*ts)[1].candidates[0].type == DType::kQ5_0);   // fallback kept
  CHECK((*ts)[1].candidates[0].requested == DType::kQ4_K);
  CHECK((*ts)[2].candidates.size() == 1);

  auto ti = PlanTensorsFromReport(report, true);
  REQUIRE(ti.ok());
  CHECK((*ti)[0].candidates[0].error == Approx(0.0025));  // imatrix_rel_rmse²
  CHECK((*ti)[1].candidates[0].error == Approx(0.0009));  // no imatrix value: rel_rmse²

  const DType only_q8[] = {DType::kQ8_0};
  auto tq = PlanTensorsFromReport(report, false, only_q8);
  REQUIRE(tq.ok());
  CHECK((*tq)[0].candidates.size() == 1);
  CHECK((*tq)[2].candidates.size() == 1);  // f32 kept: nothing else to keep

  PlanOptions opt;
  opt.budget_bytes = 1152 + 306 + 1024;
  auto plan = SolvePlan(*ts, opt);
  REQUIRE(plan.ok());
  CHECK(plan->assignments[0].type == DType::kQ4_K);
  CHECK(plan->assignments[1].type == DType::kQ8_0);

  // Bad documents.
  CHECK(!PlanTensorsFromReport(nlohmann::json::array(), false).ok());
  auto no_imat = nlohmann::json::parse(R"({"tensors": [{"name": "a", "params": 1,
      "candidates": {"q8_0": {"bytes": 2, "rel_rmse": 0.1}}}]})");
  REQUIRE(PlanTensorsFromReport(no_imat, false).ok());
  CHECK(!PlanTensorsFromReport(no_imat, true).ok());
  for (const char* bad : {
           R"({"tensors": [{"params": 1, "candidates": {"q8_0": {"bytes": 2, "rel_rmse": 0.1}}}]})",
           R"({"tensors": [{"name": "a", "params": -1, "candidates": {"q8_0": {"bytes": 2, "rel_rmse": 0.1}}}]})",
           R"({"tensors": [{"name": "a", "params": 1, "candidates": {}}]})",
           R"({"tensors": [{"name": "a", "params": 1, "candidates": {"q9_9": {"bytes": 2, "rel_rmse": 0.1}}}]})",
           R"({"tensors": [{"name": "a", "params": 1, "candidates": {"q8_0": {"rel_rmse": 0.1}}}]})",
           R"({"tensors": [{"name": "a", "params": 1, "candidates": {"q8_0": {"bytes": 2}}}]})",
           R"({"tensors": [{"name": "a", "params": 1, "candidates": {"q8_0": {"bytes": 2, "rel_rmse": "x"}}}]})",
       }) {
    auto r = PlanTensorsFromReport(nlohmann::json::parse(bad), false);
    INFO(bad);
    REQUIRE(!r.ok());
    CHECK(r.error().kind == ErrorKind::kBadInput);
  }
  // A null rel_rmse (+inf) reaches SolvePlan, which names the tensor.
  auto inf = PlanTensorsFromReport(nlohmann::json::parse(R"({"tensors": [{"name": "z", "params": 4,
      "candidates": {"q8_0": {"bytes": 2, "rel_rmse": null}}}]})"), false);
  REQUIRE(inf.ok());
  auto r = SolvePlan(*inf, opt);
  REQUIRE(!r.ok());
  CHECK(r.error().message.find("'z'") != std::string::npos);
}

}  // namespace
}  // namespace bitsmith
