// oar side of the engine benchmark (bench/engine_ops.py is the PyTorch side; bench/run_engine
// runs both with the same threads and prints the ratios). Prints one JSON line per case:
// {"case": ..., "ms": median milliseconds, "peak_mb": peak allocator bytes during the case}.
// Usage: oar_bench_engine [THREADS [CASE_SUBSTRING]]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <string>
#include <tuple>
#include <vector>

#include "engine/core/allocator.h"
#include "engine/core/context.h"
#include "engine/ops.h"

using namespace oar;

namespace {

// OAR_BENCH_CLOCK=cpu times by the process's CPU time instead of the wall clock: with one
// thread on a machine shared with other jobs it counts only the time this process ran (OpenMP
// threads spinning at barriers count too, so use it with THREADS = 1).
double now_ms() {
  static const bool cpu = [] {
    const char* e = std::getenv("OAR_BENCH_CLOCK");
    return e && std::string(e) == "cpu";
  }();
  if (cpu) {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) * 1e-6;
  }
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

double median_ms(const std::function<void()>& fn, int warmup, int iters) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> t;
  for (int i = 0; i < iters; ++i) {
    const double a = now_ms();
    fn();
    t.push_back(now_ms() - a);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

const char* g_only = nullptr;  // optional case filter (substring), for profiling one case

void report(const std::string& name, const std::function<void()>& fn, int warmup = 3,
            int iters = 10) {
  if (g_only && name.find(g_only) == std::string::npos) return;
  fn();  // first call creates and caches primitives
  allocator_for(Device::cpu()).empty_cache();
  reset_peak_memory();
  const int64_t base = memory_stats().current_bytes;
  const double ms = median_ms(fn, warmup, iters);
  const double peak = static_cast<double>(memory_stats().peak_bytes - base) / (1 << 20);
  std::printf("{\"case\": \"%s\", \"ms\": %.4f, \"peak_mb\": %.2f}\n", name.c_str(), ms, peak);
  std::fflush(stdout);
}

Tensor param(const Shape& s, uint64_t seed, DType dt = DType::f32) {
  Generator g(seed);
  Tensor t = randn(s, &g, 0.0, 0.05);
  if (dt != DType::f32) t = t.to(dt);
  return t.set_requires_grad();
}

void clear_grads(std::initializer_list<Tensor> ts) {
  for (const Tensor& t : ts) t.impl()->grad.reset();
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  if (argc > 2) g_only = argv[2];
  set_num_threads(threads);
  Generator g(1);

  {  // matmul 1024^3 forward
    Tensor a = randn({1024, 1024}, &g), b = randn({1024, 1024}, &g);
    report("matmul_1024_f32_fwd", [&] {
      NoGradGuard ng;
      matmul(a, b);
    });
    Tensor ab = a.to(DType::bf16), bb = b.to(DType::bf16);
    report("matmul_1024_bf16_fwd", [&] {
      NoGradGuard ng;
      matmul(ab, bb);
    });
  }
  {  // BERT-shaped linear fwd+bwd: 2048 tokens x 384 -> 1536
    Tensor x = param({2048, 384}, 2), w = param({1536, 384}, 3), bias = param({1536}, 4);
    report("linear_2048x384x1536_fwd_bwd", [&] {
      clear_grads({x, w, bias});
      sum(linear(x, w, bias)).backward();
    });
  }
  // Batch-1 BERT inference linears (128 tokens), each call on the next of `copies` weights so
  // that, as in a model's forward pass, the weight is not in cache (about 75-150 MB in rotation).
  for (const auto& [in, out, copies] : {std::tuple<int64_t, int64_t, int>{384, 1536, 32},
                                        std::tuple<int64_t, int64_t, int>{768, 3072, 16}}) {
    Tensor x = randn({128, in}, &g);
    std::vector<Tensor> ws, bs;
    for (int i = 0; i < copies; ++i) {
      ws.push_back(param({out, in}, 100 + i));
      bs.push_back(param({out}, 200 + i));
    }
    int next = 0;
    report("linear_infer_128x" + std::to_string(in) + "x" + std::to_string(out) + "_cold", [&] {
      NoGradGuard ng;
      for (int i = 0; i < copies; ++i) {  // every weight once per round (the first round packs)
        linear(x, ws[static_cast<size_t>(next)], bs[static_cast<size_t>(next)]);
        next = (next + 1) % copies;
      }
    });
  }
  {  // ResNet-shaped 3x3 conv 64->64 on 8x64x56x56, fwd+bwd
    Tensor x = param({8, 64, 56, 56}, 5), w = param({64, 64, 3, 3}, 6);
    report(
        "conv3x3_8x64x56x56_fwd_bwd",
        [&] {
          clear_grads({x, w});
          sum(conv2d(x, w, Tensor(), {1, 1}, {1, 1})).backward();
        },
        2, 5);
    Tensor w1 = param({256, 64, 1, 1}, 7);
    report(
        "conv1x1_8x64to256x56x56_fwd_bwd",
        [&] {
          clear_grads({x, w1});
          sum(conv2d(x, w1)).backward();
        },
        2, 5);
    Tensor wd = param({64, 1, 3, 3}, 8);
    report(
        "depthwise3x3_8x64x56x56_fwd_bwd",
        [&] {
          clear_grads({x, wd});
          sum(conv2d(x, wd, Tensor(), {1, 1}, {1, 1}, {1, 1}, 64)).backward();
        },
        2, 5);
    Tensor rm = zeros({64}), rv = ones({64}), gamma = param({64}, 9), beta = param({64}, 10);
    report("batchnorm_8x64x56x56_fwd_bwd", [&] {
      clear_grads({x, gamma, beta});
      sum(batch_norm(x, rm, rv, gamma, beta, true)).backward();
    });
  }
  {  // layer norm and softmax on BERT-base shapes
    Tensor x = param({32 * 128, 768}, 11), gamma = param({768}, 12), beta = param({768}, 13);
    report("layernorm_4096x768_fwd_bwd", [&] {
      clear_grads({x, gamma, beta});
      sum(layer_norm(x, 1, gamma, beta)).backward();
    });
    Tensor s = param({32, 12, 128, 128}, 14);
    Tensor w = randn({32, 12, 128, 128}, &g);
    report("softmax_32x12x128x128_fwd_bwd", [&] {
      clear_grads({s});
      sum(mul(softmax(s, -1), w)).backward();
    });
  }
  {  // LSTM: seq 50, batch 32, 256 -> 512
    Tensor x = param({50, 32, 256}, 15);
    std::vector<RnnWeights> ws{
        {param({2048, 256}, 16), param({2048, 512}, 17), param({2048}, 18), param({2048}, 19)}};
    report(
        "lstm_50x32x256h512_fwd_bwd",
        [&] {
          clear_grads({x, ws[0].w_ih, ws[0].w_hh, ws[0].b_ih, ws[0].b_hh});
          sum(lstm(x, ws, 1, false).output).backward();
        },
        2, 5);
    report(
        "lstm_50x32x256h512_fwd_bwd_recurrence",
        [&] {  // oar's own recurrence (varlen path)
          RnnCpuPathGuard recurrence(RnnCpuPath::recurrence);
          clear_grads({x, ws[0].w_ih, ws[0].w_hh, ws[0].b_ih, ws[0].b_hh});
          sum(lstm(x, ws, 1, false).output).backward();
        },
        2, 5);
    std::vector<RnnWeights> w2;  // 2 layers, bidirectional, hidden 256
    for (uint64_t k = 0; k < 4; ++k)
      w2.push_back({param({1024, k < 2 ? 256 : 512}, 40 + 4 * k), param({1024, 256}, 41 + 4 * k),
                    param({1024}, 42 + 4 * k), param({1024}, 43 + 4 * k)});
    report(
        "lstm_2layer_bidir_50x32x256h256_fwd_bwd",
        [&] {
          clear_grads({x});
          for (auto& w : w2) clear_grads({w.w_ih, w.w_hh, w.b_ih, w.b_hh});
          sum(lstm(x, w2, 2, true).output).backward();
        },
        2, 5);
    std::vector<RnnWeights> wg{
        {param({1536, 256}, 60), param({1536, 512}, 61), param({1536}, 62), param({1536}, 63)}};
    report(
        "gru_50x32x256h512_fwd_bwd",
        [&] {
          clear_grads({x, wg[0].w_ih, wg[0].w_hh, wg[0].b_ih, wg[0].b_hh});
          sum(gru(x, wg, 1, false).output).backward();
        },
        2, 5);
    report(
        "gru_50x32x256h512_fwd_bwd_primitive",
        [&] {  // oneDNN's lbr_gru (opt-in)
          RnnCpuPathGuard primitive(RnnCpuPath::primitive);
          clear_grads({x, wg[0].w_ih, wg[0].w_hh, wg[0].b_ih, wg[0].b_hh});
          sum(gru(x, wg, 1, false).output).backward();
        },
        2, 5);
  }
  {  // tiny MLP train step (tests/engine/learning_test.cpp's shape): per-op overhead dominates
    Tensor x = randn({64, 2}, &g);
    Tensor y = randint(0, 3, {64}, &g);
    Tensor w1 = param({32, 2}, 30), b1 = param({32}, 31), w2 = param({32, 32}, 32),
           b2 = param({32}, 33), w3 = param({3, 32}, 34), b3 = param({3}, 35);
    std::vector<Tensor> ps{w1, b1, w2, b2, w3, b3};
    report(
        "tiny_mlp_train_step_b64",
        [&] {
          for (auto& p : ps) p.impl()->grad.reset();
          Tensor h = relu(linear(relu(linear(x, w1, b1)), w2, b2));
          cross_entropy(linear(h, w3, b3), y).backward();
          NoGradGuard ng;
          for (auto& p : ps) add_(p, p.grad(), -0.01);
        },
        50, 200);
  }
  {  // one train step of a small CNN (batch 64, 1x28x28): conv-bn-relu-pool x2, linear, CE, SGD
    Tensor x = randn({64, 1, 28, 28}, &g);
    Tensor y = randint(0, 10, {64}, &g);
    Tensor c1 = param({32, 1, 3, 3}, 20), b1 = param({32}, 21), c2 = param({64, 32, 3, 3}, 22),
           b2 = param({64}, 23), fw = param({10, 64 * 7 * 7}, 24), fb = param({10}, 25);
    Tensor g1 = param({32}, 26), h1 = param({32}, 27), g2 = param({64}, 28), h2 = param({64}, 29);
    Tensor rm1 = zeros({32}), rv1 = ones({32}), rm2 = zeros({64}), rv2 = ones({64});
    std::vector<Tensor> ps{c1, b1, c2, b2, fw, fb, g1, h1, g2, h2};
    PoolParams pool2;
    pool2.kernel = {2, 2};
    report(
        "small_cnn_train_step_b64",
        [&] {
          for (auto& p : ps) p.impl()->grad.reset();
          Tensor h = max_pool(
              relu(batch_norm(conv2d(x, c1, b1, {1, 1}, {1, 1}), rm1, rv1, g1, h1, true)), pool2);
          h = max_pool(relu(batch_norm(conv2d(h, c2, b2, {1, 1}, {1, 1}), rm2, rv2, g2, h2, true)),
                       pool2);
          Tensor loss = cross_entropy(linear(h.flatten(1), fw, fb), y);
          loss.backward();
          NoGradGuard ng;
          for (auto& p : ps) add_(p, p.grad(), -0.01);
        },
        3, 20);
  }
  return 0;
}
