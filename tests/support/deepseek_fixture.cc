#include "support/deepseek_fixture.h"

#include <fcntl.h>     // open
#include <unistd.h>    // ftruncate, pwrite, close

#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace bitsmith::test {
namespace {

// DeepSeek-V3 config.json (the fields the shapes come from).
constexpr int64_t kHidden = 7168;
constexpr int64_t kIntermediate = 18432;
constexpr int64_t kMoeIntermediate = 2048;
constexpr int64_t kVocab = 129280;
constexpr int64_t kQLora = 1536;
constexpr int64_t kKvLora = 512;
constexpr int64_t kRope = 64;
constexpr int64_t kHeads = 128;
constexpr int64_t kQkNope = 128;
constexpr int64_t kVHead = 128;
constexpr int64_t kBlock = 128;

struct Tensor {
  std::string name;
  std::string dtype;  // safetensors dtype string
  std::vector<int64_t> shape;
};

int64_t Bytes(const Tensor& t) {
  int64_t n = 1;
  for (int64_t d : t.shape) n *= d;
  if (t.dtype == "F32") return n * 4;
  if (t.dtype == "BF16") return n * 2;
  return n;  // F8_E4M3
}

class Shard {
 public:
  std::vector<Tensor> tensors;
  void Fp8(const std::string& name, int64_t rows, int64_t cols) {
    tensors.push_back({name, "F8_E4M3", {rows, cols}});
    tensors.push_back({name + "_scale_inv", "F32",
                       {(rows + kBlock - 1) / kBlock, (cols + kBlock - 1) / kBlock}});
  }
  void Bf16(const std::string& name, std::vector<int64_t> shape) {
    tensors.push_back({name, "BF16", std::move(shape)});
  }
  void F32(const std::string& name, std::vector<int64_t> shape) {
    tensors.push_back({name, "F32", std::move(shape)});
  }
};

void AddLayer(Shard& s, int i, const DeepSeekFixtureOptions& o) {
  const std::string p = fmt::format("model.layers.{}.", i);
  s.Bf16(p + "input_layernorm.weight", {kHidden});
  s.Bf16(p + "post_attention_layernorm.weight", {kHidden});
  s.Fp8(p + "self_attn.q_a_proj.weight", kQLora, kHidden);
  s.Bf16(p + "self_attn.q_a_layernorm.weight", {kQLora});
  s.Fp8(p + "self_attn.q_b_proj.weight", kHeads * (kQkNope + kRope), kQLora);
  s.Fp8(p + "self_attn.kv_a_proj_with_mqa.weight", kKvLora + kRope, kHidden);
  s.Bf16(p + "self_attn.kv_a_layernorm.weight", {kKvLora});
  s.Fp8(p + "self_attn.kv_b_proj.weight", kHeads * (kQkNope + kVHead), kKvLora);
  s.Fp8(p + "self_attn.o_proj.weight", kHidden, kHeads * kVHead);
  if (i < o.first_dense) {
    s.Fp8(p + "mlp.gate_proj.weight", kIntermediate, kHidden);
    s.Fp8(p + "mlp.up_proj.weight", kIntermediate, kHidden);
    s.Fp8(p + "mlp.down_proj.weight", kHidden, kIntermediate);
    return;
  }
  s.Bf16(p + "mlp.gate.weight", {o.num_experts, kHidden});
  s.F32(p + "mlp.gate.e_score_correction_bias", {o.num_experts});
  for (int e = 0; e < o.num_experts; ++e) {
    const std::string ep = fmt::format("{}mlp.experts.{}.", p, e);
    s.Fp8(ep + "gate_proj.weight", kMoeIntermediate, kHidden);
    s.Fp8(ep + "up_proj.weight", kMoeIntermediate, kHidden);
    s.Fp8(ep + "down_proj.weight", kHidden, kMoeIntermediate);
  }
  s.Fp8(p + "mlp.shared_experts.gate_proj.weight", kMoeIntermediate, kHidden);
  s.Fp8(p + "mlp.shared_experts.up_proj.weight", kMoeIntermediate, kHidden);
  s.Fp8(p + "mlp.shared_experts.down_proj.weight", kHidden, kMoeIntermediate);
}

void AddMtp(Shard& s, int i, const DeepSeekFixtureOptions& o) {
  AddLayer(s, i, o);
  const std::string p = fmt::format("model.layers.{}.", i);
  s.Bf16(p + "embed_tokens.weight", {kVocab, kHidden});
  s.Bf16(p + "enorm.weight", {kHidden});
  s.Bf16(p + "hnorm.weight", {kHidden});
  s.Fp8(p + "eh_proj.weight", kHidden, 2 * kHidden);
  s.Bf16(p + "shared_head.norm.weight", {kHidden});
  s.Bf16(p + "shared_head.head.weight", {kVocab, kHidden});
}

// Header JSON + padding to 8 bytes, then a sparse data region (ftruncate).
uint64_t WriteShard(const std::filesystem::path& path, const Shard& s) {
  nlohmann::ordered_json header;
  header["__metadata__"] = {{"format", "pt"}};
  int64_t offset = 0;
  for (const Tensor& t : s.tensors) {
    const int64_t n = Bytes(t);
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  std::string text = header.dump();
  while (text.size() % 8 != 0) text.push_back(' ');
  const int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
  if (fd < 0) throw std::runtime_error("cannot create " + path.string());
  uint64_t len = text.size();
  uint8_t le[8];
  for (int i = 0; i < 8; ++i) le[i] = static_cast<uint8_t>(len >> (8 * i));
  bool ok = ::pwrite(fd, le, 8, 0) == 8 &&
            ::pwrite(fd, text.data(), text.size(), 8) == static_cast<ssize_t>(text.size()) &&
            ::ftruncate(fd, static_cast<off_t>(8 + text.size() + static_cast<uint64_t>(offset))) == 0;
  ::close(fd);
  if (!ok) throw std::runtime_error("cannot write " + path.string());
  return static_cast<uint64_t>(offset);
}

}  // namespace

DeepSeekFixtureSummary MakeDeepSeekV3Sparse(const std::filesystem::path& dir,
                                            const DeepSeekFixtureOptions& o) {
  std::filesystem::create_directories(dir);
  // Shard 0 holds the embeddings; then groups of layers; the last holds norm/lm_head.
  std::vector<Shard> shards;
  shards.emplace_back().Bf16("model.embed_tokens.weight", {kVocab, kHidden});
  const int total_layers = o.num_layers + (o.mtp_layer ? 1 : 0);
  for (int i = 0; i < total_layers; ++i) {
    if (i % o.layers_per_shard == 0) shards.emplace_back();
    if (i == o.num_layers) AddMtp(shards.back(), i, o);
    else AddLayer(shards.back(), i, o);
  }
  Shard& last = shards.emplace_back();
  last.Bf16("model.norm.weight", {kHidden});
  last.Bf16("lm_head.weight", {kVocab, kHidden});

  DeepSeekFixtureSummary sum;
  sum.shards = static_cast<int>(shards.size());
  nlohmann::ordered_json weight_map;
  for (size_t k = 0; k < shards.size(); ++k) {
    const std::string file =
        fmt::format("model-{:05d}-of-{:05d}.safetensors", k + 1, shards.size());
    sum.total_bytes += WriteShard(dir / file, shards[k]);
    for (const Tensor& t : shards[k].tensors) {
      weight_map[t.name] = file;
      ++sum.tensors;
      if (t.name.size() < 10 || t.name.compare(t.name.size() - 10, 10, "_scale_inv") != 0) {
        uint64_t n = 1;
        for (int64_t d : t.shape) n *= static_cast<uint64_t>(d);
        sum.weight_params += n;
      }
    }
  }
  nlohmann::ordered_json index = {{"metadata", {{"total_size", sum.total_bytes}}},
                                  {"weight_map", weight_map}};
  std::ofstream(dir / "model.safetensors.index.json") << index.dump(2) << "\n";
  nlohmann::ordered_json config = {
      {"architectures", {"DeepseekV3ForCausalLM"}},
      {"model_type", "deepseek_v3"},
      {"hidden_size", kHidden},
      {"intermediate_size", kIntermediate},
      {"moe_intermediate_size", kMoeIntermediate},
      {"num_hidden_layers", o.num_layers},
      {"first_k_dense_replace", o.first_dense},
      {"n_routed_experts", o.num_experts},
      {"n_shared_experts", 1},
      {"num_attention_heads", kHeads},
      {"q_lora_rank", kQLora},
      {"kv_lora_rank", kKvLora},
      {"qk_nope_head_dim", kQkNope},
      {"qk_rope_head_dim", kRope},
      {"v_head_dim", kVHead},
      {"vocab_size", kVocab},
      {"num_nextn_predict_layers", o.mtp_layer ? 1 : 0},
      {"torch_dtype", "bfloat16"},
      {"quantization_config",
       {{"activation_scheme", "dynamic"},
        {"fmt", "e4m3"},
        {"quant_method", "fp8"},
        {"weight_block_size", {kBlock, kBlock}}}}};
  std::ofstream(dir / "config.json") << config.dump(2) << "\n";
  return sum;
}

}  // namespace bitsmith::test
