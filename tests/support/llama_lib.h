// A released libllama (llama.cpp), loaded at run time with dlopen: test-only.
//
// The npm package @node-llama-cpp/linux-x64 3.22.1 that `make test` installs
// into build/npm ships libllama.v0.5.0.so beside the libggml-base.so that
// bench/ggml_ref.h already loads (its _nlcBuildMetadata.json names llama.cpp
// release "v0.5.0"; llama_version() says "0.5.0-dev", ggml_version() "0.25.1",
// ggml_commit() "0ad4a86"). bitsmith never links it: the llama.cpp tests load
// bitsmith's GGUF files with llama.cpp's own loader and compare bitsmith's
// quantized tensors with llama_model_quantize's.
//
// Where it is looked for: the directory of the libggml-base.so that
// ggml::Library::Get() loaded (so $BITSMITH_GGML_LIB, the build tree, the
// ancestors of the executable and the source tree's build/, in that order:
// bench/ggml_ref.h owns that search and this file only reuses its answer). In
// that directory, "libllama.so" or "libllama.v<version>.so"
// (not libllama-common.so, the C++ helpers of llama.cpp's tools).
//
// The two parameter structs below are passed and returned by value, or read
// through a pointer, by the library, so their layout must be the library's.
// Where they come from (the package names no llama.cpp commit, and no stored
// copy of its exact llama.h was available):
//   - llama_model_quantize_params: ggml-org/llama.cpp include/llama.h at
//     0011438e (the latest upstream header at hand): nthread ... dry_run,
//     then four typed pointers (imatrix, kv_overrides, tt_overrides,
//     prune_layers);
//   - llama_model_params: the later upstream layout in which `load_mode` and
//     `lazy_mode` replaced use_mmap/use_mlock/use_direct_io and `load_mtp`
//     was added (80 bytes); 0011438e still has the booleans, and this
//     library exports llama_load_mode_name / llama_load_mode_from_str, which
//     only the later layout has;
//   - both checked against this library's machine code: the stores of
//     llama_model_default_params (8 bytes at 0x10 and 0x18: -1/1/-1/1, 0 at
//     0x20, pointers at 0x00-0x0F and 0x28-0x47, six bools at 0x48 with the
//     third true) and of llama_model_quantize_default_params (nthread 0,
//     ftype 7, both type overrides 43, bool 1 at 0x11, zeros to 0x37, and
//     i32 0 / i32 2 at 0x38 / 0x3C -- 8 bytes 0011438e does not declare).
// Library::Get() checks them again at run time before anything else is
// called (sizes against the bytes the default-params functions write, every
// field against its default); a mismatch makes the library "found but
// unusable", which the tests report as a failure, not a skip.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace bitsmith::llama {

// enum llama_ftype values used here (llama.h).
inline constexpr int32_t kFtypeAllF32 = 0;
inline constexpr int32_t kFtypeMostlyQ8_0 = 7;
inline constexpr int32_t kFtypeMostlyQ4_K_S = 14;
inline constexpr int32_t kFtypeMostlyQ6_K = 18;

// struct llama_model_params (80 bytes on x86-64).
struct ModelParams {
  void* devices;                      // ggml_backend_dev_t*: NULL-terminated; NULL = all
  const void* tensor_buft_overrides;  // const llama_model_tensor_buft_override*
  int32_t n_gpu_layers;               // default -1 (all; there is no GPU here)
  int32_t split_mode;                 // enum llama_split_mode, default 1 (LAYER)
  int32_t load_mode;                  // enum llama_load_mode, default -1 (AUTO: mmap when possible)
  int32_t lazy_mode;                  // enum llama_lazy_mode, default 1
  int32_t main_gpu;                   // default 0
  const float* tensor_split;
  bool (*progress_callback)(float progress, void* user_data);
  void* progress_callback_user_data;
  const void* kv_overrides;  // const llama_model_kv_override*
  bool vocab_only;
  bool check_tensors;
  bool use_extra_bufts;  // default true
  bool no_host;
  bool no_alloc;
  bool load_mtp;
};
static_assert(sizeof(void*) != 8 || sizeof(ModelParams) == 80, "llama_model_params is 80 bytes");

// llama_model_quantize_params (64 bytes on x86-64). This release's default
// also sets 8 bytes after prune_layers (offsets 56..63: i32 0, i32 2) that the
// 0011438e header does not have (fields added later); they are kept opaque and
// passed back exactly as llama_model_quantize_default_params() returned them.
struct QuantizeParams {
  int32_t nthread;               // <= 0: std::thread::hardware_concurrency()
  int32_t ftype;                 // enum llama_ftype
  int32_t output_tensor_type;    // enum ggml_type; GGML_TYPE_COUNT = the ftype's choice
  int32_t token_embedding_type;  // enum ggml_type; GGML_TYPE_COUNT = the ftype's choice
  bool allow_requantize;
  bool quantize_output_tensor;  // default true
  bool only_copy;
  bool pure;  // every quantizable tensor gets the ftype's default type
  bool keep_split;
  bool dry_run;
  const void* imatrix;       // const llama_model_imatrix_data*
  const void* kv_overrides;  // const llama_model_kv_override*
  const void* tt_overrides;  // const llama_model_tensor_override*
  const int32_t* prune_layers;
  uint8_t opaque_tail[8];  // see above
};
static_assert(sizeof(void*) != 8 || sizeof(QuantizeParams) == 64, "quantize params are 64 bytes");

class Library {
 public:
  // The loaded, checked library, or nullptr with the reason in LoadError().
  // Loads once per process (thread-safe: a function-local static).
  static const Library* Get();
  static const std::string& LoadError();
  // True when a libllama was found and dlopen'ed but failed the checks
  // (missing symbols, a struct layout or default that is not the expected one):
  // a defect to report, unlike an absent npm package.
  static bool FoundButUnusable();

  const std::string& path() const { return path_; }
  // "0.5.0-dev" from llama_version() when exported, else "".
  const std::string& version() const { return version_; }

  ModelParams ModelDefaults() const;
  QuantizeParams QuantizeDefaults() const;

  // llama_model_load_from_file(path, ModelDefaults()); on success the
  // parameter count (llama_model_n_params), after llama_model_free. nullopt
  // when the loader returned NULL; `log` (if given) receives everything
  // llama.cpp logged during the call, which names the reason.
  std::optional<uint64_t> LoadedParamCount(const std::string& gguf, std::string* log = nullptr) const;

  // llama_model_quantize(in, out, &params): 0 on success. `log` as above.
  uint32_t Quantize(const std::string& in, const std::string& out, const QuantizeParams& params,
                    std::string* log = nullptr) const;

 private:
  Library() = default;
  std::string path_;
  std::string version_;
  void* handle_ = nullptr;
  void* model_default_params_ = nullptr;
  void* quantize_default_params_ = nullptr;
  void* load_from_file_ = nullptr;
  void* model_free_ = nullptr;
  void* n_params_ = nullptr;
  void* quantize_ = nullptr;
  friend struct LlamaLoader;
};

}  // namespace bitsmith::llama
