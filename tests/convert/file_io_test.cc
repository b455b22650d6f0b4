// file_io: reads that never trust sizes (a file that shrinks is an error, not a
// SIGBUS), atomic outputs (temporaries removed on failure, symlinks replaced,
// never followed), and a file size limit (EFBIG) reported as "no space".
#include <sys/resource.h>  // setrlimit
#include <sys/wait.h>      // waitpid
#include <unistd.h>        // fork, truncate

#include <filesystem>
#include <fstream>
#include <thread>

#include <catch2/catch.hpp>

#include "convert/file_io.h"
#include "support/test_data.h"

namespace bitsmith {
namespace {

namespace fs = std::filesystem;

void WriteBytes(const fs::path& p, size_t n) {
  std::ofstream f(p, std::ios::binary);
  for (size_t i = 0; i < n; ++i) f.put(static_cast<char>(i * 7));
}

std::vector<std::string> Listing(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

TEST_CASE("InputFile reads exact ranges and reports a file that shrank", "[convert][file_io]") {
  test::TempDir tmp;
  const fs::path p = tmp / "data.bin";
  WriteBytes(p, 1 << 20);
  auto in = InputFile::Open(p.string());
  REQUIRE(in.ok());
  CHECK(in->size() == 1u << 20);
  std::vector<uint8_t> buf(16);
  REQUIRE(in->ReadAt(1000, buf).ok());
  CHECK(buf[0] == static_cast<uint8_t>(1000 * 7));
  // Beyond the size known at open: bad input, naming the file.
  Status s = in->ReadAt((1 << 20) - 8, buf);
  REQUIRE(!s.ok());
  CHECK(s.error().kind == ErrorKind::kBadInput);
  CHECK_THAT(s.error().message, Catch::Contains(p.string()));
  auto big = in->ReadRange(10, uint64_t{1} << 62);  // never reaches the allocator
  REQUIRE(!big.ok());
  CHECK_THAT(big.error().message, Catch::Contains("beyond the end of the file"));
  // Another process truncates the file: an error, not SIGBUS.
  REQUIRE(::truncate(p.c_str(), 4096) == 0);
  s = in->ReadAt(500000, buf);
  REQUIRE(!s.ok());
  CHECK(s.error().kind == ErrorKind::kIo);
  CHECK_THAT(s.error().message, Catch::Contains("shrank while being read"));
  CHECK(in->ReadAt(100, buf).ok());  // what is still there reads fine

  auto dir = InputFile::Open(tmp.path().string());
  REQUIRE(!dir.ok());
  CHECK_THAT(dir.error().message, Catch::Contains("not a regular file"));
  auto missing = InputFile::Open((tmp / "nope").string());
  REQUIRE(!missing.ok());
  CHECK(missing.error().kind == ErrorKind::kBadInput);
}

TEST_CASE("OutputFile: nothing appears until Commit, temporaries never stay", "[convert][file_io]") {
  test::TempDir tmp;
  const fs::path p = tmp / "out.bin";
  {
    auto out = OutputFile::Create(p.string());
    REQUIRE(out.ok());
    const std::vector<uint8_t> bytes = {1, 2, 3};
    REQUIRE(out->WriteAt(10, bytes).ok());
    CHECK(!fs::exists(p));
    CHECK(fs::exists(out->temp_path()));
    CHECK(fs::path(out->temp_path()).parent_path() == tmp.path());
  }  // abandoned: the temporary goes
  CHECK(Listing(tmp.path()).empty());

  auto out = OutputFile::Create(p.string());
  REQUIRE(out.ok());
  REQUIRE(out->SetSize(16).ok());
  const std::vector<uint8_t> bytes = {9, 8, 7};
  REQUIRE(out->WriteAt(4, bytes).ok());
  REQUIRE(out->Commit().ok());
  CHECK(Listing(tmp.path()) == std::vector<std::string>{"out.bin"});
  CHECK(test::ReadFile(p) == std::vector<uint8_t>{0, 0, 0, 0, 9, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0});

  // A symlink at the destination is replaced, its target left alone.
  const fs::path target = tmp / "target.bin";
  WriteBytes(target, 5);
  const fs::path link = tmp / "link.bin";
  fs::create_symlink(target, link);
  REQUIRE(WriteFileAtomic(link.string(), std::string("new")).ok());
  CHECK(!fs::is_symlink(link));
  CHECK(test::ReadFile(link) == std::vector<uint8_t>{'n', 'e', 'w'});
  CHECK(fs::file_size(target) == 5);

  // A missing directory is an error naming the file.
  auto bad = OutputFile::Create((tmp / "no" / "such" / "dir.bin").string());
  REQUIRE(!bad.ok());
  CHECK_THAT(bad.error().message, Catch::Contains("dir.bin"));
}

TEST_CASE("OutputFile: Seal keeps the temporary for a later Commit and nothing commits after Abort", "[convert][file_io]") {
  test::TempDir tmp;
  const std::vector<uint8_t> bytes = {1, 2, 3};
  {
    auto out = OutputFile::Create((tmp / "sealed.bin").string());
    REQUIRE(out.ok());
    REQUIRE(out->WriteAt(0, bytes).ok());
    REQUIRE(out->Seal().ok());
    REQUIRE(out->Seal().ok());  // idempotent
    CHECK(fs::exists(out->temp_path()));
    CHECK(!fs::exists(tmp / "sealed.bin"));
    CHECK(!out->WriteAt(0, bytes).ok());  // sealed: closed for writing
  }  // sealed but never committed: the temporary goes
  CHECK(Listing(tmp.path()).empty());

  auto out = OutputFile::Create((tmp / "a.bin").string());
  REQUIRE(out.ok());
  REQUIRE(out->WriteAt(0, bytes).ok());
  REQUIRE(out->Seal().ok());
  REQUIRE(out->Commit().ok());
  REQUIRE(out->Commit().ok());  // idempotent
  CHECK(test::ReadFile(tmp / "a.bin") == bytes);

  for (const bool sealed : {false, true}) {
    auto gone = OutputFile::Create((tmp / "b.bin").string());
    REQUIRE(gone.ok());
    REQUIRE(gone->WriteAt(0, bytes).ok());
    if (sealed) REQUIRE(gone->Seal().ok());
    gone->Abort();
    gone->Abort();  // idempotent
    CHECK(!fs::exists(gone->temp_path()));
    const Status seal = gone->Seal();
    const Status commit = gone->Commit();
    REQUIRE(!seal.ok());
    REQUIRE(!commit.ok());
    CHECK(commit.error().kind == ErrorKind::kInternal);
    CHECK_THAT(commit.error().message, Catch::Contains("b.bin"));
    CHECK(!fs::exists(tmp / "b.bin"));
  }

  // A moved-from file owns nothing: committing it is an error, the new owner commits.
  auto from = OutputFile::Create((tmp / "c.bin").string());
  REQUIRE(from.ok());
  OutputFile to = std::move(*from);
  CHECK(!from->Commit().ok());
  REQUIRE(to.WriteAt(0, bytes).ok());
  REQUIRE(to.Commit().ok());
  CHECK(Listing(tmp.path()) == std::vector<std::string>{"a.bin", "c.bin"});
}

TEST_CASE("OutputFile: threads write disjoint ranges", "[convert][file_io]") {
  test::TempDir tmp;
  const fs::path p = tmp / "par.bin";
  auto out = OutputFile::Create(p.string());
  REQUIRE(out.ok());
  constexpr size_t kChunk = 1 << 16, kThreads = 4;
  REQUIRE(out->SetSize(kChunk * kThreads).ok());
  std::vector<std::thread> threads;
  std::vector<int> ok(kThreads, 0);
  for (size_t t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      std::vector<uint8_t> b(kChunk, static_cast<uint8_t>(t + 1));
      ok[t] = out->WriteAt(t * kChunk, b).ok();
    });
  for (auto& t : threads) t.join();
  REQUIRE(out->Commit().ok());
  CHECK(ok == std::vector<int>(kThreads, 1));
  const auto bytes = test::ReadFile(p);
  for (size_t t = 0; t < kThreads; ++t) CHECK(bytes[t * kChunk + 123] == t + 1);
}

TEST_CASE("a file size limit (EFBIG) is a 'no space' error and removes the temporary", "[convert][file_io]") {
  test::TempDir tmp;
  const fs::path p = tmp / "limited.bin";
  // In a child process: RLIMIT_FSIZE = 64 KiB, then write 1 MiB.
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    struct rlimit lim {65536, 65536};
    ::setrlimit(RLIMIT_FSIZE, &lim);
    int code = 0;
    {
      auto out = OutputFile::Create(p.string());
      if (!out.ok()) ::_exit(10);
      const std::vector<uint8_t> big(1 << 20, 1);
      Status s = out->WriteAt(0, big);
      if (s.ok()) code = 11;
      else if (s.error().kind != ErrorKind::kNoSpace) code = 12;
      else if (s.error().message.find(p.string()) == std::string::npos) code = 13;
      else if (s.error().message.find("EFBIG") == std::string::npos) code = 14;
      // SetSize past the limit fails the same way.
      auto out2 = OutputFile::Create((tmp / "limited2.bin").string());
      if (code == 0 && out2.ok()) {
        Status s2 = out2->SetSize(1 << 20);
        if (s2.ok() || s2.error().kind != ErrorKind::kNoSpace) code = 15;
      }
    }  // both abandoned: temporaries removed
    ::_exit(code);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(Listing(tmp.path()).empty());
}

TEST_CASE("MemorySource and CopyRange", "[convert][file_io]") {
  const std::vector<uint8_t> bytes = {1, 2, 3, 4, 5};
  MemorySource src(bytes, "mem");
  std::vector<uint8_t> two(2);
  REQUIRE(src.ReadAt(3, two).ok());
  CHECK(two == std::vector<uint8_t>{4, 5});
  CHECK(!src.ReadAt(4, two).ok());
  CHECK(!src.ReadRange(6, 0).ok());
  CHECK(src.ReadRange(5, 0).ok());
  test::TempDir tmp;
  auto out = OutputFile::Create((tmp / "copy.bin").string());
  REQUIRE(out.ok());
  REQUIRE(CopyRange(src, 1, 3, *out, 2).ok());
  REQUIRE(out->Commit().ok());
  CHECK(test::ReadFile(tmp / "copy.bin") == std::vector<uint8_t>{0, 0, 2, 3, 4});
}

}  // namespace
}  // namespace bitsmith
