// confusion_matrix.png beside confusion_matrix.json, and the soft-target loss of mixup batches.
#include <gtest/gtest.h>

#include <filesystem>
#include <opencv2/imgcodecs.hpp>

#include "engine/ops.h"
#include "vision/confusion_picture.h"

namespace fs = std::filesystem;
using namespace oar;

TEST(ConfusionPicture, WritesJsonAndAPngHeatMap) {
  vision::ConfusionMatrixWithPicture m(3, {"cat", "dog", "bird"});
  Batch b;
  b.size = 4;
  Tensor logits = zeros({4, 3});
  float* l = logits.data<float>();
  l[0 * 3 + 0] = 5;  // cat -> cat
  l[1 * 3 + 1] = 5;  // dog -> dog
  l[2 * 3 + 0] = 5;  // dog -> cat
  l[3 * 3 + 2] = 5;  // bird -> bird
  Tensor y = empty({4}, DType::i64);
  const int64_t truth[] = {0, 1, 1, 2};
  std::copy(truth, truth + 4, y.data<int64_t>());
  b.tensors["label"] = y;
  Outputs out;
  out["logits"] = logits;
  m.update(out, b);
  const fs::path dir = fs::temp_directory_path() / ("oar_cm_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  m.write_artifacts(dir.string());
  EXPECT_TRUE(fs::exists(dir / "confusion_matrix.json"));
  cv::Mat pic = cv::imread((dir / "confusion_matrix.png").string(), cv::IMREAD_COLOR);
  ASSERT_FALSE(pic.empty());
  EXPECT_GT(pic.cols, 3 * 48);
  EXPECT_EQ(pic.rows, pic.cols);
  fs::remove_all(dir);
  // Large matrices render without labels, cells at least 2 px.
  std::vector<double> counts(200 * 200, 1.0);
  const std::string png = vision::render_confusion_png(counts, 200, {});
  cv::Mat big = cv::imdecode(std::vector<uchar>(png.begin(), png.end()), cv::IMREAD_COLOR);
  EXPECT_GE(big.cols, 400);
}
