// ImageNet 2D ResNet weights into the video models: TSN on one frame is vision's ResNet; I3D
// inflation and C2D reproduce the 2D trunk's features on a clip constant over time (away from
// the temporal borders); StNet's averaged conv1 reproduces them on a grey constant clip; bad
// weights are errors naming what is wrong.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "engine/core/error.h"
#include "engine/io/safetensors.h"
#include "engine/ops.h"
#include "tests/video/models/frame_models_support.h"
#include "video/models/nonlocal.h"
#include "video/models/stnet.h"
#include "video/models/tsn.h"
#include "video/models/weights.h"
#include "vision/models/resnet.h"

using namespace oar;
using namespace oar::video;
using namespace oar::video::testing;

namespace {

std::map<std::string, Tensor> as_map(const nn::Module& m) {
  std::map<std::string, Tensor> s;
  for (auto& [k, v] : m.state_dict()) s[k] = v;
  return s;
}

// Non-trivial BN statistics and affine parameters, so BN layers are not near-identities.
void randomise_norms(nn::Module& m, Generator& gen) {
  NoGradGuard ng;
  for (auto& [name, mod] : m.named_modules())
    if (auto* bn = dynamic_cast<nn::BatchNorm*>(mod)) {
      nn::init::uniform_(bn->weight, gen, 0.5, 1.5);
      nn::init::uniform_(bn->bias, gen, -0.2, 0.2);
      nn::init::uniform_(bn->running_mean, gen, -0.2, 0.2);
      nn::init::uniform_(bn->running_var, gen, 0.5, 1.5);
    }
}

// Relative max difference.
double rel_diff(const Tensor& a, const Tensor& b) {
  return max_abs_diff(a, b) / std::max(1e-12, amax(abs(b)).item_double());
}

// A 2D "ImageNet" trunk of the tiny shape (torchvision names), with the given max-pool padding.
std::shared_ptr<VideoResNet> tiny_2d(int64_t pool_padding, Generator& gen) {
  VideoResNetOptions o = tiny_trunk();
  o.stem_pool_padding = pool_padding;
  auto m = std::make_shared<VideoResNet>(o, &gen);
  randomise_norms(*m, gen);
  m->eval();
  return m;
}

}  // namespace

TEST(VideoWeights, TsnOnOneFrameIsVisionResNet50) {
  Generator gen(1);
  vision::ResNetOptions ro = vision::resnet_variant("resnet50");
  vision::ResNet image(ro, &gen);
  randomise_norms(image, gen);
  TsnOptions to;
  to.num_classes = 1000;
  Tsn video(to, &gen);
  const auto state = as_map(image);
  EXPECT_EQ(load_2d_resnet(video, state), static_cast<int64_t>(state.size()) - 2);  // all but fc
  // The head is not loaded (the classes differ in practice); copy it to compare logits.
  const auto head = video.load_state_dict(
      {{"fc.weight", state.at("fc.weight")}, {"fc.bias", state.at("fc.bias")}}, false);
  ASSERT_TRUE(head.unexpected.empty() && head.mismatched.empty()) << head.str();
  image.eval();
  video.eval();
  NoGradGuard ng;
  const Tensor frame = randn({1, 3, 64, 64}, &gen);
  const Tensor expect = image(frame);
  EXPECT_LT(rel_diff(video(frame.unsqueeze(1)), expect), 1e-5);
  // Three copies of the frame: the average consensus gives the same.
  EXPECT_LT(rel_diff(video(repeat(frame.unsqueeze(1), {1, 3, 1, 1, 1})), expect), 1e-5);
}

// The property inflation is designed for: on a clip constant over time, an inflated I3D trunk
// computes the 2D trunk's features at every frame the zero temporal padding does not reach.
TEST(VideoWeights, InflatedI3dAndC2dMatchThe2dTrunkOnAConstantClip) {
  Generator gen(2);
  auto image = tiny_2d(/*pool_padding=*/0, gen);  // the video ResNet's pool1 has no padding
  const auto state = as_map(*image);
  const Tensor frame = randn({1, 3, 32, 32}, &gen);
  NoGradGuard ng;
  const Tensor expect = image->features(frame);  // [1, 128, 1, 1]
  for (const bool i3d : {false, true}) {
    SCOPED_TRACE(i3d ? "i3d" : "c2d");
    NonLocalOptions o;
    o.i3d = i3d;
    o.backbone = tiny_trunk();
    o.res3_nonlocal = o.res4_nonlocal = false;
    NonLocalNet m(o, &gen);
    load_2d_resnet(m, state);
    if (i3d) {
      // Inflation: the 2D kernel repeated over time, divided by the temporal size.
      const Tensor w2 = state.at("conv1.weight"), w3 = m.find("conv1.weight");
      ASSERT_EQ(w3.shape(), (Shape{4, 3, 5, 7, 7}));
      for (int64_t t = 0; t < 5; ++t)
        EXPECT_LT(max_abs_diff(w3.narrow(2, t, 1).reshape(w2.shape()) * 5.0, w2), 1e-6);
    }
    m.eval();
    // 24 frames; after the pool 12, of which the I3D kernels' borders reach 4 on each side.
    const Tensor clip = repeat(frame.unsqueeze(1), {1, 24, 1, 1, 1});
    const Tensor f = m.features(NonLocalNet::to_channels_first(clip));  // [1, 128, 12, 1, 1]
    ASSERT_EQ(f.shape(), (Shape{1, 128, 12, 1, 1}));
    for (int64_t t = i3d ? 4 : 0; t < (i3d ? 8 : 12); ++t)
      EXPECT_LT(rel_diff(f.narrow(2, t, 1).reshape(expect.shape()), expect), 1e-4) << "t " << t;
    if (i3d) {  // the border frames do differ: the test sees a wrong padding assumption
      EXPECT_GT(rel_diff(f.narrow(2, 0, 1).reshape(expect.shape()), expect), 1e-3);
    }
  }
}

// StNet's conv1 (RGB mean / seglen, repeated): a grey clip constant over time gives the 2D
// trunk's features up to the first temporal block.
TEST(VideoWeights, StNetAveragedConv1MatchesThe2dTrunkOnAGreyConstantClip) {
  Generator gen(3);
  auto image = tiny_2d(/*pool_padding=*/1, gen);
  const auto state = as_map(*image);
  StNetOptions o;
  o.backbone = tiny_trunk();
  o.seglen = 5;
  o.num_classes = 7;
  StNet m(o, &gen);
  load_2d_resnet(m, state);
  const Tensor w2 = state.at("conv1.weight"), w = m.find("conv1.weight");
  ASSERT_EQ(w.shape(), (Shape{4, 15, 7, 7}));
  const Tensor avg = mean(w2, {1}, true) * 0.2;
  for (int64_t c = 0; c < 15; ++c) EXPECT_LT(max_abs_diff(w.narrow(1, c, 1), avg), 1e-7);
  m.eval();
  image->eval();
  NoGradGuard ng;
  const Tensor grey = repeat(randn({1, 1, 32, 32}, &gen), {1, 3, 1, 1});
  const Tensor expect = image->stage(1, image->stage(0, image->stem(grey)));
  const Tensor clip = repeat(grey.unsqueeze(1), {1, 10, 1, 1, 1});  // 2 segments of 5
  const Tensor got = m.stage(1, m.stage(0, m.stem(m.super_images(clip))));
  ASSERT_EQ(got.shape(), (Shape{2, 32, 4, 4}));
  for (int64_t s = 0; s < 2; ++s) EXPECT_LT(rel_diff(got.narrow(0, s, 1), expect), 1e-5);
}

TEST(VideoWeights, BadWeightsAreErrorsNamingTheEntry) {
  Generator gen(4);
  TsnOptions to;
  to.backbone = tiny_trunk();
  Tsn m(to, &gen);
  auto state = as_map(m);
  auto message = [](const std::function<void()>& f) -> std::string {
    try {
      f();
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  auto missing = state;
  missing.erase("layer2.0.bn1.running_var");
  EXPECT_NE(message([&] { load_2d_resnet(m, missing); }).find("missing: layer2.0.bn1.running_var"),
            std::string::npos);
  auto wrong = state;
  wrong["layer1.0.conv2.weight"] = zeros({4, 4, 5, 5});
  const std::string w = message([&] { load_2d_resnet(m, wrong); });
  EXPECT_NE(w.find("'layer1.0.conv2.weight' has shape [4, 4, 5, 5]"), std::string::npos) << w;
  // Nothing was copied by the failed loads.
  EXPECT_EQ(max_abs_diff(m.find("layer1.0.conv2.weight"), state.at("layer1.0.conv2.weight")), 0.0);

  const auto dir = std::filesystem::temp_directory_path() / "oar_video_weights_test";
  std::filesystem::create_directories(dir);
  const std::string absent = (dir / "absent.safetensors").string();
  EXPECT_NE(message([&] { load_2d_resnet_file(m, absent); }).find(absent), std::string::npos);
  const std::string corrupt = (dir / "corrupt.safetensors").string();
  std::ofstream(corrupt) << "not a safetensors file";
  EXPECT_NE(message([&] { load_2d_resnet_file(m, corrupt); }).find(corrupt), std::string::npos);
  // A good file loads.
  const std::string good = (dir / "good.safetensors").string();
  io::write_safetensors(good, m.state_dict());
  EXPECT_GT(load_2d_resnet_file(m, good), 0);
  std::filesystem::remove_all(dir);
}
