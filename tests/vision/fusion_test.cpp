// Inference-time fusion (vision/models/fused.h): in eval mode ResNet (basic and bottleneck
// blocks, projection shortcuts, the stem) and MobileNetV2 (ConvNormActivation, the projection
// with its residual) run conv -> BN [-> add] [-> ReLU|ReLU6] as one folded conv. Checked against
// the same model run module by module (NoInferenceFusionGuard): outputs and, with gradients on in
// eval mode, every parameter's gradient; the fold follows changed statistics and a training step;
// a forward hook (`oar model summary`) still sees every module. In training mode the same
// patterns run as conv_bn_train nodes (conv_fused.h), checked the same way (outputs, gradients,
// running statistics).
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>

#include "engine/autograd/autocast.h"
#include "engine/autograd/grad_mode.h"
#include "engine/nn.h"
#include "engine/ops.h"
#include "engine/ops/conv_layout.h"
#include "engine/optim/sgd.h"
#include "tests/support/fusion_checks.h"
#include "tests/support/gradcheck.h"
#include "vision/models/fused.h"
#include "vision/models/mobilenet_v2.h"
#include "vision/models/resnet.h"
#include "vision/models/simple_cnn.h"

using namespace oar;
using namespace oar::vision;
using oar::testing::expect_close;
using oar::testing::expect_close_norm;
using oar::testing::rand_input;
using oar::testing::randomise_batch_norms;
using oar::testing::unfused;

namespace {

std::shared_ptr<nn::Module> make(const std::string& name, bool small_input = false) {
  Generator gen(3);
  if (name == "simple_cnn") {
    SimpleCnnOptions o;
    o.in_channels = 3, o.width = 8;
    o.dropout = 0;  // training runs compare two models: no random masks
    return std::make_shared<SimpleCnn>(o, &gen);
  }
  if (name == "mobilenet_v2") {
    MobileNetV2Options o;
    o.width_mult = 0.5, o.num_classes = 10, o.small_input = true;
    o.dropout = 0;  // training runs compare two models: no random masks
    return std::make_shared<MobileNetV2>(o, &gen);
  }
  ResNetOptions o = resnet_variant(name);
  o.num_classes = 10;
  o.small_input = small_input;
  return std::make_shared<ResNet>(o, &gen);
}

int count_batch_norm_calls(nn::Module& m, const Tensor& x) {
  int calls = 0;
  nn::ForwardHookGuard hook([&](const nn::Module& mod, const Tensor&) {
    calls += dynamic_cast<const nn::BatchNorm*>(&mod) != nullptr;
  });
  m(x);
  return calls;
}

}  // namespace

class Fusion : public ::testing::TestWithParam<std::string> {};

// The output check covers the bottleneck blocks (ResNet-50); the slower checks run on the two
// small models, which still have every fused pattern but the bottleneck's third conv.
TEST_P(Fusion, EvalOutputMatchesUnfused) {
  auto m = make(GetParam());
  randomise_batch_norms(*m);
  m->eval();
  const Tensor x = rand_input({2, 3, 16, 16}, 5).detach();
  NoGradGuard ng;
  const Tensor want = unfused(*m, x);
  expect_close((*m)(x), want, 1e-4, "first call");
  expect_close((*m)(x), want, 1e-4, "cached fold");
}

TEST_P(Fusion, EvalUnderAutocastMatchesUnfused) {
  auto m = make(GetParam());
  randomise_batch_norms(*m);
  m->eval();
  const Tensor x = rand_input({2, 3, 16, 16}, 7).detach();
  NoGradGuard ng;
  AutocastGuard ac(true, DType::bf16);
  const Tensor want = unfused(*m, x).to(DType::f32);
  const Tensor first = (*m)(x).to(DType::f32);
  const Tensor second = (*m)(x).to(DType::f32);
  expect_close(first, want, 5e-2, "bf16 fused vs unfused");
  // The second call uses the lowered fold made by the first: the same result.
  EXPECT_EQ(first.to_vector<float>(), second.to_vector<float>());
}

TEST_P(Fusion, EvalGradientsMatchUnfused) {
  auto m = make(GetParam());
  randomise_batch_norms(*m);
  m->eval();
  const Tensor x = rand_input({1, 3, 16, 16}, 6).detach();
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
    ASSERT_TRUE(got[i].second.defined()) << got[i].first;
    expect_close(got[i].second, want[i].second, 2e-3, got[i].first);
  }
}

TEST_P(Fusion, FoldFollowsStatisticsAndTraining) {
  auto m = make(GetParam());
  randomise_batch_norms(*m);
  const Tensor x = rand_input({2, 3, 16, 16}, 7).detach();
  NoGradGuard ng;
  m->eval();
  (*m)(x);  // folds and caches
  for (auto& [name, mod] : m->named_modules())
    if (auto* bn = dynamic_cast<nn::BatchNorm*>(mod)) bn->running_var.fill_(1.7);
  expect_close((*m)(x), unfused(*m, x), 1e-4, "after copy into running_var");
  m->train();
  (*m)(x);  // training forward: updates the running statistics in place
  m->eval();
  expect_close((*m)(x), unfused(*m, x), 1e-4, "after a training forward");
}

TEST_P(Fusion, ForwardHookSeesEveryModule) {
  auto m = make(GetParam());
  m->eval();
  const Tensor x = rand_input({1, 3, 16, 16}, 8).detach();
  NoGradGuard ng;
  int bns = 0;
  for (auto& [name, mod] : m->named_modules()) bns += dynamic_cast<nn::BatchNorm*>(mod) != nullptr;
  EXPECT_EQ(count_batch_norm_calls(*m, x), bns);
}

// Training mode: conv -> BN [-> add] [-> act] as conv_bn_train nodes against two identical models
// run module by module: outputs, every parameter gradient, running statistics and batch counts.
void expect_training_matches_unfused(const std::string& name, const Shape& x_shape,
                                     bool small_input = false, double grad_tol = 2e-2,
                                     double buffer_tol = 1e-5, int steps = 2) {
  auto fused = make(name, small_input), plain = make(name, small_input);
  randomise_batch_norms(*fused);
  randomise_batch_norms(*plain);
  fused->train();
  plain->train();
  const Tensor x = rand_input(x_shape, 11).detach();
  for (int step = 0; step < steps; ++step) {
    SCOPED_TRACE(step);
    for (auto* m : {fused.get(), plain.get()})
      for (auto& [n, p] : m->named_parameters()) p.set_grad(Tensor());
    const Tensor got = (*fused)(x), want = unfused(*plain, x);
    expect_close(got, want, 1e-4, "output");
    sum(got * got).backward();
    sum(want * want).backward();
    const auto gp = fused->named_parameters(), wp = plain->named_parameters();
    ASSERT_EQ(gp.size(), wp.size());
    for (size_t i = 0; i < gp.size(); ++i) {
      ASSERT_TRUE(gp[i].second.grad().defined()) << gp[i].first;
      expect_close_norm(gp[i].second.grad(), wp[i].second.grad(), grad_tol, gp[i].first);
    }
    const auto gb = fused->named_buffers(), wb = plain->named_buffers();
    ASSERT_EQ(gb.size(), wb.size());
    for (size_t i = 0; i < gb.size(); ++i)
      expect_close(gb[i].second.to(DType::f32), wb[i].second.to(DType::f32), buffer_tol,
                   gb[i].first);
  }
}

TEST_P(Fusion, TrainingMatchesUnfused) {
  expect_training_matches_unfused(GetParam(), {4, 3, 16, 16});
}

TEST_P(Fusion, ForwardHookSeesEveryModuleInTraining) {
  auto m = make(GetParam());
  m->train();
  const Tensor x = rand_input({2, 3, 16, 16}, 8).detach();
  int bns = 0;
  for (auto& [name, mod] : m->named_modules()) bns += dynamic_cast<nn::BatchNorm*>(mod) != nullptr;
  EXPECT_EQ(count_batch_norm_calls(*m, x), bns);
}

TEST(Resnet50Fusion, BottleneckTrainingMatchesUnfused) {
  // Small-input stem: the last stage still has 2x2 pixels, so its BN statistics (over 8 values)
  // are well conditioned. Fifty layers of training BN amplify rounding: the unfused model
  // against itself with the input scaled by 1 + 1e-6 differs by up to ~5% in its gradients, hence
  // the looser tolerances (a wrong mask or layout is off by far more).
  expect_training_matches_unfused("resnet50", {2, 3, 16, 16}, true, 5e-2, 1e-4, 1);
}

TEST(Resnet50Fusion, BottleneckEvalOutputMatchesUnfused) {
  auto m = make("resnet50");
  randomise_batch_norms(*m);
  m->eval();
  const Tensor x = rand_input({1, 3, 16, 16}, 9).detach();
  NoGradGuard ng;
  expect_close((*m)(x), unfused(*m, x), 1e-4, "resnet50");
}

// On the CPU the folded eval trunk runs channels-last (conv_layout.h: NHWC convs, the residual
// added in place, NHWC max pool and global pool): bottleneck and basic blocks on odd map sizes
// (strided projections on odd maps, the CIFAR zero-pad shortcut, vd's folded deep stem and
// average-pool shortcuts, maps down to 1x1) against the module-by-module NCHW run; inputs given
// channels-last or as a strided view; a forward hook; bf16 autocast.
TEST(ResNetChannelsLast, EvalMatchesUnfusedOnOddMaps) {
  struct Case {
    const char* name;
    Shape x;
    bool small_input;
    bool more;  // also: channels-last and strided inputs, bf16 autocast
  };
  const Case cases[] = {
      {"resnet50", {1, 3, 37, 29}, false, false},
      {"resnet18", {1, 3, 7, 7}, true, false},  // layer4 on a 1x1 map
      {"resnet18", {2, 3, 33, 35}, false, true},
      {"resnet20_cifar", {2, 3, 17, 15}, false, false},
      {"resnet18_vd", {1, 3, 19, 21}, false, true},  // deep stem, average-pool shortcuts
  };
  uint64_t seed = 40;
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message() << c.name << " " << shape_str(c.x));
    auto m = make(c.name, c.small_input);
    randomise_batch_norms(*m);
    m->eval();
    const Tensor x = rand_input(c.x, seed++).detach();
    NoGradGuard ng;
    const Tensor want = unfused(*m, x);
    expect_close((*m)(x), want, 1e-4, "plain input");
    if (!c.more) continue;
    expect_close((*m)(to_channels_last(x)), want, 1e-4, "channels-last input");
    const Tensor wide = rand_input({c.x[0], c.x[1], c.x[2], c.x[3] * 2}, seed++).detach();
    const Tensor strided = wide.slice(3, 0, c.x[3] * 2, 2);  // every other column: a view
    expect_close((*m)(strided), unfused(*m, strided.contiguous()), 1e-4, "strided input");
    int bns = 0;  // a forward hook still sees every module (no folding then)
    for (auto& [name, mod] : m->named_modules())
      bns += dynamic_cast<nn::BatchNorm*>(mod) != nullptr;
    EXPECT_EQ(count_batch_norm_calls(*m, x), bns);
    AutocastGuard ac(true, DType::bf16);
    expect_close((*m)(x).to(DType::f32), unfused(*m, x).to(DType::f32), 5e-2, "bf16 autocast");
  }
}

INSTANTIATE_TEST_SUITE_P(Models, Fusion,
                         ::testing::Values("resnet18", "mobilenet_v2", "simple_cnn"));
