// Whole-model GPU training throughput: ResNet-50 (images/s), BERT-base fine-tuning at sequence
// 128 (sequences/s) and TSM-ResNet-50 (clips of 8 segments/s), in f32 (TF32 off or on) or with
// bf16 autocast, plus the peak GPU memory of the run (weights, optimizer state, activations).
// bench/gpu_models.py runs the same models in PyTorch eager; bench/run_gpu prints both side by
// side. One JSON line per run:
//   oar_bench_gpu_models MODEL PRECISION BATCH STEPS [WARMUP]
//   MODEL: resnet50 | bert_base | tsm_r50    PRECISION: fp32 | tf32 | bf16
// OAR_BENCH_DEVICE=cpu runs on the CPU (OAR_BENCH_RES sets the image side, 224 by default).
// OAR_BENCH_MODE=infer times inference instead: eval mode, no gradients, STEPS forward passes of
// BATCH inputs; the line then gives ms_per_step as the latency of one batch. On the CPU the line
// also gives the process's peak resident memory (peak_rss_mib), which PyTorch's peer reports too,
// and the CPU time of all its threads per step (cpu_ms_per_step: on a shared machine it moves less
// than the wall time; with one thread it is the work a step costs).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <memory>
#include <string>

#include <sys/resource.h>
#include <unistd.h>

#include "engine/autograd/autocast.h"
#include "engine/autograd/grad_mode.h"
#include "engine/core/allocator.h"
#include "engine/core/context.h"
#include "engine/core/cuda/runtime.h"
#include "engine/core/device.h"
#include "engine/nn.h"
#include "engine/ops.h"
#include "engine/optim/adam.h"
#include "engine/optim/sgd.h"
#include "nlp/models/bert.h"
#include "video/models/tsm.h"
#include "vision/models/resnet.h"

using namespace oar;

// The resident memory of this process now (Linux /proc), MiB; 0 where it cannot be read.
static double rss_mib() {
  long pages = 0, resident = 0;
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
  std::fclose(f);
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / 1048576.0;
}

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr,
                 "usage: %s resnet50|bert_base|tsm_r50 fp32|tf32|bf16 BATCH STEPS [WARMUP]\n",
                 argv[0]);
    return 2;
  }
  const std::string model_name = argv[1], precision = argv[2];
  const int64_t batch = std::atoll(argv[3]), steps = std::atoll(argv[4]);
  const int64_t warmup = argc > 5 ? std::atoll(argv[5]) : 5;
  // OAR_BENCH_DEVICE=cpu and OAR_BENCH_RES=64 make a quick CPU check of the same step.
  const char* dev_env = std::getenv("OAR_BENCH_DEVICE");
  const Device d = Device::parse(dev_env ? dev_env : "cuda:0");
  const char* res_env = std::getenv("OAR_BENCH_RES");
  const int64_t res = res_env ? std::atoll(res_env) : 224;
  if (d.is_cuda() && !cuda_available()) {
    std::fprintf(stderr, "oar_bench_gpu_models: no CUDA device\n");
    return 1;
  }
  const double base_rss_mib = rss_mib();
  const char* mode_env = std::getenv("OAR_BENCH_MODE");
  const std::string mode = mode_env ? mode_env : "train";
  if (mode != "train" && mode != "infer") {
    std::fprintf(stderr, "OAR_BENCH_MODE must be train or infer, not %s\n", mode.c_str());
    return 2;
  }
  const bool infer = mode == "infer";
#ifdef OAR_WITH_CUDA
  if (d.is_cuda()) cuda::set_allow_tf32(precision == "tf32");
#endif
  reset_peak_memory(d);
  Generator gen(0);

  std::shared_ptr<nn::Module> model;
  std::shared_ptr<nn::Linear> head;  // BERT's classifier on the pooled output
  Tensor x, tt, mask, y;
  const char* unit = "images/s";
  if (model_name == "resnet50") {
    model = std::make_shared<vision::ResNet>(vision::resnet_variant("resnet50"), &gen);
    x = randn({batch, 3, res, res}, &gen);
    y = randint(0, 1000, {batch}, &gen);
  } else if (model_name == "tsm_r50") {
    video::TsmOptions o;
    o.backbone.depth = 50;
    o.num_classes = 400;
    model = std::make_shared<video::Tsm>(o, &gen);
    x = randn({batch, 8, 3, res, res}, &gen);
    y = randint(0, 400, {batch}, &gen);
    unit = "clips/s";
  } else if (model_name == "bert_base") {
    auto bert = std::make_shared<nlp::BertModel>(nlp::BertConfig{}, &gen);
    head = std::make_shared<nn::Linear>(768, 2, true, &gen);
    bert->register_module("classifier", head);
    model = bert;
    x = randint(1, 30522, {batch, 128}, &gen);
    tt = zeros({batch, 128}, DType::i64);
    mask = ones({batch, 128}, DType::i64);
    y = randint(0, 2, {batch}, &gen);
    unit = "sequences/s";
  } else {
    std::fprintf(stderr, "unknown model %s\n", model_name.c_str());
    return 2;
  }
  model->to(d);
  model->train(!infer);
  x = x.to(d);
  y = y.to(d);
  if (tt.defined()) tt = tt.to(d), mask = mask.to(d);
  std::unique_ptr<optim::Optimizer> opt;
  if (head) {
    optim::AdamWOptions a;
    a.lr = 2e-5;
    opt = std::make_unique<optim::AdamW>(model->parameters(), a);
  } else {
    opt = std::make_unique<optim::SGD>(model->parameters(), optim::SgdOptions{0.01, 0.9, 0, 1e-4});
  }

  double last_loss = 0;
  auto step = [&] {
    Tensor loss;
    {
      AutocastGuard ac(precision == "bf16", DType::bf16);
      Tensor logits;
      if (head) {
        auto* bert = static_cast<nlp::BertModel*>(model.get());
        logits = (*head)(bert->encode(x, tt, mask).pooled);
      } else {
        logits = (*model)(x);
      }
      loss = cross_entropy(logits.to(DType::f32), y);
    }
    loss.backward();
    opt->step();
    opt->zero_grad(/*set_to_none=*/true);  // as the PyTorch peer: no zero fill, no add into it
    return loss;
  };
  // Inference: one forward pass without gradients; the loss of its logits is only reported.
  auto forward_only = [&] {
    NoGradGuard ng;
    AutocastGuard ac(precision == "bf16", DType::bf16);
    Tensor logits;
    if (head) {
      auto* bert = static_cast<nlp::BertModel*>(model.get());
      logits = (*head)(bert->encode(x, tt, mask).pooled);
    } else {
      logits = (*model)(x);
    }
    return cross_entropy(logits.to(DType::f32), y);
  };
  auto run = [&] { return infer ? forward_only() : step(); };
  auto sync = [&] {
#ifdef OAR_WITH_CUDA
    if (d.is_cuda()) cuda::synchronize(d);
#endif
  };
  for (int64_t i = 0; i < warmup; ++i) {
    last_loss = run().item_double();
    if (std::getenv("OAR_BENCH_VERBOSE"))
      std::fprintf(stderr, "warmup %ld loss %.4f\n", static_cast<long>(i), last_loss);
  }
  sync();
  auto cpu_seconds = [] {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
  };
  const double cpu0 = cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  Tensor loss;
  for (int64_t i = 0; i < steps; ++i) loss = run();
  sync();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu_ms = 1000.0 * (cpu_seconds() - cpu0) / static_cast<double>(steps);
  last_loss = loss.item_double();
  const MemoryStats m = memory_stats(d);
  std::string extra;
  if (!d.is_cuda()) {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);  // ru_maxrss is in KiB on Linux
    char buf[256];
    std::snprintf(buf, sizeof(buf),
                  ", \"device\": \"cpu\", \"res\": %ld, \"threads\": %d, \"peak_rss_mib\": %.1f, "
                  "\"base_rss_mib\": %.1f, \"cpu_ms_per_step\": %.3f",
                  static_cast<long>(res), num_threads(), ru.ru_maxrss / 1024.0, base_rss_mib,
                  cpu_ms);
    extra = buf;
  }
  if (infer) extra += ", \"mode\": \"infer\"";
  std::printf(
      "{\"impl\": \"oar\", \"model\": \"%s\", \"precision\": \"%s\", \"batch\": %ld, \"steps\": "
      "%ld, \"ms_per_step\": %.3f, \"throughput\": %.2f, \"unit\": \"%s\", \"peak_mib\": %.1f, "
      "\"loss\": %.4f%s}\n",
      model_name.c_str(), precision.c_str(), static_cast<long>(batch), static_cast<long>(steps),
      1000.0 * s / steps, batch * steps / s, unit, m.peak_bytes / 1048576.0, last_loss,
      extra.c_str());
  return 0;
}
