// Image loader throughput: images/s of one epoch over a generated folder of JPEGs, decoded with
// OpenCV and passed through a training pipeline (random_resized_crop 224, flip, normalize),
// for each worker count.
// Usage: oar_bench_image_loader [IMAGES=2000] [SIDE=256] [WORKERS=1,2] [DIR=/tmp/oar_bench_images]
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <sstream>
#include <string>

#include "readers/registry.h"

namespace fs = std::filesystem;
using namespace oar;

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::stoi(argv[1]) : 2000;
  const int side = argc > 2 ? std::stoi(argv[2]) : 256;
  const std::string workers = argc > 3 ? argv[3] : "1,2";
  const fs::path dir = argc > 4 ? fs::path(argv[4]) : fs::path("/tmp/oar_bench_images");
  int existing = 0;
  if (fs::exists(dir))
    for (const auto& e : fs::recursive_directory_iterator(dir)) existing += e.is_regular_file();
  if (existing != n) {  // smooth gradients plus noise: JPEGs of realistic size
    fs::remove_all(dir);
    cv::RNG rng(1);
    for (int i = 0; i < n; ++i) {
      const fs::path p = dir / ("class" + std::to_string(i % 10)) / (std::to_string(i) + ".jpg");
      fs::create_directories(p.parent_path());
      cv::Mat m(side, side + (i % 3) * 32, CV_8UC3);
      for (int y = 0; y < m.rows; ++y)
        for (int x = 0; x < m.cols; ++x)
          m.at<cv::Vec3b>(y, x) = cv::Vec3b(static_cast<uchar>(x + i), static_cast<uchar>(y * 2),
                                            static_cast<uchar>((x + y) / 2));
      cv::Mat noise(m.size(), CV_8UC3);
      rng.fill(noise, cv::RNG::UNIFORM, 0, 40);
      m += noise;
      cv::imwrite(p.string(), m, {cv::IMWRITE_JPEG_QUALITY, 90});
    }
  }
  readers::register_components();
  std::printf(
      "%d JPEGs of ~%dx%d in %s; pipeline: random_resized_crop 224, horizontal_flip, "
      "normalize; batch 64\n",
      n, side, side, dir.c_str());
  std::printf("%-8s %10s %10s\n", "workers", "seconds", "images/s");
  std::stringstream ws(workers);
  for (std::string w; std::getline(ws, w, ',');) {
    Config c = Config::from_string(
        "data:\n  train: {}\n  name: image_folder\n  root: " + dir.string() +
        "\n  batch_size: 64\n  num_workers: " + w +
        "\n  transforms: [{name: random_resized_crop, size: 224}, {name: horizontal_flip}, "
        "{name: normalize}]\n");
    auto loader = readers::make_loader(c, "train", 0);
    loader->start_epoch(0);
    Batch b;
    int64_t seen = 0;
    const auto t0 = std::chrono::steady_clock::now();
    while (loader->next(b)) seen += b.size;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%-8s %10.2f %10.1f\n", w.c_str(), s, static_cast<double>(seen) / s);
  }
  return 0;
}
