#include "convert/manifest.h"

#include <fcntl.h>     // open
#include <sys/file.h>  // flock
#include <signal.h>    // kill
#include <unistd.h>    // close, getpid, pread, ftruncate

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "convert/file_io.h"
#include "convert/digest.h"

namespace bitsmith {
namespace fs = std::filesystem;

namespace {
constexpr const char* kLock = "lock";
constexpr const char* kManifest = "manifest.json";
}  // namespace

Result<Manifest> ParseManifest(const std::string& text, const std::string& name) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  auto bad = [&](std::string_view what) {
    return MakeError(ErrorKind::kBadInput, "{}: not a bitsmith manifest ({}); remove the directory or use --force",
                     name, what);
  };
  if (j.is_discarded() || !j.is_object()) return bad("not a JSON object");
  if (!j.contains("bitsmith_manifest") || !j["bitsmith_manifest"].is_number_unsigned())
    return bad(fmt::format("no bitsmith_manifest: {}", kManifestVersion));
  // Version 1 recorded HashBytes digests (before DigestBytes): such a run is
  // not resumable, and an empty manifest makes --resume start afresh.
  if (j["bitsmith_manifest"] == 1) return Manifest{};
  if (j["bitsmith_manifest"] != kManifestVersion)
    return bad(fmt::format("version {}, this bitsmith writes {}", j["bitsmith_manifest"].dump(), kManifestVersion));
  if (!j.contains("job") || !j["job"].is_string()) return bad("no job key");
  if (!j.contains("files") || !j["files"].is_object()) return bad("no files object");
  Manifest m;
  m.job = j["job"].get<std::string>();
  for (const auto& [k, v] : j["files"].items()) {
    if (!v.is_object() || !v.contains("size") || !v["size"].is_number_unsigned() || !v.contains("digest") ||
        !v["digest"].is_string())
      return bad(fmt::format("entry '{}'", k));
    ManifestEntry e;
    e.size = v["size"].get<uint64_t>();
    const std::string d = v["digest"].get<std::string>();
    char* end = nullptr;
    e.digest = std::strtoull(d.c_str(), &end, 16);
    if (d.empty() || d.size() > 16 || *end != '\0') return bad(fmt::format("digest of '{}'", k));
    m.files[k] = e;
  }
  return m;
}

std::string ManifestText(const Manifest& m) {
  nlohmann::ordered_json j;
  j["bitsmith_manifest"] = kManifestVersion;
  j["job"] = m.job;
  j["files"] = nlohmann::ordered_json::object();
  for (const auto& [k, e] : m.files) j["files"][k] = {{"size", e.size}, {"digest", fmt::format("{:016x}", e.digest)}};
  return j.dump(2) + "\n";
}

Result<PartialDir> PartialDir::Acquire(const std::string& out_dir, int* stale_pid) {
  if (stale_pid) *stale_pid = 0;
  const std::string dir = (fs::path(out_dir) / std::string(kPartialDirName)).string();
  std::error_code ec;
  fs::create_directory(dir, ec);
  if (ec) return MakeError(ErrorKind::kIo, "{}: cannot create: {}", dir, ec.message());
  if (fs::is_symlink(fs::symlink_status(dir)))
    return MakeError(ErrorKind::kBadInput, "{}: is a symlink; refusing to write through it", dir);
  const std::string lock = dir + "/" + kLock;
  const int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return MakeError(ErrorKind::kIo, "{}: cannot open: {}", lock, std::strerror(errno));
  // The previous owner's pid, for the messages.
  char buf[32] = {0};
  const ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
  const int old_pid = n > 0 ? std::atoi(buf) : 0;
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK)
      return MakeError(ErrorKind::kFailed,
                       "{}: another bitsmith conversion (pid {}) is writing into {}; wait for it to finish",
                       lock, old_pid > 0 ? std::to_string(old_pid) : "?", out_dir);
    return MakeError(ErrorKind::kIo, "{}: cannot lock: {}", lock, std::strerror(err));
  }
  // We hold the lock: a pid left in the file belongs to a dead run.
  if (stale_pid && old_pid > 0 && old_pid != ::getpid()) *stale_pid = old_pid;
  const std::string me = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, me.data(), me.size(), 0) != static_cast<ssize_t>(me.size())) {
    ::close(fd);
    return MakeError(ErrorKind::kIo, "{}: cannot write the lock file", lock);
  }
  return PartialDir(dir, fd);
}

PartialDir::PartialDir(PartialDir&& o) noexcept : path_(std::move(o.path_)), fd_(o.fd_) { o.fd_ = -1; }
PartialDir& PartialDir::operator=(PartialDir&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(o.path_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}
PartialDir::~PartialDir() {
  if (fd_ < 0) return;
  // A run that ends (even with an error) is not a stale owner: clear its pid so
  // that the next run does not report it as an interrupted one. Only a killed
  // process leaves its pid behind.
  (void)::ftruncate(fd_, 0);
  ::close(fd_);  // releases the flock
}

Result<Manifest> PartialDir::Load() const {
  const std::string p = path_ + "/" + kManifest;
  std::ifstream in(p, std::ios::binary);
  if (!in) return Manifest{};
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseManifest(ss.str(), p);
}

Status PartialDir::Save(const Manifest& m) const { return WriteFileAtomic(path_ + "/" + kManifest, ManifestText(m)); }

Status PartialDir::RemoveTemporaries() const {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(path_, ec)) {
    const std::string n = e.path().filename().string();
    if (n == kLock || n == kManifest) continue;
    fs::remove_all(e.path(), ec);
    if (ec) return MakeError(ErrorKind::kIo, "{}: cannot remove: {}", e.path().string(), ec.message());
  }
  if (ec) return MakeError(ErrorKind::kIo, "{}: cannot list: {}", path_, ec.message());
  return Status::Ok();
}

Status PartialDir::RemoveAll() {
  std::error_code ec;
  fs::remove_all(path_, ec);
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (ec) return MakeError(ErrorKind::kIo, "{}: cannot remove: {}", path_, ec.message());
  return Status::Ok();
}

Result<uint64_t> RecomputeDigest(const std::string& path, const std::vector<DigestPiece>& pieces) {
  BITSMITH_ASSIGN_OR_RETURN(InputFile f, InputFile::Open(path));
  uint64_t sum = 0;
  std::vector<uint8_t> buf;
  for (const DigestPiece& p : pieces) {
    buf.resize(static_cast<size_t>(p.bytes));
    BITSMITH_RETURN_IF_ERROR(f.ReadAt(p.offset, buf));
    sum += DigestBytes(buf, p.offset);
  }
  return sum;
}

}  // namespace bitsmith
