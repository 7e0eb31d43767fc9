// TSN and TSM: the temporal shift moves exactly the intended channels, TSN is blind to frame
// order while TSM is not, output shapes, finite-difference gradients and a short training run.
#include <gtest/gtest.h>

#include "engine/core/error.h"
#include "engine/ops.h"
#include "tests/support/gradcheck.h"
#include "tests/video/models/frame_models_support.h"
#include "video/models/temporal_shift.h"
#include "video/models/tsm.h"
#include "video/models/tsn.h"

using namespace oar;
using namespace oar::video;
using namespace oar::video::testing;

namespace {

// x[n, t, c, h, w] = 1000 n + 100 t + c + 0.01 (h * W + w) + 0.5: every value names its place.
Tensor labelled(int64_t n, int64_t t, int64_t c, int64_t h, int64_t w) {
  std::vector<float> v;
  for (int64_t a = 0; a < n; ++a)
    for (int64_t b = 0; b < t; ++b)
      for (int64_t k = 0; k < c; ++k)
        for (int64_t i = 0; i < h * w; ++i)
          v.push_back(static_cast<float>(1000 * a + 100 * b + k + 0.01 * i + 0.5));
  return tensor(v, {n * t, c, h, w});
}

Tensor reverse_time(const Tensor& x) {
  std::vector<Tensor> frames;
  for (int64_t t = x.size(1) - 1; t >= 0; --t) frames.push_back(x.narrow(1, t, 1));
  return concat(frames, 1);
}

TsnOptions tiny_tsn() {
  TsnOptions o;
  o.backbone = tiny_trunk();
  o.num_classes = 5;
  return o;
}
TsmOptions tiny_tsm() {
  TsmOptions o;
  o.backbone = tiny_trunk();
  o.num_classes = 5;
  o.dropout = 0.0;
  return o;
}

}  // namespace

TEST(TemporalShift, MovesOneEighthEachWayAndZeroPadsTheEnds) {
  const int64_t n = 2, t = 4, c = 16, h = 2, w = 3;
  const Tensor x = labelled(n, t, c, h, w);
  const Tensor y = temporal_shift(x, t, 8);
  ASSERT_EQ(y.shape(), x.shape());
  const auto xv = x.to_vector<float>(), yv = y.to_vector<float>();
  auto at = [&](const std::vector<float>& v, int64_t a, int64_t b, int64_t k, int64_t i) {
    return v[static_cast<size_t>((((a * t + b) * c + k) * h * w) + i)];
  };
  for (int64_t a = 0; a < n; ++a)
    for (int64_t b = 0; b < t; ++b)
      for (int64_t k = 0; k < c; ++k)
        for (int64_t i = 0; i < h * w; ++i) {
          float expect;
          if (k < 2)  // fold = 16 / 8 = 2: from the next segment
            expect = b + 1 < t ? at(xv, a, b + 1, k, i) : 0.f;
          else if (k < 4)  // from the previous segment
            expect = b > 0 ? at(xv, a, b - 1, k, i) : 0.f;
          else
            expect = at(xv, a, b, k, i);
          ASSERT_EQ(at(yv, a, b, k, i), expect) << "n " << a << " t " << b << " c " << k;
        }
  // One segment: both shifted groups come from outside the clip.
  const Tensor one = temporal_shift(labelled(1, 1, 16, 1, 1), 1, 8);
  EXPECT_EQ(one.to_vector<float>()[1], 0.f);
  EXPECT_EQ(one.to_vector<float>()[3], 0.f);
  EXPECT_EQ(one.to_vector<float>()[4], 4.5f);
  EXPECT_THROW(temporal_shift(labelled(1, 3, 16, 1, 1), 2, 8), Error);
}

TEST(TemporalShift, GradientsMatchFiniteDifferences) {
  const Tensor x = oar::testing::rand_input({6, 16, 2, 2}, 11);
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return temporal_shift(in[0], 3, 8); },
                   std::vector<Tensor>{x});
}

// The shift written as slices, pads and a concat (the reference formulation): values and the
// input gradient of the one-pass op must match it for uneven channel counts (fold 1 of 12), one
// and several segments, and an input that is not contiguous.
Tensor shift_by_slices(const Tensor& x, int64_t seg, int64_t fold_div) {
  const int64_t n = x.size(0) / seg, c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t fold = c / fold_div;
  const Tensor v = x.reshape({n, seg, c, h, w});
  const Tensor next =
      seg > 1 ? pad(v.narrow(2, 0, fold).narrow(1, 1, seg - 1), {0, 0, 0, 1, 0, 0, 0, 0, 0, 0})
              : zeros_like(v.narrow(2, 0, fold));
  const Tensor prev =
      seg > 1 ? pad(v.narrow(2, fold, fold).narrow(1, 0, seg - 1), {0, 0, 1, 0, 0, 0, 0, 0, 0, 0})
              : zeros_like(v.narrow(2, fold, fold));
  return concat({next, prev, v.narrow(2, 2 * fold, c - 2 * fold)}, 2).reshape(x.shape());
}

TEST(TemporalShift, ValuesAndGradientsMatchTheSliceFormulation) {
  for (const int64_t seg : {1, 2, 5}) {
    SCOPED_TRACE("segments " + std::to_string(seg));
    // [C, N*T, H, W] transposed: the op sees a non-contiguous [N*T, 12, 3, 2] input.
    const Tensor base = oar::testing::rand_input({12, 2 * seg, 3, 2}, 20 + seg).detach();
    const Tensor g = oar::testing::rand_input({2 * seg, 12, 3, 2}, 40 + seg);
    Tensor a = base.clone().set_requires_grad(), b = base.clone().set_requires_grad();
    const Tensor ya = temporal_shift(a.transpose(0, 1), seg, 8);
    const Tensor yb = shift_by_slices(b.transpose(0, 1), seg, 8);
    ASSERT_EQ(ya.shape(), (Shape{2 * seg, 12, 3, 2}));
    EXPECT_EQ(ya.contiguous().to_vector<float>(), yb.contiguous().to_vector<float>());
    sum(ya * g).backward();
    sum(yb * g).backward();
    EXPECT_EQ(a.grad().contiguous().to_vector<float>(), b.grad().contiguous().to_vector<float>());
  }
  // Fewer channels than fold_div: nothing moves.
  const Tensor few = oar::testing::rand_input({4, 3, 2, 2}, 60);
  EXPECT_EQ(temporal_shift(few, 2, 8).to_vector<float>(), few.to_vector<float>());
}

TEST(Tsn, OutputShapeAndOrderInvariance) {
  Generator gen(1);
  Tsn m(tiny_tsn(), &gen);
  m.eval();
  NoGradGuard no_grad;
  const Tensor x = randn({2, 4, 3, 32, 32}, &gen);
  const Tensor y = m(x);
  EXPECT_EQ(y.shape(), (Shape{2, 5}));
  // Average consensus: any frame order gives the same logits; more segments are fine.
  EXPECT_LT(max_abs_diff(m(reverse_time(x)), y), 1e-5);
  EXPECT_EQ(m(randn({1, 7, 3, 32, 32}, &gen)).shape(), (Shape{1, 5}));
  EXPECT_THROW(m(randn({2, 3, 32, 32}, &gen)), Error);
  EXPECT_THROW(m(randn({1, 2, 4, 32, 32}, &gen)), Error);
}

TEST(Tsm, OutputShapeAndOrderSensitivity) {
  Generator gen(2);
  Tsm m(tiny_tsm(), &gen);
  m.eval();
  NoGradGuard no_grad;
  const Tensor x = randn({2, 4, 3, 32, 32}, &gen);
  const Tensor y = m(x);
  EXPECT_EQ(y.shape(), (Shape{2, 5}));
  EXPECT_GT(max_abs_diff(m(reverse_time(x)), y), 1e-3);
  // Same weights without the shift are TSN, which is order-free: the shift is the only cause.
  Generator gen2(2);
  Tsn plain(tiny_tsn(), &gen2);
  plain.eval();
  ASSERT_TRUE(plain
                  .load_state_dict(
                      [&] {
                        std::map<std::string, Tensor> s;
                        for (auto& [k, v] : m.state_dict()) s[k] = v;
                        return s;
                      }(),
                      true)
                  .ok());
  EXPECT_LT(max_abs_diff(plain(reverse_time(x)), plain(x)), 1e-5);
  // A segment count other than the first call's works too (the shift follows T).
  EXPECT_EQ(m(randn({1, 6, 3, 32, 32}, &gen)).shape(), (Shape{1, 5}));
}

TEST(Tsm, GradientsMatchFiniteDifferences) {
  Generator gen(3);
  Tsm m(tiny_tsm(), &gen);
  m.eval();
  const Tensor x = randn({1, 4, 3, 16, 16}, &gen);
  // The conv right after the first shift, and the classifier.
  const std::vector<Tensor> params = {m.find("layer1.0.conv1.weight"), m.find("fc.bias")};
  oar::testing::GradcheckOptions go;
  go.eps = 3e-4;  // logits are O(1) f32: small steps keep clear of the ReLU and max-pool kinks
  EXPECT_GRADCHECK([&](const std::vector<Tensor>&) { return m(x); }, params, go);
}

TEST(Tsn, GradientsMatchFiniteDifferences) {
  Generator gen(4);
  Tsn m(tiny_tsn(), &gen);
  m.eval();
  const Tensor x = randn({2, 3, 3, 16, 16}, &gen);
  const std::vector<Tensor> params = {m.find("layer1.0.conv1.weight"),
                                      m.find("layer4.0.bn3.weight"), m.find("fc.bias")};
  oar::testing::GradcheckOptions go;
  go.eps = 3e-4;  // logits are O(1) f32: small steps keep clear of the ReLU and max-pool kinks
  EXPECT_GRADCHECK([&](const std::vector<Tensor>&) { return m(x); }, params, go);
}

TEST(TsnTsm, SgdStepsLowerTheLoss) {
  for (const bool shift : {false, true}) {
    SCOPED_TRACE(shift ? "tsm" : "tsn");
    Generator gen(5);
    std::shared_ptr<Tsn> m =
        shift ? std::make_shared<Tsm>(tiny_tsm(), &gen) : std::make_shared<Tsn>(tiny_tsn(), &gen);
    const Tensor x = randn({4, 4, 3, 32, 32}, &gen);
    const Tensor y = tensor<int64_t>({0, 1, 2, 3});
    const auto [first, last] = train_steps(*m, x, y, 8);
    EXPECT_LT(last, 0.7 * first) << "first " << first << " last " << last;
  }
}
