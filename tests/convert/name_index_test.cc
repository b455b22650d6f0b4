// NameIndex (convert/name_index.h) against a linear search, and the
// duplicate-name errors that now go through it (Checkpoint) or through the
// sorted weight_map (PlanSafetensorsShards).
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "convert/checkpoint.h"
#include "convert/name_index.h"
#include "convert/safetensors.h"

namespace bitsmith {
namespace {

long LinearFind(const std::vector<TensorInfo>& v, std::string_view name) {
  for (size_t i = 0; i < v.size(); ++i)
    if (v[i].name == name) return static_cast<long>(i);
  return -1;
}

TEST_CASE("NameIndex finds what a linear search finds", "[convert][name_index]") {
  std::mt19937 rng(7);
  for (size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{8}, size_t{9}, size_t{1000}, size_t{5000}}) {
    std::vector<TensorInfo> v(n);
    for (size_t i = 0; i < n; ++i) v[i].name = fmt::format("model.layers.{}.mlp.experts.{}.w", i % 61, rng() % 300);
    // Reference: the first position of each name; the first repeat.
    long want_dup = -1;
    for (size_t i = 0; i < n && want_dup < 0; ++i)
      if (LinearFind(v, v[i].name) != static_cast<long>(i)) want_dup = static_cast<long>(i);
    NameIndex idx;
    INFO("n = " << n);
    CHECK(idx.Build(v) == want_dup);
    std::vector<std::string_view> views;
    for (const TensorInfo& t : v) views.push_back(t.name);
    CHECK(FirstRepeatedName(views) == want_dup);
    for (size_t i = 0; i < n; ++i) {
      INFO("name " << v[i].name);
      REQUIRE(idx.Find(v, v[i].name) == LinearFind(v, v[i].name));
    }
    for (const std::string absent : {"", "model", "model.layers.0.mlp.experts.0.w_scale_inv", "x"})
      REQUIRE(idx.Find(v, absent) == LinearFind(v, absent));
    // A copy of the list works with the same index (positions, not views).
    const std::vector<TensorInfo> copy = v;
    for (size_t i = 0; i < n; i += 97) REQUIRE(idx.Find(copy, v[i].name) == LinearFind(v, v[i].name));
  }
}

TEST_CASE("Checkpoint::Find survives copies and reports repeated names", "[convert][name_index]") {
  Checkpoint ck;
  for (int i = 0; i < 40; ++i) ck.tensors.emplace_back().name = fmt::format("t{}", i);
  CHECK(ck.BuildIndex() == -1);
  const Checkpoint copy = ck;
  ck = Checkpoint();  // the original is gone: the copy's index must not point into it
  for (int i = 0; i < 40; ++i) {
    const TensorInfo* t = copy.Find(fmt::format("t{}", i));
    REQUIRE(t != nullptr);
    CHECK(t == &copy.tensors[static_cast<size_t>(i)]);
  }
  CHECK(copy.Find("t40") == nullptr);
  Checkpoint dup = copy;
  dup.tensors.emplace_back().name = "t3";
  dup.tensors.emplace_back().name = "t5";
  CHECK(dup.BuildIndex() == 40);
  CHECK(dup.Find("t3") == &dup.tensors[3]);  // the earlier tensor keeps the name
}

SafetensorsTensorSpec Spec(std::string name) { return {std::move(name), "F32", {2}}; }

TEST_CASE("PlanSafetensorsShards: a tensor in two shards is named with both, in shard order",
          "[convert][name_index]") {
  using Group = std::pair<std::string, std::vector<SafetensorsTensorSpec>>;
  // 'b' repeats in the third shard and 'a' in the fourth: 'b' is reported, with
  // the shard that had it first.
  std::vector<Group> groups = {{"s1.safetensors", {Spec("a"), Spec("b")}},
                               {"s2.safetensors", {Spec("c")}},
                               {"s3.safetensors", {Spec("b")}},
                               {"s4.safetensors", {Spec("a")}}};
  auto r = PlanSafetensorsShards("/tmp/out", groups, std::nullopt);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message == "tensor 'b' is in two shards (s1.safetensors and s3.safetensors)");
  // A repeat across shards comes before a later shard's own error.
  groups.push_back({"s5.safetensors", {Spec("z"), Spec("z")}});
  r = PlanSafetensorsShards("/tmp/out", groups, std::nullopt);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message == "tensor 'b' is in two shards (s1.safetensors and s3.safetensors)");
  // Without cross-shard repeats, that shard's error.
  std::vector<Group> own = {{"s1.safetensors", {Spec("a")}}, {"s2.safetensors", {Spec("z"), Spec("z")}}};
  r = PlanSafetensorsShards("/tmp/out", own, std::nullopt);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("duplicate tensor name 'z'") != std::string::npos);
  // And a valid plan: the index lists every tensor once, sorted.
  std::vector<Group> ok = {{"s1.safetensors", {Spec("b"), Spec("a")}}, {"s2.safetensors", {Spec("c")}}};
  r = PlanSafetensorsShards("/tmp/out", ok, std::nullopt);
  REQUIRE(r.ok());
  const std::string& idx = r->index_json;
  CHECK(idx.find("\"a\": \"s1.safetensors\",\n    \"b\": \"s1.safetensors\",\n    \"c\": \"s2.safetensors\"") !=
        std::string::npos);
}

}  // namespace
}  // namespace bitsmith
