// A small CNN (conv-bn-relu-pool x2, linear, cross entropy, SGD with momentum) trained for 30
// steps on fixed random data from identical initial weights on the CPU and on CUDA: the two loss
// curves must agree step by step (f32, TF32 off), and the loss must fall. Skipped without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <vector>

#include "engine/core/cuda/runtime.h"
#include "engine/ops/binary.h"
#include "engine/ops/conv.h"
#include "engine/ops/loss.h"
#include "engine/ops/matmul.h"
#include "engine/ops/norm.h"
#include "engine/ops/pool.h"
#include "engine/ops/unary.h"
#include "engine/optim/sgd.h"
#include "engine/tensor/tensor.h"

using namespace oar;

namespace {

constexpr int kSteps = 30;
// Relative difference of each step's loss: cuBLAS and oneDNN sum in different orders (about
// 1e-6 per op), and 30 steps of SGD amplify that a little.
constexpr double kLossRelTol = 1e-3;

struct Cnn {
  // conv1, bn1 (weight, bias), conv2, bn2, fc; running statistics kept separately.
  std::vector<Tensor> params;
  std::vector<Tensor> running;  // mean1, var1, mean2, var2

  static Cnn init(uint64_t seed) {
    Generator g(seed);
    auto uni = [&](const Shape& s, int64_t fan_in) {
      const double b = 1.0 / std::sqrt(static_cast<double>(fan_in));
      return rand(s, &g, -b, b);
    };
    Cnn m;
    m.params = {uni({8, 3, 3, 3}, 27),      uni({8}, 27),  ones({8}),  zeros({8}),
                uni({16, 8, 3, 3}, 72),     uni({16}, 72), ones({16}), zeros({16}),
                uni({10, 16 * 4 * 4}, 256), uni({10}, 256)};
    m.running = {zeros({8}), ones({8}), zeros({16}), ones({16})};
    return m;
  }

  Cnn to(Device d) const {
    Cnn m;
    for (const Tensor& p : params) {
      Tensor q = p.to(d).clone();
      q.set_requires_grad();
      m.params.push_back(q);
    }
    for (const Tensor& r : running) m.running.push_back(r.to(d).clone());
    return m;
  }

  Tensor forward(const Tensor& x) {
    const PoolParams pool{{2, 2}, {}, {}, {}, false, false};
    Tensor h = conv2d(x, params[0], params[1], {1}, {1});
    h = relu(batch_norm(h, running[0], running[1], params[2], params[3], true));
    h = max_pool(h, pool);
    h = conv2d(h, params[4], params[5], {1}, {1});
    h = relu(batch_norm(h, running[2], running[3], params[6], params[7], true));
    h = max_pool(h, pool);
    return linear(h.reshape({h.size(0), -1}), params[8], params[9]);
  }
};

struct Curve {
  std::vector<double> loss;
  Cnn model;
};

Curve train(Device d, const Cnn& init, const Tensor& x_cpu, const Tensor& y_cpu) {
  Curve c{{}, init.to(d)};
  const Tensor x = x_cpu.to(d), y = y_cpu.to(d);
  optim::SGD opt(c.model.params, optim::SgdOptions{0.005, 0.9});
  for (int step = 0; step < kSteps; ++step) {
    opt.zero_grad();
    Tensor loss = cross_entropy(c.model.forward(x), y);
    loss.backward();
    opt.step();
    c.loss.push_back(loss.to(Device::cpu()).item<float>());
  }
  return c;
}

struct Data {
  Tensor x, y;
};

Data make_data() {
  Generator g(7);
  return {randn({32, 3, 16, 16}, &g), randint(0, 10, {32}, &g, DType::i64)};
}

double max_rel_diff(const Tensor& a_in, const Tensor& b_in) {
  const std::vector<float> a = a_in.to(Device::cpu()).to_vector<float>();
  const std::vector<float> b = b_in.to(Device::cpu()).to_vector<float>();
  double m = 0, scale = 0;
  for (float v : a) scale = std::fmax(scale, std::fabs(v));
  for (size_t i = 0; i < a.size(); ++i) m = std::fmax(m, std::fabs(double(a[i]) - b[i]));
  return scale > 0 ? m / scale : m;
}

}  // namespace

TEST(GpuTraining, CpuLossFalls) {
  const Data data = make_data();
  const Curve cpu = train(Device::cpu(), Cnn::init(3), data.x, data.y);
  for (double l : cpu.loss) std::printf(" %.4f", l);
  std::printf("\n  cpu loss: first %.5f last %.5f\n", cpu.loss.front(), cpu.loss.back());
  EXPECT_LT(cpu.loss.back(), 0.5 * cpu.loss.front());
}

TEST(GpuTraining, SmallCnnLossCurvesAgree) {
  if (!cuda_available())
    GTEST_SKIP() << "no CUDA device visible (or a CPU-only build): CPU vs CUDA training skipped";
#ifdef OAR_WITH_CUDA
  cuda::set_allow_tf32(false);
#endif
  const Data data = make_data();
  const Cnn init = Cnn::init(3);
  const Curve cpu = train(Device::cpu(), init, data.x, data.y);
  const Curve gpu = train(Device::cuda(0), init, data.x, data.y);
  double worst = 0;
  for (int i = 0; i < kSteps; ++i) {
    const double rel = std::fabs(cpu.loss[i] - gpu.loss[i]) / std::fabs(cpu.loss[i]);
    worst = std::fmax(worst, rel);
    std::printf("  step %2d loss cpu %.6f cuda %.6f rel %.1e\n", i, cpu.loss[i], gpu.loss[i], rel);
    EXPECT_LE(rel, kLossRelTol) << "step " << i;
  }
  for (size_t i = 0; i < init.params.size(); ++i) {
    const double d = max_rel_diff(cpu.model.params[i], gpu.model.params[i]);
    std::printf("  param %zu after %d steps: max diff / max |value| %.1e\n", i, kSteps, d);
    EXPECT_LE(d, 1e-2) << "param " << i;
  }
  for (size_t i = 0; i < init.running.size(); ++i)
    EXPECT_LE(max_rel_diff(cpu.model.running[i], gpu.model.running[i]), 1e-2) << "running " << i;
  std::printf("  loss curves agree: worst relative difference %.1e (tolerance %.0e)\n", worst,
              kLossRelTol);
  EXPECT_LT(gpu.loss.back(), 0.5 * gpu.loss.front());
}
