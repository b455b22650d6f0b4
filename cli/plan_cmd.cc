// `bitsmith plan IN|--from-report FILE (--target-bpw X | --target-size SIZE)
// [--types LIST] [--imatrix FILE] [--keep REGEX=TYPE] [--min-type REGEX=TYPE]
// [-o recipe.txt] [--json [FILE]]`: one type per tensor, least total error within
// a size budget (convert/planner.h), from a checkpoint (measured here with
// convert/report.h) or from a `report --json` document.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include <fmt/format.h>

#include "cli/commands.h"
#include "convert/file_io.h"
#include "convert/planner.h"
#include "convert/recipe.h"
#include "convert/report.h"

namespace bitsmith::cli {
namespace {

struct Options {
  std::string path;
  std::string from_report;
  double target_bpw = 0;
  std::string target_size;
  std::string types;
  std::string imatrix;
  std::vector<std::string> keep, min_type;
  std::string recipe_out;
  int threads = 0;
  int frontier = 50;
};

// The default --types: the GGUF block types a recipe can carry into `convert`,
// q2_k..q8_0 plus the i-quants bitsmith encodes (those that need an imatrix only
// when one is given), by increasing bits per weight.
std::vector<DType> DefaultPlanTypes(bool have_imatrix) {
  std::vector<DType> out = {DType::kQ2_K, DType::kQ3_K, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K, DType::kQ8_0};
  for (DType t : {DType::kIQ1_S, DType::kIQ1_M, DType::kIQ2_XXS, DType::kIQ2_XS, DType::kIQ2_S, DType::kIQ3_XXS,
                  DType::kIQ3_S, DType::kIQ4_XS, DType::kIQ4_NL}) {
    if (!GetBlockCodec(t)) continue;
    if (GetDType(t).requires_imatrix && !have_imatrix) continue;
    out.push_back(t);
  }
  std::stable_sort(out.begin(), out.end(), [](DType a, DType b) {
    return GetDType(a).bits_per_weight() < GetDType(b).bits_per_weight();
  });
  return out;
}

std::string TypeList(const std::vector<DType>& v) {
  std::string s;
  for (DType t : v) s += (s.empty() ? "" : ",") + std::string(GetDType(t).name);
  return s;
}

double GiB(uint64_t b) { return static_cast<double>(b) / 1073741824.0; }

Result<nlohmann::json> ReadJsonFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return MakeError(ErrorKind::kBadUsage, "--from-report {}: cannot read", path);
  std::stringstream ss;
  ss << f.rdbuf();
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded()) return MakeError(ErrorKind::kBadInput, "--from-report {}: not valid JSON", path);
  return j;
}

bool ReportHasImatrix(const nlohmann::json& j) {
  if (!j.contains("tensors") || !j["tensors"].is_array()) return false;
  for (const auto& t : j["tensors"]) {
    if (!t.is_object() || !t.contains("candidates") || !t["candidates"].is_object()) continue;
    for (const auto& [k, c] : t["candidates"].items())
      if (c.is_object() && c.contains("imatrix_rel_rmse") && c["imatrix_rel_rmse"].is_number()) return true;
  }
  return false;
}

void PrintHuman(const Plan& p, const std::vector<PlanTensor>& tensors, const std::string& source, bool imatrix,
                const std::string& recipe_out) {
  const double params = static_cast<double>(p.total_params);
  auto bpw = [&](uint64_t b) { return params > 0 ? 8.0 * static_cast<double>(b) / params : 0.0; };
  fmt::print("plan for {}\n", source);
  fmt::print("  {:<11}{} bytes ({:.3f} GiB, {:.3f} bpw) over {} parameters\n", "target",
             WithSeparators(p.budget_bytes), GiB(p.budget_bytes), p.target_bpw, WithSeparators(p.total_params));
  fmt::print("  {:<11}{} bytes ({:.3f} GiB, {:.3f} bpw)\n", "achieved", WithSeparators(p.bytes), GiB(p.bytes), p.bpw);
  fmt::print("  {:<11}{:.6e} (sum of params x {}; mean {:.3e}, SNR {:.2f} dB)\n", "error", p.objective,
             imatrix ? "imatrix_rel_rmse^2" : "rel_rmse^2", p.MeanError(),
             p.MeanError() > 0 ? -10 * std::log10(p.MeanError()) : INFINITY);
  fmt::print("  {:<11}{:.6e} (Lagrangian); gap {:.3e} ({:.2e} relative): {}\n", "bound", p.bound, p.gap,
             p.rel_gap, p.proven_optimal ? "proven optimal" : "not proven optimal");

  // 1. Parameters per stored type.
  std::map<std::string, std::pair<uint64_t, std::pair<uint64_t, size_t>>> by_type;  // params, bytes, tensors
  for (const PlanAssignment& a : p.assignments) {
    auto& e = by_type[std::string(GetDType(a.type).name)];
    e.first += a.params;
    e.second.first += a.bytes;
    ++e.second.second;
  }
  std::vector<std::pair<std::string, std::pair<uint64_t, std::pair<uint64_t, size_t>>>> rows(by_type.begin(),
                                                                                              by_type.end());
  std::stable_sort(rows.begin(), rows.end(), [](auto& a, auto& b) { return a.second.first > b.second.first; });
  fmt::print("\n  {:<8} {:>9} {:>19} {:>8} {:>19} {:>8}\n", "type", "tensors", "parameters", "share", "bytes", "bpw");
  for (const auto& [name, e] : rows)
    fmt::print("  {:<8} {:>9} {:>19} {:>7.2f}% {:>19} {:>8.3f}\n", name, WithSeparators(e.second.second),
               WithSeparators(e.first), params > 0 ? 100.0 * static_cast<double>(e.first) / params : 0.0,
               WithSeparators(e.second.first),
               e.first ? 8.0 * static_cast<double>(e.second.first) / static_cast<double>(e.first) : 0.0);

  // 2. Uniform comparison.
  fmt::print("\nuniform assignments (every tensor at one type; error = sum of params x mse_rel)\n");
  fmt::print("  {:<8} {:>19} {:>8} {:>14} {:>10} {:>6}\n", "type", "bytes", "bpw", "error", "vs plan", "fits");
  for (const UniformResult& u : p.uniform)
    fmt::print("  {:<8} {:>19} {:>8.3f} {:>14.6e} {:>10} {:>6}\n", GetDType(u.type).name, WithSeparators(u.bytes),
               bpw(u.bytes), u.objective,
               p.objective > 0 ? fmt::format("{:.2f}x", u.objective / p.objective) : "-", u.fits ? "yes" : "no");
  if (p.best_uniform >= 0) {
    const UniformResult& u = p.uniform[static_cast<size_t>(p.best_uniform)];
    fmt::print("  best uniform within the target: {} ({:.3f} bpw), error {:.4e} = {:.2f}x the plan's\n",
               GetDType(u.type).name, bpw(u.bytes), u.objective, p.objective > 0 ? u.objective / p.objective : 0.0);
  } else {
    fmt::print("  no uniform type fits the target\n");
  }
  if (p.smallest_uniform_at_least >= 0) {
    const UniformResult& u = p.uniform[static_cast<size_t>(p.smallest_uniform_at_least)];
    fmt::print("  smallest uniform at least as large as the plan: {} ({:.3f} bpw), error {:.4e} = {:.2f}x\n",
               GetDType(u.type).name, bpw(u.bytes), u.objective, p.objective > 0 ? u.objective / p.objective : 0.0);
  }

  // 3. Frontier (at most 12 rows shown; --json has every point).
  if (!p.frontier.empty()) {
    fmt::print("\nfrontier: the least error found at each size (--json lists all {} points)\n", p.frontier.size());
    fmt::print("  {:>19} {:>8} {:>14} {:>9}  {}\n", "bytes", "bpw", "error", "SNR dB", "error saved per extra MiB");
    const size_t n = p.frontier.size(), shown = std::min<size_t>(n, 12);
    size_t prev = SIZE_MAX;
    for (size_t s = 0; s < shown; ++s) {
      const size_t i = shown == 1 ? 0 : s * (n - 1) / (shown - 1);
      const FrontierPoint& f = p.frontier[i];
      const double mean = params > 0 ? f.objective / params : 0.0;
      std::string slope;
      if (prev != SIZE_MAX && f.bytes > p.frontier[prev].bytes)
        slope = fmt::format("{:.3e}", (p.frontier[prev].objective - f.objective) /
                                          (static_cast<double>(f.bytes - p.frontier[prev].bytes) / 1048576.0));
      fmt::print("  {:>19} {:>8.3f} {:>14.6e} {:>9.2f}  {}\n", WithSeparators(f.bytes), bpw(f.bytes), f.objective,
                 mean > 0 ? -10 * std::log10(mean) : INFINITY, slope);
      prev = i;
    }
  }
  size_t kept = 0;
  for (const PlanTensor& t : tensors) kept += t.candidates.size() == 1;
  fmt::print("\n  {} tensors, {} with a single candidate (1-D, kept or pinned)\n", tensors.size(), kept);
  if (recipe_out.empty()) fmt::print("  -o FILE writes the recipe for `convert --recipe`\n");
  else fmt::print("  recipe: {}\n", recipe_out);
}

Runner Setup(CLI::App& sub) {
  auto opt = std::make_shared<Options>();
  auto json = std::make_shared<JsonOut>();
  sub.add_option("IN", opt->path, "A checkpoint (measured here, like `report`); or use --from-report");
  sub.add_option("--from-report", opt->from_report, "Plan from a `bitsmith report --json` file instead of measuring");
  auto* bpw_opt = sub.add_option("--target-bpw", opt->target_bpw,
                                 "Budget in bits per weight over every tensor (1-D f32 tensors and block scales count)");
  auto* size_opt = sub.add_option("--target-size", opt->target_size,
                                  "Budget in bytes of tensor data: 200GiB, 180GB, or a number of bytes");
  sub.add_option("--types", opt->types,
                 "Candidate types (default: q2_k,q3_k,q4_k,q5_k,q6_k,q8_0 plus the i-quants bitsmith encodes, "
                 "iq1_s/iq2_xxs/iq2_xs only with --imatrix; with --from-report: the block types it measured)");
  sub.add_option("--imatrix", opt->imatrix,
                 "Importance matrix (.dat or GGUF): measure and minimise imatrix_rel_rmse^2 (with --from-report, "
                 "the report's imatrix_rel_rmse is used when it has one)");
  sub.add_option("--keep", opt->keep, "REGEX=TYPE: pin matching tensors to TYPE (repeatable, first match wins)");
  sub.add_option("--min-type", opt->min_type,
                 "REGEX=TYPE: matching tensors get at least TYPE's bits per weight (repeatable)");
  sub.add_option("-o,--output", opt->recipe_out, "Write the recipe (^name$=type lines) for `convert --recipe`");
  sub.add_option("--threads", opt->threads, "Worker threads (default: all cores); the plan never depends on it");
  sub.add_option("--frontier-points", opt->frontier, "Budgets swept for the size/error frontier (default 50; 0: none)");
  json->Add(sub);
  sub.footer(
      "Minimises sum_t params_t x rel_rmse_t^2 (imatrix_rel_rmse^2 with an imatrix) subject to total tensor\n"
      "bytes <= target: a multiple-choice knapsack solved by Lagrangian relaxation over each tensor's convex\n"
      "hull, then an exact reduced-cost DP repair; the gap to the Lagrangian bound is printed.\n"
      "JSON: {target: {bytes, bpw}, achieved: {bytes, bpw}, params, objective, bound, gap, proven_optimal,\n"
      "assignments: {NAME: TYPE}, frontier: [{budget, bytes, objective, bound}], uniform: [...]}.");
  return [opt, json, bpw_opt, size_opt]() -> int {
    // 1. Arguments.
    if (opt->path.empty() == opt->from_report.empty())
      return ReportError(MakeError(ErrorKind::kBadUsage, "give either IN (a checkpoint) or --from-report FILE"));
    if ((bpw_opt->count() > 0) == (size_opt->count() > 0))
      return ReportError(MakeError(ErrorKind::kBadUsage, "give exactly one of --target-bpw X and --target-size SIZE"));
    if (opt->frontier < 0 || opt->frontier == 1)
      return ReportError(MakeError(ErrorKind::kBadUsage, "--frontier-points {}: expected 0 or at least 2", opt->frontier));
    std::vector<DType> types;
    if (!opt->types.empty()) {
      auto t = ParseTypeList(opt->types, "--types");
      if (!t.ok()) return ReportError(t.error());
      types = std::move(*t);
    }
    std::vector<RecipeRule> pins, floors;
    for (const std::string& s : opt->keep) {
      auto r = ParseRecipeRule(s, "--keep");
      if (!r.ok()) return ReportError(Error{ErrorKind::kBadUsage, r.error().message});
      pins.push_back(std::move(*r));
    }
    for (const std::string& s : opt->min_type) {
      auto r = ParseRecipeRule(s, "--min-type");
      if (!r.ok()) return ReportError(Error{ErrorKind::kBadUsage, r.error().message});
      floors.push_back(std::move(*r));
    }

    // 2. The measurements: a report JSON, read or computed.
    nlohmann::json report;
    bool use_imatrix = false;
    std::string source;
    if (!opt->from_report.empty()) {
      auto j = ReadJsonFile(opt->from_report);
      if (!j.ok()) return ReportError(j.error());
      report = std::move(*j);
      use_imatrix = ReportHasImatrix(report);
      if (!opt->imatrix.empty() && !use_imatrix)
        return ReportError(MakeError(ErrorKind::kBadUsage,
                                     "--imatrix with --from-report: the report has no imatrix_rel_rmse (measure it "
                                     "with `report --imatrix`)"));
      source = opt->from_report;
      // Default: the block types the report measured (a recipe carries them into convert).
      if (types.empty() && report.contains("types") && report["types"].is_array())
        for (const auto& jt : report["types"])
          if (jt.is_string())
            if (std::optional<DType> t = FindDType(jt.get<std::string>()); t && GetDType(*t).is_block())
              types.push_back(*t);
      if (types.empty()) types = DefaultPlanTypes(use_imatrix);
    } else {
      if (types.empty()) types = DefaultPlanTypes(!opt->imatrix.empty());
      ReportOptions ro;
      ro.types = types;
      ro.imatrix = opt->imatrix;
      ro.threads = opt->threads;
      auto rep = MeasureReport(opt->path, ro);
      if (!rep.ok()) return ReportError(rep.error());
      for (const std::string& w : rep->warnings) Warn(w);
      report = ReportToJson(*rep);
      use_imatrix = !opt->imatrix.empty();
      source = opt->path;
    }
    auto tensors = PlanTensorsFromReport(report, use_imatrix, types);
    if (!tensors.ok()) return ReportError(tensors.error());
    if (Status s = ApplyPinsAndFloors(*tensors, pins, floors); !s.ok()) return ReportError(s.error());

    // 3. Solve.
    uint64_t total_params = 0;
    for (const PlanTensor& t : *tensors) total_params += t.params;
    PlanOptions po;
    po.threads = opt->threads;
    po.frontier_points = opt->frontier;
    if (bpw_opt->count() > 0) {
      auto b = BudgetForBpw(opt->target_bpw, total_params);
      if (!b.ok()) return ReportError(b.error());
      po.budget_bytes = *b;
    } else {
      auto b = ParseSize(opt->target_size);
      if (!b || *b == 0)
        return ReportError(MakeError(ErrorKind::kBadUsage, "--target-size '{}': expected a size such as 200GiB, "
                                                           "180GB or a number of bytes", opt->target_size));
      po.budget_bytes = *b;
    }
    auto plan = SolvePlan(*tensors, po);
    if (!plan.ok()) return ReportError(plan.error());

    // 4. Outputs.
    if (!opt->recipe_out.empty())
      if (Status s = WriteFileAtomic(opt->recipe_out, FormatRecipe(*plan)); !s.ok()) return ReportError(s.error());
    if (json->active()) {
      nlohmann::json j = PlanToJson(*plan);
      j["types"] = nlohmann::json::array();
      for (DType t : types) j["types"].push_back(std::string(GetDType(t).name));
      j["error"] = use_imatrix ? "imatrix_rel_rmse^2" : "rel_rmse^2";
      if (Status s = json->Write(j); !s.ok()) return ReportError(s.error());
      if (json->to_stdout()) return kExitOk;
    }
    fmt::print("types: {}\n", TypeList(types).substr(0, 93));
    PrintHuman(*plan, *tensors, source, use_imatrix, opt->recipe_out);
    return kExitOk;
  };
}

BITSMITH_COMMAND("plan", "Mixed-bit plan: one type per tensor, least total error within a size budget", 26, Setup);

}  // namespace
}  // namespace bitsmith::cli
