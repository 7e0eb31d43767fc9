#pragma once
// Shared by the tagging and extraction tests: a few tiny synth clips, and a tiny TSN and
// Attention LSTM built from configs with their weights saved as checkpoints.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "engine/config/config.h"
#include "engine/io/safetensors.h"
#include "engine/train/components.h"
#include "readers/registry.h"
#include "video/extract/frame_features.h"
#include "video/register.h"
#include "video/synth/synth.h"

namespace oar::video::testing {

namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& tag) {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("oar_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

inline void register_for_tests() {
  register_engine_components();
  readers::register_components();
  register_components();
}

// 6 train clips of 16 frames, 32x32, 3 shapes, 8 fps (2 s each), in dir/train.
inline void synth_clips(const fs::path& dir, int64_t clips = 6) {
  synth::SynthOptions o;
  o.out_dir = dir.string();
  o.train = clips;
  o.valid = 0;
  o.test = 0;
  o.frames = 16;
  o.width = 32;
  o.height = 32;
  o.num_shapes = 3;
  o.labels = {"appearance"};
  synth::synthesize(o);
}

inline const char* kTsnYaml = R"(
model: {name: tsn, num_classes: 3, depth: 50, blocks: [1, 1, 1, 1], width: 4}
task: {name: video_classification, num_classes: 3, class_names: [circle, square, triangle]}
data:
  name: video
  infer:
    seg_num: 3
    transforms:
      - {name: group_center_crop, size: 32}
      - {name: group_normalize, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}
)";

inline std::string lstm_yaml(int64_t feature_dim) {
  return "model: {name: attention_lstm, feature_names: [rgb], feature_dims: [" +
         std::to_string(feature_dim) +
         "], num_classes: 3, embedding_size: 8, lstm_size: 6, fc_sizes: [8], drop_rate: 0.0}\n"
         "task: {name: video_classification, num_classes: 3, multi_label: true}\n"
         "data: {name: video_features, max_frames: 300}\n";
}

// Builds the config's model with initial weights from `seed`, saves them as dir/model.safetensors
// with config.yaml beside (a checkpoint directory), and loads it back.
inline LoadedModel make_checkpoint(const std::string& yaml, const fs::path& dir, uint64_t seed) {
  Config c = Config::from_string(yaml, (dir / "config.yaml").string());
  Generator init(seed);
  ModelContext ctx{&init};
  auto m = models().create_from(c, "model", ctx);
  fs::create_directories(dir);
  io::write_safetensors((dir / "model.safetensors").string(), m->state_dict());
  std::ofstream(dir / "config.yaml") << yaml;
  return load_model(c, dir.string());
}

}  // namespace oar::video::testing
