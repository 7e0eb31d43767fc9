// fp16 loss scaling (GradScaler) on the CPU: unscaling, inf/NaN detection, skipped steps, the
// backoff and growth of the scale, its state, and the trainer's fp16 path with the scale saved in
// and restored from checkpoints.
#include <gtest/gtest.h>

#include <unistd.h>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "engine/io/json.h"
#include "engine/nn/module.h"
#include "engine/ops.h"
#include "engine/optim/sgd.h"
#include "engine/train/grad_scaler.h"
#include "engine/train/trainer.h"

using namespace oar;
namespace fs = std::filesystem;

namespace {

Tensor param(std::vector<float> v) {
  Tensor p = tensor<float>(v, {static_cast<int64_t>(v.size())});
  p.set_requires_grad();
  return p;
}

// Backward of scale * sum(w * x): w.grad = scale * x.
void backward_scaled(GradScaler& s, const Tensor& w, const Tensor& x) {
  s.scale_loss(sum(mul(w, x))).backward();
}

}  // namespace

TEST(GradScaler, UnscalesGradientsAndSteps) {
  GradScaler s({1024.0, 2.0, 0.5, 3});
  Tensor w = param({1, 2, 3});
  optim::SGD opt({w}, optim::SgdOptions{0.1, 0.0});
  backward_scaled(s, w, tensor<float>({0.5f, -1.0f, 2.0f}));
  EXPECT_FLOAT_EQ(w.grad().to_vector<float>()[0], 512.0f);  // scaled by 1024
  EXPECT_TRUE(s.step(opt, {w}));
  const auto g = w.grad().to_vector<float>();
  EXPECT_FLOAT_EQ(g[0], 0.5f);
  EXPECT_FLOAT_EQ(g[1], -1.0f);
  const auto v = w.to_vector<float>();
  EXPECT_FLOAT_EQ(v[0], 1.0f - 0.05f);
  EXPECT_FLOAT_EQ(v[1], 2.0f + 0.1f);
  EXPECT_FLOAT_EQ(v[2], 3.0f - 0.2f);
  EXPECT_EQ(s.scale(), 1024.0);
  EXPECT_EQ(s.growth_tracker(), 1);
}

TEST(GradScaler, InfOrNanSkipsTheStepAndHalvesTheScale) {
  for (const float bad :
       {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
        std::numeric_limits<float>::quiet_NaN()}) {
    GradScaler s({4096.0, 2.0, 0.5, 10});
    Tensor w = param({1, 2, 3});
    Tensor u = param({5});  // a second parameter whose gradient stays finite
    optim::SGD opt({w, u}, optim::SgdOptions{0.1, 0.0});
    s.scale_loss(add(sum(mul(w, tensor<float>({1.0f, bad, 1.0f}))), sum(u))).backward();
    EXPECT_FALSE(s.step(opt, {w, u})) << bad;
    EXPECT_EQ(w.to_vector<float>(), (std::vector<float>{1, 2, 3})) << "step not skipped, " << bad;
    EXPECT_EQ(u.to_vector<float>(), (std::vector<float>{5})) << "step not skipped, " << bad;
    EXPECT_EQ(s.scale(), 2048.0);
    EXPECT_EQ(s.skipped_steps(), 1);
    EXPECT_EQ(s.growth_tracker(), 0);
  }
}

TEST(GradScaler, GrowsAfterIntervalOfGoodStepsAndRestartsCountOnOverflow) {
  GradScaler s({8.0, 2.0, 0.5, 3});
  Tensor w = param({1});
  optim::SGD opt({w}, optim::SgdOptions{0.0, 0.0});
  auto good = [&] {
    opt.zero_grad();
    backward_scaled(s, w, tensor<float>({1.0f}));
    return s.step(opt, {w});
  };
  auto overflow = [&] {
    opt.zero_grad();
    backward_scaled(s, w, tensor<float>({std::numeric_limits<float>::infinity()}));
    return s.step(opt, {w});
  };
  EXPECT_TRUE(good());
  EXPECT_TRUE(good());
  EXPECT_EQ(s.scale(), 8.0);
  EXPECT_TRUE(good());  // third good step in a row
  EXPECT_EQ(s.scale(), 16.0);
  EXPECT_EQ(s.growth_tracker(), 0);
  EXPECT_TRUE(good());
  EXPECT_TRUE(good());
  EXPECT_FALSE(overflow());  // two good steps, then an overflow: the count restarts
  EXPECT_EQ(s.scale(), 8.0);
  EXPECT_TRUE(good());
  EXPECT_TRUE(good());
  EXPECT_EQ(s.scale(), 8.0);
  EXPECT_TRUE(good());
  EXPECT_EQ(s.scale(), 16.0);
}

TEST(GradScaler, StateRoundTripsAndBadValuesAreErrors) {
  GradScaler a({64.0, 2.0, 0.5, 5});
  Tensor w = param({1});
  optim::SGD opt({w}, optim::SgdOptions{0.0, 0.0});
  backward_scaled(a, w, tensor<float>({std::numeric_limits<float>::infinity()}));
  a.step(opt, {w});
  opt.zero_grad();
  backward_scaled(a, w, tensor<float>({1.0f}));
  a.step(opt, {w});
  GradScaler b;
  b.load_state(Json::parse(a.state().dump(), "state"), "state.json");
  EXPECT_EQ(b.scale(), 32.0);
  EXPECT_EQ(b.growth_tracker(), 1);
  EXPECT_EQ(b.skipped_steps(), 1);
  Json bad = a.state();
  bad["scale"] = -1.0;
  try {
    b.load_state(bad, "ckpt/state.json");
    FAIL() << "a negative scale was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("ckpt/state.json"), std::string::npos) << e.what();
  }
  EXPECT_THROW(GradScaler({0.0, 2.0, 0.5, 5}), Error);
  EXPECT_THROW(GradScaler({1.0, 2.0, 0.5, 0}), Error);
}

// ---- the trainer's fp16 path --------------------------------------------------------------
// The model has no op that autocast lowers (a scale vector, mse loss), so fp16 runs on the CPU:
// what is tested is the loss scaling around backward, not f16 kernels.
namespace {

class Samples : public BatchSource {
 public:
  int64_t num_samples() const override { return 8 * 4; }
  int64_t num_batches() const override { return 8; }
  void start_epoch(int64_t, int64_t skip) override { next_ = skip; }
  bool next(Batch& b) override {
    if (next_ >= 8) return false;
    Generator g(100 + static_cast<uint64_t>(next_));
    b = Batch();
    b.tensors["x"] = randn({4, 3}, &g);
    b.tensors["y"] = mul(b.tensors["x"], 2.0);
    b.tensors["batch"] = full({1}, static_cast<double>(next_), DType::i64);
    b.size = 4;
    ++next_;
    return true;
  }

 private:
  int64_t next_ = 0;
};

struct Scale : nn::Module {
  Scale() { w = register_parameter("w", ones({3})); }
  Tensor w;
};

// Batch `poison` of every epoch gets a huge loss factor: finite in f32, inf once scaled.
class ScaleTask : public Task {
 public:
  explicit ScaleTask(int64_t poison) : poison_(poison) {}
  nn::Module& model() override { return m_; }
  Outputs forward(const Batch& b) override { return {{"y", mul(b["x"], m_.w)}}; }
  Tensor loss(const Outputs& o, const Batch& b) override {
    Tensor l = mse_loss(o.at("y"), b["y"]);
    if (b["batch"].item<int64_t>() == poison_) l = mul(l, 1e37);
    return l;
  }
  std::vector<std::unique_ptr<Metric>> metrics() const override { return {}; }
  std::vector<Json> predict(const Outputs&, const Batch&) const override { return {}; }

 private:
  int64_t poison_;
  Scale m_;
};

std::vector<Json> records(const std::string& dir) {
  std::ifstream in(fs::path(dir) / "metrics.jsonl");
  std::vector<Json> r;
  std::string line;
  while (std::getline(in, line)) r.push_back(Json::parse(line, "metrics.jsonl"));
  return r;
}

Json read_json(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return Json::parse(ss.str(), p.string());
}

}  // namespace

TEST(GradScaler, TrainerSkipsOverflowStepsAndCheckpointsTheScale) {
  const std::string dir =
      (fs::temp_directory_path() / ("oar_fp16_trainer_" + std::to_string(::getpid()))).string();
  fs::remove_all(dir);
  TrainerOptions o;
  o.epochs = 1;
  o.log_every = 1;
  o.fp16 = true;
  o.loss_scale.init_scale = 1024.0;
  o.loss_scale.growth_interval = 3;
  o.output_dir = dir;
  o.plain_progress = true;
  o.eval_every_epochs = 0;
  std::vector<float> w_before_poison, w_after_poison;
  {
    Samples data;
    ScaleTask task(4);  // the 5th batch overflows
    optim::SGD opt(task.model().parameters(), optim::SgdOptions{0.05, 0.0});
    Trainer t(task, opt, nullptr, data, nullptr, o, "model: {name: test}\n");
    const FitResult r = t.fit();
    EXPECT_EQ(r.steps, 8);
  }
  const std::vector<Json> rec = records(dir);
  ASSERT_EQ(rec.size(), 8u);
  // Steps 1-3 good: the scale doubles after the third; step 4 good; step 5 overflows (halved,
  // skipped); steps 6-8 good: doubled again after the eighth.
  const double expect[] = {1024, 1024, 2048, 2048, 1024, 1024, 1024, 2048};
  for (size_t i = 0; i < rec.size(); ++i) {
    EXPECT_EQ(rec[i].at("loss_scale").as_double(), expect[i]) << "step " << i + 1;
    EXPECT_EQ(rec[i].at("skipped_steps").as_int(), i >= 4 ? 1 : 0) << "step " << i + 1;
  }
  const Json st = read_json(fs::path(dir) / "ckpt" / "step-8" / "state.json");
  EXPECT_EQ(st.at("loss_scale").at("scale").as_double(), 2048.0);
  EXPECT_EQ(st.at("loss_scale").at("growth_tracker").as_int(), 0);
  EXPECT_EQ(st.at("loss_scale").at("skipped_steps").as_int(), 1);

  // The skipped step left the weights alone: a run whose poisoned batch is the last one ends
  // with the weights of the run that stopped just before it.
  auto weights_after = [&](int64_t steps, int64_t poison, const std::string& sub) {
    TrainerOptions p = o;
    p.max_steps = steps;
    p.output_dir = dir + sub;
    fs::remove_all(p.output_dir);
    Samples data;
    ScaleTask task(poison);
    optim::SGD opt(task.model().parameters(), optim::SgdOptions{0.05, 0.0});
    Trainer t(task, opt, nullptr, data, nullptr, p, "model: {name: test}\n");
    t.fit();
    std::vector<float> w = task.model().parameters()[0].to_vector<float>();
    fs::remove_all(p.output_dir);
    return w;
  };
  const std::vector<float> four = weights_after(4, 99, "-a");
  const std::vector<float> five_poisoned = weights_after(5, 4, "-b");
  const std::vector<float> five = weights_after(5, 99, "-c");
  EXPECT_EQ(four, five_poisoned);
  EXPECT_NE(four, five);

  // Resume restores the scale (a fresh scaler would start at 1024).
  {
    TrainerOptions p = o;
    p.epochs = 2;
    Samples data;
    ScaleTask task(99);
    optim::SGD opt(task.model().parameters(), optim::SgdOptions{0.05, 0.0});
    Trainer t(task, opt, nullptr, data, nullptr, p, "model: {name: test}\n");
    t.fit("auto");
  }
  const std::vector<Json> rec2 = records(dir);
  ASSERT_EQ(rec2.size(), 16u);
  EXPECT_EQ(rec2[8].at("step").as_int(), 9);
  EXPECT_EQ(rec2[8].at("loss_scale").as_double(), 2048.0);
  EXPECT_EQ(rec2[8].at("skipped_steps").as_int(), 1);
  fs::remove_all(dir);
}

TEST(GradScaler, TrainerRejectsBf16WithFp16) {
  Samples data;
  ScaleTask task(99);
  optim::SGD opt(task.model().parameters(), optim::SgdOptions{0.05, 0.0});
  TrainerOptions o;
  o.bf16 = o.fp16 = true;
  o.output_dir = "/tmp/unused";
  try {
    Trainer t(task, opt, nullptr, data, nullptr, o, "");
    FAIL() << "bf16 with fp16 was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bf16 and fp16"), std::string::npos) << e.what();
  }
}
