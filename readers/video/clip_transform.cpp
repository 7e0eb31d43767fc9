// The group_* transforms of PaddleVideo's KineticsReader and TSM's transforms, for clips.
#include "readers/video/clip_transform.h"

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>

#include "engine/core/error.h"
#include "readers/image/transform.h"
#include "readers/video/sampling.h"

namespace oar::readers {

void resize_frame(Image& img, int64_t h, int64_t w) {
  if (img.height == h && img.width == w) return;
  Image out(h, w, img.channels);
  const int type = CV_32FC(static_cast<int>(img.channels));
  cv::Mat src(static_cast<int>(img.height), static_cast<int>(img.width), type, img.data.data());
  cv::Mat dst(static_cast<int>(h), static_cast<int>(w), type, out.data.data());
  cv::resize(src, dst, dst.size(), 0, 0, cv::INTER_LINEAR);
  img = std::move(out);
}

namespace {

// The h x w window at (y, x); parts outside the frame are zero.
Image crop_frame(const Image& img, int64_t y, int64_t x, int64_t h, int64_t w) {
  Image out(h, w, img.channels);
  for (int64_t r = 0; r < h; ++r) {
    const int64_t sy = y + r;
    if (sy < 0 || sy >= img.height) continue;
    const int64_t x0 = std::max<int64_t>(0, -x), x1 = std::min<int64_t>(w, img.width - x);
    if (x1 <= x0) continue;
    std::copy(img.pixel(sy, x + x0), img.pixel(sy, x + x0) + (x1 - x0) * img.channels,
              out.pixel(r, x0));
  }
  return out;
}

void crop_clip(Clip& clip, int64_t y, int64_t x, int64_t h, int64_t w) {
  for (auto& f : clip) f = crop_frame(f, y, x, h, w);
}

void flip_frame(Image& img) {
  const int64_t c = img.channels;
  for (int64_t y = 0; y < img.height; ++y)
    for (int64_t x = 0; x < img.width / 2; ++x)
      std::swap_ranges(img.pixel(y, x), img.pixel(y, x) + c, img.pixel(y, img.width - 1 - x));
}

// Frames of one clip share a size (they come from one video); the first frame stands for all.
const Image& first(const Clip& clip) {
  OAR_CHECK(!clip.empty(), "video transform: empty clip");
  return clip.front();
}

// Maps each view on its own; subclasses see one clip and draw from rng once for it.
class PerView : public ClipTransform {
 public:
  void apply(std::vector<Clip>& views, Generator& rng) const override {
    for (auto& v : views) apply_clip(v, rng);
  }
  virtual void apply_clip(Clip& clip, Generator& rng) const = 0;
};

// PaddleVideo's group_scale: short side -> short_size; the long side becomes
// int(short_size * 4 / 3) (fixed_ratio, the 2019 reader) or keeps the aspect ratio.
class GroupScale : public PerView {
 public:
  GroupScale(int64_t s, bool fixed) : s_(s), fixed_(fixed) {}
  void apply_clip(Clip& clip, Generator&) const override {
    const int64_t w = first(clip).width, h = first(clip).height;
    if ((w <= h && w == s_) || (h <= w && h == s_)) return;
    int64_t oh, ow;
    if (w < h) {
      ow = s_;
      oh = fixed_ ? static_cast<int64_t>(s_ * 4.0 / 3.0)
                  : static_cast<int64_t>(static_cast<double>(s_) * h / w);
    } else {
      oh = s_;
      ow = fixed_ ? static_cast<int64_t>(s_ * 4.0 / 3.0)
                  : static_cast<int64_t>(static_cast<double>(s_) * w / h);
    }
    for (auto& f : clip) resize_frame(f, std::max<int64_t>(oh, 1), std::max<int64_t>(ow, 1));
  }

 private:
  int64_t s_;
  bool fixed_;
};

// TSM's GroupMultiScaleCrop: a crop side from base * scales (snapped to the target within 3
// pixels), width and height scale indices at most max_distort apart, placed at one of 5 (or 13
// with more_fix_crop) fixed offsets or anywhere; then resized to size.
class GroupMultiScaleCrop : public PerView {
 public:
  GroupMultiScaleCrop(SizeSpec size, std::vector<double> scales, int64_t max_distort, bool fix_crop,
                      bool more_fix_crop)
      : size_(size),
        scales_(std::move(scales)),
        max_distort_(max_distort),
        fix_crop_(fix_crop),
        more_fix_crop_(more_fix_crop) {}

  void apply_clip(Clip& clip, Generator& rng) const override {
    const int64_t iw = first(clip).width, ih = first(clip).height;
    const int64_t base = std::min(iw, ih);
    std::vector<int64_t> ch, cw;
    for (double s : scales_) {
      const int64_t c = static_cast<int64_t>(static_cast<double>(base) * s);
      ch.push_back(std::abs(c - size_.height) < 3 ? size_.height : c);
      cw.push_back(std::abs(c - size_.width) < 3 ? size_.width : c);
    }
    std::vector<std::pair<int64_t, int64_t>> pairs;  // (w, h)
    for (size_t i = 0; i < ch.size(); ++i)
      for (size_t j = 0; j < cw.size(); ++j)
        if (std::abs(static_cast<int64_t>(i) - static_cast<int64_t>(j)) <= max_distort_)
          pairs.emplace_back(cw[j], ch[i]);
    const auto [w, h] =
        pairs[static_cast<size_t>(randint(rng, 0, static_cast<int64_t>(pairs.size()) - 1))];
    int64_t x = 0, y = 0;
    if (!fix_crop_) {
      x = randint(rng, 0, std::max<int64_t>(0, iw - w));
      y = randint(rng, 0, std::max<int64_t>(0, ih - h));
    } else {
      const auto offsets = fix_offsets(more_fix_crop_, iw, ih, w, h);
      const auto& o =
          offsets[static_cast<size_t>(randint(rng, 0, static_cast<int64_t>(offsets.size()) - 1))];
      x = o.first;
      y = o.second;
    }
    for (auto& f : clip) {
      f = crop_frame(f, y, x, h, w);
      resize_frame(f, size_.height, size_.width);
    }
  }

  // TSM's fill_fix_offset: (x, y) of the corners and centre, plus 8 more with more_fix_crop.
  static std::vector<std::pair<int64_t, int64_t>> fix_offsets(bool more, int64_t iw, int64_t ih,
                                                              int64_t cw, int64_t ch) {
    const int64_t ws = (iw - cw) / 4, hs = (ih - ch) / 4;
    std::vector<std::pair<int64_t, int64_t>> r = {
        {0, 0}, {4 * ws, 0}, {0, 4 * hs}, {4 * ws, 4 * hs}, {2 * ws, 2 * hs}};
    if (more)
      r.insert(r.end(), {{0, 2 * hs},
                         {4 * ws, 2 * hs},
                         {2 * ws, 4 * hs},
                         {2 * ws, 0},
                         {ws, hs},
                         {3 * ws, hs},
                         {ws, 3 * hs},
                         {3 * ws, 3 * hs}});
    return r;
  }

 private:
  SizeSpec size_;
  std::vector<double> scales_;
  int64_t max_distort_;
  bool fix_crop_, more_fix_crop_;
};

class GroupRandomCrop : public PerView {
 public:
  explicit GroupRandomCrop(SizeSpec s) : s_(s) {}
  void apply_clip(Clip& clip, Generator& rng) const override {
    // One window for the whole clip; a frame smaller than the crop is centred on zeros.
    const int64_t iw = first(clip).width, ih = first(clip).height;
    const int64_t x = iw >= s_.width ? randint(rng, 0, iw - s_.width) : (iw - s_.width) / 2;
    const int64_t y = ih >= s_.height ? randint(rng, 0, ih - s_.height) : (ih - s_.height) / 2;
    crop_clip(clip, y, x, s_.height, s_.width);
  }

 private:
  SizeSpec s_;
};

class GroupCenterCrop : public PerView {
 public:
  explicit GroupCenterCrop(SizeSpec s) : s_(s) {}
  void apply_clip(Clip& clip, Generator&) const override {
    const int64_t iw = first(clip).width, ih = first(clip).height;
    // Python's round() of (w - tw) / 2, as PaddleVideo's group_center_crop.
    const int64_t x = static_cast<int64_t>(std::nearbyint((iw - s_.width) / 2.0));
    const int64_t y = static_cast<int64_t>(std::nearbyint((ih - s_.height) / 2.0));
    crop_clip(clip, y, x, s_.height, s_.width);
  }

 private:
  SizeSpec s_;
};

// Multi-view testing: each view becomes several, one per crop window (in the listed order).
class MultiCrop : public ClipTransform {
 public:
  MultiCrop(SizeSpec s, bool ten) : s_(s), ten_(ten) {}
  void apply(std::vector<Clip>& views, Generator&) const override {
    std::vector<Clip> out;
    for (const Clip& v : views) {
      const int64_t iw = first(v).width, ih = first(v).height;
      std::vector<std::pair<int64_t, int64_t>> offsets;  // (x, y)
      if (ten_) {
        // MMAction2's TenCrop: 4 corners and the centre, then the same five flipped.
        offsets = GroupMultiScaleCrop::fix_offsets(false, iw, ih, s_.width, s_.height);
      } else {
        // MMAction2's ThreeCrop: start, end and middle along the side longer than the crop.
        const int64_t ws = (iw - s_.width) / 2, hs = (ih - s_.height) / 2;
        if (iw - s_.width >= ih - s_.height)
          offsets = {{0, hs}, {2 * ws, hs}, {ws, hs}};
        else
          offsets = {{ws, 0}, {ws, 2 * hs}, {ws, hs}};
      }
      for (int flip = 0; flip <= (ten_ ? 1 : 0); ++flip)
        for (const auto& [x, y] : offsets) {
          Clip c;
          c.reserve(v.size());
          for (const Image& f : v) {
            c.push_back(crop_frame(f, y, x, s_.height, s_.width));
            if (flip) flip_frame(c.back());
          }
          out.push_back(std::move(c));
        }
    }
    views = std::move(out);
  }

 private:
  SizeSpec s_;
  bool ten_;
};

class GroupRandomFlip : public PerView {
 public:
  explicit GroupRandomFlip(double p) : p_(p) {}
  void apply_clip(Clip& clip, Generator& rng) const override {
    if (rng.uniform() >= p_) return;
    for (auto& f : clip) flip_frame(f);
  }

 private:
  double p_;
};

class GroupNormalize : public PerView {
 public:
  GroupNormalize(std::vector<double> mean, std::vector<double> std)
      : mean_(std::move(mean)), std_(std::move(std)) {}
  void apply_clip(Clip& clip, Generator&) const override {
    for (auto& f : clip) {
      OAR_CHECK(f.channels == static_cast<int64_t>(mean_.size()), "group_normalize: ", mean_.size(),
                " means for a ", f.channels, "-channel frame");
      const int64_t n = f.height * f.width;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t c = 0; c < f.channels; ++c) {
          float& v = f.data[static_cast<size_t>(i * f.channels + c)];
          v = static_cast<float>((v - mean_[c]) / std_[c]);
        }
    }
  }

 private:
  std::vector<double> mean_, std_;
};

}  // namespace

Registry<ClipTransform>& clip_transforms() {
  static auto* r = new Registry<ClipTransform>("video_transform");
  return *r;
}

ClipTransformList make_clip_transforms(const Config& config, const std::string& key) {
  ClipTransformList out;
  const YAML::Node n = config.node(key);
  if (!n.IsDefined() || n.IsNull()) return out;
  if (!n.IsSequence())
    throw config.error(key, "expected a list of video transforms, got " + describe_value(n),
                       "a list of maps such as {name: group_center_crop, size: 224}");
  Config c = config;  // validation fills defaults
  for (size_t i = 0; i < n.size(); ++i) {
    const std::string item = key + "[" + std::to_string(i) + "]";
    if (!n[i].IsMap())
      throw config.error(item, "expected a map with a name, got " + describe_value(n[i]),
                         "{name: VIDEO_TRANSFORM, ...}");
    out.push_back(clip_transforms().create_from(c, item));
  }
  return out;
}

void apply_all(const ClipTransformList& list, std::vector<Clip>& views, Generator& rng) {
  for (const auto& t : list) t->apply(views, rng);
}

Tensor views_to_tensor(const std::vector<Clip>& views) {
  OAR_CHECK(!views.empty() && !views.front().empty(), "video: no frames to lay out");
  const Image& f0 = views.front().front();
  const int64_t v = static_cast<int64_t>(views.size());
  const int64_t t = static_cast<int64_t>(views.front().size());
  const int64_t c = f0.channels, h = f0.height, w = f0.width, hw = h * w;
  Tensor out = v == 1 ? empty({t, c, h, w}) : empty({v, t, c, h, w});
  float* p = out.data<float>();
  for (const Clip& clip : views) {
    OAR_CHECK(static_cast<int64_t>(clip.size()) == t, "video: views of ", t, " and ", clip.size(),
              " frames");
    for (const Image& f : clip) {
      OAR_CHECK(f.height == h && f.width == w && f.channels == c, "video: frames of ", h, "x", w,
                " and ", f.height, "x", f.width,
                " in one sample; add a crop or a fixed-size scale to the transforms");
      for (int64_t i = 0; i < hw; ++i)
        for (int64_t ch = 0; ch < c; ++ch) p[ch * hw + i] = f.data[static_cast<size_t>(i * c + ch)];
      p += c * hw;
    }
  }
  return out;
}

namespace {
void need_size(const Config& c, const std::string& k) {
  if (!c.has(k + ".size")) throw c.error(k + ".size", "missing required key", "e.g. 224");
}
}  // namespace

void register_clip_transforms() {
  static bool done = false;
  if (done) return;
  done = true;
  auto& r = clip_transforms();
  {
    Schema s("video_transform", "group_scale",
             "PaddleVideo's short-side scaling of every frame of a clip");
    s.required<int64_t>("short_size", "the short side after scaling")
        .min(1)
        .key<bool>("fixed_ratio", true,
                   "long side = int(short_size * 4 / 3) as PaddleVideo 2019; false keeps the "
                   "aspect ratio");
    r.add(s, [](const Config& c, const std::string& k) {
      return std::make_shared<GroupScale>(c.get<int64_t>(k + ".short_size"),
                                          c.get<bool>(k + ".fixed_ratio"));
    });
  }
  {
    Schema s("video_transform", "group_multi_scale_crop",
             "TSM's multi-scale crop: one random scale pair and offset per clip, resized to size");
    s.any("size", "an integer or [height, width]")
        .key<std::vector<double>>("scales", {1.0, 0.875, 0.75, 0.66},
                                  "crop sides as fractions of the short side")
        .range(0.01, 1)
        .key<int64_t>("max_distort", 1, "how far apart the width and height scales may be")
        .range(0, 16)
        .key<bool>("fix_crop", true, "offsets from a fixed grid (else anywhere)")
        .key<bool>("more_fix_crop", true, "13 grid offsets instead of 5");
    r.add(s, [](const Config& c, const std::string& k) {
      need_size(c, k);
      const auto scales = c.get<std::vector<double>>(k + ".scales");
      if (scales.empty()) throw c.error(k + ".scales", "empty list", "e.g. [1, .875, .75, .66]");
      return std::make_shared<GroupMultiScaleCrop>(
          read_size(c, k + ".size"), scales, c.get<int64_t>(k + ".max_distort"),
          c.get<bool>(k + ".fix_crop"), c.get<bool>(k + ".more_fix_crop"));
    });
  }
  {
    Schema s("video_transform", "group_random_crop", "one random size window for every frame");
    s.any("size", "an integer or [height, width]");
    r.add(s, [](const Config& c, const std::string& k) {
      need_size(c, k);
      return std::make_shared<GroupRandomCrop>(read_size(c, k + ".size"));
    });
  }
  {
    Schema s("video_transform", "group_center_crop", "the central size window of every frame");
    s.any("size", "an integer or [height, width]");
    r.add(s, [](const Config& c, const std::string& k) {
      need_size(c, k);
      return std::make_shared<GroupCenterCrop>(read_size(c, k + ".size"));
    });
  }
  {
    Schema s("video_transform", "group_three_crop",
             "3 views per view: start, end and middle windows along the long side (testing)");
    s.any("size", "an integer or [height, width]");
    r.add(s, [](const Config& c, const std::string& k) {
      need_size(c, k);
      return std::make_shared<MultiCrop>(read_size(c, k + ".size"), false);
    });
  }
  {
    Schema s("video_transform", "group_ten_crop",
             "10 views per view: 4 corners and centre, and their mirror images (testing)");
    s.any("size", "an integer or [height, width]");
    r.add(s, [](const Config& c, const std::string& k) {
      need_size(c, k);
      return std::make_shared<MultiCrop>(read_size(c, k + ".size"), true);
    });
  }
  {
    Schema s("video_transform", "group_random_flip",
             "mirror every frame of a clip left-right with probability p");
    s.key<double>("p", 0.5, "probability").range(0, 1);
    r.add(s, [](const Config& c, const std::string& k) {
      return std::make_shared<GroupRandomFlip>(c.get<double>(k + ".p"));
    });
  }
  {
    Schema s("video_transform", "group_normalize",
             "(x - mean) / std per channel, on the [0, 1] scale (PaddleVideo's x/255 first)");
    s.key<std::vector<double>>("mean", {0.485, 0.456, 0.406}, "per-channel mean (RGB)")
        .key<std::vector<double>>("std", {0.229, 0.224, 0.225}, "per-channel std (RGB)")
        .min(1e-6);
    r.add(s, [](const Config& c, const std::string& k) {
      const auto mean = c.get<std::vector<double>>(k + ".mean");
      const auto std = c.get<std::vector<double>>(k + ".std");
      if (mean.size() != 3) throw c.error(k + ".mean", "expected 3 values (RGB)", "[r, g, b]");
      if (std.size() != 3) throw c.error(k + ".std", "expected 3 values (RGB)", "[r, g, b]");
      return std::make_shared<GroupNormalize>(mean, std);
    });
  }
}

}  // namespace oar::readers
