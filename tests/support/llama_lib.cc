// dlopen'ed libllama (from @node-llama-cpp/linux-x64): see llama_lib.h.
#include "support/llama_lib.h"

#include <dlfcn.h>  // dlopen, dlsym, dlerror

#include <cstring>     // memset
#include <filesystem>  // directory_iterator
#include <memory>      // unique_ptr
#include <mutex>       // lock_guard
#include <regex>       // regex_match

#include "bench/ggml_ref.h"  // ggml::Library: where the npm binaries are

namespace bitsmith::llama {

namespace {

// Everything llama.cpp logs (llama_log_set), kept for the failure messages of
// the call that produced it.
std::mutex g_log_mutex;
std::string g_log;

// typedef void (*ggml_log_callback)(enum ggml_log_level level, const char* text, void* user_data)
void CaptureLog(int /*level*/, const char* text, void* /*user_data*/) {
  std::lock_guard<std::mutex> lock(g_log_mutex);
  if (text != nullptr && g_log.size() < (4u << 20)) g_log += text;  // a bounded buffer
}
void ClearLog() {
  std::lock_guard<std::mutex> lock(g_log_mutex);
  g_log.clear();
}
std::string TakeLog() {
  std::lock_guard<std::mutex> lock(g_log_mutex);
  std::string s = std::move(g_log);
  g_log.clear();
  return s;
}

using LogCallback = void (*)(int, const char*, void*);
using LogSetFn = void (*)(LogCallback, void*);
using VoidFn = void (*)();
using LoadAllFromPathFn = void (*)(const char* dir);
using StringFn = const char* (*)();
using ModelDefaultsFn = ModelParams (*)();
using QuantizeDefaultsFn = QuantizeParams (*)();
using LoadFromFileFn = void* (*)(const char* path, ModelParams params);
using ModelFreeFn = void (*)(void* model);
using NParamsFn = uint64_t (*)(const void* model);
using QuantizeFn = uint32_t (*)(const char* in, const char* out, const QuantizeParams* params);

// How many bytes a function returning a struct of more than 16 bytes writes
// into its result. On x86-64 System V such a struct is returned through a
// hidden pointer passed in rdi (and returned in rax), so the function can be
// called as void* f(void* out); the result is filled twice, over 0x00 and
// over 0xFF, and the last byte that changed either time ends the written
// extent. Padding the callee never writes is not counted, so the extent is at
// most sizeof and more than sizeof minus the alignment.
std::optional<size_t> WrittenExtent(void* fn) {
#if defined(__x86_64__) && defined(__linux__)
  using SretFn = void* (*)(void*);
  alignas(16) unsigned char buf[2][256];
  std::memset(buf[0], 0x00, sizeof(buf[0]));
  std::memset(buf[1], 0xFF, sizeof(buf[1]));
  reinterpret_cast<SretFn>(fn)(buf[0]);
  reinterpret_cast<SretFn>(fn)(buf[1]);
  size_t extent = 0;
  for (size_t i = 0; i < sizeof(buf[0]); ++i)
    if (buf[0][i] != 0x00 || buf[1][i] != 0xFF) extent = i + 1;
  return extent;
#else
  (void)fn;
  return std::nullopt;  // the package is linux-x64 only; nothing to measure elsewhere
#endif
}

template <typename T>
bool ExtentFits(void* fn, const char* name, std::string* why) {
  const auto extent = WrittenExtent(fn);
  if (!extent) return true;
  if (*extent <= sizeof(T) && *extent > sizeof(T) - alignof(T)) return true;
  *why = std::string(name) + " writes " + std::to_string(*extent) + " bytes, but the struct declared in " +
         "tests/support/llama_lib.h is " + std::to_string(sizeof(T)) +
         " bytes: the library is not the llama.cpp revision that header was written from";
  return false;
}

// libllama.so or libllama.v<version>.so in `dir`.
std::optional<std::filesystem::path> FindLibllama(const std::filesystem::path& dir) {
  static const std::regex kName(R"(libllama(\.v[0-9][0-9A-Za-z.\-]*)?\.so)");
  std::error_code ec;
  if (std::filesystem::is_regular_file(dir / "libllama.so", ec)) return dir / "libllama.so";
  std::optional<std::filesystem::path> found;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (std::regex_match(name, kName) && (!found || name < found->filename().string())) found = e.path();
  }
  return found;
}

}  // namespace

struct LlamaLoader {
  std::string error;
  bool found_but_unusable = false;
  Library* lib = nullptr;

  LlamaLoader() {
    const ggml::Library* g = ggml::Library::Get();
    if (g == nullptr) {
      error = "libllama not looked for: " + ggml::Library::LoadError();
      return;
    }
    const std::filesystem::path dir = std::filesystem::path(g->path()).parent_path();
    const auto so = FindLibllama(dir);
    if (!so) {
      error = "no libllama.so / libllama.v*.so beside " + g->path();
      return;
    }
    // RTLD_LOCAL: llama's and ggml's symbols never interpose on bitsmith's. Its
    // DT_NEEDED libggml-base.so is the copy ggml::Library already loaded (same
    // SONAME), so both see one ggml.
    void* h = dlopen(so->c_str(), RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) {
      const char* e = dlerror();
      error = "dlopen failed: " + so->string() + ": " + (e ? e : "?");
      return;
    }
    found_but_unusable = true;  // until every check below passes
    std::string why;
    if (Library* l = Init(h, dir, so->string(), &why)) {
      lib = l;
      found_but_unusable = false;
      return;
    }
    dlclose(h);
    error = so->string() + ": " + why;
  }

  static Library* Init(void* h, const std::filesystem::path& dir, const std::string& path, std::string* why) {
    auto sym = [&](const char* name) { return dlsym(h, name); };
    // dlsym on the handle also searches its dependencies (libggml, libggml-base).
    void* log_set = sym("llama_log_set");
    void* backend_init = sym("llama_backend_init");
    void* load_all = sym("ggml_backend_load_all_from_path");
    auto lib = std::unique_ptr<Library>(new Library());
    lib->model_default_params_ = sym("llama_model_default_params");
    lib->quantize_default_params_ = sym("llama_model_quantize_default_params");
    lib->load_from_file_ = sym("llama_model_load_from_file");
    lib->model_free_ = sym("llama_model_free");
    lib->n_params_ = sym("llama_model_n_params");
    lib->quantize_ = sym("llama_model_quantize");
    if (!log_set || !backend_init || !load_all || !lib->model_default_params_ || !lib->quantize_default_params_ ||
        !lib->load_from_file_ || !lib->model_free_ || !lib->n_params_ || !lib->quantize_) {
      *why = "missing one of llama_log_set, llama_backend_init, ggml_backend_load_all_from_path, "
             "llama_model_default_params, llama_model_quantize_default_params, llama_model_load_from_file, "
             "llama_model_free, llama_model_n_params, llama_model_quantize";
      return nullptr;
    }
    // 1. The struct sizes, from the bytes the default functions write.
    if (!ExtentFits<ModelParams>(lib->model_default_params_, "llama_model_default_params", why) ||
        !ExtentFits<QuantizeParams>(lib->quantize_default_params_, "llama_model_quantize_default_params", why))
      return nullptr;
    // 2. The field positions, from the defaults llama-model.cpp and
    //    llama-quant.cpp set: every field's value is checked, so a field read
    //    at a wrong offset shows up as a wrong default.
    const ModelParams m = reinterpret_cast<ModelDefaultsFn>(lib->model_default_params_)();
    if (m.devices || m.tensor_buft_overrides || m.n_gpu_layers != -1 || m.split_mode != 1 || m.load_mode != -1 ||
        m.lazy_mode != 1 || m.main_gpu != 0 || m.tensor_split || m.progress_callback ||
        m.progress_callback_user_data || m.kv_overrides || m.vocab_only || m.check_tensors || !m.use_extra_bufts ||
        m.no_host || m.no_alloc || m.load_mtp) {
      *why = "llama_model_default_params() does not match the declared llama_model_params (n_gpu_layers " +
             std::to_string(m.n_gpu_layers) + ", split_mode " + std::to_string(m.split_mode) + ", load_mode " +
             std::to_string(m.load_mode) + ", lazy_mode " + std::to_string(m.lazy_mode) + ", main_gpu " +
             std::to_string(m.main_gpu) + ", use_extra_bufts " + std::to_string(m.use_extra_bufts) + ")";
      return nullptr;
    }
    const QuantizeParams q = reinterpret_cast<QuantizeDefaultsFn>(lib->quantize_default_params_)();
    // The ftype default is Q8_0 in this release (older llama.h releases:
    // Q5_1); the two type overrides default to GGML_TYPE_COUNT ("none"), which
    // is 43 in ggml 0.25.1 -- above every type id bitsmith knows.
    if (q.nthread != 0 || q.ftype != kFtypeMostlyQ8_0 || q.output_tensor_type != q.token_embedding_type ||
        q.output_tensor_type < 40 || q.output_tensor_type > 64 || q.allow_requantize || !q.quantize_output_tensor ||
        q.only_copy || q.pure || q.keep_split || q.dry_run || q.imatrix || q.kv_overrides || q.tt_overrides ||
        q.prune_layers) {
      *why = "llama_model_quantize_default_params() does not match the declared llama_model_quantize_params "
             "(nthread " + std::to_string(q.nthread) + ", ftype " + std::to_string(q.ftype) + ", output type " +
             std::to_string(q.output_tensor_type) + ", quantize_output_tensor " +
             std::to_string(q.quantize_output_tensor) + ", pure " + std::to_string(q.pure) + ")";
      return nullptr;
    }
    // 3. Set up: log capture, backend init, and the CPU backend (this build
    //    loads its backends as modules, libggml-cpu-<variant>.so in the same
    //    directory; without one the model loader refuses to load anything).
    reinterpret_cast<LogSetFn>(log_set)(&CaptureLog, nullptr);
    reinterpret_cast<VoidFn>(backend_init)();
    reinterpret_cast<LoadAllFromPathFn>(load_all)(dir.c_str());
    ClearLog();
    lib->handle_ = h;  // never dlclose'd: lives for the whole process
    lib->path_ = path;
    if (void* v = sym("llama_version")) {
      if (const char* s = reinterpret_cast<StringFn>(v)()) lib->version_ = s;
    }
    return lib.release();
  }
};

namespace {
LlamaLoader& Loader() {
  static LlamaLoader loader;
  return loader;
}
}  // namespace

const Library* Library::Get() { return Loader().lib; }
const std::string& Library::LoadError() { return Loader().error; }
bool Library::FoundButUnusable() { return Loader().found_but_unusable; }

ModelParams Library::ModelDefaults() const {
  return reinterpret_cast<ModelDefaultsFn>(model_default_params_)();
}
QuantizeParams Library::QuantizeDefaults() const {
  return reinterpret_cast<QuantizeDefaultsFn>(quantize_default_params_)();
}

std::optional<uint64_t> Library::LoadedParamCount(const std::string& gguf, std::string* log) const {
  ClearLog();
  void* model = reinterpret_cast<LoadFromFileFn>(load_from_file_)(gguf.c_str(), ModelDefaults());
  std::optional<uint64_t> n;
  if (model != nullptr) {
    n = reinterpret_cast<NParamsFn>(n_params_)(model);
    reinterpret_cast<ModelFreeFn>(model_free_)(model);
  }
  if (log) *log = TakeLog();
  return n;
}

uint32_t Library::Quantize(const std::string& in, const std::string& out, const QuantizeParams& params,
                           std::string* log) const {
  ClearLog();
  const uint32_t rc = reinterpret_cast<QuantizeFn>(quantize_)(in.c_str(), out.c_str(), &params);
  if (log) *log = TakeLog();
  return rc;
}

}  // namespace bitsmith::llama
