// The image classification loss: hard labels, or mixup / cutmix soft targets when the batch has
// label_soft.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/ops.h"
#include "vision/models/simple_cnn.h"
#include "vision/tasks/image_classification.h"

using namespace oar;

TEST(ImageClassificationTask, UsesSoftTargetsWhenTheBatchHasThem) {
  Generator g(1);
  vision::SimpleCnnOptions mo;
  mo.num_classes = 3;
  vision::ImageClassificationOptions o;
  o.num_classes = 3;
  vision::ImageClassificationTask task(std::make_shared<vision::SimpleCnn>(mo, &g), o);
  Tensor logits = empty({2, 3});
  const float lv[] = {2.0f, 0.0f, -1.0f, 0.5f, 0.5f, 0.0f};
  std::copy(lv, lv + 6, logits.data<float>());
  Outputs out;
  out["logits"] = logits;
  Batch b;
  b.size = 2;
  Tensor y = empty({2}, DType::i64);
  y.data<int64_t>()[0] = 0;
  y.data<int64_t>()[1] = 2;
  b.tensors["label"] = y;
  auto logsm = [&](int i, int k) {
    double z = 0;
    for (int j = 0; j < 3; ++j) z += std::exp(lv[i * 3 + j]);
    return lv[i * 3 + k] - std::log(z);
  };
  const double hard = -(logsm(0, 0) + logsm(1, 2)) / 2;
  EXPECT_NEAR(task.loss(out, b).item<float>(), hard, 1e-5);
  Tensor soft = empty({2, 3});
  const float sv[] = {0.7f, 0.3f, 0.0f, 0.0f, 0.4f, 0.6f};
  std::copy(sv, sv + 6, soft.data<float>());
  b.tensors["label_soft"] = soft;
  double expect = 0;
  for (int i = 0; i < 2; ++i)
    for (int k = 0; k < 3; ++k) expect -= sv[i * 3 + k] * logsm(i, k) / 2;
  EXPECT_NEAR(task.loss(out, b).item<float>(), expect, 1e-5);
}
