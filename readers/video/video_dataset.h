#pragma once
// Videos as a dataset (reader "video"): a list of encoded videos (`path label`, multi-label
// `path l1,l2`) decoded with FFmpeg, or of frame folders (MMAction2's `dir total_frames label`,
// frames named by a template such as img_{:05d}.jpg) decoded with OpenCV. Each sample picks its
// frames with TSN segments or dense clips (readers/video/sampling.h), passes every view through
// the clip transforms with the sample's generator, and is laid out as
//   {"video": f32 [T, C, H, W] (one view) or [V, T, C, H, W] (V views),
//    "label": i64 [] (single-label) or f32 [num_classes] multi-hot (multi_label)}
// with meta {"path", "frame_indices", "views"}. A file that cannot be read (missing, truncated,
// corrupt, unsupported) is an error naming it (corrupt: fatal) or is reported once on stderr and
// replaced by the next readable sample in index order (corrupt: skip), meta then carrying
// {"skipped": path, "error": message}, so batches, and runs, stay deterministic.
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "readers/dataset.h"
#include "readers/video/clip_transform.h"
#include "readers/video/decoder.h"

namespace oar::readers {

struct VideoEntry {
  std::string path;             // a video file, or a frame folder
  std::vector<int64_t> labels;  // empty: none (prediction inputs)
  int64_t total_frames = 0;     // frame folders: from the list
};

// One entry per non-empty, non-'#' line; paths relative to `root` (default: the list's folder).
// frames: `dir total_frames [label]`; otherwise `path [label]`. A label is an integer, or with
// multi_label a comma-separated list of integers. Errors name list:line.
std::vector<VideoEntry> read_video_list(const std::string& list, const std::string& root,
                                        bool frames, bool multi_label);

// What `oar predict --input PATH` means: a video file (one sample), a folder (its video files,
// sorted) or a list file (read_video_list, root = the list's folder).
std::vector<VideoEntry> resolve_video_input(const std::string& path, bool frames, bool multi_label);

// "img_{:05d}.jpg" (Python format) or "img_%05d.jpg" (printf) with the number filled in.
// Throws on a template without exactly one integer field.
std::string frame_file_name(const std::string& tmpl, int64_t number);

struct VideoSampling {
  bool dense = false;  // false: TSN segments
  int64_t seg_num = 8, seglen = 1;
  int64_t clip_len = 8, frame_interval = 8, num_clips = 1;
  bool train = false;  // random offsets (train) or centred ones
};

struct VideoDatasetOptions {
  bool frames = false;  // frame folders instead of video files
  std::string filename_tmpl = "img_{:05d}.jpg";
  int64_t start_index = 1;  // file number of frame 0 in a folder
  VideoSampling sampling;
  DecodeOptions decode;  // threads, seek mode, size (frame folders: size only)
  bool skip_corrupt = false;
  ClipTransformList transforms;
  bool multi_label = false;
  int64_t num_classes = 0;
};

class VideoDataset : public Dataset {
 public:
  VideoDataset(std::vector<VideoEntry> entries, VideoDatasetOptions options);
  int64_t size() const override { return static_cast<int64_t>(entries_.size()); }
  Example get(int64_t index, Generator& rng) const override;
  const std::vector<VideoEntry>& entries() const { return entries_; }

  // The frame indices a sample of `num_frames` frames uses, view-major (what get() decodes).
  std::vector<int64_t> sample_indices(int64_t num_frames, Generator& rng) const;
  // Views of one entry before the transforms (throws naming the file when unreadable).
  std::vector<Clip> load_views(const VideoEntry& e, Generator& rng,
                               std::vector<int64_t>* indices = nullptr) const;

 private:
  std::vector<VideoEntry> entries_;
  VideoDatasetOptions o_;
  bool labeled_ = false;
  mutable std::mutex reported_mu_;
  mutable std::set<std::string> reported_;
};

// Registers the "video" reader and the clip transforms. Idempotent.
void register_video_readers();

}  // namespace oar::readers
