// Running a conversion plan, and verifying a finished one.
//
// RunConversion executes a ConversionPlan (tensor_plan.h) with the pipeline
// (pipeline.h) and the writers' planned layouts:
//  - directory output: temporaries and the manifest in OUT/.bitsmith-partial
//    (manifest.h), each shard renamed into OUT when complete (all bytes written,
//    fsync'ed), recorded with its size and digest, the extra files next, the
//    index last, then .bitsmith-partial removed. A non-empty OUT is refused
//    unless `resume` (continue an interrupted conversion of the same job: shards
//    whose size and digest match the manifest are kept, the rest redone) or
//    `force` (write over it; stale weight files that are not part of the new
//    checkpoint are removed). A second conversion into the same OUT while one
//    runs is refused (lock). On an error the temporaries are removed.
//  - single-file outputs (.safetensors, .gguf, GGUF splits): written under a
//    temporary name beside the destination and renamed over it atomically.
//
// VerifyConversion recomputes, with the scalar reference codecs
// (Impl::kReference, not the SIMD kernels `convert` used), what every output
// tensor must hold given the input, and reports the first difference per
// tensor. What each output tensor should be is inferred from the input and
// output dtypes (and the FP8 layouts of both), so verify needs no record of
// the options convert was given -- except --imatrix and --fp8-via, which
// change quantized bytes.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "convert/manifest.h"  // DigestPiece
#include "convert/tensor_plan.h"
#include "formats/error.h"

namespace bitsmith {

// Live progress, read by the CLI's progress line.
struct ConvertProgress {
  std::atomic<uint64_t> done{0};  // output bytes produced (or resumed)
  std::atomic<uint64_t> total{0};
  std::mutex mu;
  std::string current;            // file being written
};

struct RunControl {
  int threads = 0;                 // <= 0: all cores
  bool resume = false;
  bool force = false;
  bool allow_nonfinite = false;
  ConvertProgress* progress = nullptr;
  const std::atomic<bool>* cancel = nullptr;
};

struct ConvertReport {
  size_t files_written = 0;
  size_t files_resumed = 0;   // shards kept from an interrupted run (--resume)
  size_t extras_written = 0;
  uint64_t bytes_written = 0; // weight-file bytes written in this run
  bool nothing_to_do = false; // --resume on a complete output
  double seconds = 0;
  std::vector<std::string> warnings;
};

Result<ConvertReport> RunConversion(const ConversionPlan& plan, const RunControl& control);

// The key that ties a partial directory to one conversion: the plan (every
// output header, tensor, op and offset) and the input files' sizes and
// modification times.
std::string ConversionJobKey(const ConversionPlan& plan);

// The pieces of one planned output file (its header, then every work item's
// output ranges) whose digest the manifest records for --resume: what
// RecomputeDigest(path, pieces) must give for a finished file to be kept.
std::vector<DigestPiece> OutputFileDigestPieces(const ConversionPlan& plan, const OutputFilePlan& f);

// ---------------------------------------------------------------------------

struct VerifyOptions {
  std::string input;
  std::string output;
  std::string imatrix;        // the --imatrix convert was given, if any
  bool fp8_via_f32 = false;   // the --fp8-via convert was given
  bool allow_nonfinite = false;
  int threads = 0;
};

struct TensorVerdict {
  std::string name;
  std::string from, to, op;
  bool identical = false;
  std::string detail;  // the first difference ("element 1234 (row 9, column 82): expected 0x3F80, found 0x3F81")
};

struct VerifyReport {
  std::vector<TensorVerdict> tensors;
  std::vector<std::string> problems;  // structural: tensors missing / extra / reshaped
  size_t mismatches = 0;
  bool ok() const { return mismatches == 0 && problems.empty(); }
};

Result<VerifyReport> VerifyConversion(const VerifyOptions& options);

}  // namespace bitsmith
