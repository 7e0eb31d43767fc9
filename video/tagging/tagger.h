#pragma once
// `oar video-tag`: labels for many videos with a trained model, as JSON lines (docs/video/
// tagging.md). Two modes: one end-to-end frame model (TSN, TSM, StNet, Non-local) sampling each
// video (or each window) as its config's inference section does, or two stages as Paddle's
// VideoTag: a TSN frame feature extractor, then a sequence model (Attention LSTM, Attention
// Cluster, NeXtVLAD) over the per-frame features. Videos are decoded on worker threads while the
// model runs; every video gets one record, an unreadable one {"path", "error"}.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/io/json.h"
#include "video/extract/frame_features.h"
#include "video/tagging/tag_output.h"

namespace oar::video {

// Debian's opencv-doc ships Kinetics-400's class names, one a line in label order.
inline constexpr const char* kKinetics400Names =
    "/usr/share/doc/opencv-doc/examples/data/dnn/action_recongnition_kinetics.txt";

// One name per non-empty line (trailing spaces and CR dropped); throws naming the file.
std::vector<std::string> read_class_names(const std::string& file);

// The class names for a model of num_classes: `file` when given, else the config's
// task.class_names or task.class_names_file, else Kinetics-400's for 400 classes when the file
// exists, else none. A count other than num_classes is an error naming where they came from.
std::vector<std::string> resolve_class_names(const Config& config, int64_t num_classes,
                                             const std::string& file);

// Sigmoid scores when the config's task says multi_label (default: sequence models yes, frame
// models no), else softmax.
bool is_multi_label(const Config& config, bool sequence_model);

// Each input: a video file, a folder (its video files, recursively, sorted), a list file (first
// column: the video path, relative to the list's folder) or a glob pattern (* ? [). Duplicates
// are dropped; an input matching nothing is an error naming it.
std::vector<std::string> resolve_tag_inputs(const std::vector<std::string>& inputs);

// Fixed windows [start, end) over a video of `duration` seconds: starts 0, stride, 2 stride ...
// below duration; the last window ends at duration.
struct TimeWindow {
  double start = 0, end = 0;
};
std::vector<TimeWindow> fixed_windows(double duration, double window_s, double stride_s);

struct TagOptions {
  int64_t topk = 5;
  double threshold = 0;                  // drop labels scoring below (after top-k)
  double window_s = 0;                   // > 0: also label fixed windows of this length
  double stride_s = 0;                   // between window starts (0: window_s)
  int workers = 2;                       // decoding threads
  int64_t queue = 4;                     // decoded parts waiting for the model
  int64_t batch_windows = 4;             // windows per forward (end-to-end)
  FrameSelection selection;              // two-stage: the frames the extractor reads
  int64_t chunk_frames = 32;             // two-stage: frames decoded per part
  int64_t batch_frames = 16;             // two-stage: frames per extractor call
  std::vector<std::string> class_names;  // empty: ids only
  bool multi_label = false;
  bool retry_errors = false;  // re-run videos whose earlier record is an error
};

struct TagSummary {
  int64_t tagged = 0, failed = 0, skipped = 0;
};

class VideoTagger {
 public:
  // End-to-end: a frame model; its config gives sampling and transforms.
  VideoTagger(LoadedModel model, TagOptions options);
  // Two stages: TSN features of the selected frames, then the sequence model over them.
  VideoTagger(std::unique_ptr<FrameFeatureExtractor> extractor, LoadedModel sequence_model,
              TagOptions options);
  ~VideoTagger();

  int64_t num_classes() const { return num_classes_; }
  const TagOptions& options() const { return o_; }
  // The decoding and transforms in use (the extractor's in two-stage mode).
  const ClipPreprocess& preprocess() const { return preprocess_; }
  // The model's config (the sequence model's in two-stage mode).
  const Config& config() const { return model_.config; }
  // Sets the names (empty or num_classes() of them; else an Error) and sigmoid vs softmax.
  void set_labels(std::vector<std::string> class_names, bool multi_label);

  // Tags every video without a record in `out` (appending one record each, in input order).
  // progress(done, total, failed) after each video of this run.
  TagSummary run(const std::vector<std::string>& videos, TagOutput& out,
                 const std::function<void(int64_t, int64_t, int64_t)>& progress = {});

  // The scores of the end-to-end model for clips [N, T, C, H, W] or [N, V, T, C, H, W]: sigmoid
  // or softmax per view, averaged over views -> [N, num_classes].
  Tensor clip_scores(const Tensor& clips);
  // The sequence model's scores for features [T, F] of one video -> [num_classes].
  Tensor sequence_scores(const Tensor& features);
  // Top-k labels of one score row: [{"id", "name" (with class names), "score"}].
  Json top_labels(const std::vector<float>& scores) const;

 private:
  TagSummary run_end_to_end(const std::vector<std::string>& videos, TagOutput& out,
                            const std::function<void(int64_t, int64_t, int64_t)>& progress);
  TagSummary run_two_stage(const std::vector<std::string>& videos, TagOutput& out,
                           const std::function<void(int64_t, int64_t, int64_t)>& progress);

  LoadedModel model_;  // the end-to-end model, or the sequence model
  std::unique_ptr<FrameFeatureExtractor> extractor_;
  ClipPreprocess preprocess_;
  TagOptions o_;
  int64_t num_classes_ = 0;
};

}  // namespace oar::video
