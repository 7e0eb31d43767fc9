#pragma once
// `oar video extract`: per-frame features of every video in a list or folder, from a TSN
// backbone, written one file per video in the `video_features` format (feature `rgb` [T, F],
// f32 or uint8-quantized, the list's labels kept) plus a list file the `video_features` reader
// reads. Decoding runs on worker threads, overlapped with the backbone (decode_ahead.h).
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "readers/features/feature_file.h"
#include "readers/video/video_dataset.h"
#include "video/extract/frame_features.h"

namespace oar::video {

struct ExtractOptions {
  std::string out_dir;
  std::string list_name = "features.list";  // written in out_dir, paths relative to it
  std::string base;  // videos under it keep their relative path (else the file name)
  std::string feature_name = "rgb";
  FrameSelection selection;  // which frames become feature rows
  bool quantize = false;     // uint8 levels in [range.min, range.max] instead of f32
  readers::Quantization range;
  int workers = 2;            // decoding threads
  int64_t queue = 4;          // decoded chunks waiting for the backbone
  int64_t chunk_frames = 32;  // frames decoded and preprocessed per chunk
  int64_t batch_frames = 16;  // frames per backbone call
};

struct ExtractFailure {
  std::string path, error;
};
struct ExtractResult {
  int64_t written = 0;
  std::vector<ExtractFailure> failures;  // unreadable videos (left out of the list)
  std::string list_file;
};

// The feature file (relative to out_dir) for a video: its path relative to `base` when under
// it, else its file name, with the extension replaced by .safetensors.
std::string feature_file_name(const std::string& video, const std::string& base);

// Writes the feature files and the list; a video that cannot be decoded is reported in the
// result (and to `on_failure` as it happens) and the others go on. progress(done, total).
ExtractResult extract_features(FrameFeatureExtractor& extractor,
                               const std::vector<readers::VideoEntry>& videos,
                               const ExtractOptions& options,
                               const std::function<void(int64_t, int64_t)>& progress = {},
                               const std::function<void(const ExtractFailure&)>& on_failure = {});

// The frames of `path` the selection picks, decoded and preprocessed in chunks: emit(info,
// frames [n, C, H, W], times (seconds: index * duration / frames, n)) per chunk, in time order.
// Throws naming the file.
void decode_selected_frames(
    const std::string& path, const ClipPreprocess& preprocess, const FrameSelection& selection,
    int64_t chunk_frames,
    const std::function<void(const readers::VideoInfo&, Tensor, std::vector<double>)>& emit);

}  // namespace oar::video
