#include "convert/convert.h"

#include <sys/stat.h>  // stat (job key)

#include <chrono>
#include <filesystem>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "convert/digest.h"
#include "convert/manifest.h"
#include "convert/pipeline.h"

namespace bitsmith {
namespace fs = std::filesystem;
namespace {

// Writes each produced chunk at its absolute offset and sums its digest.
class FileSink final : public ChunkSink {
 public:
  FileSink(std::span<const TensorPlan> plans, OutputFile& out) : plans_(plans), out_(out) {}
  Status Put(size_t plan, int part, uint64_t offset, std::span<const uint8_t> bytes) override {
    const TensorPlan& p = plans_[plan];
    const uint64_t abs = (part == 0 ? p.out_offset : p.out_scale_offset) + offset;
    BITSMITH_RETURN_IF_ERROR(out_.WriteAt(abs, bytes));
    digest_.fetch_add(DigestBytes(bytes, abs), std::memory_order_relaxed);
    return Status::Ok();
  }
  uint64_t digest() const { return digest_.load(); }

 private:
  std::span<const TensorPlan> plans_;
  OutputFile& out_;
  std::atomic<uint64_t> digest_{0};
};

uint64_t FileDataBytes(const ConversionPlan& plan, const OutputFilePlan& f) {
  uint64_t n = 0;
  for (size_t k : f.tensors) n += plan.tensors[k].bytes_out;
  return n;
}

// Writes one planned weight file: header, every tensor, then Seal (complete and
// synced under its temporary name; the caller commits it). Returns its digest.
Result<uint64_t> WriteWeightFile(const ConversionPlan& plan, const OutputFilePlan& f, OutputFile& out,
                                 const InputSet& inputs, const RunControl& ctl) {
  if (ctl.progress) {
    std::lock_guard<std::mutex> l(ctl.progress->mu);
    ctl.progress->current = f.name;
  }
  BITSMITH_RETURN_IF_ERROR(out.SetSize(f.planned.size));
  BITSMITH_RETURN_IF_ERROR(out.WriteAt(0, f.planned.header));
  FileSink sink(plan.tensors, out);
  PipelineOptions po;
  po.threads = ctl.threads;
  po.allow_nonfinite = plan.options.allow_nonfinite || ctl.allow_nonfinite;
  po.progress = ctl.progress ? &ctl.progress->done : nullptr;
  po.cancel = ctl.cancel;
  BITSMITH_RETURN_IF_ERROR(RunPlans(plan.tensors, f.tensors, plan.input.tensors, inputs, sink, po));
  const uint64_t digest = sink.digest() + DigestBytes(f.planned.header, 0);
  BITSMITH_RETURN_IF_ERROR(out.Seal());
  return digest;
}

// Copies (or writes) one extra file through an OutputFile.
Status WriteExtra(const ExtraFilePlan& e, OutputFile out) {
  if (e.content) {
    const auto* b = reinterpret_cast<const uint8_t*>(e.content->data());
    BITSMITH_RETURN_IF_ERROR(out.WriteAt(0, std::span<const uint8_t>(b, e.content->size())));
    BITSMITH_RETURN_IF_ERROR(out.SetSize(e.content->size()));
  } else {
    BITSMITH_ASSIGN_OR_RETURN(InputFile in, InputFile::Open(e.source));
    BITSMITH_RETURN_IF_ERROR(CopyRange(in, 0, in.size(), out, 0));
    BITSMITH_RETURN_IF_ERROR(out.SetSize(in.size()));
  }
  return out.Commit();
}

bool SamePath(const std::string& a, const std::string& b) {
  std::error_code ec1, ec2;
  return fs::exists(a, ec1) && fs::exists(b, ec2) && fs::equivalent(a, b, ec1);
}

Result<ConvertReport> RunSingleFiles(const ConversionPlan& plan, const InputSet& inputs, const RunControl& ctl) {
  ConvertReport rep;
  for (const std::string& f : plan.input.files)
    for (const OutputFilePlan& o : plan.files)
      if (SamePath(f, o.planned.path))
        return MakeError(ErrorKind::kBadUsage, "{}: the output would replace an input file", o.planned.path);
  // A GGUF split set appears whole or not at all: every split is written and
  // sealed under its temporary name first, then all are renamed into place (an
  // error before that removes the temporaries and leaves no split behind; found
  // by the convert fuzz target: a failure in split 2 left split 1 in place).
  std::vector<OutputFile> sealed;
  sealed.reserve(plan.files.size());
  for (const OutputFilePlan& f : plan.files) {
    const fs::path parent = fs::path(f.planned.path).parent_path();
    std::error_code ec;
    if (!parent.empty()) fs::create_directories(parent, ec);
    BITSMITH_ASSIGN_OR_RETURN(OutputFile out, OutputFile::Create(f.planned.path));
    BITSMITH_ASSIGN_OR_RETURN(uint64_t digest, WriteWeightFile(plan, f, out, inputs, ctl));
    (void)digest;
    sealed.push_back(std::move(out));
    ++rep.files_written;
    rep.bytes_written += f.planned.size;
  }
  for (size_t i = 0; i < sealed.size(); ++i) {
    if (Status s = sealed[i].Commit(); !s.ok()) {
      std::error_code ec;  // a rename failed: the splits already renamed would be an incomplete set
      for (size_t j = 0; j < i; ++j) fs::remove(sealed[j].path(), ec);
      return s.take_error();
    }
  }
  return rep;
}

// --resume on an output with no partial directory: complete when every
// planned file is there with its planned size and the index is the planned one.
bool LooksComplete(const ConversionPlan& plan) {
  std::error_code ec;
  for (const OutputFilePlan& f : plan.files)
    if (fs::file_size(f.planned.path, ec) != f.planned.size || ec) return false;
  for (const ExtraFilePlan& e : plan.extras)
    if (!fs::exists(fs::path(plan.out_path) / e.name, ec)) return false;
  if (!plan.index_name.empty()) {
    const std::string p = (fs::path(plan.out_path) / plan.index_name).string();
    auto in = InputFile::Open(p);
    if (!in.ok() || in->size() != plan.index_json.size()) return false;
    auto bytes = in->ReadRange(0, in->size());
    if (!bytes.ok() || std::string(bytes->begin(), bytes->end()) != plan.index_json) return false;
  }
  return true;
}

Result<ConvertReport> RunDirectory(const ConversionPlan& plan, const InputSet& inputs, const RunControl& ctl) {
  ConvertReport rep;
  const std::string& out = plan.out_path;
  std::error_code ec;
  // 1. OUT: a directory (created if missing), not the input's.
  if (fs::exists(out, ec) && !fs::is_directory(out, ec))
    return MakeError(ErrorKind::kBadUsage, "{}: exists and is not a directory", out);
  const bool created = !fs::exists(out, ec);
  fs::create_directories(out, ec);
  if (ec) return MakeError(ErrorKind::kIo, "{}: cannot create: {}", out, ec.message());
  if (SamePath(out, plan.input.dir) || (!plan.input.files.empty() &&
                                        SamePath(out, fs::path(plan.input.files[0]).parent_path().string())))
    return MakeError(ErrorKind::kBadUsage, "{}: is the input's directory; convert into another directory", out);

  // 2. The lock, then what is already there.
  const bool partial_existed = fs::exists(fs::path(out) / std::string(kPartialDirName), ec);
  int stale = 0;
  BITSMITH_ASSIGN_OR_RETURN(PartialDir pd, PartialDir::Acquire(out, &stale));
  if (stale > 0)
    rep.warnings.push_back(fmt::format("took over the stale lock of an interrupted run (pid {})", stale));
  std::vector<std::string> entries;
  for (const auto& e : fs::directory_iterator(out, ec))
    if (e.path().filename() != std::string(kPartialDirName)) entries.push_back(e.path().filename().string());
  if (!ctl.resume && !ctl.force && (!entries.empty() || partial_existed)) {
    if (!partial_existed) (void)pd.RemoveAll();
    return MakeError(ErrorKind::kBadUsage,
                     "{}: is not empty ({}{}); use --resume to continue an interrupted conversion or --force to "
                     "write over it",
                     out, partial_existed ? "an interrupted conversion, " : "",
                     fmt::format("{} entr{}", entries.size(), entries.size() == 1 ? "y" : "ies"));
  }
  const std::string job = ConversionJobKey(plan);
  if (ctl.resume && !partial_existed && !entries.empty() && LooksComplete(plan)) {
    BITSMITH_RETURN_IF_ERROR(pd.RemoveAll());
    rep.nothing_to_do = true;
    rep.files_resumed = plan.files.size();
    return rep;
  }
  Manifest m;
  if (ctl.resume) {
    BITSMITH_ASSIGN_OR_RETURN(m, pd.Load());
    if (!m.job.empty() && m.job != job)
      return MakeError(ErrorKind::kBadUsage,
                       "{}: the interrupted conversion there was a different one (other input, options or "
                       "bitsmith version); use --force to start over",
                       out);
  }
  if (m.job != job) m = Manifest{job, {}};
  BITSMITH_RETURN_IF_ERROR(pd.RemoveTemporaries());
  BITSMITH_RETURN_IF_ERROR(pd.Save(m));

  // On failure: temporaries go; the manifest stays for --resume when it
  // records finished shards, else the partial directory (and an OUT we
  // created) go too.
  auto fail = [&](Error e) -> Error {
    (void)pd.RemoveTemporaries();
    if (m.files.empty()) {
      (void)pd.RemoveAll();
      std::error_code ec2;
      if (created && fs::is_empty(out, ec2)) fs::remove(out, ec2);
    }
    return e;
  };

  // 3. Shards: kept (verified against the manifest) or written and renamed in.
  for (const OutputFilePlan& f : plan.files) {
    const std::string final_path = f.planned.path;
    auto it = m.files.find(f.name);
    if (it != m.files.end()) {
      std::error_code ec2;
      if (fs::file_size(final_path, ec2) == f.planned.size && !ec2 && it->second.size == f.planned.size) {
        auto d = RecomputeDigest(final_path, OutputFileDigestPieces(plan, f));
        if (d.ok() && *d == it->second.digest) {
          ++rep.files_resumed;
          if (ctl.progress) ctl.progress->done += FileDataBytes(plan, f);
          continue;
        }
      }
      m.files.erase(it);
      if (Status s = pd.Save(m); !s.ok()) return fail(s.take_error());
    }
    auto o = OutputFile::CreateWithTemp(final_path, pd.TempPath(f.name));
    if (!o.ok()) return fail(o.take_error());
    auto digest = WriteWeightFile(plan, f, *o, inputs, ctl);
    if (!digest.ok()) return fail(digest.take_error());
    if (Status s = o->Commit(); !s.ok()) return fail(s.take_error());
    m.files[f.name] = {f.planned.size, *digest};
    if (Status s = pd.Save(m); !s.ok()) return fail(s.take_error());
    ++rep.files_written;
    rep.bytes_written += f.planned.size;
  }

  // 4. Extra files (config.json rewritten, tokenizer, ...), then the index.
  for (const ExtraFilePlan& e : plan.extras) {
    auto o = OutputFile::CreateWithTemp((fs::path(out) / e.name).string(), pd.TempPath(e.name));
    if (!o.ok()) return fail(o.take_error());
    if (Status s = WriteExtra(e, std::move(*o)); !s.ok()) return fail(s.take_error());
    ++rep.extras_written;
  }
  if (!plan.index_name.empty()) {
    ExtraFilePlan idx{plan.index_name, "", plan.index_json, ""};
    auto o = OutputFile::CreateWithTemp((fs::path(out) / plan.index_name).string(), pd.TempPath(plan.index_name));
    if (!o.ok()) return fail(o.take_error());
    if (Status s = WriteExtra(idx, std::move(*o)); !s.ok()) return fail(s.take_error());
  }

  // 5. --force: weight files of an older checkpoint would make OUT inconsistent.
  if (ctl.force) {
    std::unordered_set<std::string> ours;
    for (const OutputFilePlan& f : plan.files) ours.insert(f.name);
    if (!plan.index_name.empty()) ours.insert(plan.index_name);
    for (const std::string& n : entries)
      if (!ours.count(n) && IsWeightFileName(n) && fs::is_regular_file(fs::path(out) / n, ec)) {
        fs::remove(fs::path(out) / n, ec);
        rep.warnings.push_back(fmt::format("--force: removed '{}', a weight file not part of the new checkpoint", n));
      }
  }
  BITSMITH_RETURN_IF_ERROR(pd.RemoveAll());
  return rep;
}

}  // namespace

std::vector<DigestPiece> OutputFileDigestPieces(const ConversionPlan& plan, const OutputFilePlan& f) {
  std::vector<DigestPiece> pieces = {{0, f.planned.header.size()}};
  for (size_t k : f.tensors) {
    const TensorPlan& tp = plan.tensors[k];
    for (const WorkItem& it : ChunkItems(tp, k))
      for (const ItemRange& r : ItemOutputRanges(tp, it))
        pieces.push_back({(r.part == 0 ? tp.out_offset : tp.out_scale_offset) + r.offset, r.bytes});
  }
  return pieces;
}

std::string ConversionJobKey(const ConversionPlan& plan) {
  const std::string s = PlanJsonText(plan);
  uint64_t h = HashBytes(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size()), 1);
  for (const OutputFilePlan& f : plan.files) h = h * 31 + HashBytes(f.planned.header, f.planned.size);
  auto stamp = [&](const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0)
      h = h * 131 + static_cast<uint64_t>(st.st_size) * 1000003u +
          static_cast<uint64_t>(st.st_mtim.tv_sec) * 1000000000ull + static_cast<uint64_t>(st.st_mtim.tv_nsec);
  };
  for (const std::string& f : plan.input.files) stamp(f);
  if (!plan.options.imatrix.empty()) stamp(plan.options.imatrix);
  h = h * 7 + (plan.options.fp8_via_f32 ? 1 : 0) + (plan.options.allow_nonfinite ? 2 : 0);
  return fmt::format("{:016x}", h);
}

Result<ConvertReport> RunConversion(const ConversionPlan& plan, const RunControl& control) {
  const auto t0 = std::chrono::steady_clock::now();
  BITSMITH_ASSIGN_OR_RETURN(InputSet inputs, InputSet::Open(plan.input.files));
  if (control.progress) control.progress->total = plan.bytes_out;
  Result<ConvertReport> r = plan.out_kind == OutputKind::kDirectory ? RunDirectory(plan, inputs, control)
                                                                     : RunSingleFiles(plan, inputs, control);
  if (r.ok())
    r->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

// ---------------------------------------------------------------------------
// verify

namespace {

// Where each verify plan's bytes are in OUT.
struct OutLoc {
  int file = 0;
  uint64_t offset = 0;      // part 0
  int scale_file = 0;
  uint64_t scale_offset = 0;  // part 1
};

// Compares produced bytes with OUT and keeps the first difference per plan.
class CompareSink final : public ChunkSink {
 public:
  CompareSink(std::span<const TensorPlan> plans, const std::vector<OutLoc>& locs, const InputSet& out)
      : plans_(plans), locs_(locs), out_(out), first_(plans.size()) {}
  Status Put(size_t plan, int part, uint64_t offset, std::span<const uint8_t> bytes) override {
    const OutLoc& l = locs_[plan];
    std::vector<uint8_t> got(bytes.size());
    const InputFile& f = out_.file(part == 0 ? l.file : l.scale_file);
    BITSMITH_RETURN_IF_ERROR(f.ReadAt((part == 0 ? l.offset : l.scale_offset) + offset, got));
    for (size_t i = 0; i < bytes.size(); ++i) {
      if (got[i] == bytes[i]) continue;
      std::lock_guard<std::mutex> lock(mu_);
      Diff& d = first_[plan];
      const uint64_t key = (static_cast<uint64_t>(part) << 62) | (offset + i);
      if (!d.found || key < d.key) {
        d.found = true;
        d.key = key;
        d.part = part;
        d.offset = offset + i;
        d.expected.assign(bytes.begin() + static_cast<long>(i), bytes.begin() + static_cast<long>(std::min(bytes.size(), i + 8)));
        d.found_bytes.assign(got.begin() + static_cast<long>(i), got.begin() + static_cast<long>(std::min(got.size(), i + 8)));
      }
      break;
    }
    return Status::Ok();
  }
  struct Diff {
    bool found = false;
    uint64_t key = 0;
    int part = 0;
    uint64_t offset = 0;
    std::vector<uint8_t> expected, found_bytes;
  };
  const Diff& diff(size_t plan) const { return first_[plan]; }

 private:
  std::span<const TensorPlan> plans_;
  const std::vector<OutLoc>& locs_;
  const InputSet& out_;
  std::mutex mu_;
  std::vector<Diff> first_;
};

std::string Hex(const std::vector<uint8_t>& b) {
  std::string s;
  for (uint8_t x : b) s += fmt::format("{:02X}", x);
  return s;
}

std::optional<nlohmann::ordered_json> LoadConfig(const Checkpoint& ck) {
  for (const std::string& f : ck.extra_files)
    if (fs::path(f).filename() == "config.json") {
      auto in = InputFile::Open(f);
      if (!in.ok()) return std::nullopt;
      auto b = in->ReadRange(0, in->size());
      if (!b.ok()) return std::nullopt;
      auto j = nlohmann::ordered_json::parse(b->begin(), b->end(), nullptr, false);
      if (j.is_discarded()) return std::nullopt;
      return j;
    }
  return std::nullopt;
}

}  // namespace

Result<VerifyReport> VerifyConversion(const VerifyOptions& o) {
  VerifyReport rep;
  BITSMITH_ASSIGN_OR_RETURN(Checkpoint in, OpenCheckpoint(o.input));
  BITSMITH_ASSIGN_OR_RETURN(Checkpoint out, OpenCheckpoint(o.output));
  for (const std::string& w : out.warnings) rep.problems.push_back("output: " + w);
  const auto in_cfg = LoadConfig(in);
  const auto out_cfg = LoadConfig(out);
  BITSMITH_ASSIGN_OR_RETURN(Fp8Match fin, MatchFp8(in.tensors, in_cfg ? &*in_cfg : nullptr, &in.names()));
  BITSMITH_ASSIGN_OR_RETURN(Fp8Match fout, MatchFp8(out.tensors, out_cfg ? &*out_cfg : nullptr, &out.names()));
  std::shared_ptr<Imatrix> im;
  if (!o.imatrix.empty()) {
    BITSMITH_ASSIGN_OR_RETURN(Imatrix x, ReadImatrixFile(o.imatrix));
    im = std::make_shared<Imatrix>(std::move(x));
  }

  std::vector<TensorPlan> plans;
  std::vector<OutLoc> locs;
  std::unordered_set<size_t> used_in;  // input tensors accounted for
  for (size_t k = 0; k < out.tensors.size(); ++k) {
    if (fout.scale_for[k] >= 0) continue;  // checked with its weight
    const TensorInfo& ot = out.tensors[k];
    const TensorInfo* itp = in.Find(ot.name);
    if (!itp) {
      rep.problems.push_back(fmt::format("'{}' is in the output but not in the input", ot.name));
      continue;
    }
    const size_t ii = static_cast<size_t>(itp - in.tensors.data());
    const TensorInfo& it = *itp;
    used_in.insert(ii);
    if (ot.shape != it.shape) {
      rep.problems.push_back(fmt::format("'{}' has shape {} in the output but {} in the input", ot.name,
                                         ShapeString(ot.shape), ShapeString(it.shape)));
      continue;
    }
    if (!ot.dtype || !it.dtype) {
      if (ot.raw_dtype != it.raw_dtype || ot.nbytes != it.nbytes) {
        rep.problems.push_back(fmt::format("'{}': unknown dtype {} -> {}", ot.name, it.raw_dtype, ot.raw_dtype));
        continue;
      }
    }
    TensorPlan tp;
    tp.name = ot.name;
    tp.src = ii;
    tp.from = it.dtype;
    tp.from_name = it.dtype_name();
    tp.to = ot.dtype.value_or(DType::kU8);
    tp.shape = it.shape;
    tp.bytes_in = it.nbytes;
    tp.bytes_out = ot.nbytes;
    OutLoc loc{ot.file_index, ot.offset, ot.file_index, 0};
    const long sin = fin.scaled_of[ii];
    const long sout = fout.scaled_of[k];
    const bool in_fp8 = it.dtype == DType::kE4M3FN || it.dtype == DType::kE5M2;
    const bool out_fp8 = ot.dtype == DType::kE4M3FN || ot.dtype == DType::kE5M2;
    auto set_scale_out = [&](const Fp8Scaled& s) {
      const TensorInfo& st = out.tensors[s.scale];
      loc.scale_file = st.file_index;
      loc.scale_offset = st.offset;
      tp.out_scale_bytes = st.nbytes;
    };
    if (it.dtype == ot.dtype || (!ot.dtype && !it.dtype)) {
      tp.op = TensorOp::kCopy;
      if (sin >= 0 && sout >= 0) {
        const Fp8Scaled& si = fin.scaled[static_cast<size_t>(sin)];
        tp.copy_scale = static_cast<long>(si.scale);
        used_in.insert(si.scale);
        set_scale_out(fout.scaled[static_cast<size_t>(sout)]);
        tp.bytes_out = ot.nbytes + tp.out_scale_bytes;
        if (tp.out_scale_bytes != in.tensors[si.scale].nbytes) {
          rep.problems.push_back(fmt::format("'{}': its scale differs in size between input and output", ot.name));
          continue;
        }
      }
    } else if (in_fp8 && !out_fp8) {
      if (sin >= 0) {
        const Fp8Scaled& si = fin.scaled[static_cast<size_t>(sin)];
        tp.scale = static_cast<long>(si.scale);
        tp.scale_kind = si.kind;
        tp.grid = si.grid;
        used_in.insert(si.scale);
      } else {
        tp.scale = -1;
        tp.grid = {std::max<uint64_t>(1, it.rows()), std::max<uint64_t>(1, it.rows()),
                   std::max<uint64_t>(1, it.row_length()), 1, 1};
      }
      tp.via_bf16 = !o.fp8_via_f32;
      tp.op = GetDType(tp.to).is_block() ? TensorOp::kQuantize : TensorOp::kDequantFp8;
    } else if (!in_fp8 && out_fp8) {
      tp.op = TensorOp::kQuantizeFp8;
      if (sout >= 0) {
        const Fp8Scaled& so = fout.scaled[static_cast<size_t>(sout)];
        if (so.kind != ScaleKind::kBlock) {
          rep.problems.push_back(fmt::format("'{}': output scale is {}, convert only makes block scales", ot.name,
                                             ScaleKindName(so.kind)));
          continue;
        }
        tp.out_block = {static_cast<uint32_t>(so.grid.bm), static_cast<uint32_t>(so.grid.bn)};
        set_scale_out(so);
      }
      tp.bytes_out = ot.nbytes + tp.out_scale_bytes;
    } else if (GetDType(tp.to).is_block()) {
      tp.op = TensorOp::kQuantize;
      if (GetDType(*it.dtype).is_block() && !GetBlockCodec(*it.dtype)) {
        rep.problems.push_back(fmt::format("'{}': cannot dequantize {}", ot.name, tp.from_name));
        continue;
      }
      if (im) {
        const BlockCodec* c = GetBlockCodec(tp.to);
        if (const std::vector<float>* v = im->Find(ot.name); v && c && c->uses_imatrix) {
          BITSMITH_ASSIGN_OR_RETURN(tp.imatrix_matrices, ImatrixMatrices(*im, it, *v));
          tp.imatrix = v;
        }
      }
    } else if (GetDType(*it.dtype).is_block()) {
      tp.op = TensorOp::kDequantize;
    } else if (GetDType(*it.dtype).element && GetDType(tp.to).element) {
      tp.op = TensorOp::kCast;
    } else {
      rep.problems.push_back(fmt::format("'{}': {} -> {} is not a conversion bitsmith makes", ot.name,
                                         tp.from_name, ot.dtype_name()));
      continue;
    }
    plans.push_back(std::move(tp));
    locs.push_back(loc);
  }
  // Input tensors that should be in the output.
  std::unordered_set<size_t> dropped_ok(fin.orphans.begin(), fin.orphans.end());
  dropped_ok.insert(fin.input_scales.begin(), fin.input_scales.end());
  for (const Fp8Scaled& s : fin.scaled) dropped_ok.insert(s.scale);
  for (size_t i = 0; i < in.tensors.size(); ++i)
    if (!used_in.count(i) && !dropped_ok.count(i))
      rep.problems.push_back(fmt::format("'{}' is in the input but not in the output", in.tensors[i].name));

  BITSMITH_ASSIGN_OR_RETURN(InputSet in_files, InputSet::Open(in.files));
  BITSMITH_ASSIGN_OR_RETURN(InputSet out_files, InputSet::Open(out.files));
  CompareSink sink(plans, locs, out_files);
  PipelineOptions po;
  po.threads = o.threads;
  po.impl = Impl::kReference;
  po.allow_nonfinite = o.allow_nonfinite;
  std::vector<size_t> all(plans.size());
  for (size_t k = 0; k < plans.size(); ++k) all[k] = k;
  BITSMITH_RETURN_IF_ERROR(RunPlans(plans, all, in.tensors, in_files, sink, po));
  for (size_t k = 0; k < plans.size(); ++k) {
    const TensorPlan& tp = plans[k];
    TensorVerdict v{tp.name, tp.from_name, std::string(GetDType(tp.to).name), std::string(TensorOpName(tp.op)),
                    true, ""};
    const auto& d = sink.diff(k);
    if (d.found) {
      v.identical = false;
      ++rep.mismatches;
      if (d.part == 1) {
        v.detail = fmt::format("scale companion, byte {}: expected {}, found {}", d.offset, Hex(d.expected),
                               Hex(d.found_bytes));
      } else {
        const DTypeInfo& t = GetDType(tp.to);
        const uint64_t cols = tp.shape.empty() ? 1 : tp.shape.back();
        const uint64_t unit = static_cast<uint64_t>(t.block_bytes);
        const uint64_t idx = d.offset / unit;  // element (or block) index
        const uint64_t elem = idx * static_cast<uint64_t>(t.block_elems);
        v.detail = fmt::format("{} {} (row {}, column {}): expected {}..., found {}...",
                               t.is_block() ? "block" : "element", idx, elem / cols, elem % cols, Hex(d.expected),
                               Hex(d.found_bytes));
      }
    }
    rep.tensors.push_back(std::move(v));
  }
  return rep;
}

}  // namespace bitsmith
