// `bitsmith info PATH [--tensors] [--json [FILE]] [--block RxC|none]`: what is in
// a checkpoint, and what it would weigh in each format.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string_view>

#include <fmt/format.h>

#include "cli/commands.h"
#include "convert/checkpoint.h"
#include "convert/json_text.h"
#include "convert/sizes.h"

namespace bitsmith::cli {
namespace {

constexpr size_t kWidth = 100;  // the human output fits a 100-column terminal

struct Options {
  std::string path;
  bool tensors = false;
  std::string block = "128x128";
};

std::optional<Fp8Blocking> ParseBlock(const std::string& s) {
  if (s == "none") return Fp8Blocking::None();
  const size_t x = s.find('x');
  try {
    size_t pos = 0;
    const unsigned long r = std::stoul(s.substr(0, x), &pos);
    if (pos != (x == std::string::npos ? s.size() : x)) return std::nullopt;
    unsigned long c = r;
    if (x != std::string::npos) {
      c = std::stoul(s.substr(x + 1), &pos);
      if (pos != s.size() - x - 1) return std::nullopt;
    }
    if (r == 0 || c == 0 || r > 1u << 20 || c > 1u << 20) return std::nullopt;
    return Fp8Blocking{static_cast<uint32_t>(r), static_cast<uint32_t>(c)};
  } catch (...) {
    return std::nullopt;
  }
}

std::string BlockText(Fp8Blocking b) { return b.none() ? "none" : fmt::format("{}x{}", b.rows, b.cols); }

std::string FormatText(const Checkpoint& ck) {
  if (ck.format == FileFormat::kGguf) {
    const GgufFile& g = ck.gguf[0];
    return fmt::format("GGUF v{}, {} file{}, alignment {}", g.version, ck.files.size(),
                       ck.files.size() == 1 ? "" : "s (split)", g.alignment);
  }
  if (ck.index) return fmt::format("safetensors, {} shards + {}", ck.files.size(),
                                   std::filesystem::path(ck.index_path).filename().string());
  return "safetensors, 1 file";
}

std::string FileLabel(const Checkpoint& ck, int index) {
  return std::filesystem::path(ck.files[static_cast<size_t>(index)]).filename().string();
}

double GiB(uint64_t bytes) { return static_cast<double>(bytes) / 1073741824.0; }

// A display name clipped to `width` (for tables); the full name is in --json.
std::string Clip(const std::string& s, size_t width) {
  if (s.size() <= width) return s;
  return s.substr(0, width - 3) + "...";
}

struct DTypeRow {
  uint64_t tensors = 0, params = 0, bytes = 0;
};

// Groups of fallbacks per format: (used type, first tensor, count, a reason).
struct FallbackGroup {
  std::string to;
  size_t count = 0;
  size_t dropped = 0;
  std::string example;
  std::string reason;
};

std::vector<FallbackGroup> GroupFallbacks(const Checkpoint& ck, const ModelSize& m) {
  std::vector<FallbackGroup> groups;
  for (const TensorSize& ts : m.tensors) {
    if (!ts.type.fell_back() && ts.type.choice != TypeChoice::kDropped) continue;
    const TensorInfo& t = ck.tensors[ts.index];
    const std::string to = ts.dropped ? "dropped" : std::string(GetDType(ts.type.used).name) +
                                                        (ts.type.passthrough && !t.dtype ? " (unknown)" : "");
    auto it = std::find_if(groups.begin(), groups.end(), [&](const FallbackGroup& g) { return g.to == to; });
    if (it == groups.end()) {
      groups.push_back({to, 0, 0, t.name, ts.type.fallback_reason});
      it = groups.end() - 1;
    }
    ++it->count;
  }
  return groups;
}

// The JSON document, written member by member: a checkpoint of 100k tensors has
// 100k tensor entries and up to 10 x 100k fallback entries, which as one
// nlohmann document took more than 1 GiB (about 1 KiB per entry: every object
// is a std::map of json values) for a 6.4 MB file. Each entry is now built and
// written on its own, so memory stays at the checkpoint plus the size plans.
// The text is exactly nlohmann's dump(2) of the whole document: members in
// nlohmann::json's (sorted) key order, every value dumped with 2-space indents
// and re-indented to its depth.
class JsonWriter {
 public:
  explicit JsonWriter(std::FILE* f) : f_(f) {}

  // `j` dumped as a value nested `depth` levels deep.
  void Value(const nlohmann::json& j, int depth) {
    std::string text;
    AppendIndentedDump(text, j, depth);
    Put(text);
  }
  // An object or array whose members are written by `each(i)` for i in [0, n),
  // at `depth`; `key(i)` (objects only) names member i.
  template <typename Key, typename Each>
  void Container(bool object, size_t n, int depth, Key key, Each each) {
    if (n == 0) return Put(object ? "{}" : "[]");
    Put(object ? "{\n" : "[\n");
    const std::string pad(2 * static_cast<size_t>(depth + 1), ' ');
    for (size_t i = 0; i < n; ++i) {
      Put(pad);
      if (object) Put(nlohmann::json(key(i)).dump() + ": ");
      each(i);
      Put(i + 1 < n ? ",\n" : "\n");
    }
    Put(std::string(2 * static_cast<size_t>(depth), ' '));
    Put(object ? "}" : "]");
  }
  void Put(std::string_view s) { std::fwrite(s.data(), 1, s.size(), f_); }

 private:
  std::FILE* f_;
};

void WriteJson(std::FILE* f, const Checkpoint& ck, const std::vector<ModelSize>& sizes, Fp8Blocking block,
               const std::map<std::string, DTypeRow>& by_dtype) {
  using nlohmann::json;
  JsonWriter w(f);
  // Top-level members: small ones as json values, the two that grow with the
  // tensor count (tensors, fallbacks) streamed. std::map keeps nlohmann's key order.
  std::map<std::string, std::function<void()>> members;
  auto small = [&](const std::string& key, json v) {
    members[key] = [&w, v = std::move(v)] { w.Value(v, 1); };
  };
  small("path", Utf8OrPrintable(ck.path));
  small("format", ck.format == FileFormat::kGguf ? "gguf" : "safetensors");
  if (ck.format == FileFormat::kGguf) {
    small("gguf_version", ck.gguf[0].version);
    small("alignment", ck.gguf[0].alignment);
  }
  json files = json::array();
  for (size_t i = 0; i < ck.files.size(); ++i)
    files.push_back({{"path", Utf8OrPrintable(ck.files[i])}, {"bytes", ck.file_sizes[i]}});
  small("files", std::move(files));
  if (!ck.index_path.empty()) small("index", Utf8OrPrintable(ck.index_path));
  members["tensors"] = [&] {
    w.Container(false, ck.tensors.size(), 1, [](size_t) { return std::string(); }, [&](size_t i) {
      const TensorInfo& t = ck.tensors[i];
      json jt = {{"name", Utf8OrPrintable(t.name)},
                 {"dtype", t.dtype_name()},
                 {"shape", t.shape},
                 {"params", t.elements()},
                 {"bytes", t.nbytes},
                 {"file", Utf8OrPrintable(FileLabel(ck, t.file_index))},
                 {"offset", t.offset}};
      if (t.ggml_type >= 0) jt["ggml_type"] = t.ggml_type;
      w.Value(jt, 2);
    });
  };
  small("params", ck.params());
  small("bytes", ck.disk_bytes());
  small("tensor_bytes", ck.tensor_bytes());
  json dtypes = json::object();
  for (const auto& [name, row] : by_dtype)
    dtypes[name] = {{"tensors", row.tensors}, {"params", row.params}, {"bytes", row.bytes}};
  small("by_dtype", std::move(dtypes));
  json metadata = json::object();
  if (ck.format == FileFormat::kGguf) {
    for (const GgufKV& kv : ck.gguf[0].kv) metadata[Utf8OrPrintable(kv.key)] = GgufValueJson(kv.value);
  } else {
    if (!ck.shards.empty())
      for (const auto& [k, v] : ck.shards[0].metadata) metadata[Utf8OrPrintable(k)] = Utf8OrPrintable(v);
    if (ck.index)
      for (const auto& [k, v] : ck.index->metadata) {
        json parsed = json::parse(v, nullptr, false);
        metadata["index." + Utf8OrPrintable(k)] = parsed.is_discarded() ? json(Utf8OrPrintable(v)) : parsed;
      }
  }
  small("metadata", std::move(metadata));
  small("block", BlockText(block));
  // sizes and fallbacks: one member per format, in name order (as a json object).
  std::map<std::string, const ModelSize*> by_name;
  for (const ModelSize& m : sizes) by_name.emplace(GetDType(m.wanted).name, &m);
  std::vector<std::pair<std::string, const ModelSize*>> formats(by_name.begin(), by_name.end());
  json size_bytes = json::object();
  for (const auto& [name, m] : formats) size_bytes[name] = m->bytes;
  small("sizes", std::move(size_bytes));
  members["fallbacks"] = [&] {
    w.Container(true, formats.size(), 1, [&](size_t k) { return formats[k].first; }, [&](size_t k) {
      const ModelSize& m = *formats[k].second;
      std::vector<size_t> listed;  // the tensors that do not get the wanted type
      for (size_t i = 0; i < m.tensors.size(); ++i)
        if (m.tensors[i].type.choice != TypeChoice::kWanted) listed.push_back(i);
      w.Container(false, listed.size(), 2, [](size_t) { return std::string(); }, [&](size_t i) {
        static constexpr const char* kKinds[] = {"wanted", "kept_rank", "kept_type", "fallback", "dropped"};
        const TensorSize& ts = m.tensors[listed[i]];
        w.Value({{"name", Utf8OrPrintable(ck.tensors[ts.index].name)},
                 {"to", ts.dropped ? "dropped" : std::string(GetDType(ts.type.used).name)},
                 {"kind", kKinds[static_cast<int>(ts.type.choice)]},
                 {"bytes", ts.bytes},
                 {"reason", ts.type.fallback_reason}},
                3);
      });
    });
  };
  json extra = json::array();
  for (const std::string& x : ck.extra_files) extra.push_back(Utf8OrPrintable(x));
  small("extra_files", std::move(extra));
  small("warnings", ck.warnings);

  std::vector<const std::function<void()>*> order;
  std::vector<std::string> keys;
  for (const auto& [k, fn] : members) keys.push_back(k), order.push_back(&fn);
  w.Container(true, keys.size(), 0, [&](size_t i) { return keys[i]; }, [&](size_t i) { (*order[i])(); });
  w.Put("\n");
}

void PrintHuman(const Checkpoint& ck, const std::vector<ModelSize>& sizes, Fp8Blocking block,
                const std::map<std::string, DTypeRow>& by_dtype, bool list_tensors) {
  const uint64_t params = ck.params();
  // 1. Summary.
  fmt::print("{}\n", PrintableText(ck.path, 1000));
  fmt::print("  {:<13}{}\n", "format", FormatText(ck));
  fmt::print("  {:<13}{}\n", "tensors", WithSeparators(ck.tensors.size()));
  fmt::print("  {:<13}{} ({})\n", "parameters", WithSeparators(params), HumanCount(params));
  fmt::print("  {:<13}{} bytes ({}); tensor data {} bytes\n", "on disk", WithSeparators(ck.disk_bytes()),
             HumanBytes(ck.disk_bytes()), WithSeparators(ck.tensor_bytes()));

  // 2. Per dtype, largest first.
  std::vector<std::pair<std::string, DTypeRow>> rows(by_dtype.begin(), by_dtype.end());
  std::stable_sort(rows.begin(), rows.end(), [](auto& a, auto& b) { return a.second.bytes > b.second.bytes; });
  fmt::print("\n  {:<12} {:>9} {:>21} {:>21}\n", "dtype", "tensors", "parameters", "bytes");
  for (const auto& [name, r] : rows)
    fmt::print("  {:<12} {:>9} {:>21} {:>21}  {:>11}\n", Clip(name, 12), WithSeparators(r.tensors),
               WithSeparators(r.params), WithSeparators(r.bytes), HumanBytes(r.bytes));
  if (rows.size() > 1)
    fmt::print("  {:<12} {:>9} {:>21} {:>21}  {:>11}\n", "total", WithSeparators(ck.tensors.size()),
               WithSeparators(params), WithSeparators(ck.tensor_bytes()), HumanBytes(ck.tensor_bytes()));

  // 3. Metadata, long values abbreviated.
  // A value column of kWidth - 44 columns: the abbreviation suffix "... (N bytes)" takes up to
  // 22 of them, and Clip() guards values whose escapes (\xNN) made them longer.
  const auto meta = ck.MetadataSummary(kWidth - 44 - 22);
  fmt::print("\nmetadata ({} {})\n", meta.size(), meta.size() == 1 ? "entry" : "entries");
  for (const auto& [k, v] : meta) {
    const std::string value = Clip(v, kWidth - 44);
    if (k.size() <= 40) fmt::print("  {:<40}  {}\n", k, value);
    else fmt::print("  {}\n  {:<40}  {}\n", Clip(k, kWidth - 2), "", value);
  }
  if (!ck.extra_files.empty()) {
    std::string line;
    for (const std::string& f : ck.extra_files) {
      if (!line.empty()) line += ", ";
      line += std::filesystem::path(f).filename().string();
    }
    fmt::print("\nother files ({}): {}\n", ck.extra_files.size(), Clip(line, kWidth * 3));
  }

  // 4. Tensors.
  if (list_tensors) {
    fmt::print("\n  {:<40} {:<8} {:<18} {:>13} {:>14}\n", "tensor", "dtype", "shape", "parameters", "bytes");
    int file = -1;
    for (const TensorInfo& t : ck.tensors) {
      if (ck.files.size() > 1 && t.file_index != file) {
        file = t.file_index;
        fmt::print("  == {}\n", FileLabel(ck, file));
      }
      const std::string name = PrintableText(t.name, 1000);
      const std::string rest = fmt::format("{:<8} {:<18} {:>13} {:>14}", Clip(t.dtype_name(), 8),
                                           ShapeString(t.shape), WithSeparators(t.elements()),
                                           WithSeparators(t.nbytes));
      if (name.size() <= 40) fmt::print("  {:<40} {}\n", name, rest);
      else fmt::print("  {}\n  {:<40} {}\n", name, "", rest);
    }
  }

  // 5. What it would weigh.
  fmt::print("\nwhat the tensors would weigh (FP8: {})\n",
             block.none() ? "unscaled" : fmt::format("{} blocks, one f32 scale each", BlockText(block)));
  fmt::print("  {:<8} {:>21} {:>13} {:>11} {:>10} {:>9} {:>9}\n", "format", "bytes", "GiB", "", "bits/param",
             "fallback", "kept");
  for (const ModelSize& m : sizes) {
    const double bpp = params ? 8.0 * static_cast<double>(m.bytes) / static_cast<double>(params) : 0.0;
    fmt::print("  {:<8} {:>21} {:>13.3f} {:>11} {:>10.2f} {:>9} {:>9}\n", GetDType(m.wanted).name,
               WithSeparators(m.bytes), GiB(m.bytes), HumanBytes(m.bytes), bpp,
               m.fallbacks ? WithSeparators(m.fallbacks) : "-", m.kept ? WithSeparators(m.kept) : "-");
  }
  fmt::print("  kept: 1-D tensors stay f32 in GGUF types and keep their type in FP8; integer tensors\n"
             "  are kept as they are. fallback: rows that do not fit the block size (listed below).\n");
  bool any = false;
  for (const ModelSize& m : sizes) {
    const auto groups = GroupFallbacks(ck, m);
    for (size_t g = 0; g < groups.size(); ++g) {
      if (!any) fmt::print("\nfallbacks (--json lists every tensor)\n");
      any = true;
      const FallbackGroup& fb = groups[g];
      fmt::print("  {:<8} {} tensor{} -> {}, e.g. {}\n", g == 0 ? std::string(GetDType(m.wanted).name) : "",
                 WithSeparators(fb.count), fb.count == 1 ? "" : "s", fb.to, Clip(PrintableText(fb.example), 50));
      fmt::print("  {:<8}   {}\n", "", Clip(fb.reason, kWidth - 13));
    }
  }
}

Runner Setup(CLI::App& sub) {
  auto opt = std::make_shared<Options>();
  auto json = std::make_shared<JsonOut>();
  sub.add_option("path", opt->path,
                 "A .safetensors file, a checkpoint directory (model.safetensors.index.json + shards, "
                 "or model.safetensors) or a .gguf file (any split of a set)")
      ->required();
  sub.add_flag("--tensors", opt->tensors, "List every tensor: name, dtype, shape, parameters, bytes");
  sub.add_option("--block", opt->block,
                 "FP8 block scaling for the e4m3fn size: RxC (default 128x128, DeepSeek's) or none")
      ->default_str("128x128");
  json->Add(sub);
  sub.footer(
      "JSON: {path, format, files, tensors: [{name, dtype, shape, params, bytes, file, offset}], params,\n"
      "bytes (on disk), tensor_bytes, by_dtype, metadata, block, sizes: {format: bytes}, fallbacks,\n"
      "extra_files, warnings}. Shapes are row-major (a GGUF tensor's ggml ne reversed).\n"
      "Sizes count tensor data with block scales; 1-D tensors stay f32 in GGUF types and keep their\n"
      "type in FP8; rows that do not fit a block type fall back like llama-quantize (q4_k -> q5_0,\n"
      "q6_k -> q8_0, ..., then f16).");
  return [opt, json]() -> int {
    const auto block = ParseBlock(opt->block);
    if (!block)
      return ReportError(MakeError(ErrorKind::kBadUsage, "--block '{}': expected RxC (e.g. 128x128) or none",
                                   opt->block));
    auto ck = OpenCheckpoint(opt->path);
    if (!ck.ok()) return ReportError(ck.error());
    for (const std::string& w : ck->warnings) Warn(w);

    std::map<std::string, DTypeRow> by_dtype;
    for (const TensorInfo& t : ck->tensors) {
      DTypeRow& r = by_dtype[t.dtype_name()];
      ++r.tensors;
      r.params += t.elements();
      r.bytes += t.nbytes;
    }
    std::vector<ModelSize> sizes;
    for (DType target : SizeTableTargets()) sizes.push_back(PlanModelSize(ck->tensors, target, *block));

    if (json->active()) {
      const Status s = json->WriteWith([&](std::FILE* f) { WriteJson(f, *ck, sizes, *block, by_dtype); });
      if (!s.ok()) return ReportError(s.error());
      if (json->to_stdout()) return kExitOk;
    }
    PrintHuman(*ck, sizes, *block, by_dtype, opt->tensors);
    return kExitOk;
  };
}

BITSMITH_COMMAND("info", "What is in a checkpoint, and what it would weigh in each format", 10, Setup);

}  // namespace
}  // namespace bitsmith::cli
