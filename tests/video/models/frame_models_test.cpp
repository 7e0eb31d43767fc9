// The shipped configs (configs/video/{tsn,tsm,stnet,nonlocal_c2d,nonlocal_i3d}.yaml) build,
// through the model registry, models whose state dicts have exactly the names, shapes and
// dtypes of the PyTorch reference built independently by tests/video/golden/
// frame_models_golden.py, hence the same parameter counts; bad model keys are config errors.
#include <gtest/gtest.h>

#include "engine/config/config.h"
#include "engine/registry/registry.h"
#include "engine/train/components.h"
#include "tests/video/models/frame_models_support.h"
#include "video/register.h"

using namespace oar;
using namespace oar::video::testing;

namespace {
std::string short_dtype(DType t) {
  return t == DType::i64 ? "i64" : t == DType::f32 ? "f32" : "?";
}
std::string message(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}
}  // namespace

// Kinetics-400, ResNet-50. TSN/TSM: torchvision's resnet50 (25,557,032) with a 400-way fc
// (-2,049,000 +819,600). Non-local C2D adds to that trunk 2 blocks at 512 channels (526,592
// each: theta/phi/g 3x(512x256+256), out 256x512+512, BN 2x512) and 3 at 1024 (2,101,760 each).
TEST(FrameModels, ShippedConfigsMatchTheReferenceStateDicts) {
  video::register_components();
  const auto reference = read_reference_state_dicts();
  const std::map<std::string, int64_t> counts = {{"tsn", 24327632},
                                                 {"tsm", 24327632},
                                                 {"stnet", 33158864},
                                                 {"nonlocal_c2d", 31686096},
                                                 {"nonlocal_i3d", 35401936}};
  ASSERT_EQ(reference.size(), counts.size()) << "tests/video/golden/frame_models_state_dicts.txt";
  for (const auto& [name, count] : counts) {
    SCOPED_TRACE(name);
    const ReferenceModel& ref = reference.at(name);
    ASSERT_EQ(ref.num_parameters, count);
    Config c = Config::load(std::string(OAR_SOURCE_DIR) + "/configs/video/" + name + ".yaml");
    Generator gen(1);
    ModelContext ctx;
    ctx.init_generator = &gen;
    auto m = models().create_from(c, "model", ctx);
    EXPECT_EQ(m->num_parameters(), count);
    const auto state = m->state_dict();
    ASSERT_EQ(state.size(), ref.entries.size());
    for (size_t i = 0; i < state.size(); ++i) {
      EXPECT_EQ(state[i].first, ref.entries[i].name) << "entry " << i;
      EXPECT_EQ(state[i].second.shape(), ref.entries[i].shape) << ref.entries[i].name;
      EXPECT_EQ(short_dtype(state[i].second.dtype()), ref.entries[i].dtype) << ref.entries[i].name;
    }
  }
}

TEST(FrameModels, BadModelKeysAreConfigErrors) {
  video::register_components();
  video::register_components();  // idempotent
  auto build = [](const std::string& yaml) {
    Config c = Config::from_string(yaml, "v.yaml");
    Generator gen(1);
    ModelContext ctx;
    ctx.init_generator = &gen;
    models().create_from(c, "model", ctx);
  };
  EXPECT_NE(
      message([&] { build("model:\n  name: nonlocal\n  arch: r2plus1d\n"); }).find("model.arch"),
      std::string::npos);
  EXPECT_NE(message([&] { build("model:\n  name: tsn\n  depth: 77\n"); }).find("model.depth"),
            std::string::npos);
  EXPECT_NE(message([&] { build("model:\n  name: tsm\n  blocks: [1, 1]\n"); }).find("model.blocks"),
            std::string::npos);
  EXPECT_NE(
      message([&] { build("model:\n  name: stnet\n  dropout: 0.5\n"); }).find("model.dropout"),
      std::string::npos);
  const std::string missing = message([&] {
    build(
        "model:\n  name: tsn\n  blocks: [1, 1, 1, 1]\n  width: 4\n  pretrained: "
        "nowhere.safetensors\n");
  });
  EXPECT_NE(missing.find("model.pretrained"), std::string::npos) << missing;
  EXPECT_NE(missing.find("nowhere.safetensors"), std::string::npos) << missing;
  EXPECT_NE(message([&] { build("model:\n  name: tsn\n  seg_num: 3\n"); }).find("seg_num"),
            std::string::npos);
}
