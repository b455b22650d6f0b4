#include "convert/file_io.h"

#include <fcntl.h>     // open, posix_fallocate, posix_fadvise
#include <sys/stat.h>  // fstat
#include <unistd.h>    // pread, pwrite, fsync, close, unlink

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>  // SIGXFSZ
#include <cstring>  // std::strerror, std::memcpy
#include <filesystem>
#include <mutex>

#include "convert/tensor_info.h"

namespace bitsmith {
namespace {

std::string ErrnoText(int err) { return std::strerror(err); }

// Exceeding RLIMIT_FSIZE raises SIGXFSZ, whose default action kills the process
// before write() can report EFBIG. Ignoring it (once, process-wide) turns a file
// size limit into an ordinary EFBIG error that names the file.
void IgnoreSigxfszOnce() {
  static std::once_flag once;
  std::call_once(once, [] { std::signal(SIGXFSZ, SIG_IGN); });
}

bool IsNoSpace(int err) { return err == ENOSPC || err == EDQUOT || err == EFBIG; }

}  // namespace

// ---------------------------------------------------------------------------
// Small helpers shared by the readers (declared in tensor_info.h).

std::string ShapeString(const std::vector<uint64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::optional<uint64_t> CheckedMul(uint64_t a, uint64_t b) {
  uint64_t r;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

std::optional<uint64_t> CheckedAdd(uint64_t a, uint64_t b) {
  uint64_t r;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}

std::optional<uint64_t> CheckedElements(const std::vector<uint64_t>& shape) {
  uint64_t n = 1;
  for (uint64_t d : shape) {
    auto m = CheckedMul(n, d);
    if (!m) return std::nullopt;
    n = *m;
  }
  return n;
}

// ---------------------------------------------------------------------------
// ByteSource

Result<std::vector<uint8_t>> ByteSource::ReadRange(uint64_t offset, uint64_t n) const {
  if (offset > size() || n > size() - offset)
    return MakeError(ErrorKind::kBadInput,
                     "{}: bytes [{}, {}) lie beyond the end of the file ({} bytes)", name(), offset,
                     offset + std::min(n, UINT64_MAX - offset), size());
  std::vector<uint8_t> out(static_cast<size_t>(n));
  BITSMITH_RETURN_IF_ERROR(ReadAt(offset, out));
  return out;
}

Status MemorySource::ReadAt(uint64_t offset, std::span<uint8_t> dst) const {
  if (offset > bytes_.size() || dst.size() > bytes_.size() - offset)
    return MakeError(ErrorKind::kBadInput, "{}: unexpected end of data at byte {} (needed {} bytes, have {})",
                     name_, offset, dst.size(), bytes_.size());
  if (!dst.empty()) std::memcpy(dst.data(), bytes_.data() + offset, dst.size());
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// InputFile

Result<InputFile> InputFile::Open(const std::string& path) {
  // O_CLOEXEC: a converter may spawn nothing, but tests do.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return MakeError(err == ENOENT ? ErrorKind::kBadInput : ErrorKind::kIo, "{}: cannot open: {}",
                     path, ErrnoText(err));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return MakeError(ErrorKind::kIo, "{}: cannot stat: {}", path, ErrnoText(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return MakeError(ErrorKind::kBadInput, "{}: not a regular file{}", path,
                     S_ISDIR(st.st_mode) ? " (a directory)" : "");
  }
  return InputFile(path, fd, static_cast<uint64_t>(st.st_size));
}

InputFile::InputFile(InputFile&& o) noexcept : path_(std::move(o.path_)), fd_(o.fd_), size_(o.size_) {
  o.fd_ = -1;
}

InputFile& InputFile::operator=(InputFile&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(o.path_);
    fd_ = o.fd_;
    size_ = o.size_;
    o.fd_ = -1;
  }
  return *this;
}

InputFile::~InputFile() {
  if (fd_ >= 0) ::close(fd_);
}

Status InputFile::ReadAt(uint64_t offset, std::span<uint8_t> dst) const {
  // 1. The range must lie inside the size the file had when opened.
  if (offset > size_ || dst.size() > size_ - offset)
    return MakeError(ErrorKind::kBadInput,
                     "{}: unexpected end of file: needed {} bytes at offset {}, the file has {} bytes",
                     path_, dst.size(), offset, size_);
  // 2. pread until done. A 0-byte read inside that range means the file shrank
  //    since it was opened (an mmap would have raised SIGBUS here).
  size_t done = 0;
  while (done < dst.size()) {
    const size_t want = std::min<size_t>(dst.size() - done, size_t{1} << 30);
    const ssize_t got = ::pread(fd_, dst.data() + done, want, static_cast<off_t>(offset + done));
    if (got < 0) {
      if (errno == EINTR) continue;
      return MakeError(ErrorKind::kIo, "{}: read error at offset {}: {}", path_, offset + done,
                       ErrnoText(errno));
    }
    if (got == 0)
      return MakeError(ErrorKind::kIo,
                       "{}: the file ends at byte {} but was {} bytes when opened: it shrank while "
                       "being read",
                       path_, offset + done, size_);
    done += static_cast<size_t>(got);
  }
  return Status::Ok();
}

void InputFile::AdviseSequential(uint64_t offset, uint64_t n) const {
  if (fd_ >= 0) (void)::posix_fadvise(fd_, static_cast<off_t>(offset), static_cast<off_t>(n), POSIX_FADV_SEQUENTIAL);
}

void InputFile::AdviseDontNeed(uint64_t offset, uint64_t n) const {
  if (fd_ >= 0) (void)::posix_fadvise(fd_, static_cast<off_t>(offset), static_cast<off_t>(n), POSIX_FADV_DONTNEED);
}

// ---------------------------------------------------------------------------
// OutputFile

Result<OutputFile> OutputFile::Create(const std::string& path) {
  static std::atomic<unsigned> counter{0};
  const std::filesystem::path p(path);
  if (p.filename().empty()) return MakeError(ErrorKind::kBadUsage, "{}: not a file name", path);
  const std::string temp =
      (p.parent_path() / ("." + p.filename().string() + ".tmp-bitsmith-" + std::to_string(::getpid()) +
                          "-" + std::to_string(counter++)))
          .string();
  return CreateWithTemp(path, temp);
}

Result<OutputFile> OutputFile::CreateWithTemp(const std::string& path, const std::string& temp) {
  IgnoreSigxfszOnce();
  // O_EXCL | O_NOFOLLOW: never write through a symlink or into a file someone
  // else created under our temporary name.
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int err = errno;
    return MakeError(IsNoSpace(err) ? ErrorKind::kNoSpace : ErrorKind::kIo,
                     "{}: cannot create the temporary file {}: {}", path, temp, ErrnoText(err));
  }
  return OutputFile(path, temp, fd);
}

OutputFile::OutputFile(OutputFile&& o) noexcept
    : path_(std::move(o.path_)), temp_(std::move(o.temp_)), fd_(o.fd_), state_(o.state_) {
  o.fd_ = -1;
  o.state_ = State::kAborted;  // the moved-from object owns nothing to clean up
}

OutputFile& OutputFile::operator=(OutputFile&& o) noexcept {
  if (this != &o) {
    Abort();
    path_ = std::move(o.path_);
    temp_ = std::move(o.temp_);
    fd_ = o.fd_;
    state_ = o.state_;
    o.fd_ = -1;
    o.state_ = State::kAborted;
  }
  return *this;
}

OutputFile::~OutputFile() { Abort(); }

Error OutputFile::WriteError(int err, uint64_t offset, uint64_t n) const {
  if (IsNoSpace(err))
    return MakeError(ErrorKind::kNoSpace, "{}: {} while writing {} bytes at offset {}", path_,
                     err == EFBIG ? "file too large (EFBIG, a file size limit)" : ErrnoText(err), n,
                     offset);
  return MakeError(ErrorKind::kIo, "{}: write error at offset {}: {}", path_, offset, ErrnoText(err));
}

Status OutputFile::WriteAt(uint64_t offset, std::span<const uint8_t> data) {
  if (fd_ < 0) return MakeError(ErrorKind::kInternal, "{}: write after close", path_);
  size_t done = 0;
  while (done < data.size()) {
    const size_t want = std::min<size_t>(data.size() - done, size_t{1} << 30);
    const ssize_t put = ::pwrite(fd_, data.data() + done, want, static_cast<off_t>(offset + done));
    if (put < 0) {
      if (errno == EINTR) continue;
      return WriteError(errno, offset + done, data.size() - done);
    }
    // 0 bytes written should not happen for regular files; treat it as a full disk.
    if (put == 0) return WriteError(ENOSPC, offset + done, data.size() - done);
    done += static_cast<size_t>(put);
  }
  return Status::Ok();
}

Status OutputFile::SetSize(uint64_t size) {
  if (fd_ < 0) return MakeError(ErrorKind::kInternal, "{}: resize after close", path_);
  if (size > static_cast<uint64_t>(INT64_MAX))
    return MakeError(ErrorKind::kBadInput, "{}: size {} is too large", path_, size);
  struct stat st {};
  const uint64_t current = ::fstat(fd_, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  if (size > current) {
    // posix_fallocate returns the error (it does not set errno). EOPNOTSUPP /
    // EINVAL: the filesystem cannot preallocate; ftruncate below still sizes it.
    const int err = ::posix_fallocate(fd_, static_cast<off_t>(current), static_cast<off_t>(size - current));
    if (err != 0 && err != EOPNOTSUPP && err != EINVAL && err != ENOSYS)
      return WriteError(err, current, size - current);
  }
  if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) return WriteError(errno, 0, size);
  return Status::Ok();
}

Status OutputFile::Seal() {
  if (state_ == State::kSealed || state_ == State::kCommitted) return Status::Ok();
  if (state_ == State::kAborted)
    return MakeError(ErrorKind::kInternal, "{}: seal after the temporary was removed", path_);
  if (::fsync(fd_) != 0) {
    Error e = WriteError(errno, 0, 0);
    Abort();
    return e;
  }
  if (::close(fd_) != 0) {
    fd_ = -1;
    Error e = WriteError(errno, 0, 0);
    Abort();
    return e;
  }
  fd_ = -1;
  state_ = State::kSealed;
  return Status::Ok();
}

Status OutputFile::Commit() {
  if (state_ == State::kCommitted) return Status::Ok();
  // After Abort() or a failed Seal/Commit the temporary is gone: an error, so a
  // caller that commits anyway cannot take a missing file for a written one.
  if (state_ == State::kAborted)
    return MakeError(ErrorKind::kInternal, "{}: commit after the temporary was removed", path_);
  BITSMITH_RETURN_IF_ERROR(Seal());
  if (std::rename(temp_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    Abort();
    return MakeError(ErrorKind::kIo, "{}: cannot rename the finished file into place: {}", path_,
                     ErrnoText(err));
  }
  state_ = State::kCommitted;
  // Make the rename itself durable.
  std::string dir = std::filesystem::path(path_).parent_path().string();
  if (dir.empty()) dir = ".";
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
  return Status::Ok();
}

void OutputFile::Abort() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (state_ == State::kOpen || state_ == State::kSealed) {
    if (!temp_.empty()) ::unlink(temp_.c_str());
    state_ = State::kAborted;
  }
}

// ---------------------------------------------------------------------------

Status CopyRange(const ByteSource& src, uint64_t src_offset, uint64_t n, OutputFile& dst,
                 uint64_t dst_offset) {
  constexpr uint64_t kChunk = uint64_t{8} << 20;
  std::vector<uint8_t> buf(static_cast<size_t>(std::min(n, kChunk)));
  uint64_t done = 0;
  while (done < n) {
    const size_t len = static_cast<size_t>(std::min(n - done, kChunk));
    std::span<uint8_t> chunk(buf.data(), len);
    BITSMITH_RETURN_IF_ERROR(src.ReadAt(src_offset + done, chunk));
    BITSMITH_RETURN_IF_ERROR(dst.WriteAt(dst_offset + done, chunk));
    done += len;
  }
  return Status::Ok();
}

Result<OutputFile> BeginPlannedFile(const PlannedFile& plan) {
  if (plan.header.size() > plan.size)
    return MakeError(ErrorKind::kInternal, "{}: header ({} bytes) larger than the planned file ({})",
                     plan.path, plan.header.size(), plan.size);
  BITSMITH_ASSIGN_OR_RETURN(OutputFile out, OutputFile::Create(plan.path));
  BITSMITH_RETURN_IF_ERROR(out.SetSize(plan.size));
  BITSMITH_RETURN_IF_ERROR(out.WriteAt(0, plan.header));
  return out;
}

Status WriteFileAtomic(const std::string& path, std::span<const uint8_t> bytes) {
  BITSMITH_ASSIGN_OR_RETURN(OutputFile out, OutputFile::Create(path));
  BITSMITH_RETURN_IF_ERROR(out.WriteAt(0, bytes));
  BITSMITH_RETURN_IF_ERROR(out.SetSize(bytes.size()));
  return out.Commit();
}

Status WriteFileAtomic(const std::string& path, const std::string& text) {
  return WriteFileAtomic(
      path, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

}  // namespace bitsmith
