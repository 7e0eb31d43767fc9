// Clip transforms: one random draw per clip (every frame gets the same window and flip), TSM's
// multi-scale crop windows, the multi-view crops and the tensor layout.
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <tuple>

#include "engine/config/config.h"
#include "engine/config/error.h"
#include "readers/video/clip_transform.h"

using namespace oar;
using namespace oar::readers;

namespace {

// Frame t of a clip: channel 0 holds x / W, channel 1 y / H, channel 2 the constant 0.01 t,
// so a frame's pixels say where they came from and which frame they are.
Clip make_clip(int64_t frames, int64_t h, int64_t w) {
  Clip clip;
  for (int64_t t = 0; t < frames; ++t) {
    Image img(h, w, 3);
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) {
        float* p = img.pixel(y, x);
        p[0] = static_cast<float>(x) / static_cast<float>(w);
        p[1] = static_cast<float>(y) / static_cast<float>(h);
        p[2] = 0.01f * static_cast<float>(t);
      }
    clip.push_back(std::move(img));
  }
  return clip;
}

ClipTransformList build(const std::string& yaml) {
  register_clip_transforms();
  Config c = Config::from_string("t:\n" + yaml);
  return make_clip_transforms(c, "t");
}

// Every frame of every view equals frame 0 of that view in channels 0 and 1: one draw per clip.
void expect_shared_draw(const std::vector<Clip>& views) {
  for (const Clip& clip : views)
    for (size_t t = 1; t < clip.size(); ++t) {
      ASSERT_EQ(clip[t].data.size(), clip[0].data.size());
      for (size_t i = 0; i < clip[t].data.size(); i += 3) {
        ASSERT_FLOAT_EQ(clip[t].data[i], clip[0].data[i]) << "frame " << t;
        ASSERT_FLOAT_EQ(clip[t].data[i + 1], clip[0].data[i + 1]) << "frame " << t;
        ASSERT_NEAR(clip[t].data[i + 2], 0.01f * static_cast<float>(t), 1e-6);
      }
    }
}

// The source window (x, y, w, h) of an output of size s x s resized with bilinear sampling at
// pixel centres, read back from the coordinate channels.
std::tuple<int64_t, int64_t, int64_t, int64_t> window(const Image& out, int64_t W, int64_t H) {
  const int64_t s = out.width;
  const double x0 = out.pixel(0, 0)[0] * W, x1 = out.pixel(0, s - 1)[0] * W;
  const double y0 = out.pixel(0, 0)[1] * H, y1 = out.pixel(s - 1, 0)[1] * H;
  const double w = (x1 - x0) * s / (s - 1), h = (y1 - y0) * s / (s - 1);
  return {std::llround(x0 - 0.5 * w / s + 0.5), std::llround(y0 - 0.5 * h / s + 0.5),
          std::llround(w), std::llround(h)};
}

TEST(ClipTransforms, MultiScaleCropUsesTsmWindowsSharedByEveryFrame) {
  const auto list = build("  - {name: group_multi_scale_crop, size: 32}\n");
  // 64 x 48: base 48, sides int(48 s) = 48, 42, 36, 31 (31 snaps to 32); |i - j| <= 1.
  const std::vector<int64_t> sides = {48, 42, 36, 32};
  std::set<std::tuple<int64_t, int64_t, int64_t, int64_t>> allowed, seen;
  for (size_t i = 0; i < 4; ++i)
    for (size_t j = 0; j < 4; ++j) {
      if (std::abs(static_cast<int>(i) - static_cast<int>(j)) > 1) continue;
      const int64_t w = sides[j], h = sides[i], ws = (64 - w) / 4, hs = (48 - h) / 4;
      for (auto [a, b] : std::vector<std::pair<int64_t, int64_t>>{{0, 0},
                                                                  {4, 0},
                                                                  {0, 4},
                                                                  {4, 4},
                                                                  {2, 2},
                                                                  {0, 2},
                                                                  {4, 2},
                                                                  {2, 4},
                                                                  {2, 0},
                                                                  {1, 1},
                                                                  {3, 1},
                                                                  {1, 3},
                                                                  {3, 3}})
        allowed.insert({a * ws, b * hs, w, h});
    }
  for (uint64_t seed = 0; seed < 200; ++seed) {
    std::vector<Clip> views = {make_clip(4, 48, 64)};
    Generator g(seed);
    list[0]->apply(views, g);
    ASSERT_EQ(views[0][0].height, 32);
    ASSERT_EQ(views[0][0].width, 32);
    expect_shared_draw(views);
    const auto win = window(views[0][0], 64, 48);
    EXPECT_TRUE(allowed.count(win)) << "window x=" << std::get<0>(win) << " y=" << std::get<1>(win)
                                    << " w=" << std::get<2>(win) << " h=" << std::get<3>(win);
    seen.insert(win);
    // Same seed, same window.
    std::vector<Clip> again = {make_clip(1, 48, 64)};
    Generator g2(seed);
    list[0]->apply(again, g2);
    EXPECT_EQ(window(again[0][0], 64, 48), win);
  }
  EXPECT_GT(seen.size(), 40u) << "windows should vary with the seed";
}

TEST(ClipTransforms, RandomCropAndFlipShareOneDraw) {
  const auto list = build(
      "  - {name: group_random_crop, size: [20, 30]}\n"
      "  - {name: group_random_flip, p: 0.5}\n");
  int flipped = 0;
  std::set<std::pair<int64_t, int64_t>> origins;
  for (uint64_t seed = 0; seed < 60; ++seed) {
    std::vector<Clip> views = {make_clip(5, 40, 50)};
    Generator g(seed);
    apply_all(list, views, g);
    ASSERT_EQ(views[0][0].height, 20);
    ASSERT_EQ(views[0][0].width, 30);
    expect_shared_draw(views);
    const float left = views[0][0].pixel(0, 0)[0], right = views[0][0].pixel(0, 29)[0];
    if (left > right) ++flipped;
    const int64_t x = std::llround(std::min(left, right) * 50),
                  y = std::llround(views[0][0].pixel(0, 0)[1] * 40);
    EXPECT_LE(x, 20);
    EXPECT_LE(y, 20);
    origins.insert({x, y});
  }
  EXPECT_GT(flipped, 10);
  EXPECT_LT(flipped, 50);
  EXPECT_GT(origins.size(), 20u);
}

TEST(ClipTransforms, ScaleCenterCropAndNormalize) {
  const auto list = build(
      "  - {name: group_scale, short_size: 30}\n"
      "  - {name: group_center_crop, size: 24}\n"
      "  - {name: group_normalize, mean: [0.5, 0.5, 0.5], std: [0.25, 0.5, 1.0]}\n");
  std::vector<Clip> views = {make_clip(2, 60, 90)};
  Generator g(0);
  list[0]->apply(views, g);
  // PaddleVideo 2019: the long side becomes int(30 * 4 / 3) = 40, whatever the aspect ratio.
  EXPECT_EQ(views[0][0].height, 30);
  EXPECT_EQ(views[0][0].width, 40);
  list[1]->apply(views, g);
  EXPECT_EQ(views[0][0].height, 24);
  EXPECT_EQ(views[0][0].width, 24);
  const float before = views[0][1].pixel(3, 4)[2];
  list[2]->apply(views, g);
  EXPECT_NEAR(views[0][1].pixel(3, 4)[2], before - 0.5f, 1e-6);
  const auto keep = build("  - {name: group_scale, short_size: 30, fixed_ratio: false}\n");
  std::vector<Clip> v2 = {make_clip(1, 60, 90)};
  keep[0]->apply(v2, g);
  EXPECT_EQ(v2[0][0].width, 45);
}

TEST(ClipTransforms, ThreeAndTenCropMultiplyViews) {
  const auto three = build("  - {name: group_three_crop, size: 40}\n");
  std::vector<Clip> views = {make_clip(3, 40, 100), make_clip(3, 40, 100)};
  Generator g(0);
  three[0]->apply(views, g);
  ASSERT_EQ(views.size(), 6u);
  // Along the long side: start, end, middle.
  EXPECT_NEAR(views[0][0].pixel(0, 0)[0] * 100, 0, 1e-4);
  EXPECT_NEAR(views[1][0].pixel(0, 0)[0] * 100, 60, 1e-4);
  EXPECT_NEAR(views[2][0].pixel(0, 0)[0] * 100, 30, 1e-4);
  expect_shared_draw(views);
  const auto ten = build("  - {name: group_ten_crop, size: 20}\n");
  std::vector<Clip> v = {make_clip(2, 40, 60)};
  ten[0]->apply(v, g);
  ASSERT_EQ(v.size(), 10u);
  for (int i = 0; i < 5; ++i)  // the last five mirror the first five
    for (int64_t x = 0; x < 20; ++x)
      EXPECT_FLOAT_EQ(v[5 + i][1].pixel(7, x)[0], v[i][1].pixel(7, 19 - x)[0]);
  EXPECT_NEAR(v[3][0].pixel(0, 0)[0] * 60, 40, 1e-4);  // lower right
  EXPECT_NEAR(v[3][0].pixel(0, 0)[1] * 40, 20, 1e-4);
  expect_shared_draw(v);
}

TEST(ClipTransforms, TensorLayout) {
  std::vector<Clip> one = {make_clip(3, 4, 5)};
  Tensor t = views_to_tensor(one);
  EXPECT_EQ(t.shape(), (std::vector<int64_t>{3, 3, 4, 5}));
  // [T, C, H, W]: frame 2, channel 2 is 0.02 everywhere; channel 0 at (1, 3) is 3 / 5.
  EXPECT_NEAR(t.data<float>()[((2 * 3 + 2) * 4 + 1) * 5 + 3], 0.02f, 1e-7);
  EXPECT_NEAR(t.data<float>()[((1 * 3 + 0) * 4 + 1) * 5 + 3], 0.6f, 1e-7);
  std::vector<Clip> two = {make_clip(3, 4, 5), make_clip(3, 4, 5)};
  EXPECT_EQ(views_to_tensor(two).shape(), (std::vector<int64_t>{2, 3, 3, 4, 5}));
  std::vector<Clip> mixed = {make_clip(1, 4, 5), make_clip(1, 4, 6)};
  EXPECT_THROW(views_to_tensor(mixed), Error);
}

TEST(ClipTransforms, ConfigErrors) {
  EXPECT_THROW(build("  - {name: group_center_crop}\n"), ConfigError);
  EXPECT_THROW(build("  - {name: group_flip}\n"), ConfigError);
  EXPECT_THROW(build("  - {name: group_random_flip, q: 1}\n"), ConfigError);
  EXPECT_THROW(build("  - {name: group_normalize, mean: [0.5]}\n"), ConfigError);
  EXPECT_THROW(build("  - group_scale\n"), ConfigError);
}

}  // namespace
