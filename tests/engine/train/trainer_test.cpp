// The trainer: exact resume (at an epoch boundary and mid-epoch), checkpoint layout, best/
// selection, early stopping, gradient accumulation and the NaN guard.
#include <gtest/gtest.h>
#include <omp.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "engine/io/json.h"
#include "engine/io/safetensors.h"
#include "engine/nn.h"
#include "engine/ops.h"
#include "engine/ops/cpu/packed_linear.h"
#include "engine/optim/adam.h"
#include "engine/optim/schedule.h"
#include "engine/train/trainer.h"

using namespace oar;
namespace fs = std::filesystem;

namespace {

// In-memory samples: 4x4 "images" whose class is whether the left or the right half is bright.
class Source : public BatchSource {
 public:
  Source(int64_t n, int64_t batch, uint64_t seed, bool shuffle)
      : n_(n), batch_(batch), seed_(seed), shuffle_(shuffle) {
    Generator g(seed);
    x_ = randn({n, 16}, &g, 0.0, 0.5);
    std::vector<int64_t> y(static_cast<size_t>(n));
    float* p = x_.data<float>();
    for (int64_t i = 0; i < n; ++i) {
      y[static_cast<size_t>(i)] = static_cast<int64_t>(g.next_u64() % 2);
      for (int64_t r = 0; r < 4; ++r)
        for (int64_t c = 0; c < 2; ++c)
          p[i * 16 + r * 4 + c + 2 * y[static_cast<size_t>(i)]] += 1.0f;
    }
    y_ = tensor<int64_t>(y, {n});
  }
  int64_t num_samples() const override { return n_; }
  int64_t num_batches() const override { return (n_ + batch_ - 1) / batch_; }
  void start_epoch(int64_t epoch, int64_t skip) override {
    order_.resize(static_cast<size_t>(n_));
    for (int64_t i = 0; i < n_; ++i) order_[static_cast<size_t>(i)] = i;
    if (shuffle_)
      for (int64_t i = n_ - 1; i > 0; --i)
        std::swap(
            order_[static_cast<size_t>(i)],
            order_[Generator::hash(seed_ + static_cast<uint64_t>(epoch), static_cast<uint64_t>(i)) %
                   static_cast<uint64_t>(i + 1)]);
    next_ = skip;
  }
  bool next(Batch& b) override {
    if (next_ >= num_batches()) return false;
    const int64_t lo = next_ * batch_, hi = std::min(n_, lo + batch_);
    std::vector<int64_t> idx(order_.begin() + lo, order_.begin() + hi);
    Tensor ix = tensor<int64_t>(idx, {hi - lo});
    b = Batch();
    b.tensors["x"] = index_select(x_, 0, ix);
    b.tensors["label"] = index_select(y_, 0, ix);
    b.size = hi - lo;
    for (int64_t i : idx) {
      Json m = Json::object();
      m["index"] = i;
      b.meta.push_back(m);
    }
    ++next_;
    return true;
  }

 private:
  int64_t n_, batch_;
  uint64_t seed_;
  bool shuffle_;
  Tensor x_, y_;
  std::vector<int64_t> order_;
  int64_t next_ = 0;
};

class Accuracy : public Metric {
 public:
  std::string name() const override { return "accuracy"; }
  void reset() override { c_ = n_ = 0; }
  void update(const Outputs& o, const Batch& b) override {
    c_ += sum(eq(argmax(o.at("logits"), 1), b["label"])).item<double>();
    n_ += static_cast<double>(b.size);
  }
  std::vector<std::pair<std::string, double>> compute() const override {
    return {{"acc", n_ ? c_ / n_ : 0}};
  }
  std::vector<double> state() const override { return {c_, n_}; }
  void load_state(const std::vector<double>& s) override { c_ = s[0], n_ = s[1]; }

 private:
  double c_ = 0, n_ = 0;
};

struct Net : nn::Module {
  explicit Net(Generator& g) {
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(16, 16, true, &g));
    drop = register_module("drop", std::make_shared<nn::Dropout>(0.2));
    fc2 = register_module("fc2", std::make_shared<nn::Linear>(16, 2, true, &g));
  }
  Tensor forward(const Tensor& x) override { return (*fc2)((*drop)(relu((*fc1)(x)))); }
  std::shared_ptr<nn::Linear> fc1, fc2;
  std::shared_ptr<nn::Dropout> drop;
};

class ClsTask : public Task {
 public:
  explicit ClsTask(uint64_t seed, double scale = 1.0) : gen_(seed), net_(gen_), scale_(scale) {}
  nn::Module& model() override { return net_; }
  Outputs forward(const Batch& b) override { return {{"logits", net_(b["x"])}}; }
  Tensor loss(const Outputs& o, const Batch& b) override {
    return mul(cross_entropy(o.at("logits"), b["label"]), scale_);
  }
  std::vector<std::unique_ptr<Metric>> metrics() const override {
    std::vector<std::unique_ptr<Metric>> m;
    m.push_back(std::make_unique<Accuracy>());
    return m;
  }
  std::vector<Json> predict(const Outputs& o, const Batch& b) const override {
    std::vector<Json> r;
    auto pred = argmax(o.at("logits"), 1).to_vector<int64_t>();
    for (size_t i = 0; i < pred.size(); ++i) {
      Json j = b.meta[i];
      j["pred"] = pred[i];
      r.push_back(j);
    }
    return r;
  }

 private:
  Generator gen_;
  Net net_;
  double scale_;
};

struct RunOut {
  std::vector<float> weights;
  FitResult result;
};

std::vector<float> flat(nn::Module& m) {
  std::vector<float> w;
  for (auto& [n, t] : m.state_dict()) {
    auto v = t.to_vector<float>();
    w.insert(w.end(), v.begin(), v.end());
  }
  return w;
}

RunOut train(const std::string& dir, TrainerOptions o, const std::string& resume = "") {
  Source train(200, 16, 11, true), valid(64, 32, 12, false);
  ClsTask task(5);
  optim::AdamOptions ao;
  ao.lr = 0.01;
  optim::Adam opt(task.model().parameters(), ao);
  optim::CosineLr sched(0.01, 40);
  o.output_dir = dir;
  o.plain_progress = true;
  o.seed = 3;
  Trainer t(task, opt, &sched, train, &valid, o, "model: {name: test}\n");
  RunOut r;
  r.result = t.fit(resume);
  r.weights = flat(task.model());
  return r;
}

std::string tmpdir(const std::string& name) {
  fs::path p =
      fs::temp_directory_path() / ("oar_trainer_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  return p.string();
}

class TrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    threads_ = omp_get_max_threads();
    omp_set_num_threads(1);  // bit-identical results are promised with one thread
  }
  void TearDown() override { omp_set_num_threads(threads_); }
  int threads_ = 1;
};

}  // namespace

TEST_F(TrainerTest, ResumeAtEpochBoundaryIsBitIdentical) {
  TrainerOptions o;
  o.epochs = 2;
  const RunOut straight = train(tmpdir("a"), o);
  const std::string dir = tmpdir("b");
  TrainerOptions half = o;
  half.epochs = 1;
  train(dir, half);
  const RunOut resumed = train(dir, o, "auto");
  ASSERT_EQ(straight.weights.size(), resumed.weights.size());
  EXPECT_EQ(0, std::memcmp(straight.weights.data(), resumed.weights.data(),
                           straight.weights.size() * sizeof(float)));
  EXPECT_EQ(resumed.result.steps, 26);
}

TEST_F(TrainerTest, ResumeMidEpochIsBitIdentical) {
  TrainerOptions o;
  o.epochs = 2;
  const RunOut straight = train(tmpdir("c"), o);
  const std::string dir = tmpdir("d");
  TrainerOptions part = o;
  part.max_steps = 5;  // stops inside the first epoch and checkpoints there
  train(dir, part);
  ASSERT_TRUE(fs::exists(fs::path(dir) / "ckpt" / "step-5" / "state.json"));
  const RunOut resumed = train(dir, o, "auto");
  EXPECT_EQ(0, std::memcmp(straight.weights.data(), resumed.weights.data(),
                           straight.weights.size() * sizeof(float)));
}

TEST_F(TrainerTest, WritesRunDirectoryAndKeepsLastK) {
  TrainerOptions o;
  o.epochs = 3;
  o.keep_last = 2;
  o.save_every_steps = 4;
  const std::string dir = tmpdir("e");
  const RunOut r = train(dir, o);
  for (const char* f : {"config.yaml", "metrics.jsonl", "best/model.safetensors",
                        "best/config.yaml", "best/state.json"})
    EXPECT_TRUE(fs::exists(fs::path(dir) / f)) << f;
  int ckpts = 0;
  for (auto& e : fs::directory_iterator(fs::path(dir) / "ckpt")) {
    EXPECT_EQ(e.path().filename().string().rfind("step-", 0), 0u)
        << "temporary left behind: " << e.path();
    ++ckpts;
  }
  EXPECT_EQ(ckpts, 2);
  EXPECT_TRUE(r.result.has_best);
  EXPECT_GT(r.result.best_value, 0.8);
  // metrics.jsonl: one JSON object per line with train and valid records
  std::ifstream in(fs::path(dir) / "metrics.jsonl");
  int valid = 0;
  for (std::string line; std::getline(in, line);) {
    Json j = Json::parse(line);
    if (j.at("phase").as_string() == "valid") ++valid;
  }
  EXPECT_EQ(valid, 3);
  bool events = false;
  for (auto& e : fs::directory_iterator(dir))
    events |= e.path().filename().string().rfind("events.out.tfevents.", 0) == 0;
  EXPECT_TRUE(events);
  // the best weights load back
  auto f = io::read_safetensors((fs::path(dir) / "best" / "model.safetensors").string());
  EXPECT_TRUE(f.get("fc1.weight").defined());
}

TEST_F(TrainerTest, EvaluationDuringTrainingLeavesNoPackedWeights) {
  // Evaluation runs the linears from packed weight copies (on AVX-512 CPUs); training goes on
  // after it and writes the weights, so the trainer drops the copies. A standalone evaluation
  // keeps them.
  Source train_set(200, 16, 11, true), valid(64, 32, 12, false);
  ClsTask task(5);
  optim::Adam opt(task.model().parameters(), optim::AdamOptions{});
  TrainerOptions o;
  o.epochs = 2;
  o.eval_every_epochs = 1;
  o.output_dir = tmpdir("p");
  o.plain_progress = true;
  Trainer t(task, opt, nullptr, train_set, &valid, o, "model: {name: test}\n");
  t.fit("");
  EXPECT_EQ(cpu::packed_linear_cache_size(), 0);
  task.model().eval();
  t.evaluate(valid, o.output_dir);
  EXPECT_EQ(cpu::packed_linear_cache_size(), cpu::packed_linear_available() ? 2 : 0);
  release_packed_linear_weights();
}

TEST_F(TrainerTest, EarlyStoppingStopsAfterPatience) {
  TrainerOptions o;
  o.epochs = 50;
  o.early_stopping_patience = 2;
  o.best_metric = "acc";  // saturates on this easy task, so it stops improving
  o.best_max = true;
  o.eval_every_epochs = 1;
  const RunOut r = train(tmpdir("f"), o);
  EXPECT_TRUE(r.result.early_stopped);
  EXPECT_LT(r.result.epochs_completed, 50);
}

TEST_F(TrainerTest, NanLossStopsNamingTheStepAndKeepsTheLastCheckpoint) {
  Source train_src(64, 16, 11, true);
  ClsTask task(5, std::numeric_limits<double>::quiet_NaN());
  optim::Adam opt(task.model().parameters());
  TrainerOptions o;
  o.epochs = 1;
  o.output_dir = tmpdir("g");
  o.plain_progress = true;
  Trainer t(task, opt, nullptr, train_src, nullptr, o, "");
  try {
    t.fit();
    FAIL() << "expected DivergedError";
  } catch (const DivergedError& e) {
    EXPECT_NE(std::string(e.what()).find("at step 1"), std::string::npos) << e.what();
  }
}
