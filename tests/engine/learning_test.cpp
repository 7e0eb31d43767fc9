// End-to-end learning checks of the engine: a tiny MLP and a tiny CNN learn made-up tasks,
// and training is bit-for-bit deterministic under a seed with one thread.
#include <gtest/gtest.h>
#include <omp.h>
#include <cmath>

#include "engine/nn.h"
#include "engine/ops.h"
#include "engine/optim/adam.h"
#include "engine/optim/sgd.h"

using namespace oar;

namespace {

// Points in 2-D labelled by which of 3 concentric rings they fall in (not linearly separable).
void rings(int64_t n, Generator& g, Tensor& x, Tensor& y) {
  x = rand({n, 2}, &g, -1.0, 1.0);
  const float* p = x.data<float>();
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const float r = std::sqrt(p[2 * i] * p[2 * i] + p[2 * i + 1] * p[2 * i + 1]);
    labels[static_cast<size_t>(i)] = r < 0.45f ? 0 : (r < 0.8f ? 1 : 2);
  }
  y = tensor<int64_t>(labels, {n});
}

// 8x8 images with a bright horizontal or vertical bar (class 0/1) at a random place, plus noise.
void bars(int64_t n, Generator& g, Tensor& x, Tensor& y) {
  x = randn({n, 1, 8, 8}, &g, 0.0, 0.3);
  float* p = x.data<float>();
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t cls = static_cast<int64_t>(g.next_u64() % 2);
    const int64_t pos = static_cast<int64_t>(g.next_u64() % 8);
    for (int64_t k = 0; k < 8; ++k) {
      const int64_t r = cls == 0 ? pos : k, c = cls == 0 ? k : pos;
      p[i * 64 + r * 8 + c] += 2.0f;
    }
    labels[static_cast<size_t>(i)] = cls;
  }
  y = tensor<int64_t>(labels, {n});
}

double accuracy(const Tensor& logits, const Tensor& y) {
  Tensor pred = argmax(logits, 1);
  return sum(eq(pred, y)).item<double>() / static_cast<double>(y.numel());
}

std::shared_ptr<nn::Sequential> mlp(Generator& g) {
  struct Relu : nn::Module {
    Tensor forward(const Tensor& x) override { return relu(x); }
  };
  auto m = std::make_shared<nn::Sequential>();
  m->push_back(std::make_shared<nn::Linear>(2, 32, true, &g));
  m->push_back(std::make_shared<Relu>());
  m->push_back(std::make_shared<nn::Linear>(32, 32, true, &g));
  m->push_back(std::make_shared<Relu>());
  m->push_back(std::make_shared<nn::Linear>(32, 3, true, &g));
  return m;
}

struct TinyCnn : nn::Module {
  explicit TinyCnn(Generator& g) {
    nn::ConvOptions o;
    o.padding = {1, 1};
    conv = register_module("conv",
                           std::make_shared<nn::Conv2d>(1, 8, std::vector<int64_t>{3, 3}, o, &g));
    bn = register_module("bn", std::make_shared<nn::BatchNorm2d>(8));
    fc = register_module("fc", std::make_shared<nn::Linear>(8, 2, true, &g));
  }
  Tensor forward(const Tensor& x) override {
    PoolParams p;
    p.kernel = {2, 2};
    Tensor h = max_pool(relu((*bn)((*conv)(x))), p);
    return (*fc)(global_avg_pool(h).flatten(1));
  }
  std::shared_ptr<nn::Conv2d> conv;
  std::shared_ptr<nn::BatchNorm2d> bn;
  std::shared_ptr<nn::Linear> fc;
};

}  // namespace

TEST(Learning, TinyMlpLearnsRings) {
  Generator g(1);
  Tensor x, y;
  rings(512, g, x, y);
  auto model = mlp(g);
  optim::AdamOptions o;
  o.lr = 0.01;
  optim::Adam opt(model->parameters(), o);
  double first = 0, last = 0;
  for (int step = 0; step < 300; ++step) {
    Tensor loss = cross_entropy((*model)(x), y);
    if (step == 0) first = loss.item<double>();
    last = loss.item<double>();
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  NoGradGuard ng;
  EXPECT_GT(first, 0.9);  // about log(3) at the start
  EXPECT_LT(last, 0.25);  // the bound this test promises
  EXPECT_GT(accuracy((*model)(x), y), 0.9);
}

TEST(Learning, TinyCnnLearnsBarOrientation) {
  Generator g(2);
  Tensor x, y;
  bars(256, g, x, y);
  TinyCnn model(g);
  optim::SgdOptions o;
  o.lr = 0.1;
  o.momentum = 0.9;
  optim::SGD opt(model.parameters(), o);
  double last = 0;
  for (int step = 0; step < 60; ++step) {
    Tensor loss = cross_entropy(model(x), y);
    last = loss.item<double>();
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  EXPECT_LT(last, 0.2);
  model.eval();
  NoGradGuard ng;
  Tensor xt, yt;
  bars(256, g, xt, yt);  // fresh samples
  EXPECT_GT(accuracy(model(xt), yt), 0.9);
}

TEST(Learning, SameSeedGivesBitIdenticalWeights) {
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  auto train = [](uint64_t seed) {
    Generator g(seed);
    Tensor x, y;
    bars(64, g, x, y);
    TinyCnn model(g);
    optim::AdamOptions o;
    o.lr = 0.01;
    optim::Adam opt(model.parameters(), o);
    for (int step = 0; step < 10; ++step) {
      Tensor loss = cross_entropy(dropout(model(x), 0.2, true, &g), y);
      opt.zero_grad();
      loss.backward();
      opt.step();
    }
    std::vector<float> w;
    for (auto& [name, t] : model.state_dict()) {
      if (!is_floating(t.dtype())) continue;
      auto v = t.to_vector<float>();
      w.insert(w.end(), v.begin(), v.end());
    }
    return w;
  };
  const auto a = train(7), b = train(7), c = train(8);
  omp_set_num_threads(threads);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float)));
  EXPECT_NE(0, std::memcmp(a.data(), c.data(), a.size() * sizeof(float)));
}
