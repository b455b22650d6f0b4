// `bitsmith report IN [--types LIST] [--imatrix FILE] [--tensors REGEX] [--threads N]
// [--all] [--json [FILE]] [--csv FILE] [--html FILE]`: what every tensor costs in
// each candidate format, in bytes and in accuracy (convert/report.h).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <thread>
#include <map>
#include <memory>

#include <fmt/format.h>

#include "cli/commands.h"
#include "convert/file_io.h"
#include "convert/json_text.h"
#include "convert/report.h"
#include "convert/report_html.h"

namespace bitsmith::cli {
namespace {

constexpr size_t kWidth = 100;  // the human output fits a 100-column terminal
constexpr size_t kTableTypes = 8;  // type columns in the per-tensor / per-layer tables
constexpr size_t kWorstRows = 20;  // rows without --all

struct Options {
  std::string path;
  std::string types;
  std::string imatrix;
  std::string tensors;
  bool tensors_given = false;
  int threads = 0;
  bool all = false;
  std::string csv, html;
  std::string reference;
};

std::string Clip(const std::string& s, size_t width) {
  if (s.size() <= width) return s;
  return "..." + s.substr(s.size() - (width - 3));  // keep the end: it names the tensor's kind
}

double GiB(uint64_t b) { return static_cast<double>(b) / 1073741824.0; }

// SNR in dB for a table cell of 6 characters: "inf" for exact, "-" when undefined.
std::string SnrCell(const ErrorMetrics& m) {
  if (std::isnan(m.snr_db)) return "n/a";
  if (std::isinf(m.snr_db)) return m.snr_db > 0 ? "exact" : "-inf";
  return fmt::format("{:.1f}", m.snr_db);
}

// A relative error as a short number: 3 significant digits.
std::string RelCell(double r) {
  if (std::isnan(r)) return "n/a";
  if (!std::isfinite(r)) return "inf";
  if (r == 0) return "0";
  return fmt::format("{:.2e}", r);
}

// The tensor's worst relative error over the candidates (ranking key).
double WorstRel(const ReportTensor& t) {
  double w = 0;
  for (const ReportCandidate& c : t.candidates) {
    const double r = std::isnan(c.metrics.rel_rmse) ? INFINITY : c.metrics.rel_rmse;
    w = std::max(w, r);
  }
  return w;
}

void PrintHuman(const Report& r, bool all) {
  const size_t nt = std::min(r.types.size(), kTableTypes);
  fmt::print("{}\n", PrintableText(r.model, kWidth * 3));
  if (r.compare)
    fmt::print("  {:<12}{}\n  {:<12}x = the reference's values, x-hat = IN's tensors as stored\n", "reference",
               PrintableText(r.reference, kWidth * 3), "");
  fmt::print("  {:<12}{} tensors, {} parameters ({}){}\n", "measured", WithSeparators(r.tensors.size()),
             WithSeparators(r.params), HumanCount(r.params), r.imatrix ? ", with imatrix" : "");
  fmt::print("  {:<12}{:.2f} s\n", "time", r.seconds);
  if (r.imatrix && r.imatrix_missing)
    fmt::print("  {:<12}{} measured tensor(s) have no imatrix entry (plain rel_rmse used)\n", "imatrix",
               r.imatrix_missing);

  // 1. Totals per type.
  fmt::print("\ntotals (tensor data, scales included; error = sqrt(size-weighted mean rel_rmse^2))\n");
  fmt::print("  {:<8} {:>19} {:>9} {:>7} {:>10} {:>8} {:>10} {:>9}\n", "type", "bytes", "GiB", "bpw", "rel_rmse",
             "SNR dB", r.imatrix ? "imat_rel" : "", "fallback");
  for (const ReportTotal& t : r.totals) {
    const double rel = std::sqrt(t.mean_rel_mse);
    fmt::print("  {:<8} {:>19} {:>9.3f} {:>7.3f} {:>10} {:>8} {:>10} {:>9}\n",
               ReportTypeLabel(r, static_cast<size_t>(&t - r.totals.data())),
               WithSeparators(t.bytes), GiB(t.bytes), t.bpw, RelCell(rel),
               rel > 0 && std::isfinite(rel) ? fmt::format("{:.1f}", -20 * std::log10(rel)) : "-",
               r.imatrix ? RelCell(std::sqrt(t.mean_imatrix_rel_mse)) : "",
               t.fallbacks ? WithSeparators(t.fallbacks) : "-");
  }

  // 2. Per layer: size-weighted mean rel_rmse per type.
  if (r.layers.size() > 1 || (r.layers.size() == 1 && r.layers[0].layer >= 0)) {
    fmt::print("\nper layer: rel_rmse (sqrt of the size-weighted mean rel_rmse^2)\n");
    std::string head = fmt::format("  {:<6} {:>9}", "layer", "params");
    for (size_t k = 0; k < nt; ++k) head += fmt::format(" {:>9}", ReportTypeLabel(r, k));
    fmt::print("{}\n", head);
    for (const ReportLayer& L : r.layers) {
      std::string line = fmt::format("  {:<6} {:>9}", L.layer >= 0 ? std::to_string(L.layer) : "other",
                                     HumanCount(L.params));
      for (size_t k = 0; k < nt; ++k) line += fmt::format(" {:>9}", RelCell(std::sqrt(L.mean_rel_mse[k])));
      fmt::print("{}\n", line);
    }
  }

  // 3. Tensors, worst first (SNR in dB per type; '*' marks a fallback type).
  std::vector<size_t> order(r.tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return WorstRel(r.tensors[a]) > WorstRel(r.tensors[b]); });
  const size_t shown = all ? order.size() : std::min(order.size(), kWorstRows);
  fmt::print("\n{}\n  SNR in dB = -20 log10 rel_rmse per type; '*' = stored as a fallback type\n",
             all ? "tensors, worst first" : fmt::format("worst {} of {} tensors (--all for every row)", shown,
                                                         order.size()));
  const size_t cw = r.compare ? 14 : 6;  // compare mode: "stored type + SNR"
  const size_t name_w = kWidth - 2 - 8 - nt * (cw + 1) - 1;
  std::string head = fmt::format("  {:<{}} {:>7}", "tensor", name_w, "params");
  for (size_t k = 0; k < nt; ++k) head += fmt::format(" {:>{}}", Clip(ReportTypeLabel(r, k), cw), cw);
  fmt::print("{}\n", head);
  for (size_t i = 0; i < shown; ++i) {
    const ReportTensor& t = r.tensors[order[i]];
    std::string line = fmt::format("  {:<{}} {:>7}", Clip(PrintableText(t.name, 1000), name_w), name_w,
                                   HumanCount(t.params));
    for (size_t k = 0; k < nt; ++k) {
      const ReportCandidate& c = t.candidates[k];
      std::string cell = SnrCell(c.metrics);
      if (c.choice == TypeChoice::kFallback) cell += "*";
      if (r.compare) cell = Clip(c.type_name, 6) + " " + cell;
      line += fmt::format(" {:>{}}", cell, cw);
    }
    fmt::print("{}\n", line);
  }
  if (r.types.size() > nt)
    fmt::print("  ({} more type column(s) in --json / --csv / --html)\n", r.types.size() - nt);

  // 4. Fallbacks, grouped per type.
  bool any = false;
  for (size_t k = 0; k < r.types.size(); ++k) {
    std::map<std::string, std::pair<size_t, std::string>> groups;  // stored type -> (count, example)
    for (const ReportTensor& t : r.tensors)
      if (t.candidates[k].choice == TypeChoice::kFallback) {
        auto& g = groups[t.candidates[k].type_name];
        if (g.first++ == 0) g.second = t.name;
      }
    for (const auto& [to, g] : groups) {
      if (!any) fmt::print("\nfallbacks (rows that do not fit the block size, as convert does)\n");
      any = true;
      fmt::print("  {:<8} {} tensor{} -> {}, e.g. {}\n", ReportTypeLabel(r, k), g.first, g.first == 1 ? "" : "s",
                 to, Clip(PrintableText(g.second, 1000), 50));
    }
  }
}

Runner Setup(CLI::App& sub) {
  auto opt = std::make_shared<Options>();
  auto json = std::make_shared<JsonOut>();
  sub.add_option("IN", opt->path, "A .safetensors file, a checkpoint directory or a .gguf file")->required();
  sub.add_option("--types", opt->types,
                 "Comma-separated candidate types (default q2_k,q3_k,q4_k,q5_k,q6_k,q8_0,e4m3fn,bf16; any element "
                 "or block type; e4m3fn/e5m2 are 128x128 block-scaled as DeepSeek stores them)");
  sub.add_option("--imatrix", opt->imatrix,
                 "llama.cpp importance matrix (.dat or GGUF): quantize with it and report imatrix_rel_rmse");
  sub.add_option("--tensors", opt->tensors, "Only the tensors whose name matches this regex (searched, RE2 syntax as in recipes)");
  sub.add_option("--threads", opt->threads, "Worker threads (default: all cores); results never depend on it");
  sub.add_flag("--all", opt->all, "Print every tensor, not only the worst 20");
  sub.add_option("--reference", opt->reference,
                 "Measure IN as it is stored against this checkpoint (e.g. the model IN was converted from): the "
                 "error a conversion really made, one 'stored' column");
  sub.add_option("--csv", opt->csv, "Write one CSV row per tensor x type to FILE");
  sub.add_option("--html", opt->html,
                 "Write a self-contained HTML page (inline SVG charts: size vs error, per-layer error, "
                 "tensor x type heatmap) to FILE");
  json->Add(sub);
  sub.footer(
      "Metrics (double, against the f32 reference x; scaled FP8: the product code x scale):\n"
      "  rmse = sqrt(sum e^2 / n), rel_rmse = sqrt(sum e^2 / sum x^2), snr_db = -20 log10 rel_rmse,\n"
      "  max_abs_err, cosine, and with --imatrix imatrix_rel_rmse = sqrt(sum_j w_j sum_i e_ij^2 / sum_j w_j\n"
      "  sum_i x_ij^2). Types after the same fallbacks as convert; bytes include block scales.\n"
      "JSON: {model, params, types, tensors: [{name, shape, params, source_dtype, candidates: {TYPE: {type,\n"
      "bytes, bpw, rmse, rel_rmse, snr_db, max_abs_err, cosine, imatrix_rel_rmse}}}], totals: {TYPE: {bytes,\n"
      "bpw, mean_rel_mse}}}; 1-D tensors have one candidate, the type they keep (f32). Non-finite: null.");
  opt->tensors_given = false;
  auto* tensors_opt = sub.get_option("--tensors");
  return [opt, json, tensors_opt]() -> int {
    ReportOptions ro;
    if (!opt->types.empty()) {
      auto t = ParseTypeList(opt->types, "--types");
      if (!t.ok()) return ReportError(t.error());
      ro.types = std::move(*t);
    }
    ro.imatrix = opt->imatrix;
    ro.reference = opt->reference;
    if (!opt->reference.empty() && !opt->types.empty())
      return ReportError(MakeError(ErrorKind::kBadUsage, "--types and --reference exclude each other (--reference "
                                                         "measures the types IN is stored in)"));
    if (tensors_opt->count() > 0) ro.tensors = opt->tensors;
    ro.threads = opt->threads;
    if (opt->threads < 0)
      return ReportError(MakeError(ErrorKind::kBadUsage, "--threads {}: expected 0 (all cores) or more", opt->threads));
    // Progress line (stderr, terminals only): weights measured so far.
    std::atomic<uint64_t> done{0}, total{0};
    ro.progress = &done;
    ro.progress_total = &total;
    std::atomic<bool> stop{false};
    std::thread progress;
    if (StderrIsTerminal() && !Quiet())
      progress = std::thread([&] {
        bool printed = false;
        while (!stop.load()) {
          std::this_thread::sleep_for(std::chrono::milliseconds(250));
          const uint64_t d = done.load(), t = total.load();
          if (t == 0) continue;
          fmt::print(stderr, "\r\033[K  report: {:.1f}% ({} of {} weights)", 100.0 * static_cast<double>(d) / static_cast<double>(t),
                     HumanCount(d), HumanCount(t));
          std::fflush(stderr);
          printed = true;
        }
        if (printed) fmt::print(stderr, "\r\033[K");
      });
    auto rep = MeasureReport(opt->path, ro);
    stop = true;
    if (progress.joinable()) progress.join();
    if (!rep.ok()) return ReportError(rep.error());
    for (const std::string& w : rep->warnings) Warn(w);
    if (!opt->csv.empty())
      if (Status s = WriteFileAtomic(opt->csv, ReportToCsv(*rep)); !s.ok()) return ReportError(s.error());
    if (!opt->html.empty())
      if (Status s = WriteFileAtomic(opt->html, RenderReportHtml(*rep)); !s.ok()) return ReportError(s.error());
    if (json->active()) {
      if (Status s = json->Write(ReportToJson(*rep)); !s.ok()) return ReportError(s.error());
      if (json->to_stdout()) return kExitOk;
    }
    PrintHuman(*rep, opt->all);
    return kExitOk;
  };
}

BITSMITH_COMMAND("report", "Per-tensor size and error of every candidate format (bytes, bpw, rmse, SNR, cosine)", 25,
                 Setup);

}  // namespace
}  // namespace bitsmith::cli
