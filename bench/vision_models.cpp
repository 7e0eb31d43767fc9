// CPU vision models side by side with PyTorch (bench/vision_models.py runs the same models from
// torchvision; bench/run_vision prints both with ratios). One JSON line per run:
//   oar_bench_vision_models MODEL PRECISION MODE BATCH RES STEPS [WARMUP]
//   MODEL: resnet18 | resnet50 | mobilenet_v2 (the PyTorch peer's), or any other ResNet variant
//          (resnet34, resnet101, resnet50_vd, ...: oar only)    PRECISION: fp32 | bf16 (autocast)
//   MODE: train (SGD momentum step, images/s) | infer (eval mode, no gradients, ms per batch)
// Threads: OMP_NUM_THREADS. OAR_BENCH_UNFUSED=1 runs module by module, without the fusion of
// vision/models/fused.h (to measure what it brings): in eval mode the BatchNorm folding and
// post-op fusion, in training the conv_bn_train nodes (conv -> BN [-> add] [-> act] as one).
// The line gives the process's peak resident memory (peak_rss_mib), the resident memory before
// the model was built (base_rss_mib) and oar's tensor peak (peak_mib).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include <sys/resource.h>
#include <unistd.h>

#include "engine/autograd/autocast.h"
#include "engine/autograd/grad_mode.h"
#include "engine/core/allocator.h"
#include "engine/core/context.h"
#include "engine/core/error.h"
#include "engine/nn.h"
#include "engine/ops.h"
#include "engine/optim/sgd.h"
#include "vision/models/fused.h"
#include "vision/models/mobilenet_v2.h"
#include "vision/models/resnet.h"

using namespace oar;

static double rss_mib() {
  long pages = 0, resident = 0;
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
  std::fclose(f);
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / 1048576.0;
}

int main(int argc, char** argv) {
  if (argc < 7) {
    std::fprintf(
        stderr,
        "usage: %s resnet18|resnet50|resnet*|mobilenet_v2 fp32|bf16 train|infer BATCH RES STEPS "
        "[WARMUP]\n",
        argv[0]);
    return 2;
  }
  const std::string model_name = argv[1], precision = argv[2], mode = argv[3];
  const int64_t batch = std::atoll(argv[4]), res = std::atoll(argv[5]), steps = std::atoll(argv[6]);
  const int64_t warmup = argc > 7 ? std::atoll(argv[7]) : 2;
  if ((precision != "fp32" && precision != "bf16") || (mode != "train" && mode != "infer") ||
      batch < 1 || res < 32 || steps < 1) {
    std::fprintf(stderr, "bad arguments (see usage)\n");
    return 2;
  }
  const bool infer = mode == "infer";
  const double base_rss_mib = rss_mib();
  reset_peak_memory(Device::cpu());
  Generator gen(0);
  std::shared_ptr<nn::Module> model;
  if (model_name.starts_with("resnet")) {
    try {
      model = std::make_shared<vision::ResNet>(vision::resnet_variant(model_name), &gen);
    } catch (const Error& e) {
      std::fprintf(stderr, "unknown model %s: %s\n", model_name.c_str(), e.what());
      return 2;
    }
  } else if (model_name == "mobilenet_v2") {
    model = std::make_shared<vision::MobileNetV2>(vision::MobileNetV2Options{}, &gen);
  } else {
    std::fprintf(stderr, "unknown model %s\n", model_name.c_str());
    return 2;
  }
  model->train(!infer);
  const Tensor x = randn({batch, 3, res, res}, &gen);
  const Tensor y = randint(0, 1000, {batch}, &gen);
  optim::SGD opt(model->parameters(), optim::SgdOptions{0.01, 0.9, 0, 1e-4});
  const bool bf16 = precision == "bf16";
  const bool unfused = std::getenv("OAR_BENCH_UNFUSED") != nullptr;
  auto run = [&]() -> Tensor {
    std::optional<vision::NoInferenceFusionGuard> off;
    if (unfused) off.emplace();
    if (infer) {
      NoGradGuard ng;
      AutocastGuard ac(bf16, DType::bf16);
      return (*model)(x);
    }
    Tensor loss;
    {
      AutocastGuard ac(bf16, DType::bf16);
      loss = cross_entropy((*model)(x).to(DType::f32), y);
    }
    loss.backward();
    opt.step();
    opt.zero_grad(/*set_to_none=*/true);  // as the PyTorch peer (its default)
    return loss;
  };
  for (int64_t i = 0; i < warmup; ++i) run();
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < steps; ++i) run();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);  // ru_maxrss is in KiB on Linux
  std::printf(
      "{\"impl\": \"oar%s\", \"model\": \"%s\", \"precision\": \"%s\", \"mode\": \"%s\", "
      "\"batch\": "
      "%ld, \"res\": %ld, \"threads\": %d, \"steps\": %ld, \"ms_per_step\": %.3f, "
      "\"images_per_s\": "
      "%.2f, \"peak_rss_mib\": %.1f, \"base_rss_mib\": %.1f, \"peak_mib\": %.1f}\n",
      unfused ? " unfused" : "", model_name.c_str(), precision.c_str(), mode.c_str(),
      static_cast<long>(batch), static_cast<long>(res), num_threads(), static_cast<long>(steps),
      1000.0 * s / steps, batch * steps / s, ru.ru_maxrss / 1024.0, base_rss_mib,
      memory_stats(Device::cpu()).peak_bytes / 1048576.0);
  return 0;
}
