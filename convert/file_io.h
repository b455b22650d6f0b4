// Reading and writing weight files without trusting them.
//
// Reading: every read is a pread of an exact byte range. Sizes come from the
// file's headers, which may lie: a range past the end, or a file that shrinks
// while a conversion runs (another process truncating it), is an Error naming
// the file and the offset -- never a SIGBUS, which is what an mmap'ed read of a
// truncated file gives. The same interface (ByteSource) reads from memory, so
// parsers and fuzz targets share one code path.
//
// Writing: OutputFile writes under a temporary name in the destination's
// directory, with pwrite at precomputed offsets (several threads may write
// disjoint ranges at once), and only Commit() makes the file appear under its
// final name (fsync, rename, fsync of the directory). ENOSPC, EDQUOT and EFBIG
// become ErrorKind::kNoSpace naming the file; a failed or abandoned output
// removes its temporary, so nothing half-written ever looks finished.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "formats/error.h"

namespace bitsmith {

// A read-only random-access byte source.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // What error messages call it (the file path).
  virtual const std::string& name() const = 0;
  // Size in bytes, as known when the source was opened.
  virtual uint64_t size() const = 0;
  // Reads exactly dst.size() bytes at `offset`. A range beyond size() is
  // kBadInput; a short read of a range inside size() (the file shrank) is kIo.
  // Thread-safe.
  virtual Status ReadAt(uint64_t offset, std::span<uint8_t> dst) const = 0;

  // Reads [offset, offset + n) into a new vector, after checking the range
  // against size() -- so a hostile length never reaches the allocator.
  Result<std::vector<uint8_t>> ReadRange(uint64_t offset, uint64_t n) const;
};

// A regular file read with pread. Symlinks are followed (the Hugging Face cache
// stores shards as symlinks into ../../blobs/); the target must be a regular file.
class InputFile final : public ByteSource {
 public:
  static Result<InputFile> Open(const std::string& path);
  InputFile(InputFile&& other) noexcept;
  InputFile& operator=(InputFile&& other) noexcept;
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  ~InputFile() override;

  const std::string& name() const override { return path_; }
  uint64_t size() const override { return size_; }
  Status ReadAt(uint64_t offset, std::span<uint8_t> dst) const override;
  // Hints that [offset, offset + n) will be read sequentially / is no longer
  // needed in the page cache (posix_fadvise; failures are ignored).
  void AdviseSequential(uint64_t offset, uint64_t n) const;
  void AdviseDontNeed(uint64_t offset, uint64_t n) const;

 private:
  InputFile(std::string path, int fd, uint64_t size) : path_(std::move(path)), fd_(fd), size_(size) {}
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

// Bytes in memory (not owned) presented as a ByteSource: fuzz targets, tests.
class MemorySource final : public ByteSource {
 public:
  MemorySource(std::span<const uint8_t> bytes, std::string name)
      : bytes_(bytes), name_(std::move(name)) {}
  const std::string& name() const override { return name_; }
  uint64_t size() const override { return bytes_.size(); }
  Status ReadAt(uint64_t offset, std::span<uint8_t> dst) const override;

 private:
  std::span<const uint8_t> bytes_;
  std::string name_;
};

// A file being written, atomically replaced into place by Commit().
class OutputFile {
 public:
  // Creates "<dir>/.<name>.tmp-bitsmith-<pid>-<n>" beside `path` (same directory,
  // hence same filesystem, so the final rename is atomic). The directory must
  // exist. Nothing appears at `path` until Commit().
  static Result<OutputFile> Create(const std::string& path);
  // The same with an explicit temporary path, which must be on the same
  // filesystem as `path` (e.g. OUT/.bitsmith-partial/<name> for a conversion
  // that keeps its temporaries in one place). The temporary must not exist.
  static Result<OutputFile> CreateWithTemp(const std::string& path, const std::string& temp_path);

  OutputFile(OutputFile&& other) noexcept;
  OutputFile& operator=(OutputFile&& other) noexcept;
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;
  // Removes the temporary unless Commit() succeeded.
  ~OutputFile();

  // pwrite of all of `data` at `offset` (retrying short writes). Thread-safe for
  // disjoint ranges. ENOSPC/EDQUOT/EFBIG -> kNoSpace, other failures -> kIo.
  // After an error the temporary stays until Abort() or the destructor (other
  // threads may still be writing; the owner decides when to give up).
  Status WriteAt(uint64_t offset, std::span<const uint8_t> data);
  // Sets the final size: reserves the blocks with posix_fallocate where the
  // filesystem supports it (so a full disk fails here, before hours of work),
  // else ftruncate. Bytes never written read as zeros (padding).
  Status SetSize(uint64_t size);
  // fsync, rename over `path` (a symlink at `path` is replaced, never followed),
  // fsync of the directory. After an error the temporary is removed.
  Status Commit();
  // The first half of Commit: fsync and close, the temporary kept (no file
  // descriptor held). A later Commit() only renames it into place; Abort() or
  // the destructor remove it. For outputs of several files that must appear
  // together or not at all (GGUF splits). After an error the temporary is removed.
  Status Seal();
  // Closes and removes the temporary (idempotent). A later Seal() or Commit()
  // is an error (kInternal), never a success that left nothing in place.
  void Abort();

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_; }

 private:
  OutputFile(std::string path, std::string temp, int fd)
      : path_(std::move(path)), temp_(std::move(temp)), fd_(fd) {}
  Error WriteError(int err, uint64_t offset, uint64_t n) const;
  std::string path_;
  std::string temp_;
  int fd_ = -1;
  enum class State : uint8_t {
    kOpen,       // writing into the temporary through fd_
    kSealed,     // Seal() done: the temporary is complete, fd_ closed
    kCommitted,  // renamed into place
    kAborted,    // the temporary removed (Abort(), a failed Seal/Commit, or moved from)
  };
  State state_ = State::kOpen;
};

// The layout of an output weight file, computed from headers alone before any
// data is written: the header bytes (written at offset 0, padding included),
// where each tensor's data goes, and the final size. Writers of every format
// (safetensors, GGUF, shards, splits) produce these; the converter writes the
// tensors' bytes at `offset` in any order and from any thread.
struct PlannedTensor {
  std::string name;
  uint64_t offset = 0;  // absolute offset in the file
  uint64_t nbytes = 0;
};
struct PlannedFile {
  std::string path;
  std::vector<uint8_t> header;
  std::vector<PlannedTensor> tensors;  // in file order
  uint64_t size = 0;                   // final file size (padding included)
};

// Creates the OutputFile for `plan`, sizes it and writes the header. The caller
// writes every tensor at its planned offset and then calls Commit().
Result<OutputFile> BeginPlannedFile(const PlannedFile& plan);

// Copies n bytes from src at src_offset to dst at dst_offset through a bounded
// buffer (at most 8 MiB; never the whole range at once).
Status CopyRange(const ByteSource& src, uint64_t src_offset, uint64_t n, OutputFile& dst,
                 uint64_t dst_offset);

// Writes a small file (an index, a config) atomically: OutputFile + Commit.
Status WriteFileAtomic(const std::string& path, std::span<const uint8_t> bytes);
Status WriteFileAtomic(const std::string& path, const std::string& text);

}  // namespace bitsmith
