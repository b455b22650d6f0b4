// A released ggml, loaded at run time with dlopen: test- and benchmark-only.
//
// `make test` installs the npm package @node-llama-cpp/linux-x64 (3.22.1) into
// build/npm; its bins/linux-x64/libggml-base.so holds llama.cpp's own quantizers
// (ggml_quantize_chunk) and to_float, built without FMA contraction. bitsmith
// never links it: the differential tests and `bitsmith bench` use it to compare
// bytes and speed in the same run. Set BITSMITH_GGML_LIB to point elsewhere.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace bitsmith::ggml {

class Library {
 public:
  // The loaded library, or nullptr (with the reason in LoadError()) when absent.
  static const Library* Get();
  static const std::string& LoadError();
  const std::string& path() const { return path_; }

  // ggml_quantize_init + ggml_quantize_chunk(type, src, dst, start, nrows, n_per_row, imatrix).
  size_t QuantizeChunk(int ggml_type, const float* src, void* dst, int64_t start, int64_t nrows,
                       int64_t n_per_row, const float* imatrix) const;
  // type_traits->to_float; false when the type has none.
  bool ToFloat(int ggml_type, const void* src, float* dst, int64_t n) const;
  // type_traits->from_float_ref (the *_ref quantizer of one row); false when none.
  bool FromFloatRef(int ggml_type, const float* src, void* dst, int64_t n) const;
  void QuantizeInit(int ggml_type) const;

 private:
  Library() = default;
  std::string path_;
  void* handle_ = nullptr;
  void* quantize_chunk_ = nullptr;
  void* quantize_init_ = nullptr;
  void* get_type_traits_ = nullptr;
  friend struct LibraryLoader;
};

}  // namespace bitsmith::ggml
