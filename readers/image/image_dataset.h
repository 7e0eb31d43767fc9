#pragma once
// Image files as a dataset: class-per-folder trees (`image_folder`), list files
// (`image_list`: `relative/path label` per line under a root), and for prediction a single image,
// a folder of images or a list of paths without labels.
//
// Each sample is decoded with OpenCV (RGB or gray), passed through the configured transforms with
// the sample's generator, and laid out as {"image": f32 [C, H, W], "label": i64 []} with meta
// {"path": ...}. A file that cannot be decoded is an error naming its path (on_error: fail), or
// (on_error: skip) is reported once on stderr and replaced by the next decodable sample in index
// order, so the batch, and the run, stay deterministic; meta then carries {"skipped": bad path}.
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "readers/dataset.h"
#include "readers/image/transform.h"

namespace oar::readers {

struct ImageEntry {
  std::string path;
  int64_t label = -1;  // -1: none (prediction inputs)
};

struct ImageSource {
  std::vector<ImageEntry> entries;
  std::vector<std::string> class_names;  // from folder names; empty for list files
};

// root/<class>/**/<image>: classes are the sorted names of root's sub-folders that hold images
// (label = position); files are sorted by path. Throws naming root when it holds no images.
ImageSource scan_image_folder(const std::string& root);

// One sample per non-empty line: `relative/path label` (path relative to `root`, or absolute),
// or a path alone (no label; every line must then be unlabeled). '#' starts a comment line.
// Errors name list:line.
ImageSource read_image_list(const std::string& list, const std::string& root);

// What `oar predict --input PATH` means: an image file (one sample), a folder (its class
// sub-folders when it has no images of its own, else the images directly in it, sorted), or a
// list file (read_image_list with root = the list's folder).
ImageSource resolve_image_input(const std::string& path);

struct ImageDatasetOptions {
  int channels = 3;          // 1: gray, 3: RGB
  bool skip_errors = false;  // on_error: skip
  TransformList transforms;
  BatchTransformList batch_transforms;
  int64_t num_classes = 0;  // for label_soft; 0: class_names.size() or the largest label + 1
};

class ImageDataset : public Dataset {
 public:
  ImageDataset(ImageSource source, ImageDatasetOptions options);
  int64_t size() const override { return static_cast<int64_t>(src_.entries.size()); }
  Example get(int64_t index, Generator& rng) const override;
  Batch collate(std::vector<Example>& examples) const override;
  const std::vector<std::string>& class_names() const { return src_.class_names; }
  const std::vector<ImageEntry>& entries() const { return src_.entries; }
  int64_t num_classes() const { return num_classes_; }

 private:
  ImageSource src_;
  ImageDatasetOptions o_;
  int64_t num_classes_ = 0;
  bool labeled_ = false;
  mutable std::mutex reported_mu_;
  mutable std::set<std::string> reported_;
};

// Registers image_folder and image_list (and the transforms). Idempotent.
void register_image_readers();

}  // namespace oar::readers
