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
//           safetensors, copy); bit 5 --allow-requantize; bit 6: the extension
//           byte X and its sections follow; bit 7: a sharded safetensors input
//   X       (byte 2 bit 6) bits 0-1 --max-shard-size (directory output) or
//           --split-max-size (GGUF output): none, 1 byte (a file per tensor),
//           4 KiB, 64 KiB; bit 2 --strict; bit 3 --block bm x bn (FP8 targets);
//           bit 4 a recipe; bit 5 an imatrix; bit 6 a --resume check; bit 7 a
//           --force check (both: directory output, after a verified run)
//   then, in this order, the sections X asks for:
//     recipe    u8 length + that many bytes: a --recipe file (parsed by
//               ParseRecipe; an unparsable recipe ends the input: the recipe
//               target fuzzes the parser)
//     imatrix   u16 length (little-endian) + bytes: the --imatrix file
//     resume    u8 R: bits 0-3 which finished shards the manifest lists (shard i
//               when bit i % 4), bit 4 the first listed shard was damaged
//               since (a byte flipped), bit 5 the unlisted shards are gone, bit 6
//               no partial directory at all (only the output files), bit 7 the
//               manifest is the next u8-length-prefixed bytes instead
//     sharded   (byte 2 bit 7, safetensors input) u16 split point: the rest is
//               cut there into model-00001-of-00002 / -00002-of-00002.safetensors
//               and an index maps each shard's tensor names to it
//   rest    the bytes of model.safetensors (or model.gguf, or the two shards)
// Properties:
//  1. BuildConversionPlan and RunConversion never crash, throw or hang; an
//     error is a clear Error (never kInternal) and leaves nothing behind: no
//     output file or directory, no temporary -- but for the finished shards of
//     a directory output, which stay for --resume, listed in its manifest;
//  2. a conversion that succeeds passes VerifyConversion (the scalar reference
//     codecs recompute every output tensor from the input): no mismatch and no
//     structural problem;
//  3. the plan's JSON summary (what --json writes, convert/tensor_plan.h) is
//     valid JSON whatever the tensor names (GGUF names are any bytes);
//  4. --resume over what an interrupted run leaves (a manifest listing some
//     finished shards, some of them damaged or missing since, a temporary)
//     gives exactly the uninterrupted run's files, keeps exactly the listed
//     intact shards and removes the partial directory; with a fuzzed manifest
//     it gives those files or a clear error (never kInternal) that loses none
//     of the finished shards; with no partial directory, an output with every
//     file in place is "nothing to do" and anything missing is redone;
//  5. --force over a finished output gives the same files, removes a stale
//     weight file that is not part of the checkpoint and keeps other files.
// The work directory is /dev/shm/bitsmith-convert-fuzz-<pid> (TMPDIR when
// /dev/shm is missing), removed at exit.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "convert/convert.h"
#include "convert/manifest.h"
#include "convert/recipe.h"
#include "convert/safetensors.h"
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
void WriteText(const fs::path& p, const std::string& s) {
  WriteBytes(p, reinterpret_cast<const uint8_t*>(s.data()), s.size());
}
std::string ReadBytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// The input's leading sections, consumed in order; false when the input is too short.
struct Reader {
  const uint8_t* p;
  size_t n;
  bool U8(uint8_t* v) {
    if (n < 1) return false;
    *v = *p++, --n;
    return true;
  }
  bool U16(size_t* v) {
    if (n < 2) return false;
    *v = p[0] | (size_t{p[1]} << 8), p += 2, n -= 2;
    return true;
  }
  bool Bytes(size_t k, std::string* out) {
    if (n < k) return false;
    out->assign(reinterpret_cast<const char*>(p), k), p += k, n -= k;
    return true;
  }
};

// Nothing but the inputs may exist in the work directory -- except what a
// failed directory conversion keeps for --resume: shards already finished, each
// listed in OUT/.bitsmith-partial/manifest.json, the lock, and nothing else (no
// index: it is written last, so the output never looks finished).
void CheckNothingLeft(const fs::path& root, const std::string& after) {
  for (const auto& e : fs::directory_iterator(root)) {
    const fs::path name = e.path().filename();
    if (name == "in" || name == "imatrix.dat") continue;
    if (name != "out" || !fs::is_directory(e.path())) Fail("nothing left behind", after + ": " + e.path().string());
    const fs::path partial = e.path() / std::string(kPartialDirName);
    auto m = ParseManifest(ReadBytes(partial / "manifest.json"), "manifest.json");
    if (!m.ok()) Fail("a failed directory conversion left no valid manifest", after + ": " + m.error().message);
    if (m->files.empty()) Fail("a failed directory conversion kept a manifest of nothing", after);
    for (const auto& f : fs::directory_iterator(e.path())) {
      const std::string n = f.path().filename().string();
      if (n != std::string(kPartialDirName) && !m->files.count(n))
        Fail("a failed directory conversion left a file the manifest does not list", after + ": " + n);
    }
    for (const auto& f : fs::directory_iterator(partial))
      if (f.path().filename() != "manifest.json" && f.path().filename() != "lock")
        Fail("a failed directory conversion left a temporary", after + ": " + f.path().string());
  }
}

// Every file under `out` (recursively; the partial directory included), by
// relative path.
std::map<std::string, std::string> Snapshot(const fs::path& out) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(out))
    if (e.is_regular_file()) files[fs::relative(e.path(), out).string()] = ReadBytes(e.path());
  return files;
}

std::string Differences(const std::map<std::string, std::string>& want, const std::map<std::string, std::string>& got) {
  std::string d;
  for (const auto& [name, bytes] : want) {
    auto it = got.find(name);
    if (it == got.end()) d += " missing " + name + ";";
    else if (it->second != bytes) d += " changed " + name + ";";
  }
  for (const auto& [name, bytes] : got)
    if (!want.count(name)) d += " extra " + name + ";";
  return d;
}

// Two shards and an index mapping each shard's tensor names to it (a shard
// whose header does not parse gets one made-up name, so the error is reached).
void WriteShardedInput(const fs::path& in, const uint8_t* data, size_t n, size_t split) {
  split %= n + 1;
  const std::string shard[2] = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};
  WriteBytes(in / shard[0], data, split);
  WriteBytes(in / shard[1], data + split, n - split);
  nlohmann::json map = nlohmann::json::object();
  for (int k = 0; k < 2; ++k) {
    auto f = ReadSafetensorsFile((in / shard[k]).string());
    if (!f.ok()) {
      map["unparsable." + std::to_string(k)] = shard[k];
      continue;
    }
    for (const TensorInfo& t : f->tensors)
      if (!map.contains(t.name)) map[t.name] = shard[k];
  }
  const nlohmann::json index = {{"metadata", {{"total_size", n}}}, {"weight_map", map}};
  WriteText(in / "model.safetensors.index.json", index.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

// Property 4: what an interrupted run leaves, then --resume.
void CheckResume(const ConversionPlan& plan, const RunControl& base, const std::map<std::string, std::string>& want,
                 uint8_t r, bool fuzzed_manifest, const std::string& manifest_text) {
  const fs::path out = plan.out_path;
  const bool no_partial = (r & 0x40) && !fuzzed_manifest;
  size_t listed = 0, damaged = 0;
  Manifest m{ConversionJobKey(plan), {}};
  for (size_t i = 0; i < plan.files.size(); ++i) {
    const OutputFilePlan& f = plan.files[i];
    if ((r >> (i % 4)) & 1) {
      auto d = RecomputeDigest(f.planned.path, OutputFileDigestPieces(plan, f));
      if (!d.ok()) Fail("resume: the digest of a finished shard", d.error().message);
      m.files[f.name] = {f.planned.size, *d};
      ++listed;
      if ((r & 0x10) && damaged == 0 && !no_partial && f.planned.size > 0) {
        std::fstream s(f.planned.path, std::ios::binary | std::ios::in | std::ios::out);
        s.seekg(static_cast<std::streamoff>(f.planned.size / 2));
        const char c = static_cast<char>(s.get() ^ 0x5A);
        s.seekp(static_cast<std::streamoff>(f.planned.size / 2));
        s.put(c);
        damaged = 1;
      }
    } else if (r & 0x20) {
      fs::remove(f.planned.path);
    }
  }
  if (!no_partial) {
    if (!plan.index_name.empty()) fs::remove(out / plan.index_name);  // written last: not yet there
    {
      auto pd = PartialDir::Acquire(out.string());
      if (!pd.ok()) Fail("resume: cannot set up the partial directory", pd.error().message);
      if (fuzzed_manifest) WriteText(fs::path(pd->path()) / "manifest.json", manifest_text);
      else if (Status s = pd->Save(m); !s.ok()) Fail("resume: cannot save the manifest", s.error().message);
      if (!plan.files.empty()) WriteText(pd->TempPath(plan.files[0].name), "a killed run's temporary");
    }  // the lock is released, as by a killed run
  }
  // What a refused resume must leave untouched (only a fuzzed manifest may be refused).
  const auto before = fuzzed_manifest ? Snapshot(out) : std::map<std::string, std::string>{};
  RunControl ctl = base;
  ctl.resume = true;
  auto rep = RunConversion(plan, ctl);
  if (!rep.ok()) {
    if (!fuzzed_manifest) Fail("resume failed", rep.error().message);
    if (rep.error().kind == ErrorKind::kInternal) Fail("resume: internal error", rep.error().message);
    // Nothing finished is lost: every output file there before is still there, unchanged.
    const auto after = Snapshot(out);
    for (const auto& [name, bytes] : before)
      if (name.rfind(std::string(kPartialDirName), 0) != 0) {
        auto it = after.find(name);
        if (it == after.end() || it->second != bytes)
          Fail("a refused resume changed a finished file", name + " (" + rep.error().message + ")");
      }
    return;
  }
  const auto got = Snapshot(out);
  if (got != want) Fail("resume did not give the uninterrupted run's files", Differences(want, got));
  if (!fuzzed_manifest && !no_partial && rep->files_resumed != listed - damaged)
    Fail("resume kept the wrong shards", std::to_string(rep->files_resumed) + " kept, " + std::to_string(listed) +
                                             " listed, " + std::to_string(damaged) + " damaged");
  if (no_partial && (rep->nothing_to_do != (listed == plan.files.size() || !(r & 0x20))))
    Fail("resume of an output without a partial directory", rep->nothing_to_do ? "nothing to do" : "redone");
}

// Property 5: --force over the finished output.
void CheckForce(const ConversionPlan& plan, const RunControl& base, std::map<std::string, std::string> want) {
  const fs::path out = plan.out_path;
  WriteText(out / "model-00042-of-00099.safetensors", "a stale shard");
  WriteText(out / "notes.txt", "not a weight file");
  want["notes.txt"] = "not a weight file";
  RunControl ctl = base;
  ctl.force = true;
  auto rep = RunConversion(plan, ctl);
  if (!rep.ok()) Fail("--force over a finished output failed", rep.error().message);
  const auto got = Snapshot(out);
  if (got != want) Fail("--force did not give the same files", Differences(want, got));
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
  const bool gguf_in = (data[2] & 0x10) != 0;
  const bool sharded_in = (data[2] & 0x80) != 0 && !gguf_in;

  Reader rd{data + 3, size - 3};
  uint8_t x = 0, resume = 0;
  std::string recipe, imatrix, manifest;
  size_t split = 0;
  if (data[2] & 0x40) {
    size_t len = 0;
    uint8_t len8 = 0;
    if (!rd.U8(&x)) return 0;
    if ((x & 0x10) && !(rd.U8(&len8) && rd.Bytes(len8, &recipe))) return 0;
    if ((x & 0x20) && !(rd.U16(&len) && rd.Bytes(len, &imatrix))) return 0;
    if ((x & 0x40) && !rd.U8(&resume)) return 0;
    if ((x & 0x40) && (resume & 0x80) && !(rd.U8(&len8) && rd.Bytes(len8, &manifest))) return 0;
  }
  if (sharded_in && !rd.U16(&split)) return 0;

  ConvertOptions opts;
  if (x & 0x10) {
    auto rules = ParseRecipe(recipe, "recipe.txt");
    if (!rules.ok()) return 0;
    opts.rules = std::move(*rules);
  }

  const fs::path in = work.root / "in";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(work.root)) fs::remove_all(e.path(), ec);
  fs::create_directories(in);
  if (sharded_in) WriteShardedInput(in, rd.p, rd.n, split);
  else WriteBytes(in / (gguf_in ? "model.gguf" : "model.safetensors"), rd.p, rd.n);
  if (o & 0x40) {
    const std::string cfg =
        "{\"architectures\": [\"DeepseekV3ForCausalLM\"], \"model_type\": \"deepseek_v3\", "
        "\"quantization_config\": {\"activation_scheme\": \"dynamic\", \"fmt\": \"e4m3\", "
        "\"quant_method\": \"fp8\", \"weight_block_size\": [" +
        std::to_string(bm) + ", " + std::to_string(bn) + "]}}";
    WriteText(in / "config.json", cfg);
  }
  if (x & 0x20) {
    WriteText(work.root / "imatrix.dat", imatrix);
    opts.imatrix = (work.root / "imatrix.dat").string();
  }

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
  static const uint64_t kLimit[] = {0, 1, 4096, 65536};
  if (kind == 0) opts.max_shard_size = kLimit[x & 3];
  if (kind == 2) opts.split_max_size = kLimit[x & 3];
  opts.strict = (x & 0x04) != 0;
  if (x & 0x08) opts.block = {static_cast<uint32_t>(bm), static_cast<uint32_t>(bn)};

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
  v.imatrix = opts.imatrix;
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
  if (kind == 0 && (x & 0xC0)) {
    const auto want = Snapshot(plan->out_path);
    if (x & 0x40) CheckResume(*plan, ctl, want, resume, (resume & 0x80) != 0, manifest);
    if (x & 0x80) {
      if (x & 0x40) {  // a fresh finished output again (the resume check may have been refused)
        fs::remove_all(plan->out_path, ec);
        auto again = RunConversion(*plan, ctl);
        if (!again.ok()) Fail("a second identical conversion failed", again.error().message);
        if (Snapshot(plan->out_path) != want) Fail("a second identical conversion", "different files");
      }
      CheckForce(*plan, ctl, want);
    }
  }
  return 0;
}
