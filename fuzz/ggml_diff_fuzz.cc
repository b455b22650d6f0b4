// Fuzz target: one property, "every block codec gives the same bytes through its
// scalar reference, its SIMD path and ggml".
//
// Input layout (all choices taken modulo their range, so every input is valid):
//   byte 0  block type (among the types bitsmith has a codec for)
//   byte 1  blocks per row - 1 (1..16)        byte 2  rows - 1 (1..4)
//   byte 3  bit 0: pass an imatrix; bits 1-2: how values are made from the rest;
//           bits 4-7: which Highway target runs the SIMD path
//   byte 4  exponent for the value modes below
//   rest    the values, cycled when short (and an imatrix, one byte per column)
// Value modes: 0 raw float32 bits (NaN, inf, subnormals, 1e38 included);
//   1 int8 * 2^e (level grids and exact ties); 2 int16 * 2^(e-8);
//   3 raw bits with non-finite values replaced by 0.
// Checks:
//   * QuantizeRows scalar vs SIMD: same status (non-finite input is refused with
//     the same message by both), and when ok the same bytes;
//   * vs ggml (when libggml-base.so is loadable and the type has a ggml id):
//     the same bytes for every input bitsmith accepts with |x| <= 2^54, except
//     the IQ1_S/IQ1_M blocks where ggml's neighbour search is undefined (see
//     Iq1GgmlModel below);
//   * the input bytes read as blocks: DequantizeRows scalar vs SIMD vs ggml
//     to_float give the same float bit patterns.
// A failed check prints the type, the shape and the first differing block, and
// aborts.
#include <fcntl.h>     // open
#include <sys/mman.h>  // mmap (buffers shared with the ggml worker process)
#include <sys/wait.h>  // waitpid
#include <csignal>     // signal(SIGPIPE)
#include <unistd.h>    // fork, _exit, dup2, pipe

#include <hwy/targets.h>  // hwy::SupportedAndGeneratedTargets, SetSupportedTargetsForTest

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench/ggml_ref.h"
#include "codecs/iq_kernels.h"
#include "codecs/quant.h"
#include "codecs/quant_iq1_search.h"
#include "formats/dtype.h"

namespace {

using namespace bitsmith;

const std::vector<DType>& CodecTypes() {
  static const std::vector<DType> types = [] {
    std::vector<DType> out;
    for (const DTypeInfo& info : kDTypes)
      if (info.is_block() && GetBlockCodec(info.id) != nullptr) out.push_back(info.id);
    return out;
  }();
  return types;
}

std::string Hex(const uint8_t* p, size_t n) {
  std::string s;
  char buf[3];
  for (size_t i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", p[i]);
    s += buf;
  }
  return s;
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "ggml_diff_fuzz: %s\n", what.c_str());
  std::abort();
}

// skip (optional): blocks not compared.
void CompareBytes(const char* what, const DTypeInfo& info, const std::vector<float>& x,
                  int64_t npr, const std::vector<uint8_t>& a, const std::vector<uint8_t>& b,
                  const std::vector<bool>* skip = nullptr) {
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] == b[i]) continue;
    const size_t blk = i / info.block_bytes;
    if (skip != nullptr && (*skip)[blk]) continue;
    const size_t first = blk * info.block_elems;
    std::string in;
    char buf[32];
    for (int j = 0; j < info.block_elems; ++j) {
      std::snprintf(buf, sizeof buf, "%s%a", j ? "," : "", x[first + j]);
      in += buf;
    }
    Die(std::string(what) + " " + std::string(info.name) + ": row length " +
        std::to_string(npr) + ", block " + std::to_string(blk) + "\n  input: " + in +
        "\n  first:  " + Hex(a.data() + blk * info.block_bytes, info.block_bytes) +
        "\n  second: " + Hex(b.data() + blk * info.block_bytes, info.block_bytes));
  }
}

void CompareFloats(const char* what, const DTypeInfo& info, const uint8_t* blocks,
                   const std::vector<float>& a, const std::vector<float>& b) {
  if (std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0) return;
  for (size_t i = 0; i < a.size(); ++i) {
    uint32_t ua, ub;
    std::memcpy(&ua, &a[i], 4);
    std::memcpy(&ub, &b[i], 4);
    if (ua == ub) continue;
    const size_t blk = i / info.block_elems;
    char buf[96];
    std::snprintf(buf, sizeof buf, "element %zu: 0x%08x vs 0x%08x", i, ua, ub);
    Die(std::string(what) + " " + std::string(info.name) + ": " + buf + "\n  block: " +
        Hex(blocks + blk * info.block_bytes, info.block_bytes));
  }
}

// ggml's grid i-quant quantizers GGML_ASSERT (abort) on some degenerate inputs
// (e.g. "grid_index >= 0" when huge values overflow their search). For those
// types ggml runs in a forked child writing into shared memory; when it aborts
// there is nothing to compare against (returns false). Other types run in-process.
bool GgmlMayAbort(DType t) {
  switch (t) {
    case DType::kIQ1_S: case DType::kIQ1_M: case DType::kIQ2_XXS: case DType::kIQ2_XS:
    case DType::kIQ2_S: case DType::kIQ3_XXS: case DType::kIQ3_S:
      return true;
    default:
      return false;
  }
}

// ggml builds its i-quant search grids lazily (ggml_quantize_init, 2-18 s per type): build
// them in the parent, once, so that the forked children inherit them instead of
// rebuilding them for every input.
// Returns true when it built them now (a running worker does not have them).
bool GgmlInit(const ggml::Library& g, int id) {
  static std::vector<bool> initialised(256, false);
  if (id >= 0 && id < 256 && !initialised[static_cast<size_t>(id)]) {
    g.QuantizeInit(id);
    initialised[static_cast<size_t>(id)] = true;
    return true;
  }
  return false;
}

// The forked ggml: one long-lived worker process instead of a fork per input
// (forking this ASan process cost ~30 ms, most of the target's time: 28 inputs/s).
// The worker is forked on first use and serves quantize calls through shared
// memory and two pipes; when ggml aborts inside it, the parent reads EOF, reaps
// it, reports "no ggml bytes" for that input, and the next call forks a new one.
// Sizes: at most 4 rows x 16 blocks x 256 values (LLVMFuzzerTestOneInput).
class GgmlWorker {
 public:
  static constexpr size_t kMaxValues = 4 * 16 * 256;
  static constexpr size_t kMaxBytes = kMaxValues * 4;  // quantized output is smaller than f32
  struct Job {
    int id;
    int64_t nrows, npr;
    bool has_w;
  };

  bool Quantize(const ggml::Library& g, int id, const std::vector<float>& x, int64_t nrows, int64_t npr,
                const float* w, std::vector<uint8_t>* out) {
    if (x.size() > kMaxValues || static_cast<size_t>(npr) > kMaxValues || out->size() > kMaxBytes) return false;
    if (pid_ <= 0 && !Start(g)) return false;
    std::memcpy(shm_->x, x.data(), x.size() * 4);
    if (w != nullptr) std::memcpy(shm_->w, w, static_cast<size_t>(npr) * 4);
    std::memset(shm_->out, 0, out->size());
    const Job job{id, nrows, npr, w != nullptr};
    char ok = 0;
    if (!WriteAll(req_, &job, sizeof job) || read(resp_, &ok, 1) != 1) {
      Stop();  // ggml aborted (or the worker is gone): no bytes for this input
      return false;
    }
    if (ok != 1) return false;
    std::memcpy(out->data(), shm_->out, out->size());
    return true;
  }

  // Ends the worker (the next call forks a new one).
  void Stop() {
    if (pid_ <= 0) return;
    close(req_), close(resp_);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1, req_ = resp_ = -1;
  }

 private:
  struct Shared {
    float x[kMaxValues];
    float w[kMaxValues];
    uint8_t out[kMaxBytes];
  };

  static bool WriteAll(int fd, const void* p, size_t n) {
    const char* c = static_cast<const char*>(p);
    while (n > 0) {
      const ssize_t k = write(fd, c, n);
      if (k <= 0) return false;
      c += k, n -= static_cast<size_t>(k);
    }
    return true;
  }
  static bool ReadAll(int fd, void* p, size_t n) {
    char* c = static_cast<char*>(p);
    while (n > 0) {
      const ssize_t k = read(fd, c, n);
      if (k <= 0) return false;
      c += k, n -= static_cast<size_t>(k);
    }
    return true;
  }

  bool Start(const ggml::Library& g) {
    if (shm_ == nullptr) {
      void* m = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
      if (m == MAP_FAILED) return false;
      shm_ = static_cast<Shared*>(m);
      signal(SIGPIPE, SIG_IGN);  // a dead worker: write fails with EPIPE instead
    }
    int to_child[2], to_parent[2];
    if (pipe(to_child) != 0) return false;
    if (pipe(to_parent) != 0) {
      close(to_child[0]), close(to_child[1]);
      return false;
    }
    const pid_t pid = fork();
    if (pid == 0) {
      // ggml's abort ends the worker, nothing else: without this the child runs
      // libFuzzer's inherited crash handler, which writes the parent's current
      // input as a "crash-*" artifact although the parent goes on unharmed.
      for (int sig : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL}) signal(sig, SIG_DFL);
      close(to_child[1]), close(to_parent[0]);
      const int devnull = open("/dev/null", O_WRONLY);
      if (devnull >= 0) dup2(devnull, 1), dup2(devnull, 2);  // ggml's "Oops" prints and abort message
      setenv("GGML_NO_BACKTRACE", "1", 1);  // ggml_abort would otherwise attach gdb
      Job job{};
      while (ReadAll(to_child[0], &job, sizeof job)) {
        const char ok = g.Quantize(job.id, shm_->x, shm_->out, job.nrows, job.npr, job.has_w ? shm_->w : nullptr)
                            ? 1 : 0;
        if (!WriteAll(to_parent[1], &ok, 1)) break;
      }
      _exit(0);
    }
    close(to_child[0]), close(to_parent[1]);
    if (pid < 0) {
      close(to_child[1]), close(to_parent[0]);
      return false;
    }
    pid_ = pid, req_ = to_child[1], resp_ = to_parent[0];
    return true;
  }

  Shared* shm_ = nullptr;
  pid_t pid_ = -1;
  int req_ = -1, resp_ = -1;
};

bool GgmlQuantize(const ggml::Library& g, DType t, const std::vector<float>& x, int64_t nrows,
                  int64_t npr, const float* w, std::vector<uint8_t>* out) {
  const int id = GetDType(t).ggml_type;
  if (!GgmlMayAbort(t)) return g.Quantize(id, x.data(), out->data(), nrows, npr, w);
  static GgmlWorker worker;
  // The grids are built in the parent, so every worker forked later inherits
  // them; one forked before has to go (the gcc replay main meets the types one
  // by one; under libFuzzer LLVMFuzzerInitialize has built them all).
  if (GgmlInit(g, id)) worker.Stop();
  return worker.Quantize(g, id, x, nrows, npr, w, out);
}

// IQ1_S / IQ1_M: what ggml's bytes are compared with, and where they cannot be.
// ggml's iq1_find_best_neighbour2, when no neighbour's distance is below FLT_MAX
// (w*diff^2 overflows: |x| around 2^43 with weights ~1, or huge imatrix
// weights), scans the whole grid reading xval[i] for the grid index i, up to 2040
// floats past the group: undefined, its bytes depend on the memory after the
// group (fuzz/open_findings/README.md: the finding of 2026-11-23, traced value by
// value). bitsmith defines that case as the first neighbour (NeighbourIQ1Ref).
// The model runs bitsmith's oracle (IQ1_M: with llama.cpp PR #28706's search,
// which the npm ggml has) with a neighbour step that marks the blocks where the
// scan found nothing; those blocks, and only those, are not compared.
struct Iq1Flags {
  const float* x = nullptr;
  std::vector<bool>* undefined = nullptr;
};
Iq1Flags g_iq1;

int FlaggingNeighbour(const uint16_t* nb, const float* xval, const float* weight, float scale, const float* xx) {
  const int best = iq::NeighbourIQ1Scan(nb, xval, weight, scale, xx);
  if (best >= 0) return best;
  (*g_iq1.undefined)[static_cast<size_t>((xval - g_iq1.x) / 256)] = true;
  return nb[1];
}

void Iq1GgmlModel(DType t, const std::vector<float>& x, int64_t nrows, int64_t npr, const float* w,
                  std::vector<uint8_t>* q, std::vector<bool>* undefined) {
  undefined->assign(x.size() / 256, false);
  g_iq1 = {x.data(), undefined};
  const iq::IQ1Hooks hooks{iq::SortIQ1Ref, FlaggingNeighbour, iq::SearchIQ1SRef, iq::SearchIQ1MLlamaCpp28706};
  if (t == DType::kIQ1_S) iq::QuantizeIQ1SWith(hooks, x.data(), q->data(), nrows, npr, w);
  else iq::QuantizeIQ1MWith(hooks, x.data(), q->data(), nrows, npr, w);
  g_iq1 = {};
}

}  // namespace

// One-time set-up before the first input: bitsmith's lazily built i-quant tables
// (lattices, grids) and ggml's ggml_quantize_init take seconds each, tens of
// seconds under ASan on a loaded machine, and libFuzzer's -timeout counts them
// against whichever input comes first (the campaign's first ggml_diff run
// "timed out" after 35 s on its first IQ1_S input, inside GetLattice). Every
// codec quantizes one block here, scalar and SIMD, and ggml's grids are built.
// (The gcc replay main does not call this; there the first input pays.)
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const ggml::Library* g = ggml::Library::Get();
  for (DType t : CodecTypes()) {
    const DTypeInfo& info = GetDType(t);
    std::vector<float> x(static_cast<size_t>(info.block_elems)), w(x.size(), 1.f);
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(static_cast<int>(i % 7) - 3) * 0.25f;
    std::vector<uint8_t> q(static_cast<size_t>(info.block_bytes));
    (void)QuantizeRows(t, x, q, info.block_elems, w.data(), Impl::kReference, 1);
    (void)QuantizeRows(t, x, q, info.block_elems, w.data(), Impl::kSimd, 1);
    if (g != nullptr && GgmlMayAbort(t)) GgmlInit(*g, info.ggml_type);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto& types = CodecTypes();
  if (types.empty() || size < 6) return 0;
  const DType t = types[data[0] % types.size()];
  const DTypeInfo& info = GetDType(t);
  const int64_t nblocks = data[1] % 16 + 1;
  const int64_t nrows = data[2] % 4 + 1;
  const bool use_w = (data[3] & 1) != 0 || info.requires_imatrix;
  const int mode = (data[3] >> 1) & 3;
  const int e = static_cast<int8_t>(data[4]) % 40;
  const uint8_t* p = data + 5;
  const size_t n = size - 5;
  const int64_t npr = nblocks * info.block_elems;
  static const std::vector<int64_t> targets = hwy::SupportedAndGeneratedTargets();
  const int64_t target = targets[(data[3] >> 4) % targets.size()];

  // 1. Values (and the imatrix) from the payload, cycled.
  std::vector<float> x(static_cast<size_t>(nrows * npr));
  for (size_t i = 0; i < x.size(); ++i) {
    const size_t k = (i * (mode == 0 || mode == 3 ? 4 : mode == 2 ? 2 : 1)) % n;
    uint8_t b[4];
    for (int j = 0; j < 4; ++j) b[j] = p[(k + j) % n];
    float v;
    switch (mode) {
      case 1:
        v = std::ldexp(static_cast<float>(static_cast<int8_t>(b[0])), e);
        break;
      case 2: {
        int16_t s;
        std::memcpy(&s, b, 2);
        v = std::ldexp(static_cast<float>(s), e - 8);
        break;
      }
      default:
        std::memcpy(&v, b, 4);
        if (mode == 3 && !std::isfinite(v)) v = 0.f;
        break;
    }
    // Cycling a short payload gives periodic rows; vary later periods a little.
    if (i >= n && mode != 0 && (i / n) % 2 == 1) v = -v;
    x[i] = v;
  }
  std::vector<float> w;
  if (use_w) {
    w.resize(static_cast<size_t>(npr));
    for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(p[(i * 7 + 3) % n]) / 16.f;
  }
  const float* wp = use_w ? w.data() : nullptr;

  // 2. Scalar vs SIMD.
  const size_t qbytes = static_cast<size_t>(nrows * nblocks * info.block_bytes);
  std::vector<uint8_t> q_ref(qbytes, 0xA5), q_simd(qbytes, 0x5A);
  const Status s1 = QuantizeRows(t, x, q_ref, npr, wp, Impl::kReference, 1);
  hwy::SetSupportedTargetsForTest(target);
  const Status s2 = QuantizeRows(t, x, q_simd, npr, wp, Impl::kSimd, 1);
  if (s1.ok() != s2.ok() || (!s1.ok() && s1.error().message != s2.error().message))
    Die(std::string("status differs for ") + std::string(info.name) + ": scalar '" +
        (s1.ok() ? "ok" : s1.error().message) + "', SIMD '" + (s2.ok() ? "ok" : s2.error().message) +
        "'");
  if (s1.ok()) CompareBytes("quantize scalar vs SIMD", info, x, npr, q_ref, q_simd);

  // 3. vs ggml, for every input bitsmith accepts whose sums of squares stay
  //    finite (|x| <= 2^54): beyond that ggml's searches run on inf/NaN sums,
  //    which the per-family edge tests cover type by type instead.
  const ggml::Library* g = ggml::Library::Get();
  bool moderate = true;
  for (float v : x) moderate = moderate && std::fabs(v) <= 0x1p54f;
  if (s1.ok() && moderate && g != nullptr && info.ggml_type >= 0) {
    std::vector<uint8_t> q_ggml(qbytes, 0);
    // IQ1_S / IQ1_M: compared with Iq1GgmlModel, except where ggml is undefined.
    // The model is bitsmith's oracle step for step: for IQ1_S its bytes are q_ref;
    // for IQ1_M it has llama.cpp PR #28706's split search (the npm ggml has it;
    // it rounds differently from d99724f2, the product) and equals
    // iq::QuantizeIQ1MLlamaCpp28706Ref (codecs/iq_kernels.h).
    std::vector<uint8_t> q_model;
    std::vector<bool> undefined;
    const bool iq1 = t == DType::kIQ1_S || t == DType::kIQ1_M;
    if (iq1) {
      q_model.assign(qbytes, 0xC3);
      Iq1GgmlModel(t, x, nrows, npr, wp, &q_model, &undefined);
      if (t == DType::kIQ1_S) CompareBytes("IQ1_S model vs scalar", info, x, npr, q_model, q_ref);
    }
    if (GgmlQuantize(*g, t, x, nrows, npr, wp, &q_ggml))
      CompareBytes("quantize ggml vs bitsmith", info, x, npr, q_ggml, iq1 ? q_model : q_ref,
                   iq1 ? &undefined : nullptr);
  }

  // 4. The payload as blocks: dequantize through all three.
  const size_t nblk = n / info.block_bytes;
  if (nblk > 0) {
    const size_t nvals = nblk * info.block_elems;
    std::vector<float> y_ref(nvals), y_simd(nvals);
    const std::span<const uint8_t> blocks(p, nblk * info.block_bytes);
    if (!DequantizeRows(t, blocks, y_ref, Impl::kReference, 1).ok() ||
        !DequantizeRows(t, blocks, y_simd, Impl::kSimd, 1).ok())
      Die("DequantizeRows refused whole blocks of " + std::string(info.name));
    CompareFloats("dequantize scalar vs SIMD", info, p, y_ref, y_simd);
    if (g != nullptr && info.ggml_type >= 0 && g->HasToFloat(info.ggml_type)) {
      std::vector<float> y_ggml(nvals);
      g->ToFloat(info.ggml_type, p, y_ggml.data(), static_cast<int64_t>(nvals));
      CompareFloats("dequantize ggml vs bitsmith", info, p, y_ggml, y_ref);
    }
  }
  hwy::SetSupportedTargetsForTest(0);
  return 0;
}
