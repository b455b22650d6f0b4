// Block codecs: quantize float32 rows to a block format, dequantize back.
//
// Every block type (formats/dtype.h rows with kind kBlock) has a BlockCodec: a
// scalar reference (the oracle, byte-identical to ggml for ggml's types) and a
// SIMD path (Highway, dynamic dispatch) that must equal the reference byte for
// byte. The public entry points validate their arguments once (row length a
// multiple of the block size, buffer sizes, finite input, imatrix present when
// the type needs one) and then split whole rows across threads; the kernels
// behind them only assert.
#pragma once

#include <cstdint>
#include <span>

#include "formats/dtype.h"
#include "formats/error.h"

namespace bitsmith {

// Which implementation to run.
enum class Impl : uint8_t {
  kSimd,       // the fastest path for this CPU (Highway dynamic dispatch)
  kReference,  // the scalar oracle
};

// Kernels of one block type. Preconditions (checked by the entry points below,
// only asserted here): n_per_row is a multiple of the block size, buffers are
// large enough, inputs are finite, imatrix (n_per_row weights) is non-null when
// the type requires one. No allocation beyond small stack buffers.
struct BlockCodec {
  // Quantize nrows rows of n_per_row floats into nrows * RowBytes(n_per_row) bytes.
  // `imatrix` is one importance weight per column, used for every row (what
  // llama-quantize passes for one tensor), or nullptr.
  using QuantizeFn = void (*)(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                              const float* imatrix);
  // Dequantize n values (a multiple of the block size) from their blocks.
  // Both functions access blocks through their structs: `dst` (quantize) and
  // `src` (dequantize) must be aligned like the block struct (2 or 4 bytes, see
  // formats/blocks_*.h). QuantizeRows / DequantizeRows take any address.
  using DequantizeFn = void (*)(const void* src, float* dst, int64_t n);

  QuantizeFn quantize_ref = nullptr;
  QuantizeFn quantize = nullptr;  // SIMD; may equal quantize_ref while no SIMD path exists
  DequantizeFn dequantize_ref = nullptr;
  DequantizeFn dequantize = nullptr;
  bool uses_imatrix = false;  // false: the imatrix is ignored (q8_0, tq*, mxfp4, MX)
};

// The codec of a block type, or nullptr when bitsmith cannot (yet) encode it.
const BlockCodec* GetBlockCodec(DType t);

// Families, each defined in its own file (codecs/quant_<family>.cc); each returns
// nullptr for types it does not own. GetBlockCodec asks them in turn.
const BlockCodec* LegacyBlockCodec(DType t);  // q4_0 q4_1 q5_0 q5_1 q8_0 q8_1 iq4_nl iq4_xs q8_k
const BlockCodec* KQuantBlockCodec(DType t);  // q2_k q3_k q4_k q5_k q6_k
const BlockCodec* IQuantBlockCodec(DType t);  // tq1_0 tq2_0 mxfp4 iq1_s iq1_m iq2_* iq3_*
const BlockCodec* MxBlockCodec(DType t);      // mxfp8_* mxfp6_* mxint8 mxfp4_ocp (nvfp4: codecs/nvfp4.h)

// Quantizes src (nrows x n_per_row, row-major) into dst, which must hold exactly
// nrows * RowBytes(t, n_per_row) bytes. Errors (kBadInput) name the problem:
// row length not a multiple of the block size (saying which multiple is
// needed), wrong buffer sizes, a non-finite value (naming row and column; ggml
// does not define what NaN/inf do, so bitsmith refuses them), a missing imatrix
// for a type that requires one, a non-finite or negative imatrix weight.
// Rows are split across `threads` (<= 0: all cores); the bytes never depend on it.
Status QuantizeRows(DType t, std::span<const float> src, std::span<uint8_t> dst, int64_t n_per_row,
                    const float* imatrix = nullptr, Impl impl = Impl::kSimd, int threads = 1);

// Dequantizes src (whole blocks) into dst (dst.size() elements, a multiple of the
// block size, and src.size() must equal the matching number of bytes). Any bytes
// at any address are accepted (garbage in, defined floats out: no UB on
// arbitrary input; bytes at an address the block structs cannot be read from
// are copied through an aligned buffer first).
Status DequantizeRows(DType t, std::span<const uint8_t> src, std::span<float> dst,
                      Impl impl = Impl::kSimd, int threads = 1);

}  // namespace bitsmith
