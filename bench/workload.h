// Inputs and workloads the benchmark cases share (the harness that runs them:
// bench/registry.h).
//
// Block codecs: N(0, sigma^2) weight rows and an exp(N(0,1)) imatrix, the
// distributions of tests/data/blocks, drawn from fixed seeds so every run
// times the same bytes; quantize / dequantize workloads over whole rows of
// kBenchRow, each with ggml's own code beside it when libggml-base.so loads
// (bench/ggml_ref.h). Element codecs: ChunkedWorkload, an element-wise kernel
// split in chunks across the threads. All inputs are built before timing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>  // std::move
#include <vector>

#include "bench/registry.h"
#include "codecs/parallel.h"  // ParallelFor
#include "formats/dtype.h"

namespace bitsmith::bench {

// Row length of the block benchmarks: a typical weight row.
inline constexpr int64_t kBenchRow = 4096;

// n floats of N(0, sigma^2), drawn in order from mt19937(seed).
std::vector<float> Gaussian(size_t n, uint32_t seed, float sigma);

// n importance weights exp(N(0, 1)) from mt19937(777): what llama-quantize's
// imatrix looks like.
std::vector<float> Imatrix(size_t n);

// Quantizing `nrows` rows of kBenchRow N(0, 0.02^2) floats (seed 42) to `t`
// through QuantizeRows (Impl::kSimd), with the kBenchRow-weight Imatrix or
// none. ggml side: ggml_quantize_chunk per thread range of rows, or for q8_k
// (an activation type, not a ggml_quantize_chunk type) its row quantizer.
Workload QuantizeWorkload(DType t, bool with_imatrix, int64_t nrows);

// Dequantizing Config::bytes / 4 floats' worth of `t` blocks (at least 64
// blocks) through DequantizeRows (Impl::kSimd). The blocks are realistic: 16
// N(0, 0.02^2) rows (seed 7) quantized once by the reference (with the
// Imatrix when `seed_imatrix`: the i-quants that require one), repeated.
Workload DequantizeWorkload(DType t, const Config& c, bool seed_imatrix = false);

// An element-wise pass over n elements reading `in_bytes` and writing
// `out_bytes` per element: chunk(begin, end) handles elements [begin, end),
// ParallelFor ranges of whole 2^16-element units, one per thread. The chunk
// callable owns its buffers (capture the shared_ptrs by value).
template <class Chunk>
Workload ChunkedWorkload(size_t n, uint64_t in_bytes, uint64_t out_bytes, Chunk chunk) {
  Workload w;
  w.bytes_read = in_bytes * n;
  w.bytes_written = out_bytes * n;
  w.elements = n;
  w.run = [n, chunk = std::move(chunk)](int threads) { ParallelFor(n, size_t{1} << 16, threads, chunk); };
  return w;
}

}  // namespace bitsmith::bench
