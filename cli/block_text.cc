// The block inspector (cli/block_text.h).
#include "cli/block_text.h"

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "codecs/quant.h"
#include "formats/blocks_k.h"
#include "formats/blocks_legacy.h"
#include "formats/blocks_mx.h"
#include "formats/element_format.h"
#include "formats/half.h"

namespace bitsmith::cli {
namespace {

template <typename Block>
Block As(std::span<const uint8_t> b) {
  static_assert(std::is_trivially_copyable_v<Block>);
  Block out;
  std::memcpy(&out, b.data(), sizeof(Block));
  return out;
}

BlockField Half(std::string name, const PackedF16& h) {
  return {std::move(name), fmt::format("0x{:04X} (f16)", h.bits()), static_cast<double>(h.f32())};
}
BlockField HalfAt(std::string name, std::span<const uint8_t> b, size_t off) {
  PackedF16 h{{b[off], b[off + 1]}};
  return Half(std::move(name), h);
}
BlockField E8M0(std::string name, uint8_t e) {
  return {std::move(name), fmt::format("0x{:02X} (e8m0)", e),
          static_cast<double>(F32FromBits(E8M0ToF32Bits(e)))};
}

// Sub-blocks of `size` elements with scale d * s (and min dmin * m when given).
void AddSubBlocks(BlockDescription& d, int count, int size, const std::function<int(int)>& scale,
                  double dscale, const std::function<int(int)>& min = nullptr, double dmin = 0,
                  int scale_offset = 0) {
  for (int i = 0; i < count; ++i) {
    SubBlock s;
    s.index = i;
    s.first = i * size;
    s.count = size;
    s.scale = scale(i);
    s.eff_scale = static_cast<double>(static_cast<float>(dscale) * static_cast<float>(s.scale - scale_offset));
    if (min) {
      s.min = min(i);
      s.eff_min = static_cast<double>(static_cast<float>(dmin) * static_cast<float>(*s.min));
    }
    d.sub_blocks.push_back(s);
  }
}

void DescribeLegacy(DType t, std::span<const uint8_t> b, BlockDescription& d) {
  auto levels = [&](const std::function<int(int)>& f, int n) {
    for (int j = 0; j < n; ++j) d.levels.push_back(f(j));
  };
  switch (t) {
    case DType::kQ4_0: {
      const auto q = As<BlockQ4_0>(b);
      d.formula = "y = (q - 8) * d, q in 0..15";
      d.fields = {Half("d", q.d)};
      levels([&](int j) { return UnpackNibble32(q.qs, j); }, 32);
      break;
    }
    case DType::kQ4_1: {
      const auto q = As<BlockQ4_1>(b);
      d.formula = "y = q * d + m, q in 0..15";
      d.fields = {Half("d", q.d), Half("m", q.m)};
      levels([&](int j) { return UnpackNibble32(q.qs, j); }, 32);
      break;
    }
    case DType::kQ5_0: {
      const auto q = As<BlockQ5_0>(b);
      d.formula = "y = (q - 16) * d, q in 0..31 (bit 4 from qh)";
      d.fields = {Half("d", q.d), {"qh", fmt::format("0x{:08X} (u32)", LoadQh(q.qh)), 0}};
      levels([&](int j) { return UnpackQ5Level(q.qs, LoadQh(q.qh), j); }, 32);
      break;
    }
    case DType::kQ5_1: {
      const auto q = As<BlockQ5_1>(b);
      d.formula = "y = q * d + m, q in 0..31 (bit 4 from qh)";
      d.fields = {Half("d", q.d), Half("m", q.m), {"qh", fmt::format("0x{:08X} (u32)", LoadQh(q.qh)), 0}};
      levels([&](int j) { return UnpackQ5Level(q.qs, LoadQh(q.qh), j); }, 32);
      break;
    }
    case DType::kQ8_0: {
      const auto q = As<BlockQ8_0>(b);
      d.formula = "y = q * d, q in -128..127";
      d.fields = {Half("d", q.d)};
      levels([&](int j) { return static_cast<int>(q.qs[j]); }, 32);
      break;
    }
    case DType::kQ8_1: {
      const auto q = As<BlockQ8_1>(b);
      d.formula = "y = q * d, q in -128..127 (s = d * sum(q), used by dot products)";
      d.fields = {Half("d", q.d), Half("s", q.s)};
      levels([&](int j) { return static_cast<int>(q.qs[j]); }, 32);
      break;
    }
    case DType::kIQ4_NL: {
      const auto q = As<BlockIq4Nl>(b);
      d.formula = "y = d * kvalues[q], q in 0..15, kvalues = {-127, -104, ..., 113}";
      d.fields = {Half("d", q.d)};
      levels([&](int j) { return UnpackNibble32(q.qs, j); }, 32);
      break;
    }
    case DType::kIQ4_XS: {
      const auto q = As<BlockIq4Xs>(b);
      d.formula = "y = (d * (ls_i - 32)) * kvalues[q], q in 0..15; 8 sub-blocks of 32";
      d.fields = {Half("d", q.d)};
      AddSubBlocks(d, 8, 32, [&](int i) { return UnpackIq4XsScale(q.scales_h, q.scales_l, i); }, q.d.f32(),
                   nullptr, 0, 32);
      levels([&](int e) { return UnpackNibble32(q.qs + 16 * (e / 32), e % 32); }, 256);
      break;
    }
    case DType::kQ8_K: {
      const auto q = As<BlockQ8K>(b);
      const float df = LoadF32LE(q.d);
      d.formula = "y = d * q, d float32, q in -128..127; bsums[k] = sum of q over 16 elements";
      d.fields = {{"d", fmt::format("0x{:08X} (f32)", F32Bits(df)), static_cast<double>(df)}};
      for (int k = 0; k < 16; ++k)
        d.fields.push_back({fmt::format("bsums[{}]", k), fmt::format("{}", LoadQ8KBsum(q.bsums, k)),
                            static_cast<double>(LoadQ8KBsum(q.bsums, k))});
      levels([&](int j) { return static_cast<int>(q.qs[j]); }, 256);
      break;
    }
    default: break;
  }
}

void DescribeK(DType t, std::span<const uint8_t> b, BlockDescription& d) {
  switch (t) {
    case DType::kQ2_K: {
      const auto q = As<BlockQ2K>(b);
      d.formula = "y = (d * sc_i) * q - dmin * m_i, q in 0..3; 16 sub-blocks of 16 (4-bit sc, m)";
      d.fields = {Half("d", q.d), Half("dmin", q.dmin)};
      AddSubBlocks(d, 16, 16, [&](int i) { return UnpackQ2KScale(q.scales[i]); }, q.d.f32(),
                   [&](int i) { return UnpackQ2KMin(q.scales[i]); }, q.dmin.f32());
      for (int e = 0; e < 256; ++e) d.levels.push_back(Unpack2BitLevel(q.qs, e));
      break;
    }
    case DType::kQ3_K: {
      const auto q = As<BlockQ3K>(b);
      d.formula = "y = (d * s_i) * q, q in -4..3 (bit 2 from hmask); 16 sub-blocks of 16, 6-bit s_i - 32";
      d.fields = {Half("d", q.d)};
      AddSubBlocks(d, 16, 16, [&](int i) { return UnpackQ3KScale(q.scales, i); }, q.d.f32());
      for (int e = 0; e < 256; ++e) d.levels.push_back(UnpackQ3KLevel(q, e));
      break;
    }
    case DType::kQ4_K:
    case DType::kQ5_K: {
      const bool five = t == DType::kQ5_K;
      const PackedF16 dd = five ? As<BlockQ5K>(b).d : As<BlockQ4K>(b).d;
      const PackedF16 dm = five ? As<BlockQ5K>(b).dmin : As<BlockQ4K>(b).dmin;
      uint8_t scales[12];
      std::memcpy(scales, five ? As<BlockQ5K>(b).scales : As<BlockQ4K>(b).scales, 12);
      d.formula = five ? "y = (d * sc_i) * q - dmin * m_i, q in 0..31 (bit 4 from qh); 8 sub-blocks of 32, 6-bit sc, m"
                       : "y = (d * sc_i) * q - dmin * m_i, q in 0..15; 8 sub-blocks of 32, 6-bit sc, m";
      d.fields = {Half("d", dd), Half("dmin", dm)};
      AddSubBlocks(d, 8, 32, [&](int i) { return UnpackScaleMinK4(scales, i).scale; }, dd.f32(),
                   [&](int i) { return UnpackScaleMinK4(scales, i).min; }, dm.f32());
      if (five) {
        const auto q = As<BlockQ5K>(b);
        for (int e = 0; e < 256; ++e) d.levels.push_back(UnpackQ5KLevel(q, e));
      } else {
        const auto q = As<BlockQ4K>(b);
        for (int e = 0; e < 256; ++e) d.levels.push_back(UnpackQ4KLevel(q.qs, e));
      }
      break;
    }
    case DType::kQ6_K: {
      const auto q = As<BlockQ6K>(b);
      d.formula = "y = (d * sc_i) * q, q in -32..31; 16 sub-blocks of 16, int8 sc_i";
      d.fields = {Half("d", q.d)};
      AddSubBlocks(d, 16, 16, [&](int i) { return static_cast<int>(q.scales[i]); }, q.d.f32());
      for (int e = 0; e < 256; ++e) d.levels.push_back(UnpackQ6KLevel(q, e));
      break;
    }
    default: break;
  }
}

// OCP MX (E8M0 scale + 32 elements) and NVFP4 (E4M3 scale + 16 E2M1).
void DescribeMx(DType t, std::span<const uint8_t> b, BlockDescription& d) {
  if (t == DType::kNVFP4) {
    const ElementFormat& s = GetElementFormat(ElementFormatId::kE4M3FN);
    const ElementFormat& e = GetElementFormat(ElementFormatId::kE2M1FN);
    d.formula = "y = (e4m3(d) * e2m1(q)) * s_t, s_t the tensor's f32 scale (values below use s_t = 1)";
    d.fields = {{"d", fmt::format("0x{:02X} (e4m3fn)", b[0]), s.Value(b[0])}};
    uint8_t codes[16];
    UnpackMxElements(4, b.data() + 1, 16, codes);
    for (int j = 0; j < 16; ++j) {
      d.levels.push_back(codes[j]);
      d.values.push_back(static_cast<float>(s.Value(b[0])) * static_cast<float>(e.Value(codes[j])));
    }
    d.note = "levels are E2M1 codes";
    return;
  }
  const MxLayout l = *GetMxLayout(t);
  d.fields = {E8M0("e", b[0])};
  uint8_t codes[32];
  UnpackMxElements(l.element_bits, b.data() + 1, 32, codes);
  for (int j = 0; j < 32; ++j)
    d.levels.push_back(l.fraction_bits > 0 ? static_cast<int>(static_cast<int8_t>(codes[j])) : codes[j]);
  if (l.fraction_bits > 0) {
    d.formula = "y = 2^(e - 127) * q * 2^-6, q in -128..127 (OCP MX v1.0 MXINT8)";
  } else {
    d.formula = fmt::format("y = 2^(e - 127) * {}(q) (OCP MX v1.0)", GetElementFormat(l.element).name);
    d.note = fmt::format("levels are {} codes", GetElementFormat(l.element).name);
  }
}

// Grid-coded and ternary ggml types: only the scale that sits in a plain field.
void DescribeOther(DType t, std::span<const uint8_t> b, BlockDescription& d) {
  switch (t) {
    case DType::kIQ2_XXS: case DType::kIQ2_XS: case DType::kIQ2_S: case DType::kIQ3_XXS:
    case DType::kIQ3_S: case DType::kIQ1_S:
      d.fields = {HalfAt("d", b, 0)};
      break;
    case DType::kTQ1_0: d.fields = {HalfAt("d", b, 52)}; break;
    case DType::kTQ2_0: d.fields = {HalfAt("d", b, 64)}; break;
    case DType::kMXFP4: {
      d.fields = {{"e", fmt::format("0x{:02X} (e8m0, ggml half-scale)", b[0]), 0}};
      d.fields[0].value = std::ldexp(1.0, static_cast<int>(b[0]) - 128);
      for (int j = 0; j < 32; ++j) d.levels.push_back(UnpackNibble32(b.data() + 1, j));
      d.formula = "y = 2^(e - 128) * kvalues_mxfp4[q], q in 0..15 (ggml's MXFP4)";
      return;
    }
    default: break;
  }
  d.note = "grid-coded / packed type: fields other than the scale are lattice indices and signs "
           "(formats/blocks_iq.h); values are ggml's to_float";
}

}  // namespace

Result<std::vector<uint8_t>> ReadBlockArg(DType t, const std::string& arg) {
  const DTypeInfo& info = GetDType(t);
  const size_t need = static_cast<size_t>(info.block_bytes);
  std::vector<uint8_t> out;
  if (!arg.empty() && arg[0] == '@') {
    std::string path = arg.substr(1);
    uint64_t offset = 0;
    if (const size_t colon = path.rfind(':'); colon != std::string::npos) {
      const std::string off = path.substr(colon + 1);
      char* end = nullptr;
      offset = std::strtoull(off.c_str(), &end, 0);
      if (off.empty() || *end != '\0')
        return MakeError(ErrorKind::kBadUsage, "--block {}: '{}' is not a byte offset", arg, off);
      path.resize(colon);
    }
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return MakeError(ErrorKind::kBadInput, "{}: cannot open: {}", path, std::strerror(errno));
    out.resize(need);
    const ssize_t got = ::pread(fd, out.data(), need, static_cast<off_t>(offset));
    ::close(fd);
    if (got != static_cast<ssize_t>(need))
      return MakeError(ErrorKind::kBadInput, "{}: no whole {} block ({} bytes) at offset {}", path, info.name,
                       need, offset);
    return out;
  }
  std::string hex;
  for (size_t i = 0; i < arg.size(); ++i) {
    const char c = arg[i];
    if (c == ' ' || c == '_' || c == ',' || c == ':') continue;
    if (c == '0' && i + 1 < arg.size() && (arg[i + 1] == 'x' || arg[i + 1] == 'X') && hex.empty()) {
      ++i;
      continue;
    }
    if (!std::isxdigit(static_cast<unsigned char>(c)))
      return MakeError(ErrorKind::kBadUsage, "--block: '{}' is not a hex digit (give HEX or @FILE:OFFSET)", c);
    hex.push_back(c);
  }
  if (hex.size() != 2 * need)
    return MakeError(ErrorKind::kBadInput, "--block: {} hex digits, a {} block is {} bytes ({} digits)",
                     hex.size(), info.name, need, 2 * need);
  for (size_t i = 0; i < need; ++i) out.push_back(static_cast<uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16)));
  return out;
}

Result<BlockDescription> DescribeBlock(DType t, std::span<const uint8_t> bytes) {
  const DTypeInfo& info = GetDType(t);
  if (!info.is_block())
    return MakeError(ErrorKind::kBadUsage, "explain --block: {} is not a block format", info.name);
  if (bytes.size() != static_cast<size_t>(info.block_bytes))
    return MakeError(ErrorKind::kBadInput, "explain --block: {} bytes, a {} block is {}", bytes.size(),
                     info.name, info.block_bytes);
  BlockDescription d;
  d.type = t;
  switch (t) {
    case DType::kQ4_0: case DType::kQ4_1: case DType::kQ5_0: case DType::kQ5_1: case DType::kQ8_0:
    case DType::kQ8_1: case DType::kIQ4_NL: case DType::kIQ4_XS: case DType::kQ8_K:
      DescribeLegacy(t, bytes, d);
      break;
    case DType::kQ2_K: case DType::kQ3_K: case DType::kQ4_K: case DType::kQ5_K: case DType::kQ6_K:
      DescribeK(t, bytes, d);
      break;
    case DType::kMXFP8_E4M3: case DType::kMXFP8_E5M2: case DType::kMXFP6_E3M2: case DType::kMXFP6_E2M3:
    case DType::kMXINT8: case DType::kMXFP4_OCP: case DType::kNVFP4:
      DescribeMx(t, bytes, d);
      break;
    default:
      DescribeOther(t, bytes, d);
      break;
  }
  if (d.values.empty()) {  // to_float of the block: the codec's dequantizer (scalar reference)
    if (GetBlockCodec(t) == nullptr)
      return MakeError(ErrorKind::kUnsupported, "explain --block: no codec for {} in this build", info.name);
    d.values.resize(static_cast<size_t>(info.block_elems));
    BITSMITH_RETURN_IF_ERROR(DequantizeRows(t, bytes, d.values, Impl::kReference, 1));
  }
  return d;
}

nlohmann::json BlockJson(const BlockDescription& d) {
  const DTypeInfo& info = GetDType(d.type);
  auto num = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(fmt::format("{}", v)); };
  nlohmann::json j = {{"format", std::string(info.name)},
                      {"block_bytes", info.block_bytes},
                      {"elements", info.block_elems},
                      {"bpw", info.bits_per_weight()},
                      {"formula", d.formula}};
  j["fields"] = nlohmann::json::object();
  for (const BlockField& f : d.fields) j["fields"][f.name] = {{"raw", f.raw}, {"value", num(f.value)}};
  j["sub_blocks"] = nlohmann::json::array();
  for (const SubBlock& s : d.sub_blocks) {
    nlohmann::json o = {{"index", s.index}, {"first", s.first}, {"count", s.count}, {"scale", s.scale},
                        {"effective_scale", num(s.eff_scale)}};
    if (s.min) o["min"] = *s.min, o["effective_min"] = num(*s.eff_min);
    j["sub_blocks"].push_back(o);
  }
  j["levels"] = nlohmann::json::array();
  for (const auto& l : d.levels) j["levels"].push_back(l ? nlohmann::json(*l) : nlohmann::json(nullptr));
  j["values"] = nlohmann::json::array();
  for (float v : d.values) j["values"].push_back(num(static_cast<double>(v)));
  if (!d.note.empty()) j["note"] = d.note;
  return j;
}

void PrintBlock(const BlockDescription& d) {
  const DTypeInfo& info = GetDType(d.type);
  fmt::print("{} block: {} bytes, {} elements, {} bits per weight\n", info.name, info.block_bytes,
             info.block_elems, info.bits_per_weight());
  if (!d.formula.empty()) fmt::print("  {}\n", d.formula);
  for (const BlockField& f : d.fields) fmt::print("  {:<10} {:<22} = {}\n", f.name, f.raw, f.value);
  if (!d.sub_blocks.empty()) {
    const bool mins = d.sub_blocks[0].min.has_value();
    fmt::print("\n  sub-block  elements   scale  {:>14}{}\n", "eff. scale", mins ? "    min        eff. min" : "");
    for (const SubBlock& s : d.sub_blocks) {
      fmt::print("  {:>9}  {:>3}..{:<4} {:>5}  {:>14.7g}", s.index, s.first, s.first + s.count - 1, s.scale,
                 s.eff_scale);
      if (s.min) fmt::print("  {:>5}  {:>14.7g}", *s.min, *s.eff_min);
      fmt::print("\n");
    }
  }
  fmt::print("\n  elements: {}\n", d.levels.empty() ? "value" : "level -> value");
  const size_t per_line = 4;
  for (size_t i = 0; i < d.values.size(); i += per_line) {
    std::string line = fmt::format("  [{:>3}]", i);
    for (size_t k = i; k < std::min(d.values.size(), i + per_line); ++k) {
      if (k < d.levels.size() && d.levels[k]) line += fmt::format("  {:>4} -> {:<13.7g}", *d.levels[k], d.values[k]);
      else line += fmt::format("  {:<13.7g}", d.values[k]);
    }
    fmt::print("{}\n", line);
  }
  if (!d.note.empty()) fmt::print("  ({})\n", d.note);
}

}  // namespace bitsmith::cli
