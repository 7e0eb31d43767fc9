#include "apps/oar/video_extract_cmd.h"

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "apps/oar/app.h"
#include "engine/core/context.h"
#include "engine/core/error.h"
#include "engine/train/progress.h"
#include "video/extract/extract.h"

namespace fs = std::filesystem;

namespace oar::app {

namespace {

struct ExtractArgs {
  std::string input, config, checkpoint;
  std::vector<std::string> overrides;
  video::ExtractOptions o;
  std::vector<double> range = {-2.0, 2.0};
  int threads = 0;
  std::string device = "cpu";
  bool plain = false;
};

int run_extract(ExtractArgs& a) {
  register_all();
  if (a.threads > 0) set_num_threads(a.threads);
  const Device device = video::inference_device(a.device);
  Source s = load_source(a.config, a.overrides);
  const std::string ckpt = !a.checkpoint.empty() ? a.checkpoint : s.checkpoint;
  OAR_CHECK(!ckpt.empty(), a.config,
            ": a config file has no weights; pass --checkpoint DIR or a run directory as -c");
  OAR_CHECK(a.range.size() == 2 && a.range[0] < a.range[1],
            "--range: expected MIN,MAX with MIN < MAX");
  a.o.range = {a.range[0], a.range[1]};
  video::FrameFeatureExtractor ex(video::load_model(s.config, ckpt, device));

  std::error_code ec;
  const bool folder = fs::is_directory(a.input, ec);
  const std::vector<readers::VideoEntry> videos =
      readers::resolve_video_input(a.input, false, true);
  if (a.o.base.empty()) a.o.base = folder ? a.input : fs::path(a.input).parent_path().string();
  if (a.o.list_name.empty())
    a.o.list_name = folder || readers::is_video_file(a.input)
                        ? "features.list"
                        : fs::path(a.input).filename().string();
  const std::string& mode = ex.preprocess().mode;
  std::fprintf(stderr,
               "oar video extract: %zu videos -> %s (%s [T, %lld], %s, %s on %s, frames as %s)\n",
               videos.size(), a.o.out_dir.c_str(), a.o.feature_name.c_str(),
               static_cast<long long>(ex.feature_dim()), a.o.quantize ? "uint8" : "f32",
               s.config.get<std::string>("model.name").c_str(), device.str().c_str(),
               mode.empty() ? "decoded, no transforms" : ("data." + mode).c_str());
  const int64_t n = static_cast<int64_t>(videos.size());
  Progress bar("extract", n, std::max<int64_t>(1, n / 10), a.plain);
  int64_t failed = 0;
  const video::ExtractResult r = video::extract_features(
      ex, videos, a.o,
      [&](int64_t done, int64_t) { bar.update(done, done, std::to_string(failed) + " failed"); },
      [&](const video::ExtractFailure& f) {
        ++failed;
        std::fprintf(stderr, "\nerror: %s\n", f.error.c_str());
      });
  bar.finish(std::to_string(r.written) + " written, " + std::to_string(r.failures.size()) +
             " failed");
  std::printf("wrote %lld feature files and %s\n", static_cast<long long>(r.written),
              r.list_file.c_str());
  return r.failures.empty() ? 0 : kExitBadInput;
}

}  // namespace

void add_video_extract(CLI::App* video_group, std::function<int()>& action) {
  auto a = std::make_shared<ExtractArgs>();
  a->o.list_name.clear();
  auto* c = video_group->add_subcommand(
      "extract",
      "per-frame features of videos from a trained 2D frame model (TSN, TSM, or an image ResNet; "
      "pooled, before the classifier), one `video_features` file per video plus a list file, "
      "labels kept");
  c->add_option("input", a->input, "a list file (`path label`), a folder of videos or a video")
      ->required();
  c->add_option(
       "-c,--config", a->config,
       "the frame model (tsn, tsm, resnet*): run directory, checkpoint directory or config")
      ->required();
  c->add_option("--checkpoint", a->checkpoint, "weights (default: the run's best or newest)");
  c->add_option("-o,--override", a->overrides, "override a config key (repeatable)")->take_all();
  c->add_option("--output", a->o.out_dir, "output folder for the feature files and the list")
      ->required();
  c->add_option("--list_name", a->o.list_name,
                "the list file written in --output (default: the input list's name, else "
                "features.list)");
  c->add_option("--base", a->o.base,
                "videos under this folder keep their relative path (default: the input's folder)");
  c->add_option("--feature_name", a->o.feature_name, "the feature's name")->default_val("rgb");
  c->add_option("--fps", a->o.selection.fps, "frames per second to read (0: every --stride-th)")
      ->default_val(0.0);
  c->add_option("--stride", a->o.selection.stride, "read every N-th frame")->default_val(1);
  c->add_option("--max_frames", a->o.selection.max_frames,
                "at most this many frames per video, evenly spread (0: no limit)")
      ->default_val(300);
  c->add_flag("--quantize", a->o.quantize, "store uint8 levels (YouTube-8M's) instead of f32");
  c->add_option("--range", a->range, "quantization range MIN,MAX")
      ->delimiter(',')
      ->default_str("-2,2");
  c->add_option("--workers", a->o.workers, "decoding threads")->default_val(2);
  c->add_option("--batch_frames", a->o.batch_frames, "frames per backbone call")->default_val(16);
  c->add_option("--device", a->device, "where the model runs: cpu, cuda or cuda:N")
      ->default_val("cpu");
  c->add_option("--threads", a->threads, "CPU threads for the model (default: all cores)");
  c->add_flag("--plain", a->plain, "plain progress lines instead of a bar");
  c->callback([a, &action] { action = [a] { return run_extract(*a); }; });
}

}  // namespace oar::app
