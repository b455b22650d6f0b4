// dlopen'ed ggml (libggml-base.so from @node-llama-cpp/linux-x64): see ggml_ref.h.
#include "bench/ggml_ref.h"

#include <dlfcn.h>   // dlopen, dlsym, dlerror
#include <unistd.h>  // readlink

#include <cstdlib>  // getenv
#include <cstring>  // strcmp
#include <filesystem>
#include <vector>

#include <fmt/format.h>

#include "formats/dtype.h"

namespace bitsmith::ggml {

namespace {

// The public struct ggml_type_traits of ggml.h (ggml-org/llama.cpp
// ggml/include/ggml.h, unchanged from 2024-10 to the 0.25.x releases):
//   const char* type_name; int64_t blck_size; int64_t blck_size_interleave;
//   size_t type_size; bool is_quantized; ggml_to_float_t to_float;
//   ggml_from_float_t from_float_ref;
// The layout is verified at load time against formats/dtype.h (VerifyTraits).
struct GgmlTypeTraits {
  const char* type_name;
  int64_t blck_size;
  int64_t blck_size_interleave;
  size_t type_size;
  bool is_quantized;
  void (*to_float)(const void* x, float* y, int64_t k);
  void (*from_float_ref)(const float* x, void* y, int64_t k);
};

using GetTypeTraitsFn = const GgmlTypeTraits* (*)(int type);
using QuantizeChunkFn = size_t (*)(int type, const float* src, void* dst, int64_t start,
                                   int64_t nrows, int64_t n_per_row, const float* imatrix);
using QuantizeInitFn = void (*)(int type);
using RequiresImatrixFn = bool (*)(int type);
using ToFloatFn = void (*)(const void* x, float* y, int64_t k);
using FromFloatFn = void (*)(const float* x, void* y, int64_t k);
using StringFn = const char* (*)();

constexpr const char* kNpmRelative =
    "npm/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so";

// The type ids ggml_quantize_chunk's switch handles (ggml.c, 0.25.x; ids from
// ggml.h): f32 f16 bf16, the legacy and k-quants, tq*, i-quants, mxfp4. Not
// q8_1 (9) nor q8_K (15): those abort there.
constexpr int kChunkTypes[] = {0,  1,  30, 2,  3,  6,  7,  8,  39, 10, 11, 12, 13,
                               14, 34, 35, 16, 17, 18, 21, 22, 19, 29, 20, 23};

std::vector<std::filesystem::path> Candidates() {
  namespace fs = std::filesystem;
  std::vector<fs::path> out;
  if (const char* env = std::getenv("BITSMITH_GGML_LIB"); env != nullptr && *env != '\0')
    out.emplace_back(env);
#ifdef BITSMITH_GGML_BINARY_DIR
  out.push_back(fs::path(BITSMITH_GGML_BINARY_DIR) / kNpmRelative);
#endif
  char exe[4096];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n > 0) {
    exe[n] = '\0';
    for (fs::path dir = fs::path(exe).parent_path(); !dir.empty(); dir = dir.parent_path()) {
      out.push_back(dir / kNpmRelative);
      if (dir == dir.root_path()) break;
    }
  }
#ifdef BITSMITH_GGML_SOURCE_DIR
  out.push_back(fs::path(BITSMITH_GGML_SOURCE_DIR) / "build" / kNpmRelative);
#endif
  return out;
}

}  // namespace

struct LibraryLoader {
  std::string error;
  Library* lib = nullptr;

  LibraryLoader() {
    std::string tried;
    for (const auto& p : Candidates()) {
      std::error_code ec;
      if (!std::filesystem::is_regular_file(p, ec)) {
        tried += "\n  not found: " + p.string();
        continue;
      }
      // RTLD_LOCAL: ggml's symbols never interpose on anything else in the process.
      void* h = dlopen(p.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (h == nullptr) {
        const char* e = dlerror();
        tried += "\n  dlopen failed: " + p.string() + ": " + (e ? e : "?");
        continue;
      }
      std::string why;
      if (Library* l = Init(h, p.string(), &why)) {
        lib = l;
        return;
      }
      dlclose(h);
      tried += "\n  unusable: " + p.string() + ": " + why;
    }
    error = "libggml-base.so not loadable (set BITSMITH_GGML_LIB, or run `make npm-deps`)" + tried;
  }

  static Library* Init(void* h, const std::string& path, std::string* why) {
    auto get_traits = reinterpret_cast<GetTypeTraitsFn>(dlsym(h, "ggml_get_type_traits"));
    void* chunk = dlsym(h, "ggml_quantize_chunk");
    void* init = dlsym(h, "ggml_quantize_init");
    void* req = dlsym(h, "ggml_quantize_requires_imatrix");
    if (get_traits == nullptr || chunk == nullptr || init == nullptr || req == nullptr) {
      *why = "missing ggml_get_type_traits / ggml_quantize_chunk / ggml_quantize_init / "
             "ggml_quantize_requires_imatrix";
      return nullptr;
    }
    auto* lib = new Library();  // lives for the whole process (never dlclose'd)
    lib->handle_ = h;
    lib->path_ = path;
    lib->quantize_chunk_ = chunk;
    lib->quantize_init_ = init;
    lib->requires_imatrix_ = req;
    // 1. Check the traits of every type id both sides know against dtype.h.
    for (int t = 0; t < kGgmlTypeCount; ++t) {
      const auto name = GgmlTypeName(t);
      if (!name) continue;  // removed ids (4, 5, 31-33, 36-38)
      const GgmlTypeTraits* tr = get_traits(t);
      if (tr == nullptr || tr->type_name == nullptr || *name != tr->type_name) {
        *why = fmt::format("type {}: ggml names it '{}', bitsmith expects '{}' (unknown ggml "
                           "version or ggml_type_traits layout)",
                           t, tr && tr->type_name ? tr->type_name : "(null)", *name);
        delete lib;
        return nullptr;
      }
      if (const auto dt = DTypeFromGgml(t)) {
        const DTypeInfo& info = GetDType(*dt);
        if (tr->blck_size != info.block_elems || tr->type_size != static_cast<size_t>(info.block_bytes)) {
          *why = fmt::format("type {} ({}): ggml block {} elements / {} bytes, dtype.h {} / {}", t,
                             *name, tr->blck_size, tr->type_size, info.block_elems,
                             info.block_bytes);
          delete lib;
          return nullptr;
        }
      }
      // 2. The functions: traits first, then the exported quantize_row_<name>_ref /
      //    dequantize_row_<name> (q8_K's traits have neither, the symbols exist).
      Library::TypeFns& f = lib->types_[t];
      f.block_size = tr->blck_size;
      f.block_bytes = tr->type_size;
      f.to_float = reinterpret_cast<void*>(tr->to_float);
      f.from_float_ref = reinterpret_cast<void*>(tr->from_float_ref);
      if (tr->is_quantized) {
        if (f.to_float == nullptr)
          f.to_float = dlsym(h, fmt::format("dequantize_row_{}", *name).c_str());
        if (f.from_float_ref == nullptr)
          f.from_float_ref = dlsym(h, fmt::format("quantize_row_{}_ref", *name).c_str());
      }
    }
    auto ver = reinterpret_cast<StringFn>(dlsym(h, "ggml_version"));
    auto commit = reinterpret_cast<StringFn>(dlsym(h, "ggml_commit"));
    if (ver != nullptr)
      lib->version_ = fmt::format("{} ({})", ver(), commit != nullptr ? commit() : "?");
    dlerror();  // clear the "symbol not found" state of the optional lookups
    return lib;
  }
};

namespace {
LibraryLoader& Loader() {
  static LibraryLoader loader;  // thread-safe one-time initialisation
  return loader;
}
}  // namespace

const Library* Library::Get() { return Loader().lib; }
const std::string& Library::LoadError() { return Loader().error; }

const Library::TypeFns* Library::Fns(int t) const {
  if (t < 0 || t >= kGgmlTypeCount || t >= kMaxTypes || types_[t].block_size == 0) return nullptr;
  return &types_[t];
}

bool Library::HasQuantizeChunk(int t) const {
  if (Fns(t) == nullptr) return false;
  for (int c : kChunkTypes)
    if (c == t) return true;
  return false;
}
bool Library::HasFromFloatRef(int t) const {
  const TypeFns* f = Fns(t);
  return f != nullptr && f->from_float_ref != nullptr;
}
bool Library::HasToFloat(int t) const {
  const TypeFns* f = Fns(t);
  return f != nullptr && f->to_float != nullptr;
}
bool Library::RequiresImatrix(int t) const {
  return Fns(t) != nullptr && reinterpret_cast<RequiresImatrixFn>(requires_imatrix_)(t);
}

size_t Library::QuantizeChunk(int t, const float* src, void* dst, int64_t start, int64_t nrows,
                              int64_t n_per_row, const float* imatrix) const {
  // Refuse what would hit a GGML_ASSERT (abort) inside ggml.
  if (!HasQuantizeChunk(t) || nrows < 0 || n_per_row <= 0) return 0;
  if (n_per_row % types_[t].block_size != 0 || start % n_per_row != 0) return 0;
  if (imatrix == nullptr && RequiresImatrix(t)) return 0;
  return reinterpret_cast<QuantizeChunkFn>(quantize_chunk_)(t, src, dst, start, nrows, n_per_row,
                                                            imatrix);
}

bool Library::FromFloatRef(int t, const float* src, void* dst, int64_t n) const {
  if (!HasFromFloatRef(t) || n % types_[t].block_size != 0) return false;
  reinterpret_cast<FromFloatFn>(types_[t].from_float_ref)(src, dst, n);
  return true;
}

bool Library::ToFloat(int t, const void* src, float* dst, int64_t n) const {
  if (!HasToFloat(t) || n % types_[t].block_size != 0) return false;
  reinterpret_cast<ToFloatFn>(types_[t].to_float)(src, dst, n);
  return true;
}

void Library::QuantizeInit(int t) const {
  if (Fns(t) != nullptr) reinterpret_cast<QuantizeInitFn>(quantize_init_)(t);
}

bool Library::Quantize(int t, const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                       const float* imatrix) const {
  if (HasQuantizeChunk(t)) {
    if (nrows == 0) return true;
    return QuantizeChunk(t, src, dst, 0, nrows, n_per_row, imatrix) != 0;
  }
  if (!HasFromFloatRef(t) || n_per_row <= 0 || n_per_row % types_[t].block_size != 0) return false;
  const size_t row_bytes =
      static_cast<size_t>(n_per_row / types_[t].block_size) * types_[t].block_bytes;
  for (int64_t r = 0; r < nrows; ++r)
    FromFloatRef(t, src + r * n_per_row, static_cast<uint8_t*>(dst) + r * row_bytes, n_per_row);
  return true;
}

}  // namespace bitsmith::ggml
