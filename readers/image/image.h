#pragma once
// A decoded image as the transforms see it: HWC float, RGB (or one gray channel), values on the
// [0, 1] scale until `normalize` maps them. OpenCV stays inside the .cpp files.
#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor/tensor.h"

namespace oar::readers {

struct Image {
  int64_t height = 0, width = 0, channels = 0;
  std::vector<float> data;  // row-major [height, width, channels]

  Image() = default;
  Image(int64_t h, int64_t w, int64_t c, float fill = 0.0f)
      : height(h), width(w), channels(c), data(static_cast<size_t>(h * w * c), fill) {}
  float* pixel(int64_t y, int64_t x) { return data.data() + (y * width + x) * channels; }
  const float* pixel(int64_t y, int64_t x) const {
    return data.data() + (y * width + x) * channels;
  }
};

// Decodes jpg, png, bmp, webp (anything OpenCV's imgcodecs reads) to `channels` 1 (gray) or 3
// (RGB). An alpha channel is dropped (IMREAD_COLOR keeps the stored colour under transparent
// pixels). JPEG EXIF orientation is applied (OpenCV's imread does this for IMREAD_COLOR and
// IMREAD_GRAYSCALE). Throws std::runtime_error "PATH: cannot decode image (...)" on a missing,
// empty or corrupt file.
Image decode_image(const std::string& path, int channels);

// [C, H, W] f32 from an image (copying).
Tensor image_to_chw(const Image& img);

// True for the file extensions the image readers pick up in folders (case-insensitive):
// .jpg .jpeg .png .bmp .webp.
bool is_image_file(const std::string& path);

}  // namespace oar::readers
