#include "vision/confusion_picture.h"

#include <algorithm>
#include <cmath>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "engine/core/error.h"
#include "engine/io/atomic_file.h"

namespace oar::vision {

std::string render_confusion_png(const std::vector<double>& counts, int64_t n,
                                 const std::vector<std::string>& names) {
  OAR_CHECK(n >= 1 && static_cast<int64_t>(counts.size()) == n * n,
            "confusion picture: ", counts.size(), " counts for ", n, " classes");
  const int cell = static_cast<int>(std::clamp<int64_t>(720 / n, 2, 48));
  const bool labels = n <= 60, numbers = n <= 20;
  const int margin = labels ? 110 : 10;
  const int side = cell * static_cast<int>(n);
  cv::Mat shares(static_cast<int>(n), static_cast<int>(n), CV_8U);
  for (int64_t r = 0; r < n; ++r) {
    double total = 0;
    for (int64_t c = 0; c < n; ++c) total += counts[r * n + c];
    for (int64_t c = 0; c < n; ++c)
      shares.at<uint8_t>(static_cast<int>(r), static_cast<int>(c)) =
          cv::saturate_cast<uint8_t>(total > 0 ? 255.0 * counts[r * n + c] / total : 0.0);
  }
  cv::Mat cells;
  cv::resize(shares, cells, cv::Size(side, side), 0, 0, cv::INTER_NEAREST);
  cv::applyColorMap(cells, cells, cv::COLORMAP_VIRIDIS);
  cv::Mat pic(side + margin + 10, side + margin + 10, CV_8UC3, cv::Scalar(255, 255, 255));
  cells.copyTo(pic(cv::Rect(margin, margin, side, side)));
  const double font = std::clamp(cell / 40.0, 0.3, 0.5);
  auto name = [&](int64_t k) {
    std::string s = k < static_cast<int64_t>(names.size()) ? names[k] : std::to_string(k);
    return s.size() > 14 ? s.substr(0, 13) + "." : s;
  };
  if (labels) {
    cv::putText(pic, "true \\ predicted", cv::Point(4, 14), cv::FONT_HERSHEY_SIMPLEX, 0.4,
                cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
    for (int64_t k = 0; k < n; ++k) {
      const int mid = margin + static_cast<int>(k) * cell + cell / 2;
      cv::putText(pic, name(k), cv::Point(4, mid + 4), cv::FONT_HERSHEY_SIMPLEX, font,
                  cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
      // Column names run upwards: drawn on a strip, then rotated.
      cv::Mat strip(cell, margin - 4, CV_8UC3, cv::Scalar(255, 255, 255));
      cv::putText(strip, name(k), cv::Point(2, cell / 2 + 4), cv::FONT_HERSHEY_SIMPLEX, font,
                  cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
      cv::Mat up;
      cv::rotate(strip, up, cv::ROTATE_90_COUNTERCLOCKWISE);
      up.copyTo(pic(cv::Rect(margin + static_cast<int>(k) * cell, 0, cell, margin - 4)));
    }
  }
  if (numbers)
    for (int64_t r = 0; r < n; ++r)
      for (int64_t c = 0; c < n; ++c) {
        const std::string t = std::to_string(static_cast<int64_t>(counts[r * n + c]));
        const bool dark = shares.at<uint8_t>(static_cast<int>(r), static_cast<int>(c)) < 160;
        cv::putText(pic, t,
                    cv::Point(margin + static_cast<int>(c) * cell + 3,
                              margin + static_cast<int>(r) * cell + cell / 2 + 4),
                    cv::FONT_HERSHEY_SIMPLEX, font * 0.9,
                    dark ? cv::Scalar(255, 255, 255) : cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
      }
  std::vector<uchar> png;
  OAR_CHECK(cv::imencode(".png", pic, png), "confusion picture: PNG encoding failed");
  return std::string(png.begin(), png.end());
}

void ConfusionMatrixWithPicture::write_artifacts(const std::string& dir) const {
  metrics::ConfusionMatrix::write_artifacts(dir);
  const std::vector<double> counts = state();
  const int64_t n =
      static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(counts.size()))));
  io::write_file_atomic(dir + "/confusion_matrix.png", render_confusion_png(counts, n, names_));
}

}  // namespace oar::vision
