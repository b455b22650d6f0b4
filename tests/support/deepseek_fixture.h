// A DeepSeek-V3/R1-shaped checkpoint made of sparse files: every tensor name,
// dtype and shape of the published checkpoint (config: 61 layers, the first 3
// dense, 256 routed experts of 2048x7168 per projection plus 1 shared expert, MLA
// projections, vocab 129,280, FP8 E4M3 weights with 128x128 float32
// weight_scale_inv blocks, and the MTP layer model.layers.61 that llama.cpp
// drops), written as safetensors headers followed by ftruncate'd data: headers
// validate, ~690 GB are "there", and no data block ever touches the disk.
//
// The headers are written here by hand (nlohmann::json + the spec's layout), not
// with bitsmith's own writer, so the fixture is an independent producer.
#pragma once

#include <cstdint>
#include <filesystem>

namespace bitsmith::test {

struct DeepSeekFixtureOptions {
  int num_layers = 61;        // transformer layers (config num_hidden_layers)
  int first_dense = 3;        // first_k_dense_replace
  int num_experts = 256;      // n_routed_experts
  bool mtp_layer = true;      // include model.layers.{num_layers} (the MTP module)
  int layers_per_shard = 1;   // shard granularity (the real checkpoint has 163 shards)
};

struct DeepSeekFixtureSummary {
  uint64_t tensors = 0;       // tensors in the index, scales included
  uint64_t weight_params = 0; // elements of all non-scale tensors
  uint64_t total_bytes = 0;   // metadata.total_size: tensor data bytes
  int shards = 0;
};

// Writes config.json, model.safetensors.index.json and the shards into `dir`
// (created if missing). Needs a filesystem with sparse files (ext4, tmpfs).
DeepSeekFixtureSummary MakeDeepSeekV3Sparse(const std::filesystem::path& dir,
                                            const DeepSeekFixtureOptions& options = {});

}  // namespace bitsmith::test
