// The malformed-file catalogue (tests/support/malformed_files.h): every case
// fails with a clear error through the library and through `bitsmith info`
// (exit 2, bounded memory), and the fuzz seeds committed in fuzz/corpus/ are
// exactly what the generator makes.
#include <cstdlib>
#include <fstream>
#include <set>

#include <catch2/catch.hpp>

#include "convert/checkpoint.h"
#include "support/malformed_files.h"
#include "support/test_data.h"

namespace bitsmith {
namespace {

namespace fs = std::filesystem;

TEST_CASE("the malformed catalogue has at least 60 uniquely named cases", "[convert][malformed]") {
  const auto cases = test::MalformedCatalogue();
  CHECK(cases.size() >= 60);
  std::set<std::string> names;
  for (const auto& c : cases) {
    INFO(c.name);
    CHECK(names.insert(c.name).second);
    CHECK(!c.expect.empty());
  }
}

TEST_CASE("every malformed case gives a clear error from OpenCheckpoint", "[convert][malformed]") {
  test::TempDir tmp;
  for (const auto& c : test::MalformedCatalogue()) {
    const fs::path path = test::Materialize(c, tmp / c.name);
    auto ck = OpenCheckpoint(path.string());
    INFO("case " << c.name << " (" << path << ")");
    REQUIRE_FALSE(ck.ok());
    INFO("error: " << ck.error().message);
    CHECK(ck.error().message.find(c.expect) != std::string::npos);
    CHECK((ck.error().kind == ErrorKind::kBadInput || ck.error().kind == ErrorKind::kUnsupported));
    // The message names the file (or the directory of an index case).
    CHECK(ck.error().message.find(c.name) != std::string::npos);
  }
}

TEST_CASE("bitsmith info exits 2 on every malformed case, in bounded memory", "[convert][malformed][cli]") {
  test::TempDir tmp;
  // 1 GiB of address space is far more than bitsmith needs for these files and
  // far less than any of them claims. ASan reserves terabytes of address space,
  // so the limit only applies to plain builds.
  const std::string limit = test::UlimitPrefix();
  for (const auto& c : test::MalformedCatalogue()) {
    const fs::path path = test::Materialize(c, tmp / c.name);
    const auto r = test::Run(limit + "'" + test::BitsmithExe().string() + "' info '" + path.string() + "'");
    INFO("case " << c.name << "\nstdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.status == 2);
    CHECK(r.err.find("bitsmith: error: ") != std::string::npos);
    CHECK(r.err.find(c.expect) != std::string::npos);
    CHECK(r.out.empty());
  }
}

// The seed files the fuzz targets start from: the single-file cases (index
// cases contribute their index JSON to the safetensors corpus, whose target
// parses both) and the valid seeds. BITSMITH_WRITE_SEEDS=1 rewrites them.
std::vector<std::pair<fs::path, std::vector<uint8_t>>> ExpectedSeeds() {
  std::vector<std::pair<fs::path, std::vector<uint8_t>>> seeds;
  const fs::path corpus = test::SourceDir() / "fuzz" / "corpus";
  for (const auto& c : test::MalformedCatalogue()) {
    if (c.format == "safetensors" || c.format == "gguf") {
      seeds.emplace_back(corpus / c.format / c.name, c.files[0].second);
    } else if (c.format == "index") {
      for (const auto& [rel, bytes] : c.files)
        if (rel == "model.safetensors.index.json") seeds.emplace_back(corpus / "safetensors" / c.name, bytes);
    }
  }
  for (const char* format : {"safetensors", "gguf"})
    for (auto& [name, bytes] : test::ValidSeeds(format)) seeds.emplace_back(corpus / format / name, bytes);
  for (const char* target : {"imatrix", "recipe", "explain", "convert"})
    for (auto& [name, bytes] : test::FuzzSeeds(target)) seeds.emplace_back(corpus / target / name, bytes);
  return seeds;
}

TEST_CASE("fuzz seeds in fuzz/corpus are the generator's output", "[convert][malformed][fuzz]") {
  const char* write = std::getenv("BITSMITH_WRITE_SEEDS");
  for (const auto& [path, bytes] : ExpectedSeeds()) {
    INFO(path);
    if (write && std::string(write) == "1") {
      fs::create_directories(path.parent_path());
      std::ofstream f(path, std::ios::binary | std::ios::trunc);
      f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
      continue;
    }
    REQUIRE(fs::exists(path));
    CHECK(test::ReadFile(path) == bytes);
  }
}

}  // namespace
}  // namespace bitsmith
