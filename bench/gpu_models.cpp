// Whole-model GPU training throughput: ResNet-50 (images/s), BERT-base fine-tuning at sequence
// 128 (sequences/s) and TSM-ResNet-50 (clips of 8 segments/s), in f32 (TF32 off or on) or with
// bf16 autocast, plus the peak GPU memory of the run (weights, optimizer state, activations).
// bench/gpu_models.py runs the same models in PyTorch eager; bench/run_gpu prints both side by
// side. One JSON line per run:
//   oar_bench_gpu_models MODEL PRECISION BATCH STEPS [WARMUP]
//   MODEL: resnet50 | bert_base | tsm_r50    PRECISION: fp32 | tf32 | bf16
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>

#include "engine/autograd/autocast.h"
#include "engine/core/allocator.h"
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

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s resnet50|bert_base|tsm_r50 fp32|tf32|bf16 BATCH STEPS [WARMUP]\n",
                 argv[0]);
    return 2;
  }
  const std::string model_name = argv[1], precision = argv[2];
  const int64_t batch = std::atoll(argv[3]), steps = std::atoll(argv[4]);
  const int64_t warmup = argc > 5 ? std::atoll(argv[5]) : 5;
  if (!cuda_available()) {
    std::fprintf(stderr, "oar_bench_gpu_models: no CUDA device\n");
    return 1;
  }
  const Device d = Device::cuda(0);
  cuda::set_allow_tf32(precision == "tf32");
  reset_peak_memory(d);
  Generator gen(0);

  std::shared_ptr<nn::Module> model;
  std::shared_ptr<nn::Linear> head;  // BERT's classifier on the pooled output
  Tensor x, tt, mask, y;
  const char* unit = "images/s";
  if (model_name == "resnet50") {
    model = std::make_shared<vision::ResNet>(vision::resnet_variant("resnet50"), &gen);
    x = randn({batch, 3, 224, 224}, &gen);
    y = randint(0, 1000, {batch}, &gen);
  } else if (model_name == "tsm_r50") {
    video::TsmOptions o;
    o.backbone.depth = 50;
    o.num_classes = 400;
    model = std::make_shared<video::Tsm>(o, &gen);
    x = randn({batch, 8, 3, 224, 224}, &gen);
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
  model->train();
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
    opt->zero_grad();
    return loss;
  };
  for (int64_t i = 0; i < warmup; ++i) last_loss = step().item_double();
  cuda::synchronize(d);
  const auto t0 = std::chrono::steady_clock::now();
  Tensor loss;
  for (int64_t i = 0; i < steps; ++i) loss = step();
  cuda::synchronize(d);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  last_loss = loss.item_double();
  const MemoryStats m = memory_stats(d);
  std::printf(
      "{\"impl\": \"oar\", \"model\": \"%s\", \"precision\": \"%s\", \"batch\": %ld, \"steps\": "
      "%ld, \"ms_per_step\": %.3f, \"throughput\": %.2f, \"unit\": \"%s\", \"peak_mib\": %.1f, "
      "\"loss\": %.4f}\n",
      model_name.c_str(), precision.c_str(), static_cast<long>(batch), static_cast<long>(steps),
      1000.0 * s / steps, batch * steps / s, unit, m.peak_bytes / 1048576.0, last_loss);
  return 0;
}
