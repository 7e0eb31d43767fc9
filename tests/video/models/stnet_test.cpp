// StNet: super-image layout, output shapes, order sensitivity (across and within segments),
// finite-difference gradients through the temporal blocks and the Xception head, training.
#include <gtest/gtest.h>

#include "engine/core/error.h"
#include "engine/ops.h"
#include "tests/support/gradcheck.h"
#include "tests/video/models/frame_models_support.h"
#include "video/models/stnet.h"

using namespace oar;
using namespace oar::video;
using namespace oar::video::testing;

namespace {
StNetOptions tiny_stnet() {
  StNetOptions o;
  o.backbone = tiny_trunk();
  o.seglen = 2;
  o.num_classes = 5;
  return o;
}
Tensor frames_reordered(const Tensor& x, const std::vector<int64_t>& order) {
  std::vector<Tensor> f;
  for (const int64_t t : order) f.push_back(x.narrow(1, t, 1));
  return concat(f, 1);
}
}  // namespace

TEST(StNet, SuperImagesStackConsecutiveFramesOfASegment) {
  Generator gen(1);
  StNetOptions o = tiny_stnet();
  o.seglen = 3;
  StNet m(o, &gen);
  const Tensor x = randn({2, 6, 3, 4, 5}, &gen);  // 2 segments of 3 frames
  const Tensor s = m.super_images(x);
  ASSERT_EQ(s.shape(), (Shape{4, 9, 4, 5}));
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t seg = 0; seg < 2; ++seg)
      for (int64_t l = 0; l < 3; ++l)
        for (int64_t c = 0; c < 3; ++c)
          EXPECT_EQ(max_abs_diff(s.narrow(0, n * 2 + seg, 1).narrow(1, 3 * l + c, 1),
                                 x.narrow(0, n, 1)
                                     .narrow(1, seg * 3 + l, 1)
                                     .narrow(2, c, 1)
                                     .reshape({1, 1, 4, 5})),
                    0.0);
  EXPECT_EQ(m.find("conv1.weight").shape(), (Shape{4, 9, 7, 7}));
  EXPECT_THROW(m.super_images(randn({1, 5, 3, 4, 4}, &gen)), Error);  // 5 frames, seglen 3
}

TEST(StNet, OutputShapesAndOrderSensitivity) {
  Generator gen(2);
  StNet m(tiny_stnet(), &gen);
  m.eval();
  NoGradGuard no_grad;
  const Tensor x = randn({2, 8, 3, 32, 32}, &gen);  // 4 segments of 2 frames
  const Tensor y = m(x);
  EXPECT_EQ(y.shape(), (Shape{2, 5}));
  // Segments reversed (frames inside each kept): the temporal blocks and Xception see it.
  EXPECT_GT(max_abs_diff(m(frames_reordered(x, {6, 7, 4, 5, 2, 3, 0, 1})), y), 1e-3);
  // Frames swapped inside every segment: conv1 sees it.
  EXPECT_GT(max_abs_diff(m(frames_reordered(x, {1, 0, 3, 2, 5, 4, 7, 6})), y), 1e-3);
  // Testing on more segments than training (PaddleVideo: 7 -> 25).
  EXPECT_EQ(m(randn({1, 14, 3, 32, 32}, &gen)).shape(), (Shape{1, 5}));
}

TEST(StNet, GradientsMatchFiniteDifferences) {
  Generator gen(3);
  StNet m(tiny_stnet(), &gen);
  m.eval();
  const Tensor x = randn({1, 6, 3, 16, 16}, &gen);
  const std::vector<Tensor> params = {m.find("temporal2.bn.weight"), m.find("temporal3.conv.bias"),
                                      m.find("xception.bndw.weight"), m.find("fc.bias")};
  oar::testing::GradcheckOptions go;
  go.eps = 1e-3;  // f32 logits: smaller steps drown in rounding, larger ones cross ReLU kinks
  EXPECT_GRADCHECK([&](const std::vector<Tensor>&) { return m(x); }, params, go);
}

TEST(StNet, SgdStepsLowerTheLoss) {
  Generator gen(4);
  StNet m(tiny_stnet(), &gen);
  const Tensor x = randn({4, 6, 3, 32, 32}, &gen);
  const Tensor y = tensor<int64_t>({0, 1, 2, 3});
  const auto [first, last] = train_steps(m, x, y, 8);
  EXPECT_LT(last, 0.7 * first) << "first " << first << " last " << last;
}
