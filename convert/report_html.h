// `report --html FILE`: one self-contained page (no network, no scripts, inline
// SVG) a person would rather look at than read:
//  1. size vs error: one point per candidate type (bits per weight against the
//     size-weighted SNR of the whole model), plus every tensor as a faint dot
//     (its bpw and SNR at that type), one colour per type;
//  2. error per layer: SNR of each layer (size-weighted over its tensors), one
//     line per type;
//  3. heatmap: tensors (rows, worst first, at most kMaxHeatmapRows) x types
//     (columns), coloured by SNR; each cell's <title> gives the numbers.
// Hover texts use SVG <title> elements, so the page needs no JavaScript.
#pragma once

#include <string>

#include "convert/report.h"

namespace bitsmith {

inline constexpr size_t kMaxHeatmapRows = 400;

std::string RenderReportHtml(const Report& r);

}  // namespace bitsmith
