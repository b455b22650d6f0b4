// convert against llama.cpp itself: the GGUF files bitsmith writes must load
// in libllama, and `convert --to T` (and a requantize) must give, tensor by
// tensor, the bytes llama_model_quantize gives for a pure model of type T.
//
// The model is a tiny "llama"-architecture GGUF v3 written here with
// bitsmith's GGUF writer (convert/gguf.h): 2 layers, n_embd 256 (every row a
// multiple of 256, so every k-quant fits without fallback), n_ff 512, 4 heads,
// 32 tokens, F32 weights from a fixed-seed RNG, F32 1-D norms. libllama comes
// from the npm package in build/npm (tests/support/llama_lib.h: llama.cpp
// release v0.5.0, ggml 0.25.1); when it is absent the tests say so with a
// WARN and pass, as the ggml differential tests (tests/codecs/ggml_diff_test.cc)
// do; when it is present but does not match the declared ABI they fail.
#include <catch2/catch.hpp>

#include <algorithm>  // erase_if
#include <cstring>    // memcpy
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "convert/checkpoint.h"
#include "convert/gguf.h"
#include "convert_fixture.h"  // Rng, ReadConverted
#include "support/llama_lib.h"
#include "support/test_data.h"

namespace bitsmith {
namespace {

namespace fs = std::filesystem;

// ggml_type ids (ggml.h).
constexpr int kGgmlF32 = 0;
constexpr int kGgmlQ8_0 = 8;
constexpr int kGgmlQ4_K = 12;
constexpr int kGgmlQ6_K = 14;

constexpr uint64_t kLayers = 2, kEmbd = 256, kFf = 512, kHeads = 4, kVocab = 32;

// The library, or nullptr after a WARN (absent) or a FAIL (found, unusable).
const llama::Library* LlamaOrWarn() {
  const llama::Library* l = llama::Library::Get();
  if (l == nullptr) {
    if (llama::Library::FoundButUnusable()) FAIL("libllama found but unusable: " << llama::Library::LoadError());
    std::cerr << "WARNING: llama.cpp comparison SKIPPED: " << llama::Library::LoadError() << "\n";
    WARN("llama.cpp comparison SKIPPED: " << llama::Library::LoadError());
  }
  return l;
}

struct TinyTensor {
  std::string name;
  std::vector<uint64_t> ne;  // ggml order: ne[0] is the row length
};

// The tensors llama.cpp's LLM_ARCH_LLAMA loader requires (its optional ones --
// biases, rope_freqs, fused attn_qkv, scales -- left out), with output.weight
// present rather than tied to token_embd.
std::vector<TinyTensor> TinyTensors() {
  std::vector<TinyTensor> t = {{"token_embd.weight", {kEmbd, kVocab}},
                               {"output_norm.weight", {kEmbd}},
                               {"output.weight", {kEmbd, kVocab}}};
  for (uint64_t i = 0; i < kLayers; ++i) {
    const std::string b = "blk." + std::to_string(i) + ".";
    t.push_back({b + "attn_norm.weight", {kEmbd}});
    t.push_back({b + "attn_q.weight", {kEmbd, kEmbd}});
    t.push_back({b + "attn_k.weight", {kEmbd, kEmbd}});  // n_head_kv = n_head: no GQA
    t.push_back({b + "attn_v.weight", {kEmbd, kEmbd}});
    t.push_back({b + "attn_output.weight", {kEmbd, kEmbd}});
    t.push_back({b + "ffn_norm.weight", {kEmbd}});
    t.push_back({b + "ffn_gate.weight", {kEmbd, kFf}});
    t.push_back({b + "ffn_down.weight", {kFf, kEmbd}});
    t.push_back({b + "ffn_up.weight", {kEmbd, kFf}});
  }
  return t;
}

// 2 x 32 x 256 + 256 + 2 x (2 x 256 + 4 x 256^2 + 3 x 256 x 512) = 1,328,384.
constexpr uint64_t kParamCount = 1328384;

template <typename T>
std::vector<uint8_t> LeBytes(const std::vector<T>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

// Variations of the model for the tests that show the loader check can fail.
struct TinyOptions {
  // Which tokenizer keys to write: all of them, only the two llama.cpp needs,
  // or tokenizer.ggml.model without the tokens.
  enum class Tokenizer { kFull, kMinimal, kNoTokens } tokenizer = Tokenizer::kFull;
  std::string omit_tensor;  // a required tensor left out
};

// Writes the F32 model (fails the test on a writer error).
void WriteTinyLlama(const fs::path& path, const TinyOptions& opt = {}) {
  // Tokenizer: a SentencePiece-style ("llama", LLAMA_VOCAB_TYPE_SPM)
  // vocabulary. What this llama.cpp's loader needs, found with its log:
  // without tokenizer.ggml.model it stops with "key not found in model:
  // tokenizer.ggml.model"; with it but without tokenizer.ggml.tokens, "cannot
  // find tokenizer vocab in model file"; those two keys are enough (scores,
  // token types and special ids get defaults). The rest is written as
  // convert_hf_to_gguf.py would, so the file looks like a real model: types
  // mark <unk> (UNKNOWN), <s> and </s> (CONTROL) and the byte token <0x0A>
  // (BYTE), which the SPM loader looks up as the newline token.
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>", "<0x0A>"};
  const char* words[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n",
                         "o", "p", "q", "r", "s", "t", "u", "v", "w", "x", "y", "z", "the", "of"};
  for (const char* w : words) tokens.push_back(std::string("\xE2\x96\x81") + w);  // U+2581: word start
  REQUIRE(tokens.size() == kVocab);
  std::vector<float> scores(kVocab);
  std::vector<int32_t> types(kVocab, 1);  // LLAMA_TOKEN_TYPE_NORMAL
  for (uint64_t i = 0; i < kVocab; ++i) scores[i] = -static_cast<float>(i);
  types[0] = 2;             // LLAMA_TOKEN_TYPE_UNKNOWN
  types[1] = types[2] = 3;  // LLAMA_TOKEN_TYPE_CONTROL
  types[3] = 6;             // LLAMA_TOKEN_TYPE_BYTE

  std::vector<GgufKV> kv = {
      {"general.architecture", GgufValue::Str("llama")},
      {"general.name", GgufValue::Str("bitsmith tiny llama")},
      {"general.file_type", GgufValue::U32(llama::kFtypeAllF32)},
      {"llama.context_length", GgufValue::U32(128)},
      {"llama.embedding_length", GgufValue::U32(kEmbd)},
      {"llama.block_count", GgufValue::U32(kLayers)},
      {"llama.feed_forward_length", GgufValue::U32(kFf)},
      {"llama.rope.dimension_count", GgufValue::U32(kEmbd / kHeads)},
      {"llama.attention.head_count", GgufValue::U32(kHeads)},
      {"llama.attention.head_count_kv", GgufValue::U32(kHeads)},
      {"llama.attention.layer_norm_rms_epsilon", GgufValue::F32(1e-5f)},
      {"tokenizer.ggml.model", GgufValue::Str("llama")},
  };
  if (opt.tokenizer != TinyOptions::Tokenizer::kNoTokens)
    kv.push_back({"tokenizer.ggml.tokens", GgufValue::StrArray(tokens)});
  if (opt.tokenizer == TinyOptions::Tokenizer::kFull) {
    kv.push_back({"tokenizer.ggml.scores", GgufValue::NumArray(GgufType::kF32, LeBytes(scores))});
    kv.push_back({"tokenizer.ggml.token_type", GgufValue::NumArray(GgufType::kI32, LeBytes(types))});
    kv.push_back({"tokenizer.ggml.bos_token_id", GgufValue::U32(1)});
    kv.push_back({"tokenizer.ggml.eos_token_id", GgufValue::U32(2)});
    kv.push_back({"tokenizer.ggml.unknown_token_id", GgufValue::U32(0)});
  }
  std::vector<TinyTensor> ts = TinyTensors();
  std::erase_if(ts, [&](const TinyTensor& t) { return t.name == opt.omit_tensor; });
  std::vector<GgufTensorSpec> specs;
  for (const TinyTensor& t : ts) specs.push_back({t.name, t.ne, kGgmlF32});
  auto plan = PlanGguf(path.string(), 3, kv, specs);
  REQUIRE(plan.ok());
  auto out = BeginPlannedFile(*plan);
  REQUIRE(out.ok());
  test::Rng rng(20261207);
  for (size_t i = 0; i < ts.size(); ++i) {
    uint64_t n = 1;
    for (uint64_t d : ts[i].ne) n *= d;
    std::vector<float> v(n);
    const bool norm = ts[i].ne.size() == 1;  // RMS norm weights around 1, matrices N(0, 0.02^2)
    for (float& x : v) x = norm ? 1.0f + 0.1f * rng.Gauss() : 0.02f * rng.Gauss();
    REQUIRE(out->WriteAt(plan->tensors[i].offset, LeBytes(v)).ok());
  }
  REQUIRE(out->Commit().ok());
}

// libllama loads `path` (llama_model_load_from_file with the default
// params: CPU, mmap) and counts the tiny model's parameters.
void CheckLoads(const llama::Library& lib, const fs::path& path) {
  std::string log;
  const auto n = lib.LoadedParamCount(path.string(), &log);
  INFO("llama.cpp log while loading " << path.filename().string() << ":\n" << log);
  REQUIRE(n.has_value());
  CHECK(*n == kParamCount);
}

// Every tensor of `path` with its ggml type.
std::map<std::string, int> TypesOf(const fs::path& path) {
  auto ck = OpenCheckpoint(path.string());
  REQUIRE(ck.ok());
  std::map<std::string, int> m;
  for (const TensorInfo& t : ck->tensors) m[t.name] = t.ggml_type;
  return m;
}

// The file really is quantized: all tensors there, every 2-D one of type
// `want`, the 1-D norms still F32.
void CheckTypes(const fs::path& path, int want) {
  const auto types = TypesOf(path);
  CHECK(types.size() == TinyTensors().size());
  for (const auto& [name, type] : types) {
    INFO(path.filename().string() << ": " << name);
    CHECK(type == (name.find("_norm.") != std::string::npos ? kGgmlF32 : want));
  }
}

// `bitsmith convert IN OUT ARGS -q` with the built CLI.
void Convert(const fs::path& in, const fs::path& out, const std::string& args) {
  const auto r = test::Run("'" + test::BitsmithExe().string() + "' convert '" + in.string() + "' '" + out.string() +
                           "' " + args + " -q");
  INFO("bitsmith convert " << args << ":\n" << r.out << r.err);
  REQUIRE(r.status == 0);
}

TEST_CASE("llama.cpp: libllama loads the F32 model and bitsmith's q8_0, q4_k, q6_k and requantized outputs",
          "[convert][llama]") {
  const llama::Library* lib = LlamaOrWarn();
  if (lib == nullptr) return;
  test::TempDir tmp;
  const fs::path f32 = tmp / "tiny-f32.gguf";
  WriteTinyLlama(f32);
  CheckTypes(f32, kGgmlF32);
  CheckLoads(*lib, f32);

  struct Case {
    const char* to;
    int ggml_type;
  };
  for (const Case c : {Case{"q8_0", kGgmlQ8_0}, Case{"q4_k", kGgmlQ4_K}, Case{"q6_k", kGgmlQ6_K}}) {
    SECTION(std::string("--to ") + c.to) {
      const fs::path out = tmp / (std::string("tiny-") + c.to + ".gguf");
      Convert(f32, out, std::string("--to ") + c.to);
      CheckTypes(out, c.ggml_type);
      CheckLoads(*lib, out);
    }
  }
  SECTION("requantize q8_0 -> q4_k (--allow-requantize)") {
    const fs::path q8 = tmp / "tiny-q8_0.gguf", q4 = tmp / "tiny-q8-q4_k.gguf";
    Convert(f32, q8, "--to q8_0");
    Convert(q8, q4, "--to q4_k --allow-requantize");
    CheckTypes(q4, kGgmlQ4_K);
    CheckLoads(*lib, q4);
  }
}

TEST_CASE("llama.cpp: the load check can fail - a missing tensor or vocabulary is refused, with the reason",
          "[convert][llama]") {
  const llama::Library* lib = LlamaOrWarn();
  if (lib == nullptr) return;
  test::TempDir tmp;
  std::string log;
  SECTION("the two tokenizer keys llama.cpp needs are enough") {
    WriteTinyLlama(tmp / "minimal.gguf", {.tokenizer = TinyOptions::Tokenizer::kMinimal, .omit_tensor = {}});
    CheckLoads(*lib, tmp / "minimal.gguf");
  }
  SECTION("no tokenizer.ggml.tokens") {
    WriteTinyLlama(tmp / "no-tokens.gguf", {.tokenizer = TinyOptions::Tokenizer::kNoTokens, .omit_tensor = {}});
    CHECK_FALSE(lib->LoadedParamCount((tmp / "no-tokens.gguf").string(), &log).has_value());
    CHECK_THAT(log, Catch::Matchers::Contains("cannot find tokenizer vocab"));
  }
  SECTION("no blk.1.ffn_up.weight") {
    WriteTinyLlama(tmp / "no-ffn-up.gguf", {.omit_tensor = "blk.1.ffn_up.weight"});
    CHECK_FALSE(lib->LoadedParamCount((tmp / "no-ffn-up.gguf").string(), &log).has_value());
    CHECK_THAT(log, Catch::Matchers::Contains("tensor 'blk.1.ffn_up.weight' not found"));
  }
}

// The metadata differences between two GGUF files, one line each: keys only
// in one, values that differ, keys that moved.
std::vector<std::string> KvDifferences(const fs::path& ours, const fs::path& theirs) {
  auto a = ReadGgufFile(ours.string());
  auto b = ReadGgufFile(theirs.string());
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  std::vector<std::string> out;
  for (const GgufKV& kv : a->kv) {
    const GgufValue* v = b->Find(kv.key);
    if (v == nullptr) {
      out.push_back(kv.key + ": only in bitsmith's (" + GgufValueSummary(kv.value) + ")");
      continue;
    }
    if (!(*v == kv.value))
      out.push_back(kv.key + ": bitsmith " + GgufValueSummary(kv.value) + ", llama.cpp " + GgufValueSummary(*v));
  }
  for (const GgufKV& kv : b->kv)
    if (a->Find(kv.key) == nullptr)
      out.push_back(kv.key + ": only in llama.cpp's (" + GgufValueSummary(kv.value) + ")");
  // Order: the keys whose predecessor differs (one moved key gives two lines,
  // not one per key it shifted).
  auto before = [](const GgufFile& f, const std::string& key) -> std::string {
    for (size_t i = 0; i < f.kv.size(); ++i)
      if (f.kv[i].key == key) return i == 0 ? "(first)" : f.kv[i - 1].key;
    return "";
  };
  for (const GgufKV& kv : a->kv) {
    const std::string pa = before(*a, kv.key), pb = before(*b, kv.key);
    if (!pb.empty() && pa != pb)
      out.push_back(kv.key + ": after " + pa + " in bitsmith's, after " + pb + " in llama.cpp's");
  }
  return out;
}

// Quantizes `in` with llama_model_quantize (ftype, pure, one thread) and
// requires `ours` (bitsmith's output for the same type) to hold the same
// tensors: name, shape, ggml type and every byte.
//
// What llama.cpp does differently, measured with this release, and why it is
// not compared:
//   - tensor order: llama_model_quantize writes the tensors sorted by layer
//     and then by name (llama_model_loader's weight_name_comparer):
//     output.weight, output_norm.weight, token_embd.weight, blk.0.attn_k ...;
//     bitsmith keeps the input's order. Tensors are matched by name. The two
//     files have the same size (754,336 bytes for q4_k).
//   - metadata: the same 19 keys with the same values (both set
//     general.file_type to the ftype -- 14 for q4_k -- and add
//     general.quantization_version = 2), but llama.cpp moves
//     general.file_type to the end: gguf_set_val_u32 removes an existing key
//     and appends it, after general.quantization_version. The differences are
//     printed as a NOTE, not asserted.
// Nothing is exempt from the byte comparison: with pure = true, llama.cpp
// gives token_embd.weight and output.weight the ftype's type like any other
// 2-D weight (llama_tensor_get_type's Q6_K output and embedding choices are
// skipped when pure), and it keeps 1-D tensors (the norms) as they are --
// bitsmith's `--to` rule too. Were a later llama.cpp to treat one tensor
// otherwise, the type check names it.
void CompareWithLlamaQuantize(const llama::Library& lib, const fs::path& in, const fs::path& ours,
                              const fs::path& theirs, int32_t ftype, bool allow_requantize, int want_type) {
  llama::QuantizeParams qp = lib.QuantizeDefaults();
  qp.nthread = 1;
  qp.ftype = ftype;
  qp.pure = true;
  qp.allow_requantize = allow_requantize;
  std::string log;
  const uint32_t rc = lib.Quantize(in.string(), theirs.string(), qp, &log);
  {
    INFO("llama_model_quantize log:\n" << log);
    REQUIRE(rc == 0);
  }
  CheckLoads(lib, theirs);

  auto a = OpenCheckpoint(ours.string());
  auto b = OpenCheckpoint(theirs.string());
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  REQUIRE(a->tensors.size() == TinyTensors().size());
  REQUIRE(b->tensors.size() == a->tensors.size());
  int quantized = 0;
  for (const TensorInfo& t : b->tensors) {
    INFO("tensor " << t.name << " (llama.cpp: " << t.raw_dtype << ")");
    const TensorInfo* o = a->Find(t.name);
    REQUIRE(o != nullptr);
    REQUIRE(o->shape == t.shape);
    REQUIRE(o->ggml_type == t.ggml_type);
    CHECK(t.ggml_type == (t.rank() == 1 ? kGgmlF32 : want_type));
    if (t.ggml_type == want_type) ++quantized;
    const std::vector<uint8_t> x = test::ReadConverted(*a, t.name).bytes;
    const std::vector<uint8_t> y = test::ReadConverted(*b, t.name).bytes;
    REQUIRE(x.size() == y.size());
    size_t first = 0;
    while (first < x.size() && x[first] == y[first]) ++first;
    if (first < x.size())
      FAIL("bytes differ from byte " << first << " of " << x.size() << ": bitsmith " << int(x[first])
                                     << ", llama.cpp " << int(y[first]));
  }
  CHECK(quantized == 2 + 7 * static_cast<int>(kLayers));  // token_embd, output, 7 matrices a layer

  std::cout << "NOTE: metadata of bitsmith's " << ours.filename().string() << " vs llama_model_quantize's "
            << theirs.filename().string() << ":";
  for (const std::string& d : KvDifferences(ours, theirs)) std::cout << "\n  " << d;
  std::cout << "\n";
}

TEST_CASE("llama.cpp: convert --to q4_k / q8_0 / q6_k and a requantize give llama_model_quantize's bytes (pure)",
          "[convert][llama]") {
  const llama::Library* lib = LlamaOrWarn();
  if (lib == nullptr) return;
  test::TempDir tmp;
  const fs::path f32 = tmp / "tiny-f32.gguf";
  WriteTinyLlama(f32);
  // ftypes as LlamaFileType (convert/tensor_plan.h) maps bitsmith's types:
  // q4_k -> LLAMA_FTYPE_MOSTLY_Q4_K_S (14), q8_0 -> Q8_0 (7), q6_k -> Q6_K (18).
  SECTION("q4_k = pure Q4_K_S") {
    Convert(f32, tmp / "bitsmith-q4_k.gguf", "--to q4_k");
    CompareWithLlamaQuantize(*lib, f32, tmp / "bitsmith-q4_k.gguf", tmp / "llama-q4_k.gguf",
                             llama::kFtypeMostlyQ4_K_S, false, kGgmlQ4_K);
  }
  SECTION("q8_0 = pure Q8_0") {
    Convert(f32, tmp / "bitsmith-q8_0.gguf", "--to q8_0");
    CompareWithLlamaQuantize(*lib, f32, tmp / "bitsmith-q8_0.gguf", tmp / "llama-q8_0.gguf",
                             llama::kFtypeMostlyQ8_0, false, kGgmlQ8_0);
  }
  SECTION("q6_k = pure Q6_K") {
    Convert(f32, tmp / "bitsmith-q6_k.gguf", "--to q6_k");
    CompareWithLlamaQuantize(*lib, f32, tmp / "bitsmith-q6_k.gguf", tmp / "llama-q6_k.gguf",
                             llama::kFtypeMostlyQ6_K, false, kGgmlQ6_K);
  }
  SECTION("requantize: bitsmith's q8_0 -> q4_k, --allow-requantize / allow_requantize") {
    Convert(f32, tmp / "q8_0.gguf", "--to q8_0");
    Convert(tmp / "q8_0.gguf", tmp / "bitsmith-q8-q4_k.gguf", "--to q4_k --allow-requantize");
    CompareWithLlamaQuantize(*lib, tmp / "q8_0.gguf", tmp / "bitsmith-q8-q4_k.gguf", tmp / "llama-q8-q4_k.gguf",
                             llama::kFtypeMostlyQ4_K_S, true, kGgmlQ4_K);
  }
}

}  // namespace
}  // namespace bitsmith
