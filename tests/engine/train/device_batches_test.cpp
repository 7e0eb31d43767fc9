// DeviceBatches on the CPU: batches pass through unchanged (the same tensors), epochs restart and
// skip, host() is the batch just handed out, and a CUDA device without a GPU is an error naming
// it. (tests/engine/gpu_models_test checks the pinned, copy-stream path on a GPU.)
#include "engine/train/device_batches.h"

#include <gtest/gtest.h>

#include "engine/core/error.h"
#include "engine/nn/linear.h"

using namespace oar;

namespace {

class Counting : public BatchSource {
 public:
  int64_t num_samples() const override { return 10; }
  int64_t num_batches() const override { return 5; }
  void start_epoch(int64_t epoch, int64_t skip) override {
    epoch_ = epoch;
    next_ = skip;
  }
  bool next(Batch& b) override {
    if (next_ >= 5) return false;
    b = Batch();
    b.tensors["x"] = full({2, 3}, static_cast<double>(epoch_ * 100 + next_));
    b.meta = {Json(next_), Json(next_)};
    b.size = 2;
    ++next_;
    ++served;
    return true;
  }
  int64_t served = 0;

 private:
  int64_t epoch_ = 0, next_ = 0;
};

}  // namespace

TEST(DeviceBatches, CpuPassesBatchesThroughInOrder) {
  Counting src;
  DeviceBatches d(src, Device::cpu());
  EXPECT_EQ(d.num_batches(), 5);
  EXPECT_EQ(d.num_samples(), 10);
  for (int64_t epoch : {0, 1}) {
    d.start_epoch(epoch, 0);
    Batch b;
    int64_t i = 0;
    while (d.next(b)) {
      EXPECT_EQ(b["x"].to_vector<float>()[0], static_cast<float>(epoch * 100 + i));
      EXPECT_EQ(b.size, 2);
      EXPECT_EQ(b.meta[0].as_int(), i);
      EXPECT_TRUE(b["x"].same_storage(d.host()["x"]));  // no copy on the CPU
      ++i;
    }
    EXPECT_EQ(i, 5);
  }
  EXPECT_EQ(src.served, 10);
}

TEST(DeviceBatches, RestartMidEpochAndSkip) {
  Counting src;
  DeviceBatches d(src, Device::cpu());
  d.start_epoch(0, 0);
  Batch b;
  ASSERT_TRUE(d.next(b));
  ASSERT_TRUE(d.next(b));
  d.start_epoch(3, 2);  // the batch fetched ahead is dropped
  ASSERT_TRUE(d.next(b));
  EXPECT_EQ(b["x"].to_vector<float>()[0], 302.0f);
  EXPECT_EQ(d.host().meta[0].as_int(), 2);
  int n = 1;
  while (d.next(b)) ++n;
  EXPECT_EQ(n, 3);
}

TEST(DeviceBatches, ModuleDeviceAndHostCopies) {
  Generator g(1);
  nn::Linear lin(3, 2, true, &g);
  EXPECT_TRUE(module_device(lin).is_cpu());
  const Outputs out{{"logits", ones({2, 2})}};
  const Outputs host = to_host(out);
  EXPECT_TRUE(host.at("logits").same_storage(out.at("logits")));
}

TEST(DeviceBatches, CudaWithoutAGpuIsAnErrorNamingTheDevice) {
  if (cuda_available()) GTEST_SKIP() << "a GPU is visible: tests/engine/gpu_models_test covers it";
  Counting src;
  try {
    DeviceBatches d(src, Device::cuda(1));
    FAIL() << "cuda:1 accepted without a GPU";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cuda:1"), std::string::npos) << e.what();
  }
}
