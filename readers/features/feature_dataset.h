#pragma once
// Per-frame feature files as a dataset (reader `video_features`), for the sequence models
// (Attention LSTM, Attention Cluster, NeXtVLAD), as PaddleVideo's FeatureReader reads YouTube-8M.
//
// Each sample: every configured feature as f32 [T, D] (dequantized; the first max_frames frames),
// "length" i64 [] (T) and "label" f32 [num_classes] multi-hot; meta {"path", "video_id"}.
// A batch pads every feature with zeros to [B, T_max, D], T_max = the longest sample of the batch
// (pad_to: batch) or max_frames (pad_to: max_frames), and stacks "length" [B] and "label" [B, C].
// A file that cannot be read is an error naming it (on_error: fail), or (on_error: skip) is
// reported once and replaced by the next readable sample in index order.
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "readers/dataset.h"

namespace oar::readers {

struct FeatureDatasetOptions {
  int64_t num_classes = 0;
  std::vector<std::string> feature_names = {"rgb", "audio"};
  std::vector<int64_t> feature_dims = {1024, 128};  // 0 (or empty): any width
  int64_t max_frames = 300;
  bool pad_to_max_frames = false;
  bool skip_errors = false;
};

// The feature files of a list (one path per line, relative to root or the list's folder; '#'
// starts a comment) or, when `list` is a folder, its *.safetensors files, sorted.
std::vector<std::string> read_feature_list(const std::string& list, const std::string& root);

class FeatureDataset : public Dataset {
 public:
  FeatureDataset(std::vector<std::string> files, FeatureDatasetOptions options);
  int64_t size() const override { return static_cast<int64_t>(files_.size()); }
  Example get(int64_t index, Generator& rng) const override;
  Batch collate(std::vector<Example>& examples) const override;

 private:
  Example load(const std::string& path) const;
  std::vector<std::string> files_;
  FeatureDatasetOptions o_;
  mutable std::mutex reported_mu_;
  mutable std::set<std::string> reported_;
};

// Registers `video_features`. Idempotent.
void register_feature_readers();

}  // namespace oar::readers
