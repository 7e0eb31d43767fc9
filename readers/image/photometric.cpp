// Value transforms: color_jitter, normalize, random_erasing.
#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>

#include "engine/core/error.h"
#include "readers/image/transform.h"

namespace oar::readers {

namespace {

float luma(const float* p, int64_t c) {
  return c == 3 ? 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2] : p[0];
}

// torchvision's ColorJitter with a fixed order (brightness, contrast, saturation, hue); each
// factor is uniform in [max(0, 1 - v), 1 + v] (hue: a shift in [-hue, hue] of a full turn).
class ColorJitter : public Transform {
 public:
  ColorJitter(double b, double c, double s, double h) : b_(b), c_(c), s_(s), h_(h) {}
  void apply(Image& img, Generator& rng) const override {
    auto factor = [&](double v) {
      return std::max(0.0, 1.0 - v) + (1.0 + v - std::max(0.0, 1.0 - v)) * rng.uniform();
    };
    const int64_t n = img.height * img.width, ch = img.channels;
    float* d = img.data.data();
    auto clamp01 = [](float v) { return std::min(1.0f, std::max(0.0f, v)); };
    if (b_ > 0) {
      const float f = static_cast<float>(factor(b_));
      for (auto& v : img.data) v = clamp01(v * f);
    }
    if (c_ > 0) {
      const float f = static_cast<float>(factor(c_));
      double mean = 0;
      for (int64_t i = 0; i < n; ++i) mean += luma(d + i * ch, ch);
      const float m = static_cast<float>(mean / static_cast<double>(std::max<int64_t>(n, 1)));
      for (auto& v : img.data) v = clamp01(f * v + (1 - f) * m);
    }
    if (s_ > 0 && ch == 3) {
      const float f = static_cast<float>(factor(s_));
      for (int64_t i = 0; i < n; ++i) {
        float* p = d + i * 3;
        const float g = luma(p, 3);
        for (int k = 0; k < 3; ++k) p[k] = clamp01(f * p[k] + (1 - f) * g);
      }
    }
    if (h_ > 0 && ch == 3) {
      const float shift = static_cast<float>((2 * rng.uniform() - 1) * h_ * 360.0);
      cv::Mat m(static_cast<int>(img.height), static_cast<int>(img.width), CV_32FC3, d);
      cv::cvtColor(m, m, cv::COLOR_RGB2HSV);  // H in [0, 360) for float images
      for (int64_t i = 0; i < n; ++i) {
        float& hv = d[i * 3];
        hv = std::fmod(hv + shift + 360.0f, 360.0f);
      }
      cv::cvtColor(m, m, cv::COLOR_HSV2RGB);
    }
  }

 private:
  double b_, c_, s_, h_;
};

// out = (x * scale - mean) / std per channel; x is on [0, 1], scale is 1 ("unit": ImageNet's
// 0.485/0.229 style) or 255 ("pixel": PaddleClas' 123.675/58.395 style).
class Normalize : public Transform {
 public:
  Normalize(std::vector<double> mean, std::vector<double> std, double scale)
      : mean_(std::move(mean)), std_(std::move(std)), scale_(scale) {}
  void apply(Image& img, Generator&) const override {
    const int64_t ch = img.channels;
    OAR_CHECK(mean_.size() == 1 || static_cast<int64_t>(mean_.size()) == ch,
              "normalize: ", mean_.size(), " means for an image of ", ch, " channels");
    OAR_CHECK(std_.size() == 1 || static_cast<int64_t>(std_.size()) == ch,
              "normalize: ", std_.size(), " stds for an image of ", ch, " channels");
    std::vector<float> a(static_cast<size_t>(ch)), b(static_cast<size_t>(ch));
    for (int64_t k = 0; k < ch; ++k) {
      const double m = mean_[mean_.size() == 1 ? 0 : k], s = std_[std_.size() == 1 ? 0 : k];
      a[k] = static_cast<float>(scale_ / s);
      b[k] = static_cast<float>(-m / s);
    }
    const size_t n = img.data.size();
    for (size_t i = 0; i < n; ++i) img.data[i] = img.data[i] * a[i % ch] + b[i % ch];
  }

 private:
  std::vector<double> mean_, std_;
  double scale_;
};

// torchvision's RandomErasing: with probability p, one rectangle of area fraction in `scale`
// and aspect ratio in `ratio` (10 tries) is set to `value` (one per channel or one for all), or
// to normal noise when `random` is set.
class RandomErasing : public Transform {
 public:
  RandomErasing(double p, std::vector<double> scale, std::vector<double> ratio,
                std::vector<double> value, bool random)
      : p_(p),
        scale_(std::move(scale)),
        ratio_(std::move(ratio)),
        value_(std::move(value)),
        random_(random) {}
  void apply(Image& img, Generator& rng) const override {
    if (rng.uniform() >= p_) return;
    const double area = static_cast<double>(img.height * img.width);
    const double lr0 = std::log(ratio_[0]), lr1 = std::log(ratio_[1]);
    for (int attempt = 0; attempt < 10; ++attempt) {
      const double target = area * (scale_[0] + (scale_[1] - scale_[0]) * rng.uniform());
      const double ar = std::exp(lr0 + (lr1 - lr0) * rng.uniform());
      const int64_t h = std::llround(std::sqrt(target * ar));
      const int64_t w = std::llround(std::sqrt(target / ar));
      if (h < 1 || w < 1 || h >= img.height || w >= img.width) continue;
      const int64_t y =
          static_cast<int64_t>(rng.uniform() * static_cast<double>(img.height - h + 1));
      const int64_t x =
          static_cast<int64_t>(rng.uniform() * static_cast<double>(img.width - w + 1));
      for (int64_t r = y; r < y + h; ++r)
        for (int64_t q = x; q < x + w; ++q)
          for (int64_t k = 0; k < img.channels; ++k)
            img.pixel(r, q)[k] =
                random_
                    ? static_cast<float>(rng.normal())
                    : static_cast<float>(
                          value_[value_.size() == 1 ? 0 : std::min<size_t>(k, value_.size() - 1)]);
      return;
    }
  }

 private:
  double p_;
  std::vector<double> scale_, ratio_, value_;
  bool random_;
};

}  // namespace

void register_photometric_transforms() {
  {
    Schema s("transform", "color_jitter",
             "random brightness, contrast, saturation (factors in [1-v, 1+v]) and hue shift");
    s.key<double>("brightness", 0.0, "brightness spread")
        .range(0, 10)
        .key<double>("contrast", 0.0, "contrast spread")
        .range(0, 10)
        .key<double>("saturation", 0.0, "saturation spread")
        .range(0, 10)
        .key<double>("hue", 0.0, "hue shift, a fraction of a full turn")
        .range(0, 0.5);
    transforms().add(s, [](const Config& c, const std::string& k) {
      return std::make_shared<ColorJitter>(
          c.get<double>(k + ".brightness"), c.get<double>(k + ".contrast"),
          c.get<double>(k + ".saturation"), c.get<double>(k + ".hue"));
    });
  }
  {
    Schema s(
        "transform", "normalize",
        "(x - mean) / std per channel; mean/std on the [0, 1] scale (unit) or [0, 255] (pixel)");
    s.key<std::vector<double>>("mean", {0.485, 0.456, 0.406}, "per channel, or one for all")
        .key<std::vector<double>>("std", {0.229, 0.224, 0.225}, "per channel, or one for all")
        .min(1e-9)
        .key<std::string>("scale", "unit", "the scale mean and std are given on")
        .choices({"unit", "pixel"});
    transforms().add(s, [](const Config& c, const std::string& k) {
      return std::make_shared<Normalize>(c.get<std::vector<double>>(k + ".mean"),
                                         c.get<std::vector<double>>(k + ".std"),
                                         c.get<std::string>(k + ".scale") == "pixel" ? 255.0 : 1.0);
    });
  }
  {
    Schema s("transform", "random_erasing",
             "with probability p, erase a random rectangle (after normalize, as torchvision)");
    s.key<double>("p", 0.5, "probability")
        .range(0, 1)
        .key<std::vector<double>>("scale", {0.02, 0.33}, "area fraction range")
        .range(0, 1)
        .key<std::vector<double>>("ratio", {0.3, 3.3}, "aspect ratio (h/w) range")
        .min(1e-3)
        .key<std::vector<double>>("value", {0.0}, "fill per channel, or one for all")
        .key<bool>("random", false, "fill with standard normal noise instead of value");
    transforms().add(s, [](const Config& c, const std::string& k) {
      for (const char* key : {".scale", ".ratio"}) {
        const auto v = c.get<std::vector<double>>(k + key);
        if (v.size() != 2 || v[0] > v[1])
          throw c.error(k + key, "expected [low, high] with low <= high", "two numbers");
      }
      if (c.get<std::vector<double>>(k + ".value").empty())
        throw c.error(k + ".value", "expected at least one value", "e.g. [0]");
      return std::make_shared<RandomErasing>(
          c.get<double>(k + ".p"), c.get<std::vector<double>>(k + ".scale"),
          c.get<std::vector<double>>(k + ".ratio"), c.get<std::vector<double>>(k + ".value"),
          c.get<bool>(k + ".random"));
    });
  }
}

}  // namespace oar::readers
