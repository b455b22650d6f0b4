// The block inspector behind `bitsmith explain --format q4_k --block HEX`: one
// block's fields (scales, sub-block scales and mins unpacked from their bit
// packings, each element's integer level) and its values, as ggml's to_float
// computes them. Fields are read with the pack/unpack helpers of
// formats/blocks_{legacy,k,mx}.h -- the same ones the codecs use.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/dtype.h"
#include "formats/error.h"

namespace bitsmith::cli {

struct BlockField {
  std::string name;   // "d", "dmin", "e (E8M0 scale)"
  std::string raw;    // the stored bits: "0x2E66"
  double value = 0;   // what they mean
};

struct SubBlock {
  int index = 0;
  int first = 0, count = 0;     // elements [first, first + count)
  int scale = 0;                // the stored (unpacked) integer scale
  std::optional<int> min;       // the stored integer min (q2_k, q4_k, q5_k)
  double eff_scale = 0;         // scale as applied: d * scale (q3_k: d * (s - 32))
  std::optional<double> eff_min;
};

struct BlockDescription {
  DType type;
  std::string formula;                   // "y = (d * sc_i) * q - dmin * m_i, q in 0..15"
  std::vector<BlockField> fields;
  std::vector<SubBlock> sub_blocks;      // empty when the type has none
  std::vector<std::optional<int>> levels;  // per element; nullopt for grid-coded types
  std::vector<float> values;             // per element (to_float)
  std::string note;                      // e.g. "grid-coded: levels are lattice indices"
};

// Parses --block: hex digits (spaces, '_' and a leading 0x allowed) or
// @FILE[:OFFSET] (byte offset, decimal or 0x hex); exactly one block of `t`.
Result<std::vector<uint8_t>> ReadBlockArg(DType t, const std::string& arg);

// Describes one block of `t` (bytes.size() == block_bytes).
Result<BlockDescription> DescribeBlock(DType t, std::span<const uint8_t> bytes);

nlohmann::json BlockJson(const BlockDescription& d);
void PrintBlock(const BlockDescription& d);

}  // namespace bitsmith::cli
