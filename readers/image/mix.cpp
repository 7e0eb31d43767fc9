// Batch-level mixing: mixup (Zhang et al. 2018) and cutmix (Yun et al. 2019). Each pairs sample
// i with sample perm[i] of the same batch and mixes the one-hot targets by the same weight, so
// every row of label_soft sums to 1. batch["label"] keeps the original labels (for accuracy).
#include <algorithm>
#include <cmath>
#include <numeric>

#include "engine/core/error.h"
#include "readers/image/transform.h"

namespace oar::readers {

namespace {

std::vector<int64_t> permutation(int64_t n, Generator& rng) {
  std::vector<int64_t> p(static_cast<size_t>(n));
  std::iota(p.begin(), p.end(), 0);
  for (int64_t i = n - 1; i > 0; --i)
    std::swap(p[i], p[static_cast<int64_t>(rng.next_u64() % static_cast<uint64_t>(i + 1))]);
  return p;
}

// The current soft targets: label_soft when an earlier batch transform made them, else one-hot.
std::vector<float> soft_targets(const Batch& b, int64_t classes) {
  const int64_t n = b.size;
  std::vector<float> t(static_cast<size_t>(n * classes), 0.0f);
  if (b.has("label_soft")) {
    Tensor s = b["label_soft"].contiguous();
    OAR_CHECK(s.dim() == 2 && s.size(1) == classes, "label_soft has shape ", shape_str(s.shape()),
              ", expected [N, ", classes, "]");
    std::copy(s.data<float>(), s.data<float>() + n * classes, t.begin());
    return t;
  }
  OAR_CHECK(b.has("label"), "mixup/cutmix: the batch has no 'label' to mix");
  Tensor l = b["label"].contiguous();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t y = l.data<int64_t>()[i];
    OAR_CHECK(y >= 0 && y < classes, "mixup/cutmix: label ", y, " out of range for ", classes,
              " classes (set the reader's num_classes)");
    t[static_cast<size_t>(i * classes + y)] = 1.0f;
  }
  return t;
}

void mix_targets(Batch& b, int64_t classes, const std::vector<int64_t>& perm,
                 const std::vector<double>& lam) {
  const std::vector<float> t = soft_targets(b, classes);
  Tensor out = empty({b.size, classes});
  float* o = out.data<float>();
  for (int64_t i = 0; i < b.size; ++i)
    for (int64_t k = 0; k < classes; ++k)
      o[i * classes + k] =
          static_cast<float>(lam[i] * t[i * classes + k] + (1 - lam[i]) * t[perm[i] * classes + k]);
  b.tensors["label_soft"] = out;
}

class Mixup : public BatchTransform {
 public:
  Mixup(double alpha, double prob) : alpha_(alpha), prob_(prob) {}
  void apply(Batch& b, int64_t classes, Generator& rng) const override {
    if (rng.uniform() >= prob_) {
      b.tensors["label_soft"] = make_soft(b, classes);
      return;
    }
    const double lam = sample_beta(alpha_, alpha_, rng);
    const std::vector<int64_t> perm = permutation(b.size, rng);
    Tensor x = b["image"].contiguous();
    Tensor out = empty(x.shape());
    const int64_t per = x.numel() / std::max<int64_t>(b.size, 1);
    const float* src = x.data<float>();
    float* dst = out.data<float>();
    const float l = static_cast<float>(lam);
    for (int64_t i = 0; i < b.size; ++i)
      for (int64_t j = 0; j < per; ++j)
        dst[i * per + j] = l * src[i * per + j] + (1 - l) * src[perm[i] * per + j];
    b.tensors["image"] = out;
    mix_targets(b, classes, perm, std::vector<double>(static_cast<size_t>(b.size), lam));
  }
  static Tensor make_soft(const Batch& b, int64_t classes) {
    const std::vector<float> t = soft_targets(b, classes);
    Tensor out = empty({b.size, classes});
    std::copy(t.begin(), t.end(), out.data<float>());
    return out;
  }

 private:
  double alpha_, prob_;
};

class Cutmix : public BatchTransform {
 public:
  Cutmix(double alpha, double prob) : alpha_(alpha), prob_(prob) {}
  void apply(Batch& b, int64_t classes, Generator& rng) const override {
    if (rng.uniform() >= prob_) {
      b.tensors["label_soft"] = Mixup::make_soft(b, classes);
      return;
    }
    Tensor x = b["image"].contiguous();
    OAR_CHECK(x.dim() == 4, "cutmix: images must be [N, C, H, W], got ", shape_str(x.shape()));
    const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
    const double lam = sample_beta(alpha_, alpha_, rng);
    const std::vector<int64_t> perm = permutation(n, rng);
    const double r = std::sqrt(1.0 - lam);
    const int64_t ch = static_cast<int64_t>(h * r), cw = static_cast<int64_t>(w * r);
    const int64_t cy = static_cast<int64_t>(rng.uniform() * static_cast<double>(h));
    const int64_t cx = static_cast<int64_t>(rng.uniform() * static_cast<double>(w));
    const int64_t y0 = std::clamp<int64_t>(cy - ch / 2, 0, h),
                  y1 = std::clamp<int64_t>(cy + ch / 2, 0, h);
    const int64_t x0 = std::clamp<int64_t>(cx - cw / 2, 0, w),
                  x1 = std::clamp<int64_t>(cx + cw / 2, 0, w);
    Tensor out = x.clone();
    const float* src = x.data<float>();
    float* dst = out.data<float>();
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < c; ++k)
        for (int64_t yy = y0; yy < y1; ++yy)
          for (int64_t xx = x0; xx < x1; ++xx)
            dst[((i * c + k) * h + yy) * w + xx] = src[((perm[i] * c + k) * h + yy) * w + xx];
    b.tensors["image"] = out;
    // The weight is the area actually kept, after clipping the box to the image.
    const double kept =
        1.0 - static_cast<double>((y1 - y0) * (x1 - x0)) / static_cast<double>(h * w);
    mix_targets(b, classes, perm, std::vector<double>(static_cast<size_t>(n), kept));
  }

 private:
  double alpha_, prob_;
};

}  // namespace

void register_mix_transforms() {
  {
    Schema s(
        "transform", "mixup",
        "batch level (data.batch_transforms): blend image pairs by lambda ~ Beta(alpha, alpha)");
    s.key<double>("alpha", 0.2, "Beta distribution parameter")
        .min(1e-6)
        .key<double>("prob", 1.0, "probability of mixing a batch")
        .range(0, 1);
    batch_transforms().add(s, [](const Config& c, const std::string& k) {
      return std::make_shared<Mixup>(c.get<double>(k + ".alpha"), c.get<double>(k + ".prob"));
    });
  }
  {
    Schema s("transform", "cutmix",
             "batch level (data.batch_transforms): paste a box of a paired image, targets by area");
    s.key<double>("alpha", 1.0, "Beta distribution parameter")
        .min(1e-6)
        .key<double>("prob", 1.0, "probability of mixing a batch")
        .range(0, 1);
    batch_transforms().add(s, [](const Config& c, const std::string& k) {
      return std::make_shared<Cutmix>(c.get<double>(k + ".alpha"), c.get<double>(k + ".prob"));
    });
  }
}

}  // namespace oar::readers
