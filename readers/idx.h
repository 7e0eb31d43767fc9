#pragma once
// IDX files (MNIST, Fashion-MNIST), plain or gzip-compressed.
#include <string>
#include <vector>

#include "readers/dataset.h"

namespace oar::readers {

struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;  // u8 payload (the type MNIST-style files use)
};

// Reads an IDX file (magic 0x0000080x with unsigned-byte data); throws naming the path on a
// missing, truncated or non-IDX file.
IdxArray read_idx(const std::string& path);

// Images [N, H, W] u8 and labels [N] -> examples {"image": f32 [1, H, W] normalised by
// (x/255 - mean) / std, "label": i64 []}; meta {"index": i}.
class IdxImageDataset : public Dataset {
 public:
  IdxImageDataset(const std::string& images, const std::string& labels, float mean, float std);
  int64_t size() const override { return n_; }
  Example get(int64_t index, Generator& rng) const override;
  int64_t height() const { return h_; }
  int64_t width() const { return w_; }

 private:
  IdxArray images_, labels_;
  int64_t n_ = 0, h_ = 0, w_ = 0;
  float mean_, std_;
  bool has_labels_ = false;
};

}  // namespace oar::readers
