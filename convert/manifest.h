// The partial directory of a directory conversion: OUT/.bitsmith-partial/.
//
// While `convert IN OUT` runs, everything unfinished lives here:
//   lock            the owner's pid; held with flock(LOCK_EX) for the whole run,
//                   so a second conversion into the same OUT is refused while
//                   the first is alive, and the lock of a killed run is stale
//                   (the kernel released it) and simply taken over;
//   manifest.json   {"bitsmith_manifest": 2, "job": "<key of the conversion>",
//                    "files": {"<name>": {"size": N, "digest": "<hex>"}}}
//                   one entry per output shard already renamed into OUT;
//   <name>          the temporaries of shards being written.
// A shard is renamed into OUT only once all its bytes are written and synced,
// then recorded in the manifest; the index is written last; on success the
// whole directory is removed. `--resume` keeps a shard only when the manifest
// lists it for the same job AND its size and digest, recomputed from the file
// in OUT, match -- everything else is converted again, so an interrupted run
// resumed gives the same bytes as an uninterrupted one.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "formats/error.h"

namespace bitsmith {

inline constexpr std::string_view kPartialDirName = ".bitsmith-partial";
// 2: digests are DigestBytes (convert/digest.h). A version-1 manifest (HashBytes
// digests) reads as empty: --resume then starts the conversion afresh.
inline constexpr int kManifestVersion = 2;

struct ManifestEntry {
  uint64_t size = 0;
  uint64_t digest = 0;
  bool operator==(const ManifestEntry&) const = default;
};

struct Manifest {
  std::string job;
  std::map<std::string, ManifestEntry> files;
};

// Parses manifest.json (kBadInput on anything unexpected).
Result<Manifest> ParseManifest(const std::string& text, const std::string& name);
std::string ManifestText(const Manifest& m);

// An exclusive lock on OUT/.bitsmith-partial/lock (released by the destructor
// or by the process dying).
class PartialDir {
 public:
  // Creates OUT/.bitsmith-partial (OUT must exist) and takes the lock. Error
  // (kFailed) when another live process holds it, naming its pid. `stale_pid`
  // receives the pid of a dead previous owner (0 if none).
  static Result<PartialDir> Acquire(const std::string& out_dir, int* stale_pid = nullptr);
  PartialDir(PartialDir&& o) noexcept;
  PartialDir& operator=(PartialDir&& o) noexcept;
  PartialDir(const PartialDir&) = delete;
  PartialDir& operator=(const PartialDir&) = delete;
  ~PartialDir();

  const std::string& path() const { return path_; }
  std::string TempPath(const std::string& name) const { return path_ + "/" + name; }

  // The manifest (an empty one when there is none yet).
  Result<Manifest> Load() const;
  // Writes the manifest atomically.
  Status Save(const Manifest& m) const;
  // Removes everything in the directory except the lock and the manifest
  // (temporaries of a killed run).
  Status RemoveTemporaries() const;
  // Removes the directory (manifest, lock, temporaries) and releases the lock.
  Status RemoveAll();

 private:
  PartialDir(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::string path_;
  int fd_ = -1;
};

// The digest the manifest records: the sum (mod 2^64) of DigestBytes over the
// pieces the pipeline wrote (header + one per work item part), each seeded with
// its absolute offset -- order-independent, so threads can add as they go.
// RecomputeDigest reads a finished file back piece by piece.
struct DigestPiece {
  uint64_t offset = 0;
  uint64_t bytes = 0;
};
Result<uint64_t> RecomputeDigest(const std::string& path, const std::vector<DigestPiece>& pieces);

}  // namespace bitsmith
