// `bitsmith encode` and `bitsmith decode`: raw little-endian arrays through the
// element codecs (codecs/element.h) and the block codecs (codecs/quant.h).
//
//   bitsmith encode --to FMT [--from f32|bf16|f16] [--saturate] [--threads N] IN OUT
//   bitsmith encode --to q4_k --row N [--weights W.f32] [--from ...] [--threads N] IN OUT
//   bitsmith decode --from FMT [--to f32|bf16] [--threads N] IN OUT
//
// Streaming (bounded memory): a regular IN and a regular OUT are processed in
// chunks small enough to stay in the L2 cache (pread -> convert -> pwrite), one
// stream of chunks per thread, so the DRAM traffic is what `cp` moves plus
// nothing. Pipes (`-`) are processed sequentially in larger chunks, each
// converted on all threads. OUT is written under a temporary name in its own
// directory and renamed into place only when complete: it is never left
// half-written, and an existing OUT is replaced atomically.
//
// The conversion itself is a StreamCodec: fixed-size input units -> fixed-size
// output units. Element formats have 1-element units; block encoding has
// whole rows of N values as input units (ggml quantizes row by row, and the
// imatrix paths look at the whole row), block decoding whole blocks.
#include <fcntl.h>     // open
#include <sys/stat.h>  // fstat, fchmod, umask
#include <unistd.h>    // pread, pwrite, close, unlink

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cerrno>
#include <cstring>  // std::strerror
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "cli/commands.h"
#include "codecs/element.h"
#include "codecs/parallel.h"  // ResolveThreads, ParallelFor
#include "codecs/quant.h"     // QuantizeRows, DequantizeRows
#include "formats/dtype.h"
#include "formats/element_format.h"

namespace bitsmith::cli {
namespace {

// ---------------------------------------------------------------------------
// What to convert: units of in_unit bytes -> units of out_unit bytes.
// ---------------------------------------------------------------------------
struct StreamCodec {
  std::string description;  // "f32 -> e4m3fn (saturating)"
  size_t in_unit = 1;       // bytes of one input unit (an element or a block)
  size_t out_unit = 1;      // bytes of one output unit
  std::string unit_name = "input values";  // for size errors: "f32 rows of 4096 values"
  // Converts `units` units, the first being unit `first_unit` of the input (for
  // error messages); `threads` as in ParallelFor. Buffers never overlap.
  std::function<Status(const uint8_t* in, uint8_t* out, size_t units, uint64_t first_unit, int threads)> run;
};

// Options that only block formats take.
struct BlockOptions {
  int64_t row = 0;                // --row N (encode to a block format)
  std::vector<float> weights;     // --weights: N importance weights, or empty
};

// Widens `units * per_unit` values of an f32/bf16/f16 input to f32 in `tmp`
// (exact: every bf16/f16 value is a float32), or returns the input itself.
const float* AsF32(DType from, const uint8_t* in, size_t n, std::vector<float>& tmp) {
  if (from == DType::kF32) return reinterpret_cast<const float*>(in);
  tmp.resize(n);
  const ElementFormatId f = *GetDType(from).element;
  (void)Decode(f, std::span<const uint8_t>(in, n * ElementBytes(f)), std::span<float>(tmp), Impl::kSimd, 1);
  return tmp.data();
}

// The first non-finite value of `rows` rows, as an error naming the absolute row
// and column (QuantizeRows only knows the row within its chunk).
Error NonFiniteError(DType to, const float* x, size_t rows, int64_t row_len, uint64_t first_row,
                     const Error& fallback) {
  for (size_t i = 0; i < rows * static_cast<size_t>(row_len); ++i)
    if (!std::isfinite(x[i]))
      return MakeError(ErrorKind::kBadInput,
                       "encode to {}: row {}, column {} is {} (non-finite values cannot be quantized "
                       "to a block format; ggml does not define them)",
                       GetDType(to).name, first_row + i / static_cast<size_t>(row_len),
                       i % static_cast<size_t>(row_len), x[i]);
  return fallback;
}

Result<StreamCodec> MakeBlockCodec(const std::string& verb, DType from, DType to, const BlockOptions& b) {
  const bool encoding = GetDType(to).is_block();
  const DType block = encoding ? to : from;
  const DTypeInfo& bi = GetDType(block);
  if (GetDType(from).is_block() && GetDType(to).is_block())
    return MakeError(ErrorKind::kBadUsage, "{}: {} -> {}: convert through f32 (decode, then encode)",
                     verb, GetDType(from).name, bi.name);
  if (block == DType::kNVFP4)
    return MakeError(ErrorKind::kUnsupported,
                     "{}: nvfp4 needs its per-tensor f32 scale, which a raw array does not carry (no "
                     "bitsmith command writes nvfp4 yet; codecs/nvfp4.h takes the scale, see docs/FORMATS.md)",
                     verb);
  if (GetBlockCodec(block) == nullptr)
    return MakeError(ErrorKind::kUnsupported, "{}: no codec for {} in this build (see `bitsmith formats`)",
                     verb, bi.name);
  StreamCodec c;
  if (!encoding) {  // whole blocks -> block_elems f32 or bf16 values
    const size_t out_bytes = GetDType(to).block_bytes;  // 4 (f32) or 2 (bf16)
    c.description = fmt::format("{} -> {}", bi.name, GetDType(to).name);
    c.unit_name = fmt::format("{}-element {} blocks", bi.block_elems, bi.name);
    c.in_unit = static_cast<size_t>(bi.block_bytes);
    c.out_unit = static_cast<size_t>(bi.block_elems) * out_bytes;
    c.run = [block, to, bi](const uint8_t* in, uint8_t* out, size_t units, uint64_t, int threads) -> Status {
      const size_t n = units * static_cast<size_t>(bi.block_elems);
      std::span<const uint8_t> src(in, units * static_cast<size_t>(bi.block_bytes));
      if (to == DType::kF32)
        return DequantizeRows(block, src, std::span<float>(reinterpret_cast<float*>(out), n), Impl::kSimd, threads);
      thread_local std::vector<float> tmp;
      tmp.resize(n);
      BITSMITH_RETURN_IF_ERROR(DequantizeRows(block, src, std::span<float>(tmp), Impl::kSimd, threads));
      EncodeF32ToBF16(tmp.data(), reinterpret_cast<uint16_t*>(out), n);  // round to nearest even
      return Status::Ok();
    };
    return c;
  }
  // Encoding: rows of N values -> RowBytes(to, N) bytes.
  if (b.row <= 0)
    return MakeError(ErrorKind::kBadUsage,
                     "{}: --to {} needs --row N (values per row; IN holds whole rows of N values)", verb,
                     bi.name);
  if (b.row % bi.block_elems != 0)
    return MakeError(ErrorKind::kBadInput, "{}: --row {}: {} needs a multiple of {} values per row", verb,
                     b.row, bi.name, bi.block_elems);
  if (!b.weights.empty() && static_cast<int64_t>(b.weights.size()) != b.row)
    return MakeError(ErrorKind::kBadInput, "{}: --weights holds {} values, --row is {}: need one weight per column",
                     verb, b.weights.size(), b.row);
  if (b.weights.empty() && bi.requires_imatrix)
    return MakeError(ErrorKind::kBadUsage, "{}: {} requires importance weights (--weights W.f32)", verb,
                     bi.name);
  const int64_t row = b.row;
  const size_t from_bytes = static_cast<size_t>(GetDType(from).block_bytes);
  c.description = fmt::format("{} -> {}{}", GetDType(from).name, bi.name, b.weights.empty() ? "" : " (weighted)");
  c.unit_name = fmt::format("{} rows of {} values", GetDType(from).name, row);
  c.in_unit = static_cast<size_t>(row) * from_bytes;
  c.out_unit = *RowBytes(block, static_cast<uint64_t>(row));
  auto weights = std::make_shared<std::vector<float>>(b.weights);
  c.run = [from, block, row, weights](const uint8_t* in, uint8_t* out, size_t units, uint64_t first_unit,
                                      int threads) -> Status {
    const size_t n = units * static_cast<size_t>(row);
    thread_local std::vector<float> tmp;
    const float* x = AsF32(from, in, n, tmp);
    Status s = QuantizeRows(block, std::span<const float>(x, n),
                            std::span<uint8_t>(out, units * *RowBytes(block, static_cast<uint64_t>(row))), row,
                            weights->empty() ? nullptr : weights->data(), Impl::kSimd, threads);
    if (!s.ok()) return NonFiniteError(block, x, units, row, first_unit, s.error());
    return s;
  };
  return c;
}

// The codec for FROM -> TO: element formats on both sides, or f32/bf16/f16 <->
// a block format.
Result<StreamCodec> MakeStreamCodec(const std::string& verb, DType from, DType to, Overflow overflow,
                                    const BlockOptions& block) {
  if (GetDType(from).is_block() || GetDType(to).is_block()) {
    if (overflow == Overflow::kSaturate)
      return MakeError(ErrorKind::kBadUsage, "{}: --saturate applies to element formats only (block "
                                             "formats always saturate)", verb);
    return MakeBlockCodec(verb, from, to, block);
  }
  if (block.row != 0 || !block.weights.empty())
    return MakeError(ErrorKind::kBadUsage, "{}: --row and --weights apply to block formats only", verb);
  for (DType t : {from, to}) {
    const DTypeInfo& info = GetDType(t);
    if (!info.element)
      return MakeError(ErrorKind::kUnsupported, "{}: {} is not a number format bitsmith can {}",
                       verb, info.name, verb);
  }
  const ElementFormatId f = *GetDType(from).element, t = *GetDType(to).element;
  StreamCodec c;
  c.description = fmt::format("{} -> {}{}", GetElementFormat(f).name, GetElementFormat(t).name,
                              overflow == Overflow::kSaturate ? " (saturating)" : "");
  c.in_unit = ElementBytes(f);
  c.out_unit = ElementBytes(t);
  c.run = [f, t, overflow](const uint8_t* in, uint8_t* out, size_t units, uint64_t, int threads) {
    return Convert(f, t, std::span<const uint8_t>(in, units * ElementBytes(f)),
                   std::span<uint8_t>(out, units * ElementBytes(t)), overflow, Impl::kSimd, threads);
  };
  return c;
}

// ---------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------

Error IoError(const std::string& what, const std::string& path, int err) {
  const ErrorKind kind = (err == ENOSPC || err == EFBIG || err == EDQUOT) ? ErrorKind::kNoSpace
                                                                          : ErrorKind::kIo;
  return MakeError(kind, "{}: cannot {}: {}", path, what, std::strerror(err));
}

// Reads up to `n` bytes at `offset` (or sequentially when offset < 0); returns
// the count, short only at end of file.
Result<size_t> ReadFull(int fd, const std::string& path, uint8_t* buf, size_t n, int64_t offset) {
  size_t got = 0;
  while (got < n) {
    const ssize_t r = offset >= 0 ? ::pread(fd, buf + got, n - got, offset + static_cast<int64_t>(got))
                                  : ::read(fd, buf + got, n - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      return IoError("read", path, errno);
    }
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  return got;
}

Status WriteFull(int fd, const std::string& path, const uint8_t* buf, size_t n, int64_t offset) {
  size_t done = 0;
  while (done < n) {
    const ssize_t r = offset >= 0 ? ::pwrite(fd, buf + done, n - done, offset + static_cast<int64_t>(done))
                                  : ::write(fd, buf + done, n - done);
    if (r < 0) {
      if (errno == EINTR) continue;
      return IoError("write", path, errno);
    }
    done += static_cast<size_t>(r);
  }
  return Status::Ok();
}

// OUT under a temporary name in the same directory (so rename() is atomic),
// removed unless Commit() succeeds. "-" is stdout, written directly.
class AtomicOutput {
 public:
  ~AtomicOutput() {
    if (fd_ >= 0 && !is_stdout_) ::close(fd_);
    if (!tmp_.empty()) ::unlink(tmp_.c_str());
  }
  Status Open(const std::string& path) {
    path_ = path;
    if (path == "-") {
      is_stdout_ = true;
      fd_ = STDOUT_FILENO;
      return Status::Ok();
    }
    const std::filesystem::path p(path);
    const std::string dir = p.has_parent_path() ? p.parent_path().string() : ".";
    std::string templ = dir + "/." + p.filename().string() + ".tmp-bitsmith-XXXXXX";
    std::vector<char> name(templ.begin(), templ.end());
    name.push_back('\0');
    fd_ = ::mkstemp(name.data());
    if (fd_ < 0) return IoError("create a temporary file in " + dir + " for", path, errno);
    tmp_ = name.data();
    const mode_t mask = ::umask(0);
    ::umask(mask);
    ::fchmod(fd_, 0666 & ~mask);  // what open(O_CREAT, 0666) would have given
    return Status::Ok();
  }
  int fd() const { return fd_; }
  bool seekable() const { return !is_stdout_; }
  const std::string& path() const { return path_; }
  Status Commit() {
    if (is_stdout_) return Status::Ok();
    if (::close(fd_) != 0) {
      fd_ = -1;
      return IoError("write", path_, errno);
    }
    fd_ = -1;
    if (::rename(tmp_.c_str(), path_.c_str()) != 0) return IoError("rename the output into place as", path_, errno);
    tmp_.clear();
    return Status::Ok();
  }

 private:
  std::string path_, tmp_;
  int fd_ = -1;
  bool is_stdout_ = false;
};

struct Input {
  int fd = -1;
  bool owned = false;
  bool regular = false;
  uint64_t size = 0;
  std::string path;
  ~Input() {
    if (owned && fd >= 0) ::close(fd);
  }
  Status Open(const std::string& p) {
    path = p == "-" ? "<stdin>" : p;
    if (p == "-") {
      fd = STDIN_FILENO;
    } else {
      fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return MakeError(ErrorKind::kBadInput, "{}: cannot open: {}", p, std::strerror(errno));
      owned = true;
    }
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
      regular = true;
      size = static_cast<uint64_t>(st.st_size);
    } else if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
      return MakeError(ErrorKind::kBadInput, "{}: is a directory", path);
    }
    return Status::Ok();
  }
};

// ---------------------------------------------------------------------------
// The streaming engine
// ---------------------------------------------------------------------------

// Aligned, reusable byte buffer (vector growth would zero-fill every time).
struct Buffer {
  std::unique_ptr<uint8_t[], void (*)(void*)> p{nullptr, std::free};
  size_t size = 0;
  uint8_t* Get(size_t n) {
    if (n > size) {
      void* q = nullptr;
      if (::posix_memalign(&q, 4096, std::max<size_t>(n, 64)) != 0) throw std::bad_alloc();
      p.reset(static_cast<uint8_t*>(q));
      size = n;
    }
    return p.get();
  }
};

std::string SizeError(const StreamCodec& c, const std::string& path, uint64_t bytes) {
  return fmt::format("{}: {} bytes is not a whole number of {} ({} bytes each; {})", path, bytes,
                     c.unit_name, c.in_unit, c.description);
}

// Regular file in, seekable file out: each thread converts its own chunks,
// sized to stay in the L2 cache, with pread/pwrite at their offsets.
Status RunParallelFiles(const StreamCodec& c, const Input& in, AtomicOutput& out, int threads) {
  const uint64_t units = in.size / c.in_unit;
  if (::ftruncate(out.fd(), static_cast<off_t>(units * c.out_unit)) != 0)
    return IoError("resize", out.path(), errno);
  constexpr size_t kChunkBytes = 256 << 10;  // input + output of a chunk stay within ~1 MiB of L2
  const size_t chunk_units = std::max<size_t>(kChunkBytes / std::max(c.in_unit, c.out_unit), 1);
  const uint64_t chunks = (units + chunk_units - 1) / chunk_units;
  std::atomic<uint64_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  Status first_error;
  auto worker = [&] {
    Buffer ib, ob;
    uint8_t* ibuf = ib.Get(chunk_units * c.in_unit);
    uint8_t* obuf = ob.Get(chunk_units * c.out_unit);
    for (;;) {
      const uint64_t k = next.fetch_add(1);
      if (k >= chunks || failed.load()) return;
      const uint64_t u0 = k * chunk_units;
      const size_t nu = static_cast<size_t>(std::min<uint64_t>(chunk_units, units - u0));
      Status s;
      auto got = ReadFull(in.fd, in.path, ibuf, nu * c.in_unit, static_cast<int64_t>(u0 * c.in_unit));
      if (!got.ok()) s = got.take_error();
      else if (*got != nu * c.in_unit)
        s = MakeError(ErrorKind::kIo, "{}: the file shrank while being read", in.path);
      if (s.ok()) s = c.run(ibuf, obuf, nu, u0, 1);
      if (s.ok()) s = WriteFull(out.fd(), out.path(), obuf, nu * c.out_unit, static_cast<int64_t>(u0 * c.out_unit));
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (!failed.exchange(true)) first_error = std::move(s);
        return;
      }
    }
  };
  const int t = static_cast<int>(std::min<uint64_t>(static_cast<uint64_t>(ResolveThreads(threads)),
                                                    std::max<uint64_t>(chunks, 1)));
  std::vector<std::thread> pool;
  for (int i = 1; i < t; ++i) pool.emplace_back(worker);
  worker();
  for (auto& th : pool) th.join();
  return first_error;
}

// Pipes: sequential chunks, each converted on all threads.
Status RunSequential(const StreamCodec& c, const Input& in, AtomicOutput& out, int threads) {
  constexpr size_t kChunkBytes = 16 << 20;
  const size_t chunk_units = std::max<size_t>(kChunkBytes / c.in_unit, 1);
  Buffer ib, ob;
  uint8_t* ibuf = ib.Get(chunk_units * c.in_unit);
  uint8_t* obuf = ob.Get(chunk_units * c.out_unit);
  size_t carry = 0;  // bytes of an incomplete unit kept from the previous read
  uint64_t total = 0, written = 0, total_units = 0;
  for (;;) {
    const size_t want = chunk_units * c.in_unit - carry;
    BITSMITH_ASSIGN_OR_RETURN(const size_t got, ReadFull(in.fd, in.path, ibuf + carry, want, -1));
    total += got;
    const size_t have = carry + got;
    const size_t nu = have / c.in_unit;
    if (nu > 0) {
      BITSMITH_RETURN_IF_ERROR(c.run(ibuf, obuf, nu, total_units, threads));
      total_units += nu;
      BITSMITH_RETURN_IF_ERROR(WriteFull(out.fd(), out.path(), obuf, nu * c.out_unit,
                                         out.seekable() ? static_cast<int64_t>(written) : -1));
      written += nu * c.out_unit;
    }
    carry = have - nu * c.in_unit;
    if (carry > 0) std::memmove(ibuf, ibuf + nu * c.in_unit, carry);
    if (got < want) break;  // ReadFull is short only at end of input
  }
  if (carry != 0) return MakeError(ErrorKind::kBadInput, "{}", SizeError(c, in.path, total));
  return Status::Ok();
}

Status Stream(const StreamCodec& c, const std::string& in_path, const std::string& out_path,
              int threads) {
  Input in;
  BITSMITH_RETURN_IF_ERROR(in.Open(in_path));
  if (in.regular && in.size % c.in_unit != 0)  // refuse before creating anything
    return MakeError(ErrorKind::kBadInput, "{}", SizeError(c, in.path, in.size));
  AtomicOutput out;
  BITSMITH_RETURN_IF_ERROR(out.Open(out_path));
  if (in.regular && out.seekable())
    BITSMITH_RETURN_IF_ERROR(RunParallelFiles(c, in, out, threads));
  else
    BITSMITH_RETURN_IF_ERROR(RunSequential(c, in, out, threads));
  return out.Commit();
}

// ---------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------

Result<DType> ParseFormat(const std::string& flag, const std::string& name) {
  auto t = FindDType(name);
  if (!t)
    return MakeError(ErrorKind::kBadUsage, "{} {}: unknown format (see `bitsmith formats`)", flag, name);
  return *t;
}

constexpr const char* kSemantics =
    "Rounding is to nearest, ties to even, on the exact float32 value (ml_dtypes' semantics, "
    "f32 subnormals used exactly). Overflow without --saturate: e4m3fn -> NaN, e5m2/f16/bf16 -> "
    "inf, fnuz formats -> 0x80, e8m0fnu -> 0xFF; with --saturate: +-max (also for +-inf inputs, as "
    "the OCP SAT mode). FP6/FP4 always saturate and map NaN to +0 (code 0x00). int8/uint8/int4/uint4: "
    "round to nearest even, then saturate to the range; NaN -> 0. Codes of 8 bits or fewer are "
    "stored one per byte (low bits); f16/bf16 as little-endian uint16; '-' is stdin/stdout. "
    "Block formats (q4_0, q4_k, iq4_xs, mxfp8_e4m3, ...): --row N values per row, IN holds whole "
    "rows; bytes identical to ggml_quantize_chunk for ggml's types; NaN/inf inputs are refused "
    "(exit 2, naming row and column).";

struct EncodeOptions {
  std::string to, from = "f32", in, out, weights;
  bool saturate = false;
  int threads = 0;
  int64_t row = 0;
};

// --weights W.f32: exactly `row` little-endian float32 importance weights.
Result<std::vector<float>> ReadWeights(const std::string& path, int64_t row) {
  Input in;
  BITSMITH_RETURN_IF_ERROR(in.Open(path));
  if (!in.regular) return MakeError(ErrorKind::kBadInput, "--weights {}: not a regular file", path);
  if (row <= 0)
    return MakeError(ErrorKind::kBadUsage, "--weights needs --row N (one weight per column of a row)");
  if (in.size != static_cast<uint64_t>(row) * 4)
    return MakeError(ErrorKind::kBadInput, "--weights {}: {} bytes, expected {} ({} float32 weights, one per column)",
                     path, in.size, row * 4, row);
  std::vector<float> w(static_cast<size_t>(row));
  BITSMITH_ASSIGN_OR_RETURN(const size_t got, ReadFull(in.fd, in.path, reinterpret_cast<uint8_t*>(w.data()),
                                                       in.size, 0));
  if (got != in.size) return MakeError(ErrorKind::kIo, "--weights {}: short read", path);
  return w;
}

Runner SetupEncode(CLI::App& sub) {
  auto o = std::make_shared<EncodeOptions>();
  sub.footer(kSemantics);
  sub.add_option("--to", o->to, "Target format (e4m3fn, e5m2, bf16, e2m1fn, int8, ...)")->required();
  sub.add_option("--from", o->from, "Input format: f32 (default), bf16 or f16");
  sub.add_flag("--saturate", o->saturate, "Clamp overflow and +-inf to +-max instead of NaN/inf");
  sub.add_option("--row", o->row, "Block formats: values per row (IN holds whole rows; a multiple of the block size)");
  sub.add_option("--weights", o->weights,
                 "Block formats: raw file of N float32 importance weights used for every row (as "
                 "llama-quantize passes from an imatrix)");
  sub.add_option("--threads", o->threads, "Threads (default: all cores)");
  sub.add_option("IN", o->in, "Input file of raw little-endian values, or - for stdin")->required();
  sub.add_option("OUT", o->out, "Output file (replaced atomically), or - for stdout")->required();
  return [o]() -> int {
    auto to = ParseFormat("--to", o->to);
    if (!to.ok()) return ReportError(to.error());
    auto from = ParseFormat("--from", o->from);
    if (!from.ok()) return ReportError(from.error());
    if (*from != DType::kF32 && *from != DType::kBF16 && *from != DType::kF16)
      return ReportError(MakeError(ErrorKind::kBadUsage,
                                   "--from {}: encode reads f32, bf16 or f16 (use `bitsmith decode` "
                                   "for other formats)", o->from));
    BlockOptions block;
    block.row = o->row;
    if (!o->weights.empty()) {
      auto w = ReadWeights(o->weights, o->row);
      if (!w.ok()) return ReportError(w.error());
      block.weights = std::move(*w);
    }
    auto codec = MakeStreamCodec("encode", *from, *to,
                                 o->saturate ? Overflow::kSaturate : Overflow::kNonSaturating, block);
    if (!codec.ok()) return ReportError(codec.error());
    if (Status s = Stream(*codec, o->in, o->out, o->threads); !s.ok()) return ReportError(s.error());
    return kExitOk;
  };
}

struct DecodeOptions {
  std::string from, to = "f32", in, out;
  int threads = 0;
};

Runner SetupDecode(CLI::App& sub) {
  auto o = std::make_shared<DecodeOptions>();
  sub.footer(
      "Every code has an exact float32 value; NaN codes give the quiet NaN 0x7FC00000/0xFFC00000 "
      "with the code's sign. bf16 output is exact for every format of 8 bits or fewer; f16 input "
      "is rounded to nearest even. Block formats: IN holds whole blocks, decoded as ggml's "
      "to_float (bf16 output rounds those floats to nearest even). '-' is stdin/stdout.");
  sub.add_option("--from", o->from, "Format of the input codes (e4m3fn, e5m2, bf16, int4, ...)")->required();
  sub.add_option("--to", o->to, "Output format: f32 (default) or bf16");
  sub.add_option("--threads", o->threads, "Threads (default: all cores)");
  sub.add_option("IN", o->in, "Input file of codes, or - for stdin")->required();
  sub.add_option("OUT", o->out, "Output file (replaced atomically), or - for stdout")->required();
  return [o]() -> int {
    auto from = ParseFormat("--from", o->from);
    if (!from.ok()) return ReportError(from.error());
    auto to = ParseFormat("--to", o->to);
    if (!to.ok()) return ReportError(to.error());
    if (*to != DType::kF32 && *to != DType::kBF16)
      return ReportError(MakeError(ErrorKind::kBadUsage,
                                   "--to {}: decode writes f32 or bf16 (use `bitsmith encode` for "
                                   "other formats)", o->to));
    auto codec = MakeStreamCodec("decode", *from, *to, Overflow::kNonSaturating, BlockOptions{});
    if (!codec.ok()) return ReportError(codec.error());
    if (Status s = Stream(*codec, o->in, o->out, o->threads); !s.ok()) return ReportError(s.error());
    return kExitOk;
  };
}

BITSMITH_COMMAND("encode", "Encode raw f32/bf16/f16 values to an element or block format", 20, SetupEncode);
BITSMITH_COMMAND("decode", "Decode raw codes or blocks to f32 or bf16", 21, SetupDecode);

}  // namespace
}  // namespace bitsmith::cli
