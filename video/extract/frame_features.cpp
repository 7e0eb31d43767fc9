#include "video/extract/frame_features.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include "engine/core/error.h"
#include "engine/io/safetensors.h"
#include "engine/ops.h"
#include "engine/train/components.h"
#include "readers/image/transform.h"
#include "readers/registry.h"
#include "video/models/tsm.h"
#include "video/models/tsn.h"
#include "vision/models/resnet.h"
#ifdef OAR_WITH_CUDA
#include "engine/core/cuda/runtime.h"
#endif

namespace fs = std::filesystem;

namespace oar::video {

namespace {

// The first inference section of the config ("" when none).
std::string inference_mode(const Config& model_config) {
  for (const char* m : {"infer", "test", "valid"})
    if (readers::has_mode(model_config, m)) return m;
  return "";
}

void read_decode_size(const Config& c, const std::string& key, readers::DecodeOptions& d) {
  if (!c.has(key)) return;
  const YAML::Node n = c.node(key);
  if (n.IsScalar() && n.as<std::string>() == "0") return;
  const readers::SizeSpec sz = readers::read_size(c, key);
  if (sz.single) {
    d.short_side = sz.height;
  } else {
    d.height = sz.height;
    d.width = sz.width;
  }
}

}  // namespace

ClipPreprocess image_preprocess(const Config& model_config) {
  ClipPreprocess p;
  p.mode = inference_mode(model_config);
  if (p.mode.empty()) return p;
  const Config c = model_config.mode("data", p.mode);
  read_decode_size(c, "data.decode_size", p.decode);
  p.decode.threads = static_cast<int>(c.get<int64_t>("data.decode_threads", 1));
  p.image_transforms = readers::make_transforms(c, "data.transforms");
  return p;
}

Device inference_device(const std::string& flag) {
  const Device d = Device::parse(flag);
  if (d.is_cpu()) return d;
  if (!cuda_available())
    OAR_FAIL("--device ", flag,
             ": no CUDA device is available to this build of oar (use --device cpu)");
#ifdef OAR_WITH_CUDA
  if (d.index >= cuda::device_count())
    OAR_FAIL("--device ", flag, ": ", d.str(), " is not available: ", cuda::device_count(),
             " CUDA device(s) visible (cuda:0..cuda:", cuda::device_count() - 1, ")");
#endif
  return d;
}

ClipPreprocess clip_preprocess(const Config& model_config) {
  ClipPreprocess p;
  p.mode = inference_mode(model_config);
  if (p.mode.empty()) return p;
  const Config c = model_config.mode("data", p.mode);
  const std::string k = "data";
  readers::VideoSampling& s = p.sampling;
  s.dense = c.get<std::string>(k + ".sampling", "tsn") == "dense";
  s.seg_num = c.get<int64_t>(k + ".seg_num", s.seg_num);
  s.seglen = c.get<int64_t>(k + ".seglen", s.seglen);
  s.clip_len = c.get<int64_t>(k + ".clip_len", s.clip_len);
  s.frame_interval = c.get<int64_t>(k + ".frame_interval", s.frame_interval);
  s.num_clips = c.get<int64_t>(k + ".num_clips", s.num_clips);
  s.train = false;
  read_decode_size(c, k + ".decode_size", p.decode);
  p.decode.threads = static_cast<int>(c.get<int64_t>(k + ".decode_threads", 1));
  p.transforms = readers::make_clip_transforms(c, k + ".transforms");
  return p;
}

LoadedModel load_model(Config config, const std::string& checkpoint, Device device) {
  Generator init(0);
  ModelContext ctx{&init};
  LoadedModel m{config, nullptr, device};
  m.module = models().create_from(m.config, "model", ctx);
  fs::path p(checkpoint);
  if (fs::is_directory(p)) p /= "model.safetensors";
  const io::SafetensorsFile f = io::read_safetensors(p.string());
  try {
    m.module->load_state_dict(f.as_map(), true);
  } catch (const Error& e) {
    OAR_FAIL(p.string(), ": does not fit model '", config.get<std::string>("model.name"),
             "': ", e.what());
  }
  m.module->eval();
  m.module->to(device);
  return m;
}

std::vector<int64_t> select_frames(int64_t num_frames, double video_fps, const FrameSelection& s) {
  OAR_CHECK(s.stride >= 1, "frame stride must be >= 1, got ", s.stride);
  OAR_CHECK(s.fps >= 0, "frames per second must be >= 0, got ", s.fps);
  OAR_CHECK(s.max_frames >= 0, "max_frames must be >= 0, got ", s.max_frames);
  std::vector<int64_t> idx;
  if (s.fps > 0 && video_fps > 0 && s.fps < video_fps) {
    // Frame i shows at i / video_fps; take the first frame at or after each k / fps.
    for (int64_t k = 0;; ++k) {
      const int64_t i = static_cast<int64_t>(std::ceil(k * video_fps / s.fps - 1e-9));
      if (i >= num_frames) break;
      if (idx.empty() || idx.back() != i) idx.push_back(i);
    }
  } else {
    for (int64_t i = 0; i < num_frames; i += (s.fps > 0 ? 1 : s.stride)) idx.push_back(i);
  }
  const int64_t n = static_cast<int64_t>(idx.size());
  if (s.max_frames > 0 && n > s.max_frames) {
    std::vector<int64_t> kept;
    for (int64_t j = 0; j < s.max_frames; ++j)
      kept.push_back(idx[static_cast<size_t>((2 * j + 1) * n / (2 * s.max_frames))]);
    idx = std::move(kept);
  }
  return idx;
}

Tensor preprocess_clip(const std::vector<readers::VideoFrame>& frames, const ClipPreprocess& p,
                       int64_t frames_per_view, Generator& rng) {
  OAR_CHECK(!frames.empty(), "no frames to preprocess");
  const size_t per_view =
      frames_per_view > 0 ? static_cast<size_t>(frames_per_view) : frames.size();
  std::vector<readers::Clip> views;
  for (size_t b = 0; b < frames.size(); b += per_view) {
    readers::Clip clip;
    for (size_t i = b; i < std::min(frames.size(), b + per_view); ++i) {
      const readers::VideoFrame& f = frames[i];
      readers::Image img(f.height, f.width, 3);
      for (size_t j = 0; j < f.rgb.size(); ++j) img.data[j] = static_cast<float>(f.rgb[j]) / 255.0f;
      readers::apply_all(p.image_transforms, img, rng);
      clip.push_back(std::move(img));
    }
    views.push_back(std::move(clip));
  }
  readers::apply_all(p.transforms, views, rng);
  return readers::views_to_tensor(views);
}

FrameFeatureExtractor::FrameFeatureExtractor(LoadedModel model) : model_(std::move(model)) {
  nn::Module* m = model_.module.get();
  const std::string name = model_.config.get<std::string>("model.name");
  if (dynamic_cast<Tsm*>(m)) {
    kind_ = Kind::tsm;
    preprocess_ = clip_preprocess(model_.config);
    const std::string mode = preprocess_.mode.empty() ? "" : preprocess_.mode;
    window_ = mode.empty() ? 8 : model_.config.mode("data", mode).get<int64_t>("data.seg_num", 8);
    if (window_ < 1)
      throw model_.config.error(
          "data." + mode + ".seg_num",
          "must be >= 1 for TSM frame features, got " + std::to_string(window_), "8");
  } else if (dynamic_cast<Tsn*>(m)) {
    kind_ = Kind::tsn;
    preprocess_ = clip_preprocess(model_.config);
  } else if (dynamic_cast<vision::ResNet*>(m)) {
    kind_ = Kind::image_resnet;
    preprocess_ = image_preprocess(model_.config);
  } else {
    throw model_.config.error(
        "model.name",
        "per-frame features need a 2D frame model with a pooled feature; '" + name +
            "' is not one (StNet and Non-local mix frames in other ways, the sequence models "
            "read features, MobileNet and VGG are not supported)",
        "tsn, tsm, or an image ResNet (resnet18..resnet152, *_vd, *_cifar)");
  }
}

int64_t FrameFeatureExtractor::feature_dim() const {
  if (kind_ == Kind::image_resnet)
    return static_cast<vision::ResNet*>(model_.module.get())->feature_channels();
  return static_cast<Tsn*>(model_.module.get())->feature_channels();
}

Tensor FrameFeatureExtractor::features(const Tensor& frames, int64_t batch_frames) {
  OAR_CHECK(frames.dim() == 4, "frame features: frames must be [n, C, H, W], got ", frames.dim(),
            " dimensions");
  NoGradGuard no_grad;
  std::vector<Tensor> out;
  const int64_t n = frames.size(0), f = feature_dim();
  // A multiple of the window, so that TSM's windows fall the same whatever batch_frames is.
  const int64_t b = std::max<int64_t>(1, batch_frames / window_) * window_;
  for (int64_t s = 0; s < n; s += b) {
    const int64_t len = std::min(b, n - s);
    const Tensor x = frames.narrow(0, s, len).to(model_.device);
    Tensor y;
    if (kind_ == Kind::image_resnet) {
      y = static_cast<vision::ResNet*>(model_.module.get())->pooled_features(x);
    } else if (kind_ == Kind::tsn) {
      // Each frame as a one-segment clip: [len, 1, C, H, W] -> [len, 1, F].
      y = static_cast<Tsn*>(model_.module.get())->segment_features(x.unsqueeze(1));
    } else {
      // Full windows as clips [len / w, w, C, H, W], then the shorter tail window, if any.
      auto* tsm = static_cast<Tsm*>(model_.module.get());
      const int64_t full = len / window_ * window_;
      std::vector<Tensor> parts;
      if (full > 0) {
        tsm->set_segments(window_);
        const Tensor w = x.narrow(0, 0, full);
        parts.push_back(tsm->segment_features(
            w.reshape({full / window_, window_, w.size(1), w.size(2), w.size(3)})));
      }
      if (len > full) {
        tsm->set_segments(len - full);
        parts.push_back(tsm->segment_features(x.narrow(0, full, len - full).unsqueeze(0)));
      }
      for (Tensor& p : parts) p = p.reshape({p.size(0) * p.size(1), f});
      y = parts.size() == 1 ? parts[0] : concat(parts, 0);
    }
    out.push_back(y.reshape({len, f}).to(Device::cpu()));
  }
  return out.size() == 1 ? out[0].contiguous() : concat(out, 0);
}

}  // namespace oar::video
