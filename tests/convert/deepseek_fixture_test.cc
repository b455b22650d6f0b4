// The sparse DeepSeek-V3 fixture itself: its size matches the published model.
#include <catch2/catch.hpp>

#include "support/deepseek_fixture.h"
#include "support/test_data.h"

namespace bitsmith {
namespace {

TEST_CASE("DeepSeek-V3 sparse fixture has the published parameter count", "[convert][deepseek]") {
  test::TempDir dir;
  const auto sum = test::MakeDeepSeekV3Sparse(dir.path());
  // Hugging Face lists DeepSeek-V3/R1 as 685B parameters: 671B of the main model
  // plus 14B of the MTP module (DeepSeek-V3 technical report, section 4.2).
  CHECK(sum.weight_params > 684'000'000'000ull);
  CHECK(sum.weight_params < 686'000'000'000ull);
  test::DeepSeekFixtureOptions no_mtp;
  no_mtp.mtp_layer = false;
  test::TempDir dir2;
  const auto main_only = test::MakeDeepSeekV3Sparse(dir2.path(), no_mtp);
  CHECK(main_only.weight_params > 670'000'000'000ull);
  CHECK(main_only.weight_params < 672'000'000'000ull);
  // FP8 weights + f32 scales + bf16 rest: about 689 GB of tensor data.
  CHECK(sum.total_bytes > 680'000'000'000ull);
  CHECK(sum.total_bytes < 700'000'000'000ull);
}

}  // namespace
}  // namespace bitsmith
