// Geometric transforms: resize, random_resized_crop, center_crop, random_crop, horizontal_flip,
// and to_chw (the final layout marker).
#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>

#include "engine/core/error.h"
#include "readers/image/transform.h"

namespace oar::readers {

namespace {

int interpolation_flag(const std::string& name) {
  if (name == "nearest") return cv::INTER_NEAREST;
  if (name == "bicubic") return cv::INTER_CUBIC;
  if (name == "area") return cv::INTER_AREA;
  return cv::INTER_LINEAR;
}

Schema& add_interpolation(Schema& s) {
  return s.key<std::string>("interpolation", "bilinear", "resampling filter")
      .choices({"bilinear", "nearest", "bicubic", "area"});
}

void resize_to(Image& img, int64_t h, int64_t w, int flag) {
  if (img.height == h && img.width == w) return;
  Image out(h, w, img.channels);
  const int type = CV_32FC(static_cast<int>(img.channels));
  cv::Mat src(static_cast<int>(img.height), static_cast<int>(img.width), type, img.data.data());
  cv::Mat dst(static_cast<int>(h), static_cast<int>(w), type, out.data.data());
  cv::resize(src, dst, dst.size(), 0, 0, flag);
  img = std::move(out);
}

// The h x w window at (y, x); parts outside the image are zero.
void crop(Image& img, int64_t y, int64_t x, int64_t h, int64_t w) {
  Image out(h, w, img.channels);
  for (int64_t r = 0; r < h; ++r) {
    const int64_t sy = y + r;
    if (sy < 0 || sy >= img.height) continue;
    const int64_t x0 = std::max<int64_t>(0, -x), x1 = std::min<int64_t>(w, img.width - x);
    if (x1 <= x0) continue;
    std::copy(img.pixel(sy, x + x0), img.pixel(sy, x + x0) + (x1 - x0) * img.channels,
              out.pixel(r, x0));
  }
  img = std::move(out);
}

class Resize : public Transform {
 public:
  Resize(SizeSpec s, int flag) : s_(s), flag_(flag) {}
  void apply(Image& img, Generator&) const override {
    if (!s_.single) return resize_to(img, s_.height, s_.width, flag_);
    const int64_t short_side = std::min(img.height, img.width);
    const double f = static_cast<double>(s_.height) / static_cast<double>(short_side);
    // The short side gets exactly `size`; the long side keeps the aspect ratio (torchvision).
    const int64_t h = img.height <= img.width ? s_.height : static_cast<int64_t>(img.height * f);
    const int64_t w = img.width < img.height ? s_.height : static_cast<int64_t>(img.width * f);
    resize_to(img, std::max<int64_t>(h, 1), std::max<int64_t>(w, 1), flag_);
  }

 private:
  SizeSpec s_;
  int flag_;
};

// torchvision's RandomResizedCrop: up to 10 tries for an area fraction in `scale` and a log-
// uniform aspect ratio in `ratio`; then a center crop clamped to the ratio range.
class RandomResizedCrop : public Transform {
 public:
  RandomResizedCrop(SizeSpec s, std::vector<double> scale, std::vector<double> ratio, int flag)
      : s_(s), scale_(std::move(scale)), ratio_(std::move(ratio)), flag_(flag) {}
  void apply(Image& img, Generator& rng) const override {
    const double area = static_cast<double>(img.height * img.width);
    const double lr0 = std::log(ratio_[0]), lr1 = std::log(ratio_[1]);
    for (int attempt = 0; attempt < 10; ++attempt) {
      const double target = area * (scale_[0] + (scale_[1] - scale_[0]) * rng.uniform());
      const double ar = std::exp(lr0 + (lr1 - lr0) * rng.uniform());
      const int64_t w = std::llround(std::sqrt(target * ar));
      const int64_t h = std::llround(std::sqrt(target / ar));
      if (w > 0 && h > 0 && w <= img.width && h <= img.height) {
        const int64_t y =
            static_cast<int64_t>(rng.uniform() * static_cast<double>(img.height - h + 1));
        const int64_t x =
            static_cast<int64_t>(rng.uniform() * static_cast<double>(img.width - w + 1));
        crop(img, y, x, h, w);
        return resize_to(img, s_.height, s_.width, flag_);
      }
    }
    const double in_ratio = static_cast<double>(img.width) / static_cast<double>(img.height);
    int64_t w = img.width, h = img.height;
    if (in_ratio < ratio_[0])
      h = std::llround(static_cast<double>(w) / ratio_[0]);
    else if (in_ratio > ratio_[1])
      w = std::llround(static_cast<double>(h) * ratio_[1]);
    crop(img, (img.height - h) / 2, (img.width - w) / 2, h, w);
    resize_to(img, s_.height, s_.width, flag_);
  }

 private:
  SizeSpec s_;
  std::vector<double> scale_, ratio_;
  int flag_;
};

class CenterCrop : public Transform {
 public:
  explicit CenterCrop(SizeSpec s) : s_(s) {}
  void apply(Image& img, Generator&) const override {
    // Rounded half to even like torchvision's Python round(); a smaller image is zero-padded.
    const int64_t y = static_cast<int64_t>(std::nearbyint((img.height - s_.height) / 2.0));
    const int64_t x = static_cast<int64_t>(std::nearbyint((img.width - s_.width) / 2.0));
    crop(img, y, x, s_.height, s_.width);
  }

 private:
  SizeSpec s_;
};

class RandomCrop : public Transform {
 public:
  RandomCrop(SizeSpec s, int64_t padding) : s_(s), pad_(padding) {}
  void apply(Image& img, Generator& rng) const override {
    // The window moves over the image padded by `padding` zeros on every side.
    const int64_t ph = img.height + 2 * pad_, pw = img.width + 2 * pad_;
    const int64_t y =
        ph >= s_.height
            ? static_cast<int64_t>(rng.uniform() * static_cast<double>(ph - s_.height + 1))
            : (ph - s_.height) / 2;
    const int64_t x =
        pw >= s_.width
            ? static_cast<int64_t>(rng.uniform() * static_cast<double>(pw - s_.width + 1))
            : (pw - s_.width) / 2;
    crop(img, y - pad_, x - pad_, s_.height, s_.width);
  }

 private:
  SizeSpec s_;
  int64_t pad_;
};

class HorizontalFlip : public Transform {
 public:
  explicit HorizontalFlip(double p) : p_(p) {}
  void apply(Image& img, Generator& rng) const override {
    if (rng.uniform() >= p_) return;
    const int64_t c = img.channels;
    for (int64_t y = 0; y < img.height; ++y)
      for (int64_t x = 0; x < img.width / 2; ++x)
        std::swap_ranges(img.pixel(y, x), img.pixel(y, x) + c, img.pixel(y, img.width - 1 - x));
  }

 private:
  double p_;
};

class ToChw : public Transform {
 public:
  void apply(Image&, Generator&) const override {}  // the dataset lays out [C, H, W]
};

void check_pair(const Config& c, const std::string& key, double lo_min) {
  const auto v = c.get<std::vector<double>>(key);
  if (v.size() != 2 || v[0] > v[1] || v[0] < lo_min)
    throw c.error(key, "expected [low, high] with " + std::to_string(lo_min) + " <= low <= high",
                  "two numbers");
}

}  // namespace

void register_geometric_transforms() {
  {
    Schema s("transform", "resize", "resize the short side to `size` (aspect kept) or to [h, w]");
    s.any("size", "an integer (short side) or [height, width] (exact)");
    add_interpolation(s);
    transforms().add(s, [](const Config& c, const std::string& k) {
      if (!c.has(k + ".size")) throw c.error(k + ".size", "missing required key", "e.g. 256");
      return std::make_shared<Resize>(read_size(c, k + ".size"),
                                      interpolation_flag(c.get<std::string>(k + ".interpolation")));
    });
  }
  {
    Schema s("transform", "random_resized_crop",
             "crop a random area fraction (scale) and aspect ratio (ratio), resize to size");
    s.any("size", "an integer or [height, width]")
        .key<std::vector<double>>("scale", {0.08, 1.0}, "area fraction range [low, high]")
        .range(0, 1)
        .key<std::vector<double>>("ratio", {3.0 / 4.0, 4.0 / 3.0}, "aspect ratio (w/h) range")
        .min(1e-3);
    add_interpolation(s);
    transforms().add(s, [](const Config& c, const std::string& k) {
      if (!c.has(k + ".size")) throw c.error(k + ".size", "missing required key", "e.g. 224");
      check_pair(c, k + ".scale", 1e-6);
      check_pair(c, k + ".ratio", 1e-3);
      return std::make_shared<RandomResizedCrop>(
          read_size(c, k + ".size"), c.get<std::vector<double>>(k + ".scale"),
          c.get<std::vector<double>>(k + ".ratio"),
          interpolation_flag(c.get<std::string>(k + ".interpolation")));
    });
  }
  {
    Schema s("transform", "center_crop", "the central size x size window (zero-padded if larger)");
    s.any("size", "an integer or [height, width]");
    transforms().add(s, [](const Config& c, const std::string& k) {
      if (!c.has(k + ".size")) throw c.error(k + ".size", "missing required key", "e.g. 224");
      return std::make_shared<CenterCrop>(read_size(c, k + ".size"));
    });
  }
  {
    Schema s("transform", "random_crop", "a random size window of the image padded with zeros");
    s.any("size", "an integer or [height, width]")
        .key<int64_t>("padding", 0, "zero pixels added on every side first")
        .range(0, 4096);
    transforms().add(s, [](const Config& c, const std::string& k) {
      if (!c.has(k + ".size")) throw c.error(k + ".size", "missing required key", "e.g. 32");
      return std::make_shared<RandomCrop>(read_size(c, k + ".size"),
                                          c.get<int64_t>(k + ".padding"));
    });
  }
  {
    Schema s("transform", "horizontal_flip", "mirror left-right with probability p");
    s.key<double>("p", 0.5, "probability").range(0, 1);
    transforms().add(s, [](const Config& c, const std::string& k) {
      return std::make_shared<HorizontalFlip>(c.get<double>(k + ".p"));
    });
  }
  {
    Schema s("transform", "to_chw",
             "lay the image out as a [C, H, W] f32 tensor (last; implied when absent)");
    transforms().add(s,
                     [](const Config&, const std::string&) { return std::make_shared<ToChw>(); });
  }
}

}  // namespace oar::readers
