#include "video/extract/extract.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "engine/core/error.h"
#include "engine/io/atomic_file.h"
#include "engine/ops.h"
#include "video/extract/decode_ahead.h"

namespace fs = std::filesystem;

namespace oar::video {

std::string feature_file_name(const std::string& video, const std::string& base) {
  fs::path v = fs::path(video).lexically_normal();
  fs::path rel;
  if (!base.empty()) {
    const fs::path r = v.lexically_relative(fs::path(base).lexically_normal());
    if (!r.empty() && *r.begin() != "..") rel = r;
  }
  if (rel.empty()) rel = v.filename();
  rel.replace_extension(".safetensors");
  return rel.string();
}

void decode_selected_frames(
    const std::string& path, const ClipPreprocess& preprocess, const FrameSelection& selection,
    int64_t chunk_frames,
    const std::function<void(const readers::VideoInfo&, Tensor, std::vector<double>)>& emit) {
  readers::VideoDecoder dec(path, preprocess.decode);
  const readers::VideoInfo& info = dec.info();
  const std::vector<int64_t> idx = select_frames(info.frames, info.fps, selection);
  OAR_CHECK(!idx.empty(), path, ": no frames to read");
  Generator rng(0);
  const size_t chunk = static_cast<size_t>(std::max<int64_t>(1, chunk_frames));
  for (size_t b = 0; b < idx.size(); b += chunk) {
    const std::vector<int64_t> part(
        idx.begin() + static_cast<std::ptrdiff_t>(b),
        idx.begin() + static_cast<std::ptrdiff_t>(std::min(idx.size(), b + chunk)));
    const std::vector<readers::VideoFrame> frames = dec.decode(part);
    // Times as the windows of the one-model mode count them (containers may start at pts > 0).
    const double rate = info.duration > 0 ? static_cast<double>(info.frames) / info.duration
                                          : std::max(info.fps, 1.0);
    std::vector<double> times;
    for (const auto& f : frames) times.push_back(static_cast<double>(f.index) / rate);
    Tensor x;
    try {
      x = preprocess_clip(frames, preprocess, 0, rng);
    } catch (const Error& e) {
      OAR_FAIL(path, ": ", e.what());
    }
    OAR_CHECK(x.dim() == 4, path, ": the transforms of data.", preprocess.mode,
              " give several views; per-frame features need one view per frame");
    emit(info, x, std::move(times));
  }
}

namespace {

struct Chunk {
  Tensor frames;
};

}  // namespace

ExtractResult extract_features(FrameFeatureExtractor& extractor,
                               const std::vector<readers::VideoEntry>& videos,
                               const ExtractOptions& o,
                               const std::function<void(int64_t, int64_t)>& progress,
                               const std::function<void(const ExtractFailure&)>& on_failure) {
  OAR_CHECK(!o.out_dir.empty(), "video extract: no output folder");
  OAR_CHECK(!o.feature_name.empty() && o.feature_name.rfind("__", 0) != 0,
            "video extract: bad feature name '", o.feature_name, "'");
  std::map<std::string, std::string> by_name;
  std::vector<std::string> names;
  for (const auto& v : videos) {
    const std::string n = feature_file_name(v.path, o.base);
    auto [it, fresh] = by_name.emplace(n, v.path);
    OAR_CHECK(fresh, "video extract: ", v.path, " and ", it->second, " would both write ", n,
              " (give the folder they share as the base)");
    names.push_back(n);
  }
  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  OAR_CHECK(fs::is_directory(o.out_dir), o.out_dir, ": cannot create the output folder (",
            ec.message(), ")");

  ExtractResult r;
  std::vector<Tensor> rows;
  std::string list;
  const int64_t n = static_cast<int64_t>(videos.size());
  const ClipPreprocess& pre = extractor.preprocess();
  const int64_t w = extractor.window();  // whole TSM windows per chunk
  const int64_t chunk_frames = (std::max<int64_t>(1, o.chunk_frames) + w - 1) / w * w;
  decode_ahead<Chunk>(
      n, o.workers, o.queue,
      [&](int64_t i, const std::function<void(Chunk &&)>& emit) {
        decode_selected_frames(videos[static_cast<size_t>(i)].path, pre, o.selection, chunk_frames,
                               [&](const readers::VideoInfo&, Tensor x, std::vector<double>) {
                                 emit(Chunk{std::move(x)});
                               });
      },
      [&](int64_t, Chunk&& c) { rows.push_back(extractor.features(c.frames, o.batch_frames)); },
      [&](int64_t i, const std::string& error) {
        const readers::VideoEntry& v = videos[static_cast<size_t>(i)];
        if (!error.empty()) {
          r.failures.push_back({v.path, error});
          if (on_failure) on_failure(r.failures.back());
        } else {
          readers::FeatureRecord rec;
          rec.video_id = fs::path(names[static_cast<size_t>(i)]).replace_extension().string();
          rec.labels = v.labels;
          rec.features.emplace_back(o.feature_name, rows.size() == 1 ? rows[0] : concat(rows, 0));
          const fs::path file = fs::path(o.out_dir) / names[static_cast<size_t>(i)];
          fs::create_directories(file.parent_path());
          readers::write_feature_file(file.string(), rec, {o.quantize, o.range});
          list += names[static_cast<size_t>(i)] + "\n";
          ++r.written;
        }
        rows.clear();
        if (progress) progress(i + 1, n);
      });
  r.list_file = (fs::path(o.out_dir) / o.list_name).string();
  io::write_file_atomic(r.list_file, list);
  return r;
}

}  // namespace oar::video
