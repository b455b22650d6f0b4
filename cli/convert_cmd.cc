// `bitsmith convert IN OUT [options]`: FP8 -> BF16 as DeepSeek's fp8_cast_bf16,
// casts, FP8 block quantization, GGUF quantize / requantize / dequantize.
#include <unistd.h>  // isatty

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "cli/commands.h"
#include "convert/convert.h"
#include "convert/recipe.h"
#include "convert/tensor_plan.h"

namespace bitsmith::cli {
namespace {

struct Args {
  std::string in, out, to, block = "128x128", unscaled = "error", fp8_via = "bf16", imatrix;
  std::vector<std::string> tensor_types, recipes;
  std::string max_shard, split_max;
  bool cast_all = false, allow_nonfinite = false, strict = false, allow_requantize = false;
  bool resume = false, force = false, dry_run = false;
  int threads = 0;
};

Result<Fp8Blocking> ParseBlock(const std::string& s) {
  if (s == "none") return Fp8Blocking::None();
  unsigned r = 0, c = 0;
  char x = 0, extra = 0;
  if (std::sscanf(s.c_str(), "%u%c%u%c", &r, &x, &c, &extra) != 3 || (x != 'x' && x != 'X') || r == 0 || c == 0 ||
      r > (1u << 20) || c > (1u << 20))
    return MakeError(ErrorKind::kBadUsage, "--block '{}': expected ROWSxCOLS (e.g. 128x128) or none", s);
  return Fp8Blocking{r, c};
}

Result<ConvertOptions> MakeOptions(const Args& a) {
  ConvertOptions o;
  o.input = a.in;
  o.output = a.out;
  if (!a.to.empty()) {
    auto t = FindDType(a.to);
    if (!t) return MakeError(ErrorKind::kBadUsage, "--to '{}': unknown type (see `bitsmith formats`)", a.to);
    o.to = *t;
  }
  for (const std::string& r : a.tensor_types) {
    BITSMITH_ASSIGN_OR_RETURN(RecipeRule rule, ParseRecipeRule(r, "--tensor-type"));
    o.rules.push_back(std::move(rule));
  }
  for (const std::string& path : a.recipes) {
    // A recipe is a small text file: refuse devices, pipes and anything over
    // 1 MiB instead of reading without bound.
    std::error_code ec;
    const auto st = std::filesystem::status(path, ec);
    if (ec || !std::filesystem::exists(st))
      return MakeError(ErrorKind::kBadUsage, "--recipe {}: no such file", path);
    if (!std::filesystem::is_regular_file(st))
      return MakeError(ErrorKind::kBadUsage, "--recipe {}: not a regular file", path);
    if (std::filesystem::file_size(path, ec) > (uint64_t{1} << 20))
      return MakeError(ErrorKind::kBadUsage, "--recipe {}: larger than 1 MiB; a recipe is one REGEX=TYPE per line",
                       path);
    std::ifstream f(path, std::ios::binary);
    if (!f) return MakeError(ErrorKind::kBadUsage, "--recipe {}: cannot read", path);
    std::stringstream ss;
    ss << f.rdbuf();
    BITSMITH_ASSIGN_OR_RETURN(std::vector<RecipeRule> rules, ParseRecipe(ss.str(), path));
    for (RecipeRule& r : rules) o.rules.push_back(std::move(r));
  }
  o.cast_all = a.cast_all;
  if (a.unscaled == "error") o.unscaled = UnscaledFp8::kError;
  else if (a.unscaled == "keep") o.unscaled = UnscaledFp8::kKeep;
  else if (a.unscaled == "cast") o.unscaled = UnscaledFp8::kCast;
  else return MakeError(ErrorKind::kBadUsage, "--unscaled '{}': expected error, keep or cast", a.unscaled);
  o.allow_nonfinite = a.allow_nonfinite;
  BITSMITH_ASSIGN_OR_RETURN(o.block, ParseBlock(a.block));
  o.imatrix = a.imatrix;
  if (a.fp8_via == "f32") o.fp8_via_f32 = true;
  else if (a.fp8_via != "bf16") return MakeError(ErrorKind::kBadUsage, "--fp8-via '{}': expected bf16 or f32", a.fp8_via);
  o.strict = a.strict;
  o.allow_requantize = a.allow_requantize;
  auto size = [](const std::string& s, std::string_view what) -> Result<uint64_t> {
    if (s.empty()) return uint64_t{0};
    auto v = ParseSize(s);
    if (!v || *v == 0) return MakeError(ErrorKind::kBadUsage, "{} '{}': expected a size such as 5GB or 500MiB", what, s);
    return *v;
  };
  BITSMITH_ASSIGN_OR_RETURN(o.max_shard_size, size(a.max_shard, "--max-shard-size"));
  BITSMITH_ASSIGN_OR_RETURN(o.split_max_size, size(a.split_max, "--split-max-size"));
  return o;
}

std::string OutputDescription(const ConversionPlan& p) {
  switch (p.out_kind) {
    case OutputKind::kGguf:
      return p.files.size() == 1 ? "GGUF file" : fmt::format("GGUF, {} splits", p.files.size());
    case OutputKind::kSafetensorsFile: return "safetensors file";
    case OutputKind::kDirectory:
      return fmt::format("safetensors directory: {} shard(s){}{}{}", p.files.size(),
                         p.mirrors_shards ? " (one per input shard)" : "",
                         p.index_name.empty() ? "" : " + index",
                         p.extras.empty() ? "" : fmt::format(" + {} other file(s)", p.extras.size()));
  }
  return "?";
}

// `s` padded to `width` columns, left- or right-aligned, as fmt's {:<w} / {:>w}
// would write it. ASCII text (every tensor name of a real checkpoint) is padded
// by byte count; anything else goes through fmt, whose column count knows wide
// and combining characters. fmt's per-code-point width scan was 13% of a
// DeepSeek-V3 dry-run (92 k names).
void AppendPadded(fmt::memory_buffer& out, std::string_view s, size_t width, bool right) {
  bool ascii = true;
  for (char c : s) ascii &= static_cast<unsigned char>(c) < 0x80;
  if (!ascii) {
    if (right) fmt::format_to(std::back_inserter(out), "{:>{}}", s, width);
    else fmt::format_to(std::back_inserter(out), "{:<{}}", s, width);
    return;
  }
  const size_t fill = s.size() < width ? width - s.size() : 0;
  if (right) out.resize(out.size() + fill), std::fill(out.end() - fill, out.end(), ' ');
  out.append(s);
  if (!right) out.resize(out.size() + fill), std::fill(out.end() - fill, out.end(), ' ');
}

// n with thousands separators, right-aligned in `width` columns.
void AppendCount(fmt::memory_buffer& out, uint64_t n, size_t width) {
  SeparatedDigits buf;
  AppendPadded(out, WithSeparators(n, buf), width, true);
}

void PrintTensorTable(const ConversionPlan& p) {
  // One buffer, written in 1 MiB pieces: 46 k lines for DeepSeek-V3. Columns as
  // "  {:<52} {:>8} {:>8} {:<12} {:>16} {:>16}".
  fmt::memory_buffer out;
  auto flush = [&](bool force) {
    if (!force && out.size() < (size_t{1} << 20)) return;
    std::fwrite(out.data(), 1, out.size(), stdout);
    out.clear();
  };
  fmt::format_to(std::back_inserter(out), "  {:<52} {:>8} {:>8} {:<12} {:>16} {:>16}\n", "tensor", "from", "to", "op",
                 "bytes in", "bytes out");
  for (const TensorPlan& t : p.tensors) {
    const std::string_view to = t.op == TensorOp::kCopy && !t.from ? std::string_view(t.from_name) : GetDType(t.to).name;
    std::string_view name = t.name;
    out.append(std::string_view("  "));
    if (name.size() > 52) {
      out.append(name);
      out.append(std::string_view("\n  "));
      name = {};
    }
    AppendPadded(out, name, 52, false);
    out.push_back(' ');
    AppendPadded(out, t.from_name, 8, true);
    out.push_back(' ');
    AppendPadded(out, to, 8, true);
    out.push_back(' ');
    AppendPadded(out, TensorOpName(t.op), 12, false);
    out.push_back(' ');
    AppendCount(out, t.bytes_in, 16);
    out.push_back(' ');
    AppendCount(out, t.bytes_out, 16);
    if (!t.note.empty()) fmt::format_to(std::back_inserter(out), "  ({})", t.note);
    out.push_back('\n');
    flush(false);
  }
  for (const DroppedTensor& d : p.dropped) {
    out.append(std::string_view("  "));
    AppendPadded(out, DroppedName(p, d), 52, false);
    out.append(std::string_view(" dropped: "));
    out.append(std::string_view(DroppedReason(p, d)));
    out.push_back('\n');
    flush(false);
  }
  flush(true);
}

void PrintSummary(const ConversionPlan& p) {
  size_t by_op[6] = {};
  for (const TensorPlan& t : p.tensors) ++by_op[static_cast<int>(t.op)];
  fmt::print("  input     {} ({} file(s), {} tensors)\n", p.options.input, p.input.files.size(), p.input.tensors.size());
  fmt::print("  FP8       {}\n", p.fp8.layout.Describe());
  fmt::print("  output    {} ({})\n", p.out_path, OutputDescription(p));
  std::string ops;
  for (int k = 0; k < 6; ++k)
    if (by_op[k]) ops += fmt::format("{}{} {}", ops.empty() ? "" : ", ", by_op[k], TensorOpName(static_cast<TensorOp>(k)));
  fmt::print("  tensors   {} written ({}), {} dropped, {} fallback(s)\n", p.tensors.size(), ops, p.dropped.size(),
             p.fallbacks);
  fmt::print("  bytes     {} ({}) of tensor data in -> {} ({}) out; {} ({}) in {} weight file(s)\n",
             WithSeparators(p.bytes_in), HumanBytes(p.bytes_in), WithSeparators(p.bytes_out),
             HumanBytes(p.bytes_out), WithSeparators(p.file_bytes_out), HumanBytes(p.file_bytes_out), p.files.size());
  for (const ExtraFilePlan& e : p.extras)
    if (!e.note.empty()) fmt::print("  {}  {}\n", e.name, e.note);
  for (const TensorPlan& t : p.tensors)
    if (t.fallback) fmt::print("  fallback  {}: {}\n", t.name, t.note);
  if (!p.container_note.empty()) fmt::print("  note      {}\n", p.container_note);
}

// The progress line (stderr): bytes, rate, ETA, current file. Only when both
// stdout and stderr are terminals (nothing of it in logs or pipes), never with -q.
class ProgressLine {
 public:
  explicit ProgressLine(ConvertProgress& p) : p_(p) {
    if (::isatty(STDOUT_FILENO) != 1 || !StderrIsTerminal() || Quiet()) return;
    thread_ = std::thread([this] {
      const auto t0 = std::chrono::steady_clock::now();
      while (!stop_.load()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const uint64_t done = p_.done.load(), total = p_.total.load();
        const double rate = s > 0 ? static_cast<double>(done) / s : 0;
        const double eta = rate > 0 && total > done ? static_cast<double>(total - done) / rate : 0;
        std::string cur;
        {
          std::lock_guard<std::mutex> l(p_.mu);
          cur = p_.current;
        }
        fmt::print(stderr, "\r\033[K  {} / {}  {:.2f} GB/s  ETA {}:{:02d}  {}", HumanBytes(done), HumanBytes(total),
                   rate / 1e9, static_cast<int>(eta) / 60, static_cast<int>(eta) % 60, cur.substr(0, 40));
        std::fflush(stderr);
        printed_ = true;
      }
    });
  }
  ~ProgressLine() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (printed_) fmt::print(stderr, "\r\033[K");
  }

 private:
  ConvertProgress& p_;
  std::atomic<bool> stop_{false};
  bool printed_ = false;
  std::thread thread_;
};

Runner Setup(CLI::App& sub) {
  auto a = std::make_shared<Args>();
  auto json = std::make_shared<JsonOut>();
  sub.add_option("IN", a->in, "Input: a .safetensors file, a checkpoint directory, or a .gguf file")->required();
  sub.add_option("OUT", a->out,
                 "Output: a directory (sharded safetensors), a .safetensors file or a .gguf file")
      ->required();
  sub.add_option("--to", a->to,
                 "Target type: bf16|f16|f32 (scaled FP8 weights dequantized exactly as DeepSeek's "
                 "fp8_cast_bf16; other tensors copied unless --cast-all), e4m3fn|e5m2 (block-scaled FP8 "
                 "from BF16/F32), or a GGUF block type such as q4_k (OUT must be .gguf; every 2-D "
                 "tensor that can take it, 1-D tensors f32)");
  sub.add_option("--tensor-type", a->tensor_types,
                 "REGEX=TYPE for the tensors whose name matches (repeatable; first match wins, before --to)");
  sub.add_option("--recipe", a->recipes, "File of REGEX=TYPE lines ('#' comments), after --tensor-type rules");
  sub.add_flag("--cast-all", a->cast_all, "With --to bf16|f16|f32: also cast every other float tensor");
  sub.add_option("--unscaled", a->unscaled,
                 "FP8 tensors without a scale: error (default), keep (copy unchanged), cast (scale 1)");
  sub.add_flag("--allow-nonfinite", a->allow_nonfinite,
               "Convert FP8 weights with NaN codes and NaN/inf/negative scales instead of refusing them");
  sub.add_option("--block", a->block, "FP8 targets: scale block ROWSxCOLS (default 128x128) or none");
  sub.add_option("--imatrix", a->imatrix, "llama.cpp importance matrix (.dat or GGUF imatrix) for quantization");
  sub.add_option("--fp8-via", a->fp8_via,
                 "FP8 -> block type: bf16 (default: quantize the values --to bf16 would write) or f32");
  sub.add_flag("--strict", a->strict, "A tensor whose rows do not fit the block type is an error, not a fallback");
  sub.add_flag("--allow-requantize", a->allow_requantize, "Requantize tensors that are already quantized");
  sub.add_option("--max-shard-size", a->max_shard,
                 "Directory output: shard at this size (e.g. 5GB) instead of one shard per input shard");
  sub.add_option("--split-max-size", a->split_max, "GGUF output: split at this size (llama.cpp's gguf-split naming)");
  sub.add_option("--threads", a->threads, "Worker threads (default: all cores); the output never depends on it");
  sub.add_flag("--resume", a->resume, "Continue an interrupted conversion into OUT (nothing to do if complete)");
  sub.add_flag("--force", a->force, "Convert into a non-empty OUT, replacing what is there");
  sub.add_flag("--dry-run", a->dry_run, "Read headers only; print what would be written, per tensor, and totals");
  json->Add(sub);
  sub.footer(
      "safetensors -> GGUF is a container conversion: names are kept as in the input and config.json\n"
      "scalars become config.* metadata; llama.cpp's model loader, which needs architecture-specific\n"
      "names and tokenizer metadata, cannot load such a file yet. GGUF -> GGUF with a type option\n"
      "requantizes like llama-quantize (metadata kept, general.file_type updated).");
  return [a, json]() -> int {
    const auto t0 = std::chrono::steady_clock::now();
    auto opts = MakeOptions(*a);
    if (!opts.ok()) return ReportError(opts.error());
    auto plan = BuildConversionPlan(*opts);
    if (!plan.ok()) return ReportError(plan.error());
    for (const std::string& w : plan->warnings) Warn(w);
    const bool human = !json->to_stdout();
    // The --json document only when asked for, streamed (46 k tensor objects
    // for DeepSeek-V3): the plan's members plus these.
    nlohmann::json extra = nlohmann::json::object();
    extra["dry_run"] = a->dry_run;
    auto write_json = [&]() -> Status {
      if (!json->active()) return Status::Ok();
      return json->WriteWith([&](std::FILE* f) {
        WritePlanJson(*plan, extra, [f](std::string_view s) { std::fwrite(s.data(), 1, s.size(), f); });
        std::fputc('\n', f);
      });
    };
    if (a->dry_run) {
      if (human) {
        fmt::print("bitsmith convert --dry-run (headers only; nothing written)\n");
        PrintTensorTable(*plan);
        PrintSummary(*plan);
      }
      extra["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (Status s = write_json(); !s.ok()) return ReportError(s.error());
      return kExitOk;
    }
    ConvertProgress progress;
    RunControl ctl;
    ctl.threads = a->threads;
    ctl.resume = a->resume;
    ctl.force = a->force;
    ctl.progress = &progress;
    Result<ConvertReport> rep = [&] {
      ProgressLine line(progress);
      return RunConversion(*plan, ctl);
    }();
    if (!rep.ok()) return ReportError(rep.error());
    for (const std::string& w : rep->warnings) Warn(w);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    extra["seconds"] = secs;
    extra["files_written"] = rep->files_written;
    extra["files_resumed"] = rep->files_resumed;
    extra["nothing_to_do"] = rep->nothing_to_do;
    if (human) {
      fmt::print("bitsmith convert: {} -> {}\n", plan->options.input, plan->out_path);
      PrintSummary(*plan);
      if (rep->nothing_to_do) {
        fmt::print("  done      nothing to do: {} is complete (run `bitsmith verify` to check its contents)\n",
                   plan->out_path);
      } else {
        fmt::print("  done      {} file(s) written{}, {} in {:.2f} s ({:.2f} GB/s of output)\n", rep->files_written,
                   rep->files_resumed ? fmt::format(", {} kept from the interrupted run", rep->files_resumed) : "",
                   HumanBytes(rep->bytes_written), rep->seconds,
                   rep->seconds > 0 ? static_cast<double>(rep->bytes_written) / rep->seconds / 1e9 : 0.0);
      }
    }
    if (Status s = write_json(); !s.ok()) return ReportError(s.error());
    return kExitOk;
  };
}

BITSMITH_COMMAND("convert",
                 "Convert a checkpoint: FP8->BF16 exactly as DeepSeek's fp8_cast_bf16, casts, FP8 "
                 "quantization, GGUF quantize/requantize/dequantize (streaming, resumable)",
                 20, Setup);

}  // namespace
}  // namespace bitsmith::cli
