// A released ggml, loaded at run time with dlopen: test- and benchmark-only.
//
// `make test` installs the npm package @node-llama-cpp/linux-x64 (3.22.1) into
// build/npm; its bins/linux-x64/libggml-base.so holds llama.cpp's own quantizers
// (ggml_quantize_chunk) and to_float, built without FMA contraction. bitsmith
// never links it: the differential tests and `bitsmith bench` use it to compare
// bytes and speed in the same run.
//
// Where the library is looked for, first hit wins:
//   1. $BITSMITH_GGML_LIB (a path to libggml-base.so);
//   2. <build dir>/npm/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so,
//      <build dir> being the CMake binary dir this was compiled in;
//   3. the same relative path under every ancestor directory of the running
//      executable (/proc/self/exe), for a moved build tree;
//   4. <source dir>/build/npm/... (the default `make test` build dir).
// Once loaded, the type table is checked against formats/dtype.h (name, block
// size, block bytes of every type bitsmith and ggml share); a mismatch means a
// ggml whose ggml_type_traits layout or type ids we do not know, and the library
// is then reported as not loadable rather than trusted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace bitsmith::ggml {

class Library {
 public:
  // The loaded library, or nullptr (with the reason in LoadError()) when absent.
  // Thread-safe; loads once per process.
  static const Library* Get();
  static const std::string& LoadError();
  const std::string& path() const { return path_; }
  // "0.25.1 (0ad4a86)" when the library exports ggml_version/ggml_commit, else "".
  const std::string& version() const { return version_; }

  // --- What the library can do for one ggml type id -------------------------
  // ggml_quantize_chunk handles the type (its switch has a case for it; q8_1
  // and q8_K, the activation-side types, have none and would abort).
  bool HasQuantizeChunk(int ggml_type) const;
  // A row quantizer quantize_row_<name>_ref exists (type_traits->from_float_ref,
  // or the exported symbol when the traits leave it empty, as for q8_K).
  bool HasFromFloatRef(int ggml_type) const;
  // A dequantizer exists (type_traits->to_float, or the exported
  // dequantize_row_<name>, as for q8_K; q8_1 has none).
  bool HasToFloat(int ggml_type) const;
  // ggml_quantize_requires_imatrix(type).
  bool RequiresImatrix(int ggml_type) const;

  // --- Calls ------------------------------------------------------------------
  // ggml_quantize_chunk(type, src, dst, start, nrows, n_per_row, imatrix): what
  // llama-quantize calls. Returns the bytes written, or 0 without calling ggml
  // when the call would abort (type not handled, missing required imatrix,
  // n_per_row not a multiple of the block size, start not a multiple of n_per_row).
  size_t QuantizeChunk(int ggml_type, const float* src, void* dst, int64_t start, int64_t nrows,
                       int64_t n_per_row, const float* imatrix) const;
  // The row quantizer (see HasFromFloatRef) on n values; false when none.
  bool FromFloatRef(int ggml_type, const float* src, void* dst, int64_t n) const;
  // The dequantizer (see HasToFloat) on n values; false when none.
  bool ToFloat(int ggml_type, const void* src, float* dst, int64_t n) const;
  // ggml_quantize_init(type) (builds the i-quant grids; ggml_quantize_chunk
  // calls it too).
  void QuantizeInit(int ggml_type) const;

  // The bytes llama.cpp writes for nrows rows of this type: ggml_quantize_chunk
  // when it handles the type, else the row quantizer applied row by row (the
  // imatrix is then ignored: q8_1, q8_K have no imatrix parameter). The caller
  // must zero-fill dst: ggml leaves q8_K's bsums of all-zero blocks unwritten.
  // False when ggml has neither path, or the chunk call would abort.
  bool Quantize(int ggml_type, const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                const float* imatrix) const;

 private:
  Library() = default;
  struct TypeFns {
    void* to_float = nullptr;        // void (*)(const void*, float*, int64_t)
    void* from_float_ref = nullptr;  // void (*)(const float*, void*, int64_t)
    int64_t block_size = 0;          // 0: unknown or removed type id
    size_t block_bytes = 0;
  };
  const TypeFns* Fns(int ggml_type) const;

  static constexpr int kMaxTypes = 64;
  std::string path_;
  std::string version_;
  void* handle_ = nullptr;
  void* quantize_chunk_ = nullptr;
  void* quantize_init_ = nullptr;
  void* requires_imatrix_ = nullptr;
  TypeFns types_[kMaxTypes];
  friend struct LibraryLoader;
};

}  // namespace bitsmith::ggml
