#include "readers/image/image.h"

#include <algorithm>
#include <filesystem>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "engine/core/error.h"

namespace oar::readers {

Image decode_image(const std::string& path, int channels) {
  OAR_CHECK(channels == 1 || channels == 3, "decode_image: channels must be 1 or 3, got ",
            channels);
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) OAR_FAIL(path, ": no such image file");
  cv::Mat m;
  try {
    m = cv::imread(path, channels == 1 ? cv::IMREAD_GRAYSCALE : cv::IMREAD_COLOR);
  } catch (const cv::Exception& e) {
    OAR_FAIL(path, ": cannot decode image (", e.what(), ")");
  }
  if (m.empty() || m.rows == 0 || m.cols == 0)
    OAR_FAIL(path, ": cannot decode image (corrupt, truncated or not a supported format)");
  if (m.depth() != CV_8U) {  // 16-bit PNGs: scale to 8 bits
    cv::Mat m8;
    m.convertTo(m8, CV_8U, m.depth() == CV_16U ? 1.0 / 257.0 : 1.0);
    m = m8;
  }
  if (channels == 3) cv::cvtColor(m, m, cv::COLOR_BGR2RGB);
  Image img(m.rows, m.cols, channels);
  cv::Mat dst(m.rows, m.cols, CV_32FC(channels), img.data.data());
  m.convertTo(dst, CV_32F, 1.0 / 255.0);
  return img;
}

Tensor image_to_chw(const Image& img) {
  Tensor t = empty({img.channels, img.height, img.width});
  float* p = t.data<float>();
  const int64_t hw = img.height * img.width;
  for (int64_t i = 0; i < hw; ++i)
    for (int64_t c = 0; c < img.channels; ++c) p[c * hw + i] = img.data[i * img.channels + c];
  return t;
}

bool is_image_file(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char ch) { return std::tolower(ch); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp" || ext == ".webp";
}

}  // namespace oar::readers
