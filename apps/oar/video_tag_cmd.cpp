#include "apps/oar/video_tag_cmd.h"

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "apps/oar/app.h"
#include "engine/core/context.h"
#include "engine/core/error.h"
#include "engine/train/progress.h"
#include "video/tagging/tagger.h"

namespace oar::app {

namespace {

struct TagArgs {
  std::vector<std::string> inputs;
  std::string model, checkpoint, extractor, extractor_checkpoint, sequence, sequence_checkpoint;
  std::vector<std::string> overrides;
  std::string output = "video_tags.jsonl";
  std::string class_names;
  std::string device = "cpu";
  video::TagOptions o;
  int64_t max_frames = -1;
  int threads = 0;
  bool plain = false;
};

video::LoadedModel load(const std::string& what, const std::string& path,
                        const std::string& checkpoint, const std::vector<std::string>& overrides,
                        Device device) {
  Source s = load_source(path, overrides);
  const std::string ckpt = !checkpoint.empty() ? checkpoint : s.checkpoint;
  OAR_CHECK(!ckpt.empty(), path, ": a config file has no weights; pass ", what,
            " a run directory or give its checkpoint");
  return video::load_model(s.config, ckpt, device);
}

int run_tag(TagArgs& a) {
  register_all();
  if (a.threads > 0) set_num_threads(a.threads);
  const Device device = video::inference_device(a.device);
  const bool two_stage = !a.extractor.empty() || !a.sequence.empty();
  OAR_CHECK(two_stage != !a.model.empty(),
            "video-tag: give one model (-c) or two stages (--extractor and --sequence), not both");
  OAR_CHECK(!two_stage || (!a.extractor.empty() && !a.sequence.empty()),
            "video-tag: two-stage mode needs both --extractor and --sequence");
  std::unique_ptr<video::VideoTagger> tagger;
  if (two_stage) {
    auto ex = std::make_unique<video::FrameFeatureExtractor>(
        load("--extractor", a.extractor, a.extractor_checkpoint, {}, device));
    video::LoadedModel seq =
        load("--sequence", a.sequence, a.sequence_checkpoint, a.overrides, device);
    // Read as many frames as the sequence model was trained on, unless told.
    a.o.selection.max_frames =
        a.max_frames >= 0 ? a.max_frames : seq.config.get<int64_t>("data.max_frames", 300);
    tagger = std::make_unique<video::VideoTagger>(std::move(ex), std::move(seq), a.o);
  } else {
    tagger = std::make_unique<video::VideoTagger>(
        load("-c", a.model, a.checkpoint, a.overrides, device), a.o);
  }
  tagger->set_labels(
      video::resolve_class_names(tagger->config(), tagger->num_classes(), a.class_names),
      video::is_multi_label(tagger->config(), two_stage));

  const std::vector<std::string> videos = video::resolve_tag_inputs(a.inputs);
  video::TagOutput out(a.output);
  if (out.repaired_bytes() > 0)
    std::fprintf(stderr, "oar video-tag: %s: cut off a partial last line (%lld bytes)\n",
                 a.output.c_str(), static_cast<long long>(out.repaired_bytes()));
  int64_t todo = 0;
  for (const auto& v : videos) todo += out.done(v, !a.o.retry_errors) ? 0 : 1;
  const std::string& mode = tagger->preprocess().mode;
  std::fprintf(
      stderr, "oar video-tag: %zu videos, %lld to tag (%s on %s, %s, frames as %s) -> %s\n",
      videos.size(), static_cast<long long>(todo), two_stage ? "two stages" : "one model",
      device.str().c_str(), tagger->options().multi_label ? "sigmoid" : "softmax",
      mode.empty() ? "decoded, no transforms" : ("data." + mode).c_str(), a.output.c_str());
  Progress bar("video-tag", todo, std::max<int64_t>(1, todo / 20), a.plain);
  const auto start = std::chrono::steady_clock::now();
  auto rate = [&](int64_t done) {
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.2f videos/s", s > 0 ? static_cast<double>(done) / s : 0.0);
    return std::string(buf);
  };
  const video::TagSummary r = tagger->run(videos, out, [&](int64_t done, int64_t, int64_t failed) {
    bar.update(done, done, rate(done) + ", " + std::to_string(failed) + " failed");
  });
  bar.finish(rate(r.tagged + r.failed));
  std::fprintf(stderr, "oar video-tag: tagged %lld, failed %lld, skipped %lld (already in %s)\n",
               static_cast<long long>(r.tagged), static_cast<long long>(r.failed),
               static_cast<long long>(r.skipped), a.output.c_str());
  return r.failed ? kExitBadInput : 0;
}

}  // namespace

void add_video_tag(CLI::App& app, std::function<int()>& action) {
  auto a = std::make_shared<TagArgs>();
  video::TagOptions& o = a->o;
  auto* c = app.add_subcommand(
      "video-tag",
      "label many videos with a trained model (or a TSN feature extractor and a sequence "
      "model); appends JSON lines, skipping videos already in the output");
  c->add_option("inputs", a->inputs, "video files, folders, list files or glob patterns")
      ->required();
  c->add_option("-c,--config", a->model,
                "one end-to-end frame model: run directory, checkpoint directory or config");
  c->add_option("--checkpoint", a->checkpoint, "its weights (default: the run's best or newest)");
  c->add_option("--extractor", a->extractor,
                "two stages: the frame feature extractor (run of a TSN, TSM or image ResNet)");
  c->add_option("--extractor_checkpoint", a->extractor_checkpoint, "its weights");
  c->add_option("--sequence", a->sequence,
                "two stages: the sequence model over the features (run directory)");
  c->add_option("--sequence_checkpoint", a->sequence_checkpoint, "its weights");
  c->add_option("-o,--override", a->overrides,
                "override a key of the (sequence) model's config (repeatable)")
      ->take_all();
  c->add_option("--output", a->output, "JSON lines file to append to; - for stdout")
      ->default_val("video_tags.jsonl");
  c->add_option("--class_names", a->class_names,
                "class names, one a line (default: task.class_names(_file), else Kinetics-400's "
                "from opencv-doc for 400 classes)");
  c->add_option("--topk", o.topk, "labels per video and window")->default_val(5);
  c->add_option("--threshold", o.threshold, "drop labels scoring below this")->default_val(0.0);
  c->add_option("--window_s", o.window_s, "also label fixed windows of this many seconds")
      ->default_val(0.0);
  c->add_option("--stride_s", o.stride_s, "seconds between window starts (default: --window_s)")
      ->default_val(0.0);
  c->add_option("--workers", o.workers, "decoding threads")->default_val(2);
  c->add_option("--queue", o.queue, "decoded parts waiting for the model")->default_val(4);
  c->add_option("--batch_windows", o.batch_windows, "windows per forward (one model)")
      ->default_val(4);
  c->add_option("--fps", o.selection.fps, "two stages: frames per second to read")
      ->default_val(0.0);
  c->add_option("--stride", o.selection.stride, "two stages: read every N-th frame")
      ->default_val(1);
  c->add_option("--max_frames", a->max_frames,
                "two stages: at most this many frames, evenly spread (default: the sequence "
                "model's data.max_frames, else 300; 0: no limit)");
  c->add_flag("--retry_errors", o.retry_errors, "tag again videos whose record is an error");
  c->add_option("--device", a->device, "where the models run: cpu, cuda or cuda:N")
      ->default_val("cpu");
  c->add_option("--threads", a->threads, "CPU threads for the model (default: all cores)");
  c->add_flag("--plain", a->plain, "plain progress lines instead of a bar");
  c->callback([a, &action] { action = [a] { return run_tag(*a); }; });
}

}  // namespace oar::app
