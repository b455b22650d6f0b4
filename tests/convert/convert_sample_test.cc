// The bundled sample of `make run` (samples/realmix-dev-fp8): a DeepSeek-layout
// FP8 checkpoint bitsmith made; converting it to BF16 and verifying it is the
// main job tools/run_sample.sh runs.
#include <catch2/catch.hpp>

#include <filesystem>

#include "convert/checkpoint.h"
#include "convert/convert.h"
#include "convert/tensor_plan.h"
#include "convert_fixture.h"
#include "support/test_data.h"

namespace bitsmith {
namespace {

namespace fs = std::filesystem;

TEST_CASE("convert: the bundled FP8 sample converts to BF16 and verifies", "[convert][sample]") {
  const fs::path sample = test::SourceDir() / "samples" / "realmix-dev-fp8";
  REQUIRE(fs::exists(sample / "model.safetensors.index.json"));
  auto in = OpenCheckpoint(sample.string());
  REQUIRE(in.ok());
  CHECK(in->files.size() == 2);
  size_t fp8 = 0;
  for (const TensorInfo& t : in->tensors) fp8 += t.dtype == DType::kE4M3FN;
  CHECK(fp8 == 18);
  test::TempDir tmp;
  ConvertOptions o;
  o.input = sample.string();
  o.output = (tmp / "bf16").string();
  o.to = DType::kBF16;
  auto plan = BuildConversionPlan(o);
  REQUIRE(plan.ok());
  CHECK_THAT(plan->fp8.layout.Describe(), Catch::Contains("128x128"));
  RunControl c;
  REQUIRE(RunConversion(*plan, c).ok());
  auto out = OpenCheckpoint((tmp / "bf16").string());
  REQUIRE(out.ok());
  CHECK(out->tensors.size() == 23);
  for (const TensorInfo& t : out->tensors) CHECK((t.dtype == DType::kBF16 || t.dtype == DType::kF32));
  VerifyOptions v{sample.string(), (tmp / "bf16").string(), "", false, false, 2};
  auto vr = VerifyConversion(v);
  REQUIRE(vr.ok());
  CHECK(vr->ok());
  CHECK(vr->tensors.size() == 23);
  // The licenses travel with the weights.
  CHECK(fs::exists(tmp / "bf16" / "LICENSE-Apache-2.0.txt"));
  CHECK(fs::exists(tmp / "bf16" / "LICENSE-MIT-rwkv.cpp.txt"));
}

}  // namespace
}  // namespace bitsmith
