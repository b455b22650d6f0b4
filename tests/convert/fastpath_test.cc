// The fast paths of the converter against their references:
//  - DigestBytes (Highway) equals DigestBytesRef on every compiled target;
//  - the safetensors header / index fast scanners give exactly what the
//    validating nlohmann SAX parsers give (same tensors and metadata, or the
//    same error message) on the malformed catalogue, on valid files of every
//    shape, and on byte-level mutations of them.
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <hwy/targets.h>

#include "convert/digest.h"
#include "convert/file_io.h"
#include "convert/safetensors.h"
#include "support/malformed_files.h"

namespace bitsmith {
namespace {

TEST_CASE("DigestBytes equals its scalar reference on every target", "[convert][digest]") {
  std::mt19937_64 rng(5);
  std::vector<uint8_t> bytes(70000);
  for (auto& b : bytes) b = static_cast<uint8_t>(rng());
  std::vector<size_t> lengths;
  for (size_t n = 0; n <= 200; ++n) lengths.push_back(n);
  for (size_t n : {1023u, 1024u, 1025u, 1087u, 4096u, 65536u, 70000u}) lengths.push_back(n);
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    INFO("target " << hwy::TargetName(target));
    for (size_t n : lengths)
      for (uint64_t seed : {uint64_t{0}, uint64_t{1}, uint64_t{123456789012345ull}}) {
        INFO("length " << n << " seed " << seed);
        REQUIRE(DigestBytes({bytes.data() + 3, n}, seed) == DigestBytesRef({bytes.data() + 3, n}, seed));
      }
  }
  hwy::SetSupportedTargetsForTest(0);
  // It depends on every byte, the length and the seed.
  std::vector<uint8_t> a(5000, 0);
  const uint64_t h0 = DigestBytes(a, 0);
  for (size_t i : {size_t{0}, size_t{63}, size_t{64}, size_t{1500}, size_t{4999}}) {
    std::vector<uint8_t> b = a;
    b[i] ^= 1;
    CHECK(DigestBytes(b, 0) != h0);
  }
  CHECK(DigestBytes({a.data(), 4999}, 0) != h0);
  CHECK(DigestBytes(a, 1) != h0);
}

// Both parsers on one input: the same outcome, field by field.
struct Outcome {
  bool ok = false;
  std::string error;
  std::vector<TensorInfo> tensors;
  std::vector<std::pair<std::string, std::string>> metadata;
  bool has_metadata = false;
  SafetensorsIndex index;
};

Outcome ReadHeader(const std::vector<uint8_t>& bytes, bool slow) {
  detail::g_safetensors_slow_path = slow;
  MemorySource src(bytes, "t.safetensors");
  auto f = ReadSafetensors(src);
  detail::g_safetensors_slow_path = false;
  Outcome o;
  o.ok = f.ok();
  if (!f.ok()) {
    o.error = f.error().message;
    return o;
  }
  o.tensors = f->tensors;
  o.metadata = f->metadata;
  o.has_metadata = f->has_metadata;
  return o;
}

Outcome ReadIndex(const std::string& text, bool slow) {
  detail::g_safetensors_slow_path = slow;
  auto r = ParseSafetensorsIndex(text, "i.json");
  detail::g_safetensors_slow_path = false;
  Outcome o;
  o.ok = r.ok();
  if (!r.ok()) {
    o.error = r.error().message;
    return o;
  }
  o.index = *r;
  return o;
}

void CheckSameHeader(const std::vector<uint8_t>& bytes, const std::string& what) {
  const Outcome fast = ReadHeader(bytes, false), slow = ReadHeader(bytes, true);
  INFO(what << ": " << std::string(bytes.begin() + std::min<size_t>(8, bytes.size()), bytes.end()).substr(0, 300));
  REQUIRE(fast.ok == slow.ok);
  REQUIRE(fast.error == slow.error);
  REQUIRE(fast.tensors == slow.tensors);
  REQUIRE(fast.metadata == slow.metadata);
  REQUIRE(fast.has_metadata == slow.has_metadata);
}

void CheckSameIndex(const std::string& text, const std::string& what) {
  const Outcome fast = ReadIndex(text, false), slow = ReadIndex(text, true);
  INFO(what << ": " << text.substr(0, 300));
  REQUIRE(fast.ok == slow.ok);
  REQUIRE(fast.error == slow.error);
  REQUIRE(fast.index.weight_map == slow.index.weight_map);
  REQUIRE(fast.index.metadata == slow.index.metadata);
  REQUIRE(fast.index.total_size == slow.index.total_size);
}

std::string Entry(const std::string& name, const std::string& dtype, const std::string& shape, uint64_t b,
                  uint64_t e) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" +
         std::to_string(b) + "," + std::to_string(e) + "]}";
}

// Valid headers in the forms writers produce and a few they could.
std::vector<std::vector<uint8_t>> ValidHeaders() {
  std::vector<std::vector<uint8_t>> v;
  const std::string a = Entry("a.weight", "F32", "[2,3]", 0, 24), b = Entry("b", "BF16", "[4]", 24, 32);
  v.push_back(test::StBytes("{" + a + "," + b + "}", 32));
  v.push_back(test::StBytes("{}", 0));
  v.push_back(test::StBytes(R"({"__metadata__":{"format":"pt","x":""},)" + a + "}", 24));
  v.push_back(test::StBytes(R"({"__metadata__":{},)" + a + "}", 24));
  v.push_back(test::StBytes("{" + a + R"(,"__metadata__":{"format":"pt"}})", 24));
  v.push_back(test::StBytes(" \n{\t" + Entry("b", "BF16", "[4]", 1, 9) + " ,\r\n " + Entry("c", "F8_E4M3", "[]", 0, 1) +
                                " }\n",
                            9, false));
  v.push_back(test::StBytes(R"({"s":{"shape":[],"data_offsets":[0,4],"dtype":"I32"}})", 4));
  v.push_back(test::StBytes(R"({"z":{"dtype":"F32","shape":[0,5],"data_offsets":[0,0]}})", 0));
  v.push_back(test::StBytes(R"({"e\u00e9":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4));  // escape
  v.push_back(test::StBytes("{\"\xc3\xa9\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4));  // UTF-8
  v.push_back(test::StBytes(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":[1,{"a":null}]}})", 4));
  v.push_back(test::StBytes(R"({"__metadata__":{"k":"a\"b\\c\n"},"y":{"dtype":"U8","shape":[3],"data_offsets":[0,3]}})", 3));
  return v;
}

TEST_CASE("safetensors header fast scanner = SAX parser", "[convert][safetensors][fastpath]") {
  for (const test::MalformedCase& c : test::MalformedCatalogue())
    if (c.format == "safetensors")
      for (const auto& [name, bytes] : c.files) CheckSameHeader(bytes, c.name);
  const auto valid = ValidHeaders();
  for (size_t i = 0; i < valid.size(); ++i) {
    CheckSameHeader(valid[i], "valid " + std::to_string(i));
    INFO("valid " << i << " " << ReadHeader(valid[i], false).error);
    REQUIRE(ReadHeader(valid[i], false).ok);
  }
  // Mutations: every byte of each header replaced by characters that matter
  // to JSON, and cut short (length field kept, so the header is garbage).
  const std::string alphabet = std::string("{}[]:,\" \\0-1.eE9\x80\x01") + '\0';
  for (size_t v = 0; v < valid.size(); ++v) {
    const std::vector<uint8_t>& base = valid[v];
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | base[i];
    for (size_t pos = 8; pos < 8 + n; ++pos)
      for (char ch : alphabet) {
        std::vector<uint8_t> m = base;
        m[pos] = static_cast<uint8_t>(ch);
        CheckSameHeader(m, "valid " + std::to_string(v) + " byte " + std::to_string(pos) + " -> " +
                               std::to_string(int(static_cast<uint8_t>(ch))));
      }
  }
}

TEST_CASE("safetensors index fast scanner = SAX parser", "[convert][safetensors][fastpath]") {
  std::vector<std::string> texts = {
      R"({"metadata": {"total_size": 688472104000}, "weight_map": {"a": "m-1.safetensors", "b": "m-2.safetensors"}})",
      R"({"weight_map": {}})",
      R"({"weight_map": {"a": "x.safetensors"}, "metadata": {"format": "pt", "total_size": 0, "n": 18446744073709551615}})",
      R"({"metadata": {"total_size": 12.5}, "weight_map": {"a": "x.safetensors"}})",
      R"({"metadata": {"total_size": -3}, "weight_map": {"a": "x.safetensors"}})",
      R"({"metadata": {"x": [1, {"b": true}], "y": null}, "weight_map": {"a": "x.safetensors"}})",
      R"({"weight_map": {"a": "x.safetensors"}, "other": {"q": 1}})",
      R"({"weight_map": {"a\u0041": "x.safetensors"}})",
      R"({"weight_map": {"a": "x.safetensors", "a": "x.safetensors"}})",
      R"({"weight_map": {"a": "../x.safetensors"}})",
      R"({"weight_map": {"a": ""}})",
      R"({"weight_map": {"a": ".."}})",
      R"({"weight_map": {"a": 1}})",
      R"({"metadata": {"k": "v", "k": "w"}, "weight_map": {"a": "x.safetensors"}})",
      R"({"weight_map": {"a": "x.safetensors"}, "weight_map": {"b": "x.safetensors"}})",
      R"({"metadata": {}})",
      "{}",
      "[]",
      " {\"weight_map\" :{ \"a\" : \"x.safetensors\" } }\n",
  };
  for (const test::MalformedCase& c : test::MalformedCatalogue())
    for (const auto& [name, bytes] : c.files)
      if (name.size() > 5 && name.substr(name.size() - 5) == ".json") texts.emplace_back(bytes.begin(), bytes.end());
  for (size_t i = 0; i < texts.size(); ++i) CheckSameIndex(texts[i], "text " + std::to_string(i));
  const std::string alphabet = std::string("{}[]:,\" \\0-1.e/\x80") + '\0';
  for (size_t i = 0; i < 3; ++i)
    for (size_t pos = 0; pos < texts[i].size(); ++pos)
      for (char ch : alphabet) {
        std::string m = texts[i];
        m[pos] = ch;
        CheckSameIndex(m, "text " + std::to_string(i) + " byte " + std::to_string(pos));
      }
}

}  // namespace
}  // namespace bitsmith
