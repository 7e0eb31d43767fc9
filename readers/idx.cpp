#include "readers/idx.h"

#include <zlib.h>

#include <filesystem>

#include "engine/core/error.h"

namespace oar::readers {

IdxArray read_idx(const std::string& path) {
  OAR_CHECK(std::filesystem::exists(path), path, ": no such file");
  gzFile f = gzopen(path.c_str(), "rb");  // reads plain files transparently too
  OAR_CHECK(f != nullptr, path, ": cannot open");
  auto read_exact = [&](void* dst, size_t n, const char* what) {
    size_t got = 0;
    while (got < n) {
      const int chunk = static_cast<int>(std::min<size_t>(n - got, 1u << 30));
      const int r = gzread(f, static_cast<char*>(dst) + got, static_cast<unsigned>(chunk));
      if (r <= 0) {
        gzclose(f);
        OAR_FAIL(path, ": truncated IDX file (", what, ": read ", got, " of ", n, " bytes)");
      }
      got += static_cast<size_t>(r);
    }
  };
  unsigned char magic[4];
  read_exact(magic, 4, "magic number");
  if (magic[0] != 0 || magic[1] != 0 || magic[2] != 0x08 || magic[3] < 1 || magic[3] > 4) {
    gzclose(f);
    OAR_FAIL(path, ": not an IDX file of unsigned bytes (magic ", int(magic[0]), " ", int(magic[1]),
             " ", int(magic[2]), " ", int(magic[3]), ")");
  }
  IdxArray a;
  int64_t total = 1;
  for (int d = 0; d < magic[3]; ++d) {
    unsigned char b[4];
    read_exact(b, 4, "dimensions");
    const int64_t v = (int64_t(b[0]) << 24) | (int64_t(b[1]) << 16) | (int64_t(b[2]) << 8) | b[3];
    a.dims.push_back(v);
    total *= v;
  }
  OAR_CHECK(total >= 0 && total < (int64_t(1) << 34), path, ": implausible IDX size");
  a.data.resize(static_cast<size_t>(total));
  read_exact(a.data.data(), a.data.size(), "data");
  gzclose(f);
  return a;
}

IdxImageDataset::IdxImageDataset(const std::string& images, const std::string& labels, float mean,
                                 float std)
    : images_(read_idx(images)), mean_(mean), std_(std) {
  OAR_CHECK(images_.dims.size() == 3, images, ": expected [N, H, W] images, got ",
            images_.dims.size(), " dimensions");
  OAR_CHECK(std > 0, "idx reader: std must be positive");
  n_ = images_.dims[0];
  h_ = images_.dims[1];
  w_ = images_.dims[2];
  if (!labels.empty()) {
    labels_ = read_idx(labels);
    has_labels_ = true;
    OAR_CHECK(labels_.dims.size() == 1 && labels_.dims[0] == n_, labels, ": expected ", n_,
              " labels to match ", images, ", got shape of ", labels_.dims.size(), " dims");
  }
}

Example IdxImageDataset::get(int64_t index, Generator&) const {
  OAR_CHECK(index >= 0 && index < n_, "idx dataset: index ", index, " out of range (", n_,
            " samples)");
  Tensor img = empty({1, h_, w_});
  float* p = img.data<float>();
  const uint8_t* src = images_.data.data() + index * h_ * w_;
  const float scale = 1.0f / (255.0f * std_);
  const float shift = mean_ / std_;
  for (int64_t i = 0; i < h_ * w_; ++i) p[i] = src[i] * scale - shift;
  Example e;
  e.fields["image"] = img;
  if (has_labels_) e.fields["label"] = scalar_tensor(labels_.data[index], DType::i64);
  e.meta["index"] = index;
  return e;
}

}  // namespace oar::readers
