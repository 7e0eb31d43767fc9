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

namespace fs = std::filesystem;

namespace oar::video {

ClipPreprocess clip_preprocess(const Config& model_config) {
  ClipPreprocess p;
  for (const char* m : {"infer", "test", "valid"})
    if (readers::has_mode(model_config, m)) {
      p.mode = m;
      break;
    }
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
  if (c.has(k + ".decode_size")) {
    const YAML::Node n = c.node(k + ".decode_size");
    if (!(n.IsScalar() && n.as<std::string>() == "0")) {
      const readers::SizeSpec sz = readers::read_size(c, k + ".decode_size");
      if (sz.single) {
        p.decode.short_side = sz.height;
      } else {
        p.decode.height = sz.height;
        p.decode.width = sz.width;
      }
    }
  }
  p.decode.threads = static_cast<int>(c.get<int64_t>(k + ".decode_threads", 1));
  p.transforms = readers::make_clip_transforms(c, k + ".transforms");
  return p;
}

LoadedModel load_model(Config config, const std::string& checkpoint) {
  Generator init(0);
  ModelContext ctx{&init};
  LoadedModel m{config, nullptr};
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
      clip.push_back(std::move(img));
    }
    views.push_back(std::move(clip));
  }
  readers::apply_all(p.transforms, views, rng);
  return readers::views_to_tensor(views);
}

FrameFeatureExtractor::FrameFeatureExtractor(LoadedModel model)
    : model_(std::move(model)), preprocess_(clip_preprocess(model_.config)) {
  auto* tsn = dynamic_cast<Tsn*>(model_.module.get());
  if (!tsn || dynamic_cast<Tsm*>(model_.module.get()))
    throw model_.config.error(
        "model.name",
        "per-frame features need a TSN model; '" + model_.config.get<std::string>("model.name") +
            "' mixes frames across time, so a frame's feature would depend on its neighbours",
        "tsn");
}

int64_t FrameFeatureExtractor::feature_dim() const {
  return static_cast<Tsn*>(model_.module.get())->feature_channels();
}

Tensor FrameFeatureExtractor::features(const Tensor& frames, int64_t batch_frames) {
  OAR_CHECK(frames.dim() == 4, "frame features: frames must be [n, C, H, W], got ", frames.dim(),
            " dimensions");
  NoGradGuard no_grad;
  auto* tsn = static_cast<Tsn*>(model_.module.get());
  std::vector<Tensor> out;
  const int64_t n = frames.size(0), b = std::max<int64_t>(1, batch_frames);
  for (int64_t s = 0; s < n; s += b) {
    const int64_t len = std::min(b, n - s);
    // Each frame as a one-segment clip: [len, 1, C, H, W] -> [len, 1, F].
    Tensor x = frames.narrow(0, s, len).unsqueeze(1);
    out.push_back(tsn->segment_features(x).reshape({len, feature_dim()}));
  }
  return out.size() == 1 ? out[0].contiguous() : concat(out, 0);
}

}  // namespace oar::video
