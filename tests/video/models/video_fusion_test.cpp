// Inference-time fusion in the video ResNets (video/models/video_resnet.h with vision/models/
// fused.h): in eval mode every bottleneck runs conv -> BN [-> ReLU] as folded convs with the
// shortcut's add and the last ReLU inside the third one, and the stem as one conv -> BN -> ReLU.
// Checked against the same model run module by module (NoInferenceFusionGuard) for TSM (the shift
// still feeds only the residual branch), TSN, and the 3D trunks of C2D and I3D: outputs (also
// under bf16 autocast), the gradients of every parameter with gradients on in eval mode, the fold
// following changed weights, statistics and a training step, and a forward hook still seeing
// every module.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>

#include "engine/autograd/autocast.h"
#include "engine/autograd/grad_mode.h"
#include "engine/nn.h"
#include "engine/ops.h"
#include "tests/support/fusion_checks.h"
#include "tests/support/gradcheck.h"
#include "tests/video/models/frame_models_support.h"
#include "video/models/nonlocal.h"
#include "video/models/tsm.h"
#include "video/models/tsn.h"
#include "vision/models/fused.h"

using namespace oar;
using namespace oar::video;
using namespace oar::video::testing;
using oar::testing::expect_close;
using oar::testing::rand_input;
using oar::testing::randomise_batch_norms;
using oar::testing::unfused;

namespace {

std::shared_ptr<nn::Module> make(const std::string& name) {
  Generator gen(3);
  if (name == "tsm" || name == "tsn") {
    TsmOptions o;
    o.backbone = tiny_trunk();
    o.backbone.blocks = {2, 1, 2, 1};  // identity and projection shortcuts in shifted blocks
    o.num_classes = 5;
    o.dropout = 0.0;
    if (name == "tsm") return std::make_shared<Tsm>(o, &gen);
    TsnOptions t;
    t.backbone = o.backbone;
    t.num_classes = 5;
    return std::make_shared<Tsn>(t, &gen);
  }
  NonLocalOptions o;
  o.i3d = name == "i3d";
  o.backbone = tiny_trunk();
  o.backbone.blocks = {1, 2, 2, 1};
  o.num_classes = 5;
  o.dropout = 0.0;
  return std::make_shared<NonLocalNet>(o, &gen);
}

// Clips [N, T, C, H, W]; T = 4 so that the shift moves real values both ways.
Tensor clips(int64_t n, uint64_t seed) {
  return rand_input({n, 4, 3, 32, 32}, seed).detach();
}

}  // namespace

class VideoFusion : public ::testing::TestWithParam<std::string> {};

TEST_P(VideoFusion, EvalOutputMatchesUnfused) {
  auto m = make(GetParam());
  randomise_batch_norms(*m);
  m->eval();
  const Tensor x = clips(2, 5);
  NoGradGuard ng;
  const Tensor want = unfused(*m, x);
  expect_close((*m)(x), want, 1e-4, "first call");
  expect_close((*m)(x), want, 1e-4, "cached fold");
}

TEST_P(VideoFusion, EvalUnderAutocastMatchesUnfused) {
  auto m = make(GetParam());
  randomise_batch_norms(*m);
  m->eval();
  const Tensor x = clips(1, 9);
  NoGradGuard ng;
  AutocastGuard ac(true, DType::bf16);
  const Tensor want = unfused(*m, x).to(DType::f32);
  const Tensor first = (*m)(x).to(DType::f32);
  const Tensor second = (*m)(x).to(DType::f32);
  expect_close(first, want, 5e-2, "bf16 fused vs unfused");
  // The second call uses the lowered fold made by the first: the same result.
  EXPECT_EQ(first.to_vector<float>(), second.to_vector<float>());
}

TEST_P(VideoFusion, EvalGradientsMatchUnfused) {
  auto m = make(GetParam());
  randomise_batch_norms(*m);
  m->eval();
  const Tensor x = clips(1, 6);
  auto grads = [&](bool fused) {
    for (auto& [n, p] : m->named_parameters()) p.set_grad(Tensor());
    Tensor y = fused ? (*m)(x) : unfused(*m, x);
    sum(y * y).backward();
    std::vector<std::pair<std::string, Tensor>> g;
    for (auto& [n, p] : m->named_parameters()) g.emplace_back(n, p.grad());
    return g;
  };
  const auto want = grads(false), got = grads(true);
  ASSERT_EQ(want.size(), got.size());
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(got[i].second.defined(), want[i].second.defined()) << got[i].first;
    if (want[i].second.defined()) expect_close(got[i].second, want[i].second, 2e-3, got[i].first);
  }
}

TEST_P(VideoFusion, FoldFollowsWeightsStatisticsAndTraining) {
  auto m = make(GetParam());
  randomise_batch_norms(*m);
  const Tensor x = clips(2, 7);
  NoGradGuard ng;
  m->eval();
  (*m)(x);  // folds and caches
  for (auto& [name, mod] : m->named_modules())
    if (auto* bn = dynamic_cast<nn::BatchNorm*>(mod)) bn->running_var.fill_(1.7);
  expect_close((*m)(x), unfused(*m, x), 1e-4, "after a fill of running_var");
  const Tensor before = (*m)(x);
  for (auto& [name, p] : m->named_parameters())
    if (name.find("conv") != std::string::npos) mul_(p, 0.9);
  const Tensor after = (*m)(x);
  expect_close(after, unfused(*m, x), 1e-4, "after scaling the conv weights");
  EXPECT_GT(max_abs_diff(after, before), 1e-6);
  m->train();
  (*m)(x);  // training forward: updates the running statistics in place
  m->eval();
  expect_close((*m)(x), unfused(*m, x), 1e-4, "after a training forward");
}

TEST_P(VideoFusion, ForwardHookSeesEveryModule) {
  auto m = make(GetParam());
  m->eval();
  const Tensor x = clips(1, 8);
  NoGradGuard ng;
  int bns = 0, calls = 0;
  for (auto& [name, mod] : m->named_modules()) bns += dynamic_cast<nn::BatchNorm*>(mod) != nullptr;
  nn::ForwardHookGuard hook([&](const nn::Module& mod, const Tensor&) {
    calls += dynamic_cast<const nn::BatchNorm*>(&mod) != nullptr;
  });
  (*m)(x);
  EXPECT_EQ(calls, bns);
}

INSTANTIATE_TEST_SUITE_P(Models, VideoFusion, ::testing::Values("tsm", "tsn", "c2d", "i3d"));
