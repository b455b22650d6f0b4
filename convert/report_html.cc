#include "convert/report_html.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <fmt/format.h>

namespace bitsmith {
namespace {

// Okabe-Ito-like palette (distinguishable, colour-blind safe first 8).
constexpr const char* kPalette[] = {"#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9",
                                    "#D55E00", "#F0E442", "#000000", "#7F7F7F", "#8C564B"};

std::string Esc(std::string_view s) {
  std::string o;
  o.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      case '\'': o += "&#39;"; break;
      default:
        // Control bytes are not allowed in XML/HTML text.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') o += "?";
        else o += c;
    }
  }
  return o;
}

const char* Colour(size_t k) { return kPalette[k % std::size(kPalette)]; }

// SNR in dB of a mean relative MSE, clamped for plotting (exact -> kSnrMax).
constexpr double kSnrMax = 100.0;
double SnrOfMse(double mse) {
  if (!(mse > 0)) return std::isnan(mse) ? 0.0 : kSnrMax;
  if (!std::isfinite(mse)) return 0.0;
  return std::clamp(-10.0 * std::log10(mse), -20.0, kSnrMax);
}
double SnrOf(const ErrorMetrics& m) {
  if (std::isnan(m.snr_db)) return 0.0;
  return std::clamp(m.snr_db, -20.0, kSnrMax);
}

// A linear axis [lo, hi] mapped to pixels [p0, p1].
struct Axis {
  double lo, hi, p0, p1;
  double operator()(double v) const { return hi == lo ? (p0 + p1) / 2 : p0 + (v - lo) / (hi - lo) * (p1 - p0); }
};

// "Nice" tick step for a range.
double TickStep(double range, int target) {
  if (!(range > 0)) return 1;
  const double raw = range / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * mag) return m * mag;
  return 10 * mag;
}

void Ticks(std::string& s, const Axis& x, const Axis& y, double x_lo, double x_hi, double y_lo, double y_hi) {
  const double xs = TickStep(x_hi - x_lo, 8), ys = TickStep(y_hi - y_lo, 6);
  for (double v = std::ceil(x_lo / xs) * xs; v <= x_hi + 1e-9; v += xs)
    s += fmt::format("<line x1='{0:.1f}' y1='{1:.1f}' x2='{0:.1f}' y2='{2:.1f}' class='grid'/>"
                     "<text x='{0:.1f}' y='{3:.1f}' class='tick' text-anchor='middle'>{4:g}</text>\n",
                     x(v), y.p0, y.p1, y.p0 + 16, v);
  for (double v = std::ceil(y_lo / ys) * ys; v <= y_hi + 1e-9; v += ys)
    s += fmt::format("<line x1='{0:.1f}' y1='{1:.1f}' x2='{2:.1f}' y2='{1:.1f}' class='grid'/>"
                     "<text x='{3:.1f}' y='{1:.1f}' class='tick' text-anchor='end' dy='4'>{4:g}</text>\n",
                     x.p0, y(v), x.p1, x.p0 - 6, v);
}

// 1. Size vs error.
std::string SizeChart(const Report& r) {
  const double W = 900, H = 420, L = 60, R = 150, T = 20, B = 50;
  double x_hi = 1, y_lo = 0, y_hi = 10;
  for (const ReportTensor& t : r.tensors)
    for (const ReportCandidate& c : t.candidates) {
      x_hi = std::max(x_hi, c.bpw);
      y_hi = std::max(y_hi, SnrOf(c.metrics));
      y_lo = std::min(y_lo, SnrOf(c.metrics));
    }
  x_hi = std::min(x_hi * 1.05, 40.0);
  y_hi = std::min(kSnrMax, y_hi + 5);
  const Axis x{0, x_hi, L, W - R}, y{y_lo, y_hi, H - B, T};
  std::string s = fmt::format("<svg viewBox='0 0 {} {}' width='{}' height='{}' role='img' "
                              "aria-label='bits per weight against SNR'>\n",
                              W, H, W, H);
  Ticks(s, x, y, 0, x_hi, y_lo, y_hi);
  s += fmt::format("<text x='{}' y='{}' class='label' text-anchor='middle'>bits per weight (scales included)</text>\n",
                   (L + W - R) / 2, H - 10);
  s += fmt::format("<text x='14' y='{}' class='label' text-anchor='middle' transform='rotate(-90 14 {})'>SNR dB "
                   "(higher is better)</text>\n",
                   (T + H - B) / 2, (T + H - B) / 2);
  // Tensors as faint dots (at most 3000 per type, evenly sampled).
  for (size_t k = 0; k < r.types.size(); ++k) {
    const size_t step = std::max<size_t>(1, r.tensors.size() / 3000);
    for (size_t i = 0; i < r.tensors.size(); i += step) {
      const ReportCandidate& c = r.tensors[i].candidates[k];
      if (r.tensors[i].kept_only || c.bpw > x_hi) continue;
      s += fmt::format("<circle cx='{:.1f}' cy='{:.1f}' r='2' fill='{}' fill-opacity='0.25'><title>{} as {}: {:.2f} "
                       "bpw, SNR {:.1f} dB</title></circle>\n",
                       x(c.bpw), y(SnrOf(c.metrics)), Colour(k), Esc(r.tensors[i].name), Esc(c.type_name), c.bpw,
                       SnrOf(c.metrics));
    }
  }
  // Model totals as large labelled points.
  for (size_t k = 0; k < r.totals.size(); ++k) {
    const ReportTotal& t = r.totals[k];
    const double snr = SnrOfMse(t.mean_rel_mse);
    s += fmt::format("<circle cx='{0:.1f}' cy='{1:.1f}' r='7' fill='{2}' stroke='#fff' stroke-width='2'><title>{3}: "
                     "{4} bytes, {5:.3f} bpw, SNR {6:.2f} dB</title></circle>"
                     "<text x='{7:.1f}' y='{1:.1f}' dy='-10' class='pt' text-anchor='middle'>{3}</text>\n",
                     x(std::min(t.bpw, x_hi)), y(snr), Colour(k), Esc(ReportTypeLabel(r, static_cast<size_t>(&t - r.totals.data()))), t.bytes, t.bpw, snr,
                     x(std::min(t.bpw, x_hi)));
    s += fmt::format("<rect x='{}' y='{}' width='12' height='12' fill='{}'/><text x='{}' y='{}' class='tick'>{} "
                     "({:.2f} bpw)</text>\n",
                     W - R + 15, T + 18 * k, Colour(k), W - R + 32, T + 18 * k + 10, Esc(ReportTypeLabel(r, static_cast<size_t>(&t - r.totals.data()))), t.bpw);
  }
  s += "</svg>\n";
  return s;
}

// 2. Error per layer.
std::string LayerChart(const Report& r) {
  std::vector<const ReportLayer*> layers;
  for (const ReportLayer& L : r.layers)
    if (L.layer >= 0) layers.push_back(&L);
  if (layers.empty()) return "<p>No layer index found in the tensor names (layers.N, blk.N, h.N, blocks.N).</p>\n";
  const double W = 900, H = 360, L = 60, R = 150, T = 20, B = 50;
  double y_lo = 0, y_hi = 10;
  const double x_lo = layers.front()->layer, x_hi = std::max<double>(layers.back()->layer, x_lo + 1);
  for (const ReportLayer* l : layers)
    for (double m : l->mean_rel_mse) y_hi = std::max(y_hi, SnrOfMse(m)), y_lo = std::min(y_lo, SnrOfMse(m));
  y_hi = std::min(kSnrMax, y_hi + 5);
  const Axis x{x_lo, x_hi, L, W - R}, y{y_lo, y_hi, H - B, T};
  std::string s = fmt::format(
      "<svg viewBox='0 0 {} {}' width='{}' height='{}' role='img' aria-label='SNR per layer'>\n", W, H, W, H);
  Ticks(s, x, y, x_lo, x_hi, y_lo, y_hi);
  s += fmt::format("<text x='{}' y='{}' class='label' text-anchor='middle'>layer</text>\n", (L + W - R) / 2, H - 10);
  s += fmt::format("<text x='14' y='{}' class='label' text-anchor='middle' transform='rotate(-90 14 {})'>SNR dB "
                   "(size-weighted)</text>\n",
                   (T + H - B) / 2, (T + H - B) / 2);
  for (size_t k = 0; k < r.types.size(); ++k) {
    std::string pts;
    for (const ReportLayer* l : layers)
      pts += fmt::format("{:.1f},{:.1f} ", x(l->layer), y(SnrOfMse(l->mean_rel_mse[k])));
    s += fmt::format("<polyline points='{}' fill='none' stroke='{}' stroke-width='2'/>\n", pts, Colour(k));
    for (const ReportLayer* l : layers)
      s += fmt::format("<circle cx='{:.1f}' cy='{:.1f}' r='3' fill='{}'><title>layer {} as {}: SNR {:.2f} dB, {} "
                       "bytes</title></circle>\n",
                       x(l->layer), y(SnrOfMse(l->mean_rel_mse[k])), Colour(k), l->layer, Esc(ReportTypeLabel(r, k)),
                       SnrOfMse(l->mean_rel_mse[k]), l->bytes[k]);
    s += fmt::format("<rect x='{}' y='{}' width='12' height='12' fill='{}'/><text x='{}' y='{}' class='tick'>{}</text>\n",
                     W - R + 15, T + 18 * k, Colour(k), W - R + 32, T + 18 * k + 10, Esc(ReportTypeLabel(r, k)));
  }
  s += "</svg>\n";
  return s;
}

// SNR -> colour: red (<= 0 dB) through yellow to green (>= 50 dB); grey for exact.
std::string HeatColour(const ErrorMetrics& m) {
  if (std::isinf(m.snr_db) && m.snr_db > 0) return "#d9d9d9";
  const double v = std::clamp(SnrOf(m) / 50.0, 0.0, 1.0);
  const double hue = 120.0 * v;  // 0 red .. 120 green
  return fmt::format("hsl({:.0f},70%,{:.0f}%)", hue, 45 + 10 * (1 - v));
}

// 3. Heatmap.
std::string Heatmap(const Report& r) {
  std::vector<size_t> order;
  for (size_t i = 0; i < r.tensors.size(); ++i)
    if (!r.tensors[i].kept_only) order.push_back(i);
  auto worst = [&](size_t i) {
    double w = INFINITY;
    for (const ReportCandidate& c : r.tensors[i].candidates) w = std::min(w, SnrOf(c.metrics));
    return w;
  };
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return worst(a) < worst(b); });
  const size_t rows = std::min(order.size(), kMaxHeatmapRows);
  const double cw = 64, ch = 14, L = 330, T = 40;
  const double W = L + cw * static_cast<double>(r.types.size()) + 20, H = T + ch * static_cast<double>(rows) + 10;
  std::string s = fmt::format(
      "<svg viewBox='0 0 {} {}' width='{}' height='{}' role='img' aria-label='tensor by type heatmap'>\n", W, H, W, H);
  for (size_t k = 0; k < r.types.size(); ++k)
    s += fmt::format("<text x='{:.1f}' y='{}' class='tick' text-anchor='middle'>{}</text>\n",
                     L + cw * (static_cast<double>(k) + 0.5), T - 8, Esc(ReportTypeLabel(r, k)));
  for (size_t row = 0; row < rows; ++row) {
    const ReportTensor& t = r.tensors[order[row]];
    const double yy = T + ch * static_cast<double>(row);
    std::string name = t.name.size() > 52 ? "..." + t.name.substr(t.name.size() - 49) : t.name;
    s += fmt::format("<text x='{}' y='{:.1f}' class='name' text-anchor='end'>{}<title>{}</title></text>\n", L - 6,
                     yy + ch - 3, Esc(name), Esc(t.name));
    for (size_t k = 0; k < t.candidates.size(); ++k) {
      const ReportCandidate& c = t.candidates[k];
      s += fmt::format("<rect x='{:.1f}' y='{:.1f}' width='{}' height='{}' fill='{}'><title>{} as {}{}: {:.3f} bpw, "
                       "rel_rmse {:.4g}, SNR {:.2f} dB, cosine {:.6f}</title></rect>\n",
                       L + cw * static_cast<double>(k), yy, cw - 1, ch - 1, HeatColour(c.metrics), Esc(t.name),
                       Esc(c.type_name), c.choice == TypeChoice::kFallback ? " (fallback)" : "", c.bpw,
                       c.metrics.rel_rmse, c.metrics.snr_db, c.metrics.cosine);
    }
  }
  s += "</svg>\n";
  if (order.size() > rows)
    s += fmt::format("<p>{} more tensors not shown (the {} worst are); --csv / --json list them all.</p>\n",
                     order.size() - rows, rows);
  return s;
}

}  // namespace

std::string RenderReportHtml(const Report& r) {
  std::string s;
  s += "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'/>\n";
  s += fmt::format("<title>bitsmith report: {}</title>\n", Esc(r.model));
  s += "<style>\n"
       "body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1000px}\n"
       "h1{font-size:20px}h2{font-size:17px;margin-top:32px}\n"
       "table{border-collapse:collapse;font-size:13px}td,th{padding:3px 10px;text-align:right;"
       "border-bottom:1px solid #ddd}th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}\n"
       ".grid{stroke:#e5e5e5;stroke-width:1}.tick{font-size:11px;fill:#444}.label{font-size:12px;fill:#222}\n"
       ".pt{font-size:11px;font-weight:bold;fill:#222}.name{font-size:10px;font-family:monospace;fill:#333}\n"
       ".note{color:#555;font-size:13px}\n"
       "</style>\n</head>\n<body>\n";
  s += fmt::format("<h1>bitsmith report</h1>\n<p>{}<br/>{} tensors, {} parameters{}; measured in {:.2f} s.</p>\n",
                   Esc(r.model), r.tensors.size(), r.params, r.imatrix ? ", with an importance matrix" : "",
                   r.seconds);
  s += "<h2>Totals</h2>\n<table><tr><th>type</th><th>bytes</th><th>GiB</th><th>bits/weight</th>"
       "<th>mean rel_rmse&#178;</th><th>SNR dB</th><th>fallbacks</th></tr>\n";
  for (const ReportTotal& t : r.totals)
    s += fmt::format("<tr><td>{}</td><td>{}</td><td>{:.3f}</td><td>{:.3f}</td><td>{:.4g}</td><td>{:.2f}</td>"
                     "<td>{}</td></tr>\n",
                     Esc(ReportTypeLabel(r, static_cast<size_t>(&t - r.totals.data()))), t.bytes, static_cast<double>(t.bytes) / 1073741824.0, t.bpw,
                     t.mean_rel_mse, SnrOfMse(t.mean_rel_mse), t.fallbacks);
  s += "</table>\n<p class='note'>Sizes count every tensor's data (1-D tensors in f32 for block types, block "
       "scales included), never the file header. SNR dB = &#8722;10&#183;log10 of the size-weighted mean "
       "rel_rmse&#178;; 100 dB stands for exact.</p>\n";
  s += "<h2>Size vs error</h2>\n<p class='note'>Large points: the whole model at each type. Faint dots: single "
       "tensors at that type (hover for names).</p>\n";
  s += SizeChart(r);
  s += "<h2>Error per layer</h2>\n";
  s += LayerChart(r);
  s += "<h2>Tensor &#215; type heatmap (worst first)</h2>\n<p class='note'>Colour: SNR in dB, red 0 dB to green "
       "&#8805; 50 dB; grey: exact. Hover a cell for its numbers.</p>\n";
  s += Heatmap(r);
  s += "</body>\n</html>\n";
  return s;
}

}  // namespace bitsmith
