// Fuzz target: the convert pipeline end to end (convert/tensor_plan.h,
// convert/convert.h) on tiny fuzzed checkpoints in a tmpfs directory.
//
// Input layout:
//   byte 0  the target type: none (copy), bf16, f16, f32, e4m3fn, q8_0, q4_0,
//           q4_k, q6_k, iq4_nl, q5_1, e5m2 (modulo 12)
//   byte 1  bits 0-1 output kind (directory, .safetensors, .gguf; block types
//           always go to .gguf); bit 2 --allow-nonfinite; bits 3-4 --unscaled
//           (error, keep, cast); bit 5 --cast-all; bit 6 a DeepSeek-style
//           config.json (FP8 block size from byte 2); bit 7 --fp8-via f32
//   byte 2  weight_block_size: bm = {1,2,4,128}[b & 3], bn = {1,2,4,128}[(b>>2) & 3];
//           bit 4: the rest is a GGUF file (model.gguf: requantize, dequantize to
//           safetensors, copy); bit 5 --allow-requantize
//   rest    the bytes of model.safetensors (or model.gguf)
// Properties:
//  1. BuildConversionPlan and RunConversion never crash, throw or hang; an
//     error is a clear Error (never kInternal) and leaves nothing behind: no
//     output file or directory, no temporary;
//  2. a conversion that succeeds passes VerifyConversion (the scalar reference
//     codecs recompute every output tensor from the input): no mismatch and no
//     structural problem;
//  3. the plan's JSON summary (what --json writes, convert/tensor_plan.h) is
//     valid JSON whatever the tensor names (GGUF names are any bytes).
// The work directory is /dev/shm/bitsmith-convert-fuzz-<pid> (TMPDIR when
// /dev/shm is missing), removed at exit.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "convert/convert.h"
#include "convert/tensor_plan.h"
#include "formats/dtype.h"

namespace {

namespace fs = std::filesystem;
using namespace bitsmith;

[[noreturn]] void Fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "convert_fuzz: property violated: %s: %s\n", what, detail.c_str());
  std::abort();
}

struct WorkDir {
  fs::path root;
  WorkDir() {
    std::error_code ec;
    fs::path base = fs::is_directory("/dev/shm", ec) ? fs::path("/dev/shm") : fs::temp_directory_path();
    root = base / ("bitsmith-convert-fuzz-" + std::to_string(getpid()));
    fs::remove_all(root, ec);
    fs::create_directories(root / "in");
  }
  ~WorkDir() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
};

void WriteBytes(const fs::path& p, const uint8_t* data, size_t n) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(n));
}

// Nothing but the input directory may exist in the work directory.
void CheckNothingLeft(const fs::path& root, const std::string& after) {
  for (const auto& e : fs::directory_iterator(root))
    if (e.path().filename() != "in") Fail("nothing left behind", after + ": " + e.path().string());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static WorkDir work;
  if (size < 3) return 0;
  static const std::optional<DType> kTargets[] = {
      std::nullopt, DType::kBF16, DType::kF16, DType::kF32, DType::kE4M3FN, DType::kQ8_0,
      DType::kQ4_0, DType::kQ4_K, DType::kQ6_K, DType::kIQ4_NL, DType::kQ5_1, DType::kE5M2};
  const std::optional<DType> to = kTargets[data[0] % 12];
  const uint8_t o = data[1];
  static const int kBlock[] = {1, 2, 4, 128};
  const int bm = kBlock[data[2] & 3], bn = kBlock[(data[2] >> 2) & 3];

  const fs::path in = work.root / "in";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(work.root))
    if (e.path().filename() != "in") fs::remove_all(e.path(), ec);
  fs::remove(in / "config.json", ec);
  const bool gguf_in = (data[2] & 0x10) != 0;
  fs::remove(in / (gguf_in ? "model.safetensors" : "model.gguf"), ec);
  WriteBytes(in / (gguf_in ? "model.gguf" : "model.safetensors"), data + 3, size - 3);
  if (o & 0x40) {
    const std::string cfg =
        "{\"architectures\": [\"DeepseekV3ForCausalLM\"], \"model_type\": \"deepseek_v3\", "
        "\"quantization_config\": {\"activation_scheme\": \"dynamic\", \"fmt\": \"e4m3\", "
        "\"quant_method\": \"fp8\", \"weight_block_size\": [" +
        std::to_string(bm) + ", " + std::to_string(bn) + "]}}";
    WriteBytes(in / "config.json", reinterpret_cast<const uint8_t*>(cfg.data()), cfg.size());
  }

  ConvertOptions opts;
  opts.input = in.string();
  const bool block = to && GetDType(*to).is_block();
  const int kind = block ? 2 : (o & 3) % 3;
  opts.output = (work.root / (kind == 0 ? "out" : kind == 1 ? "out.safetensors" : "out.gguf")).string();
  opts.to = to;
  opts.allow_nonfinite = (o & 0x04) != 0;
  opts.unscaled = static_cast<UnscaledFp8>(((o >> 3) & 3) % 3);
  opts.cast_all = (o & 0x20) != 0;
  opts.fp8_via_f32 = (o & 0x80) != 0;
  opts.allow_requantize = (data[2] & 0x20) != 0;

  auto plan = BuildConversionPlan(opts);
  if (!plan.ok()) {
    if (plan.error().kind == ErrorKind::kInternal) Fail("plan: internal error", plan.error().message);
    CheckNothingLeft(work.root, "a refused plan");
    return 0;
  }
  if (const auto j = nlohmann::json::parse(PlanJsonText(*plan), nullptr, false); j.is_discarded())
    Fail("the plan's JSON summary is not JSON", plan->options.input);
  if (plan->file_bytes_out > (uint64_t{64} << 20)) return 0;  // tiny inputs only
  RunControl ctl;
  ctl.threads = 1;
  ctl.allow_nonfinite = opts.allow_nonfinite;
  auto rep = RunConversion(*plan, ctl);
  if (!rep.ok()) {
    if (rep.error().kind == ErrorKind::kInternal) Fail("run: internal error", rep.error().message);
    CheckNothingLeft(work.root, "a failed conversion (" + rep.error().message + ")");
    return 0;
  }
  VerifyOptions v;
  v.input = opts.input;
  v.output = opts.output;
  v.allow_nonfinite = opts.allow_nonfinite;
  v.fp8_via_f32 = opts.fp8_via_f32;
  v.threads = 1;
  auto ver = VerifyConversion(v);
  if (!ver.ok()) Fail("verify of a finished conversion failed", ver.error().message);
  if (!ver->ok()) {
    std::string detail = std::to_string(ver->mismatches) + " mismatches";
    for (const auto& p : ver->problems) detail += "; " + p;
    for (const auto& t : ver->tensors)
      if (!t.identical) detail += "; " + t.name + " (" + t.from + " -> " + t.to + ", " + t.op + "): " + t.detail;
    Fail("verify of a finished conversion", detail);
  }
  return 0;
}
