// Every image transform's geometry and values, determinism under the sample generator, and the
// batch-level mixup / cutmix soft targets.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "engine/config/error.h"
#include "readers/image/transform.h"
#include "readers/registry.h"

using namespace oar;
using namespace oar::readers;

namespace {

TransformList make(const std::string& list) {
  register_components();
  Config c = Config::from_string("t: " + list + "\n");
  return make_transforms(c, "t");
}

// h x w x c with value (y * w + x) * c + k, scaled to stay small.
Image ramp(int64_t h, int64_t w, int64_t c = 3) {
  Image img(h, w, c);
  for (size_t i = 0; i < img.data.size(); ++i) img.data[i] = static_cast<float>(i) / 1000.0f;
  return img;
}

Image run(const std::string& list, Image img, uint64_t seed = 1) {
  Generator rng(seed);
  apply_all(make(list), img, rng);
  return img;
}

// How many of `seeds` give a result different from seed 1's.
int differing(const std::string& list, const Image& img, int seeds = 8) {
  const Image ref = run(list, img, 1);
  int n = 0;
  for (int s = 2; s < 2 + seeds; ++s) {
    const Image o = run(list, img, static_cast<uint64_t>(s));
    n += (o.height != ref.height || o.width != ref.width || o.data != ref.data);
  }
  return n;
}

void expect_repeatable(const std::string& list, const Image& img) {
  const Image a = run(list, img, 42), b = run(list, img, 42);
  EXPECT_EQ(a.height, b.height);
  EXPECT_EQ(a.data, b.data) << list;
  EXPECT_GT(differing(list, img), 0) << list << " ignores the seed";
}

}  // namespace

TEST(Transforms, ResizeShortSideOrExact) {
  Image a = run("[{name: resize, size: 5}]", ramp(10, 20));
  EXPECT_EQ(a.height, 5);
  EXPECT_EQ(a.width, 10);
  Image b = run("[{name: resize, size: 5}]", ramp(30, 10));
  EXPECT_EQ(b.height, 15);
  EXPECT_EQ(b.width, 5);
  Image c = run("[{name: resize, size: [3, 7], interpolation: nearest}]", ramp(6, 14, 1));
  EXPECT_EQ(c.height, 3);
  EXPECT_EQ(c.width, 7);
  EXPECT_EQ(c.channels, 1);
  Image flat(8, 8, 3, 0.25f);
  for (float v : run("[{name: resize, size: 4, interpolation: area}]", flat).data)
    EXPECT_NEAR(v, 0.25f, 1e-6);
}

TEST(Transforms, CenterCropTakesTheMiddleAndPadsSmallImages) {
  Image a = run("[{name: center_crop, size: 4}]", ramp(10, 10, 1));
  EXPECT_EQ(a.height, 4);
  EXPECT_FLOAT_EQ(a.data[0], (3 * 10 + 3) / 1000.0f);
  Image odd = run("[{name: center_crop, size: 5}]", ramp(10, 10, 1));
  EXPECT_FLOAT_EQ(odd.data[0], (2 * 10 + 2) / 1000.0f);  // round(2.5) = 2, as torchvision
  Image pad = run("[{name: center_crop, size: [4, 6]}]", Image(2, 2, 1, 1.0f));
  EXPECT_EQ(pad.width, 6);
  EXPECT_FLOAT_EQ(std::accumulate(pad.data.begin(), pad.data.end(), 0.0f), 4.0f);
  EXPECT_FLOAT_EQ(pad.pixel(1, 2)[0], 1.0f);
  EXPECT_FLOAT_EQ(pad.pixel(0, 0)[0], 0.0f);
}

TEST(Transforms, RandomCropWithPadding) {
  const std::string t = "[{name: random_crop, size: 4, padding: 2}]";
  Image ones(4, 4, 3, 1.0f);
  bool saw_padding = false;
  for (uint64_t s = 0; s < 20; ++s) {
    Image o = run(t, ones, s);
    ASSERT_EQ(o.height, 4);
    ASSERT_EQ(o.width, 4);
    const float sum = std::accumulate(o.data.begin(), o.data.end(), 0.0f);
    EXPECT_GE(sum, 3.0f * 2 * 2);  // the window overlaps the image by at least 2 x 2
    saw_padding |= sum < 48.0f;
  }
  EXPECT_TRUE(saw_padding);
  expect_repeatable(t, ramp(8, 8));
}

TEST(Transforms, RandomResizedCrop) {
  const std::string t = "[{name: random_resized_crop, size: 8, scale: [0.2, 0.5]}]";
  Image o = run(t, ramp(40, 30));
  EXPECT_EQ(o.height, 8);
  EXPECT_EQ(o.width, 8);
  expect_repeatable(t, ramp(40, 30));
  // scale [1, 1] with ratio fixed to the image's: the whole image, only resized.
  Image flat(20, 20, 3, 0.5f);
  Image w = run("[{name: random_resized_crop, size: [5, 5], scale: [1, 1], ratio: [1, 1]}]", flat);
  for (float v : w.data) EXPECT_NEAR(v, 0.5f, 1e-6);
  EXPECT_THROW(make("[{name: random_resized_crop, size: 8, scale: [0.9, 0.1]}]"), ConfigError);
}

TEST(Transforms, HorizontalFlip) {
  Image img = ramp(3, 5);
  Image f = run("[{name: horizontal_flip, p: 1}]", img);
  for (int64_t y = 0; y < 3; ++y)
    for (int64_t x = 0; x < 5; ++x)
      for (int k = 0; k < 3; ++k) EXPECT_EQ(f.pixel(y, x)[k], img.pixel(y, 4 - x)[k]);
  EXPECT_EQ(run("[{name: horizontal_flip, p: 0}]", img).data, img.data);
  expect_repeatable("[{name: horizontal_flip}]", img);
}

TEST(Transforms, ColorJitter) {
  Image img = ramp(6, 6);
  for (auto& v : img.data) v = 0.2f + 0.5f * v;
  Image b = run("[{name: color_jitter, brightness: 0.4}]", img);
  const float f = b.data[5] / img.data[5];
  EXPECT_GE(f, 0.6f - 1e-5f);
  EXPECT_LE(f, 1.4f + 1e-5f);
  for (size_t i = 1; i < img.data.size(); ++i) EXPECT_NEAR(b.data[i], img.data[i] * f, 1e-5);
  const std::string all =
      "[{name: color_jitter, brightness: 0.3, contrast: 0.3, saturation: 0.3, hue: 0.1}]";
  Image a = run(all, img);
  for (float v : a.data) {
    EXPECT_GE(v, -1e-5f);
    EXPECT_LE(v, 1.0f + 1e-5f);
  }
  expect_repeatable(all, img);
  Image gray(4, 4, 1, 0.5f);
  EXPECT_EQ(run(all, gray).channels, 1);
  Image s(1, 1, 3);
  s.data = {1.0f, 0.0f, 0.0f};
  Image s0 = run("[{name: color_jitter, saturation: 1}]", s, 3);
  EXPECT_NEAR(s0.data[1], s0.data[2], 1e-6);  // G and B move together, along the luma axis
}

TEST(Transforms, NormalizeUnitAndPixelScales) {
  Image img(1, 1, 3);
  img.data = {0.5f, 0.5f, 1.0f};
  Image u = run("[{name: normalize, mean: [0.5, 0.25, 0.5], std: [0.5, 0.25, 0.25]}]", img);
  EXPECT_NEAR(u.data[0], 0.0f, 1e-6);
  EXPECT_NEAR(u.data[1], 1.0f, 1e-6);
  EXPECT_NEAR(u.data[2], 2.0f, 1e-6);
  Image p = run("[{name: normalize, mean: [127.5], std: [127.5], scale: pixel}]", img);
  EXPECT_NEAR(p.data[0], 0.0f, 1e-6);
  EXPECT_NEAR(p.data[2], 1.0f, 1e-6);
  Image gray(1, 1, 1, 0.5f);
  EXPECT_THROW(run("[{name: normalize}]", gray), std::exception);  // 3 means, 1 channel
}

TEST(Transforms, RandomErasing) {
  const std::string t = "[{name: random_erasing, p: 1, scale: [0.1, 0.2], value: [0]}]";
  Image ones(20, 20, 3, 1.0f);
  for (uint64_t s = 0; s < 10; ++s) {
    Image o = run(t, ones, s);
    int64_t zeros = 0;
    for (float v : o.data) zeros += v == 0.0f;
    EXPECT_GT(zeros, 0);
    const double frac = static_cast<double>(zeros) / 3.0 / 400.0;
    EXPECT_GE(frac, 0.05);  // rounding of the box sides widens [0.1, 0.2] a little
    EXPECT_LE(frac, 0.3);
  }
  expect_repeatable(t, ones);
  EXPECT_EQ(run("[{name: random_erasing, p: 0}]", ones).data, ones.data);
}

TEST(Transforms, AComposedPipelineIsRepeatable) {
  const std::string t =
      "[{name: random_resized_crop, size: 12}, {name: horizontal_flip}, "
      "{name: color_jitter, brightness: 0.2, contrast: 0.2, saturation: 0.2, hue: 0.05}, "
      "{name: normalize}, {name: random_erasing}, {name: to_chw}]";
  Image o = run(t, ramp(30, 40));
  EXPECT_EQ(o.height, 12);
  EXPECT_EQ(o.width, 12);
  expect_repeatable(t, ramp(30, 40));
}

namespace {
Batch four_images() {
  Batch b;
  b.size = 4;
  Tensor x = empty({4, 1, 10, 10});
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < 100; ++j) x.data<float>()[i * 100 + j] = static_cast<float>(i);
  Tensor y = empty({4}, DType::i64);
  for (int64_t i = 0; i < 4; ++i) y.data<int64_t>()[i] = i;
  b.tensors["image"] = x;
  b.tensors["label"] = y;
  return b;
}
BatchTransformList make_batch(const std::string& list) {
  register_components();
  Config c = Config::from_string("t: " + list + "\n");
  return make_batch_transforms(c, "t");
}
}  // namespace

TEST(BatchTransforms, MixupAndCutmixSoftTargetsSumToOneAndMatchThePixels) {
  for (const std::string name : {"mixup", "cutmix"}) {
    for (uint64_t seed = 0; seed < 6; ++seed) {
      Batch b = four_images();
      Generator rng(seed);
      make_batch("[{name: " + name + ", alpha: 1.0}]")[0]->apply(b, 5, rng);
      Tensor soft = b["label_soft"];
      ASSERT_EQ(soft.shape(), (Shape{4, 5}));
      const float* s = soft.data<float>();
      const float* x = b["image"].data<float>();
      for (int64_t i = 0; i < 4; ++i) {
        float sum = 0, expect_mean = 0;
        for (int64_t k = 0; k < 5; ++k) {
          sum += s[i * 5 + k];
          expect_mean += s[i * 5 + k] * static_cast<float>(k);  // image i was all i
        }
        EXPECT_NEAR(sum, 1.0f, 1e-5) << name;
        EXPECT_FLOAT_EQ(s[i * 5 + 4], 0.0f);
        float mean = 0;
        for (int64_t j = 0; j < 100; ++j) mean += x[i * 100 + j] / 100.0f;
        EXPECT_NEAR(mean, expect_mean, 1e-4) << name << " seed " << seed << " sample " << i;
      }
      EXPECT_EQ(b["label"].data<int64_t>()[2], 2);  // hard labels kept for accuracy
    }
  }
  Batch b = four_images();
  Generator rng(1);
  make_batch("[{name: mixup, prob: 0}]")[0]->apply(b, 4, rng);
  EXPECT_FLOAT_EQ(b["label_soft"].data<float>()[1 * 4 + 1], 1.0f);  // one-hot when not mixed
  EXPECT_FLOAT_EQ(b["image"].data<float>()[100], 1.0f);
}
