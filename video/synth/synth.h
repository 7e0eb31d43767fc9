#pragma once
// `oar video synth`: labelled clips of moving shapes, encoded to real video files, with
// PaddleVideo/MMAction2 list files. See docs/video/synth.md for the layout on disk.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "video/synth/clip.h"
#include "video/synth/encoder.h"

namespace oar::video::synth {

struct SynthOptions {
  std::string out_dir;
  int64_t train = 200, valid = 50, test = 50;  // clips per split (0 skips a split)
  int frames = 16;
  int width = 64, height = 64;
  uint64_t seed = 0;
  int num_shapes = 3;  // appearance classes: the first N shape_names()
  std::vector<std::string> motions = {"translate"};  // each adds two order classes
  // Which label lists to write: appearance, order, combined (shape x order).
  std::vector<std::string> labels = {"appearance", "order", "combined"};
  double noise = 8.0;  // per-pixel noise std, 0..255 units
  EncodeOptions encode;
  bool force = false;  // write into a non-empty out_dir (replacing files one by one)
};

// The labels of one clip.
struct ClipLabels {
  int64_t appearance = 0;  // shape index
  int64_t order = 0;       // 2 * motion index + direction
  int64_t combined = 0;    // appearance * num_orders + order
};

// Clip i of a split: its labels (balanced over the combined classes) and its parameters, drawn
// from a generator seeded by (seed, split, i) only, so any clip can be rebuilt alone.
struct ClipPlan {
  std::string split;
  int64_t index = 0;
  std::string path;  // relative to out_dir
  ClipLabels labels;
  ClipParams params;
};
std::vector<ClipPlan> plan_clips(const SynthOptions& o);

// Class names for a label kind ("appearance", "order", "combined"), line index = class id.
std::vector<std::string> class_names(const SynthOptions& o, const std::string& kind);

struct SynthSummary {
  int64_t clips = 0;
  std::string codec;                    // the encoder used
  std::vector<std::string> list_files;  // written, relative to out_dir
};

// Renders and encodes every clip, then writes the lists, classes.json, classes_<kind>.txt and
// clips.tsv. Refuses a non-empty out_dir unless force. `progress(done, total)` is optional.
SynthSummary synthesize(const SynthOptions& o,
                        const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace oar::video::synth
