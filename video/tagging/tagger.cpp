#include "video/tagging/tagger.h"

#include <glob.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>

#include "engine/core/error.h"
#include "engine/ops.h"
#include "readers/video/sampling.h"
#include "readers/video/video_dataset.h"
#include "video/extract/decode_ahead.h"
#include "video/extract/extract.h"
#include "video/models/sequence_model.h"

namespace fs = std::filesystem;

namespace oar::video {

std::vector<std::string> read_class_names(const std::string& file) {
  std::ifstream in(file);
  OAR_CHECK(in.good(), file, ": cannot read the class names");
  std::vector<std::string> names;
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
      line.pop_back();
    if (!line.empty()) names.push_back(line);
  }
  OAR_CHECK(!names.empty(), file, ": no class names in this file");
  return names;
}

std::vector<std::string> resolve_class_names(const Config& config, int64_t num_classes,
                                             const std::string& file) {
  std::vector<std::string> names;
  std::string from;
  if (!file.empty()) {
    names = read_class_names(file);
    from = file;
  } else if (config.has("task.class_names")) {
    names = config.get<std::vector<std::string>>("task.class_names");
    from = config.origin("task.class_names").file + ": task.class_names";
  } else if (config.has("task.class_names_file") &&
             !config.get<std::string>("task.class_names_file").empty()) {
    from = config.get<std::string>("task.class_names_file");
    try {
      names = read_class_names(from);
    } catch (const Error& e) {
      throw config.error("task.class_names_file", e.what());
    }
  } else if (num_classes == 400 && fs::exists(kKinetics400Names)) {
    names = read_class_names(kKinetics400Names);
    from = kKinetics400Names;
  }
  OAR_CHECK(names.empty() || static_cast<int64_t>(names.size()) == num_classes, from, ": ",
            names.size(), " class names for a model of ", num_classes, " classes");
  return names;
}

bool is_multi_label(const Config& config, bool sequence_model) {
  return config.get<bool>("task.multi_label", sequence_model);
}

namespace {

bool has_glob_chars(const std::string& s) {
  return s.find_first_of("*?[") != std::string::npos;
}

}  // namespace

std::vector<std::string> resolve_tag_inputs(const std::vector<std::string>& inputs) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  auto add = [&](const std::string& p) {
    if (seen.insert(p).second) out.push_back(p);
  };
  for (const std::string& in : inputs) {
    std::error_code ec;
    if (fs::is_directory(in, ec)) {
      std::vector<std::string> found;
      for (fs::recursive_directory_iterator it(in, ec), end; !ec && it != end; it.increment(ec))
        if (it->is_regular_file() && readers::is_video_file(it->path().string()))
          found.push_back(it->path().lexically_normal().string());
      OAR_CHECK(!found.empty(), in, ": no video files in this folder");
      std::sort(found.begin(), found.end());
      for (const auto& f : found) add(f);
    } else if (fs::exists(in, ec)) {
      if (readers::is_video_file(in)) {
        add(in);
      } else {
        for (const auto& e : readers::read_video_list(in, "", false, true)) add(e.path);
      }
    } else if (has_glob_chars(in)) {
      glob_t g{};
      const int rc = ::glob(in.c_str(), 0, nullptr, &g);
      std::vector<std::string> found;
      if (rc == 0)
        for (size_t i = 0; i < g.gl_pathc; ++i) found.push_back(g.gl_pathv[i]);
      globfree(&g);
      OAR_CHECK(!found.empty(), in, ": no file matches this pattern");
      for (const auto& f : found) add(f);
    } else {
      OAR_FAIL(in, ": no such file, folder or pattern");
    }
  }
  return out;
}

std::vector<TimeWindow> fixed_windows(double duration, double window_s, double stride_s) {
  OAR_CHECK(window_s > 0, "window length must be > 0 seconds, got ", window_s);
  if (stride_s <= 0) stride_s = window_s;
  std::vector<TimeWindow> w;
  for (int64_t k = 0;; ++k) {
    const double start = static_cast<double>(k) * stride_s;
    if (start >= duration - 1e-9 && k > 0) break;
    w.push_back({start, std::min(start + window_s, duration)});
    if (start + window_s >= duration - 1e-9) break;
  }
  return w;
}

VideoTagger::VideoTagger(LoadedModel model, TagOptions options)
    : model_(std::move(model)), o_(std::move(options)) {
  OAR_CHECK(!dynamic_cast<SequenceModel*>(model_.module.get()), "video-tag: '",
            model_.config.get<std::string>("model.name"),
            "' reads per-frame features; give a frame feature extractor too (two-stage mode)");
  preprocess_ = clip_preprocess(model_.config);
  num_classes_ = model_.config.get<int64_t>("model.num_classes");
  OAR_CHECK(o_.topk >= 1, "video-tag: topk must be >= 1, got ", o_.topk);
}

VideoTagger::VideoTagger(std::unique_ptr<FrameFeatureExtractor> extractor,
                         LoadedModel sequence_model, TagOptions options)
    : model_(std::move(sequence_model)), extractor_(std::move(extractor)), o_(std::move(options)) {
  auto* seq = dynamic_cast<SequenceModel*>(model_.module.get());
  if (!seq)
    throw model_.config.error("model.name",
                              "the second stage must be a sequence model over per-frame features",
                              "attention_lstm, attention_cluster, nextvlad");
  if (seq->feature_names().size() != 1 || seq->feature_dims()[0] != extractor_->feature_dim()) {
    std::string got;
    for (size_t i = 0; i < seq->feature_names().size(); ++i)
      got += (i ? ", " : "") + seq->feature_names()[i] + " [" +
             std::to_string(seq->feature_dims()[i]) + "]";
    throw model_.config.error("model.feature_names",
                              "the sequence model reads " + got + "; the extractor gives one " +
                                  "feature of width " + std::to_string(extractor_->feature_dim()),
                              "one feature of the extractor's width");
  }
  preprocess_ = extractor_->preprocess();
  num_classes_ = seq->num_classes();
  OAR_CHECK(o_.topk >= 1, "video-tag: topk must be >= 1, got ", o_.topk);
}

VideoTagger::~VideoTagger() = default;

void VideoTagger::set_labels(std::vector<std::string> class_names, bool multi_label) {
  OAR_CHECK(class_names.empty() || static_cast<int64_t>(class_names.size()) == num_classes_,
            "video-tag: ", class_names.size(), " class names for a model of ", num_classes_,
            " classes");
  o_.class_names = std::move(class_names);
  o_.multi_label = multi_label;
}

Tensor VideoTagger::clip_scores(const Tensor& clips) {
  NoGradGuard no_grad;
  Tensor x = clips;
  int64_t views = 1;
  if (x.dim() == 6) {
    views = x.size(1);
    const Shape s = x.shape();
    x = x.reshape({s[0] * s[1], s[2], s[3], s[4], s[5]});
  }
  OAR_CHECK(x.dim() == 5, "video-tag: clips must be [N, T, C, H, W] or [N, V, T, C, H, W], got ",
            clips.dim(), " dimensions");
  const Tensor logits = (*model_.module)(x.to(model_.device)).to(Device::cpu());
  OAR_CHECK(logits.dim() == 2 && logits.size(1) == num_classes_, "video-tag: the model gives ",
            logits.dim() == 2 ? logits.size(1) : -1, " scores per clip, model.num_classes is ",
            num_classes_);
  const Tensor p = o_.multi_label ? sigmoid(logits) : softmax(logits, -1);
  return views == 1 ? p : mean(p.reshape({clips.size(0), views, num_classes_}), {1});
}

Tensor VideoTagger::sequence_scores(const Tensor& features) {
  NoGradGuard no_grad;
  auto* seq = static_cast<SequenceModel*>(model_.module.get());
  const int64_t t = features.size(0);
  const Tensor logits = seq->forward(std::vector<Tensor>{features.unsqueeze(0).to(model_.device)},
                                     tensor<int64_t>({t}, {1}).to(model_.device))
                            .to(Device::cpu());
  const Tensor p = o_.multi_label ? sigmoid(logits) : softmax(logits, -1);
  return p.reshape({num_classes_});
}

Json VideoTagger::top_labels(const std::vector<float>& scores) const {
  std::vector<int64_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  const size_t k = std::min(order.size(), static_cast<size_t>(o_.topk));
  std::partial_sort(
      order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
      [&](int64_t a, int64_t b) {
        return scores[static_cast<size_t>(a)] > scores[static_cast<size_t>(b)] ||
               (scores[static_cast<size_t>(a)] == scores[static_cast<size_t>(b)] && a < b);
      });
  Json labels = Json::array();
  for (size_t j = 0; j < k; ++j) {
    const int64_t id = order[j];
    const double s = scores[static_cast<size_t>(id)];
    if (s < o_.threshold) break;
    Json l = Json::object();
    l["id"] = id;
    if (!o_.class_names.empty()) l["name"] = o_.class_names[static_cast<size_t>(id)];
    l["score"] = std::round(s * 1e6) / 1e6;
    labels.push_back(std::move(l));
  }
  return labels;
}

TagSummary VideoTagger::run(const std::vector<std::string>& videos, TagOutput& out,
                            const std::function<void(int64_t, int64_t, int64_t)>& progress) {
  std::vector<std::string> todo;
  for (const auto& v : videos)
    if (!out.done(v, !o_.retry_errors)) todo.push_back(v);
  TagSummary s =
      extractor_ ? run_two_stage(todo, out, progress) : run_end_to_end(todo, out, progress);
  s.skipped = static_cast<int64_t>(videos.size() - todo.size());
  return s;
}

namespace {

Json error_record(const std::string& path, const std::string& error) {
  Json r = Json::object();
  r["path"] = path;
  r["error"] = error;
  return r;
}

Json video_record(const std::string& path, const readers::VideoInfo& info) {
  Json r = Json::object();
  r["path"] = path;
  // Seconds: the container's, else frames / fps.
  const double d = info.duration > 0 ? info.duration
                                     : static_cast<double>(info.frames) / std::max(info.fps, 1.0);
  r["duration"] = std::round(d * 1e3) / 1e3;
  r["frames"] = info.frames;
  return r;
}

double round_ms(double t) {
  return std::round(t * 1e3) / 1e3;
}

// One decoded part of a video: end-to-end, a batch of window clips; two-stage, a chunk of
// preprocessed frames and their times.
struct TagPart {
  readers::VideoInfo info;
  Tensor data;
  std::vector<TimeWindow> windows;  // end-to-end
  std::vector<double> times;        // two-stage
};

}  // namespace

TagSummary VideoTagger::run_end_to_end(
    const std::vector<std::string>& videos, TagOutput& out,
    const std::function<void(int64_t, int64_t, int64_t)>& progress) {
  TagSummary s;
  const int64_t n = static_cast<int64_t>(videos.size());
  const readers::VideoSampling& sm = preprocess_.sampling;
  const int64_t per_view = sm.dense ? sm.clip_len : sm.seg_num * sm.seglen;
  readers::VideoInfo info;
  std::vector<TimeWindow> windows;
  std::vector<std::vector<float>> window_scores;
  decode_ahead<TagPart>(
      n, o_.workers, o_.queue,
      [&](int64_t i, const std::function<void(TagPart &&)>& emit) {
        const std::string& path = videos[static_cast<size_t>(i)];
        readers::VideoDecoder dec(path, preprocess_.decode);
        const readers::VideoInfo vi = dec.info();
        OAR_CHECK(vi.frames >= 1, path, ": no frames");
        const double duration =
            vi.duration > 0 ? vi.duration : static_cast<double>(vi.frames) / std::max(vi.fps, 1.0);
        const double rate = static_cast<double>(vi.frames) / duration;
        const std::vector<TimeWindow> all = o_.window_s > 0
                                                ? fixed_windows(duration, o_.window_s, o_.stride_s)
                                                : std::vector<TimeWindow>{{0.0, duration}};
        Generator rng(0);
        TagPart part;
        std::vector<Tensor> clips;
        auto flush = [&] {
          if (clips.empty()) return;
          part.info = vi;
          part.data = stack(clips, 0);
          emit(std::move(part));
          part = TagPart{};
          clips.clear();
        };
        for (const TimeWindow& w : all) {
          const int64_t a = std::min<int64_t>(
              vi.frames - 1, static_cast<int64_t>(std::ceil(w.start * rate - 1e-6)));
          int64_t b = w.end >= duration - 1e-9
                          ? vi.frames
                          : std::min<int64_t>(vi.frames,
                                              static_cast<int64_t>(std::ceil(w.end * rate - 1e-6)));
          b = std::max(b, a + 1);
          std::vector<int64_t> idx =
              sm.dense ? readers::sample_dense(b - a, sm.clip_len, sm.frame_interval, sm.num_clips,
                                               false, rng)
                       : readers::sample_tsn(b - a, sm.seg_num, sm.seglen, false, rng);
          for (int64_t& k : idx) k += a;
          Tensor clip;
          try {
            clip = preprocess_clip(dec.decode(idx), preprocess_, per_view, rng);
          } catch (const Error& e) {
            const std::string m = e.what();
            if (m.rfind(path, 0) == 0) throw;
            OAR_FAIL(path, ": ", m);
          }
          clips.push_back(clip);
          part.windows.push_back(w);
          if (static_cast<int64_t>(clips.size()) >= std::max<int64_t>(1, o_.batch_windows)) flush();
        }
        flush();
      },
      [&](int64_t, TagPart&& p) {
        info = p.info;
        const Tensor scores = clip_scores(p.data).contiguous();
        const std::vector<float> v = scores.to_vector<float>();
        for (size_t w = 0; w < p.windows.size(); ++w) {
          windows.push_back(p.windows[w]);
          window_scores.emplace_back(
              v.begin() + static_cast<std::ptrdiff_t>(w * num_classes_),
              v.begin() + static_cast<std::ptrdiff_t>((w + 1) * num_classes_));
        }
      },
      [&](int64_t i, const std::string& error) {
        const std::string& path = videos[static_cast<size_t>(i)];
        if (!error.empty()) {
          out.write(error_record(path, error));
          ++s.failed;
        } else {
          Json r = video_record(path, info);
          // The video's scores: the mean over its windows (one window without --window_s).
          std::vector<float> total(static_cast<size_t>(num_classes_), 0.0f);
          for (const auto& ws : window_scores)
            for (size_t c = 0; c < total.size(); ++c)
              total[c] += ws[c] / static_cast<float>(window_scores.size());
          r["labels"] = top_labels(total);
          if (o_.window_s > 0) {
            Json wl = Json::array();
            for (size_t w = 0; w < windows.size(); ++w) {
              Json j = Json::object();
              j["start"] = round_ms(windows[w].start);
              j["end"] = round_ms(windows[w].end);
              j["labels"] = top_labels(window_scores[w]);
              wl.push_back(std::move(j));
            }
            r["windows"] = std::move(wl);
          }
          out.write(r);
          ++s.tagged;
        }
        windows.clear();
        window_scores.clear();
        if (progress) progress(i + 1, n, s.failed);
      });
  return s;
}

TagSummary VideoTagger::run_two_stage(
    const std::vector<std::string>& videos, TagOutput& out,
    const std::function<void(int64_t, int64_t, int64_t)>& progress) {
  TagSummary s;
  const int64_t n = static_cast<int64_t>(videos.size());
  readers::VideoInfo info;
  std::vector<Tensor> rows;
  std::vector<double> times;
  const int64_t w = extractor_->window();  // whole TSM windows per part
  const int64_t chunk_frames = (std::max<int64_t>(1, o_.chunk_frames) + w - 1) / w * w;
  decode_ahead<TagPart>(
      n, o_.workers, o_.queue,
      [&](int64_t i, const std::function<void(TagPart &&)>& emit) {
        decode_selected_frames(videos[static_cast<size_t>(i)], preprocess_, o_.selection,
                               chunk_frames,
                               [&](const readers::VideoInfo& vi, Tensor x, std::vector<double> t) {
                                 TagPart p;
                                 p.info = vi;
                                 p.data = std::move(x);
                                 p.times = std::move(t);
                                 emit(std::move(p));
                               });
      },
      [&](int64_t, TagPart&& p) {
        info = p.info;
        rows.push_back(extractor_->features(p.data, o_.batch_frames));
        times.insert(times.end(), p.times.begin(), p.times.end());
      },
      [&](int64_t i, const std::string& error) {
        const std::string& path = videos[static_cast<size_t>(i)];
        if (!error.empty()) {
          out.write(error_record(path, error));
          ++s.failed;
        } else {
          const Tensor feats = rows.size() == 1 ? rows[0] : concat(rows, 0);
          Json r = video_record(path, info);
          r["labels"] = top_labels(sequence_scores(feats).contiguous().to_vector<float>());
          if (o_.window_s > 0) {
            const double duration = info.duration > 0 ? info.duration : times.back();
            Json wl = Json::array();
            for (const TimeWindow& w : fixed_windows(duration, o_.window_s, o_.stride_s)) {
              const bool last = w.end >= duration - 1e-9;
              int64_t a = -1, b = -1;
              for (size_t k = 0; k < times.size(); ++k)
                if (times[k] >= w.start - 1e-9 && (times[k] < w.end - 1e-9 || last)) {
                  if (a < 0) a = static_cast<int64_t>(k);
                  b = static_cast<int64_t>(k) + 1;
                }
              if (a < 0) continue;  // no selected frame falls in this window
              Json j = Json::object();
              j["start"] = round_ms(w.start);
              j["end"] = round_ms(w.end);
              j["labels"] = top_labels(
                  sequence_scores(feats.narrow(0, a, b - a)).contiguous().to_vector<float>());
              wl.push_back(std::move(j));
            }
            r["windows"] = std::move(wl);
          }
          out.write(r);
          ++s.tagged;
        }
        rows.clear();
        times.clear();
        if (progress) progress(i + 1, n, s.failed);
      });
  return s;
}

}  // namespace oar::video
