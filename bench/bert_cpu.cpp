// BERT-family encoders on the CPU against PyTorch (bench/bert_cpu.py is the peer, bench/run_bert
// runs both side by side): inference latency (eval mode, no gradients) and fine-tuning throughput
// (a classifier on the pooled [CLS], cross entropy, AdamW) of MiniLM-L6 (all-MiniLM-L6-v2's shape:
// 6 layers, hidden 384, 12 heads, ffn 1536) or BERT-base, in f32 or with bf16 autocast. One JSON
// line per run, with the process's peak resident memory:
//   oar_bench_bert_cpu MODEL PRECISION MODE BATCH SEQ STEPS [WARMUP]
//   MODEL: minilm | bert_base    PRECISION: fp32 | bf16    MODE: infer | train
// Threads: OMP_NUM_THREADS (the shared OpenMP pool, as PyTorch's intra-op pool).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include <sys/resource.h>

#include "engine/autograd/autocast.h"
#include "engine/autograd/grad_mode.h"
#include "engine/core/context.h"
#include "engine/nn.h"
#include "engine/ops.h"
#include "engine/optim/adam.h"
#include "nlp/models/bert.h"

using namespace oar;

int main(int argc, char** argv) {
  if (argc < 7) {
    std::fprintf(stderr,
                 "usage: %s minilm|bert_base fp32|bf16 infer|train BATCH SEQ STEPS [WARMUP]\n",
                 argv[0]);
    return 2;
  }
  const std::string model_name = argv[1], precision = argv[2], mode = argv[3];
  const int64_t batch = std::atoll(argv[4]), seq = std::atoll(argv[5]), steps = std::atoll(argv[6]);
  const int64_t warmup = argc > 7 ? std::atoll(argv[7]) : 2;
  nlp::BertConfig c;
  if (model_name == "minilm") {
    c.num_hidden_layers = 6;
    c.hidden_size = 384;
    c.intermediate_size = 1536;
  } else if (model_name != "bert_base") {
    std::fprintf(stderr, "unknown model %s (minilm or bert_base)\n", model_name.c_str());
    return 2;
  }
  if ((precision != "fp32" && precision != "bf16") || (mode != "infer" && mode != "train") ||
      batch < 1 || seq < 1 || seq > c.max_position_embeddings || steps < 1 || warmup < 0) {
    std::fprintf(stderr, "bad arguments (precision fp32|bf16, mode infer|train, 1 <= SEQ <= %ld)\n",
                 static_cast<long>(c.max_position_embeddings));
    return 2;
  }
  const bool infer = mode == "infer";
  Generator gen(0);
  auto bert = std::make_shared<nlp::BertModel>(c, &gen);
  auto head = std::make_shared<nn::Linear>(c.hidden_size, 2, true, &gen);
  bert->register_module("classifier", head);
  bert->train(!infer);
  const Tensor x = randint(1, c.vocab_size, {batch, seq}, &gen);
  const Tensor tt = zeros({batch, seq}, DType::i64);
  const Tensor mask = ones({batch, seq}, DType::i64);
  const Tensor y = randint(0, 2, {batch}, &gen);
  optim::AdamWOptions a;
  a.lr = 2e-5;
  a.weight_decay = 0.01;
  optim::AdamW opt(bert->parameters(), a);
  const bool bf16 = precision == "bf16";

  auto logits = [&] { return (*head)(bert->encode(x, tt, mask).pooled); };
  auto run = [&] {
    if (infer) {
      NoGradGuard ng;
      AutocastGuard ac(bf16, DType::bf16);
      return cross_entropy(logits().to(DType::f32), y);
    }
    Tensor loss;
    {
      AutocastGuard ac(bf16, DType::bf16);
      loss = cross_entropy(logits().to(DType::f32), y);
    }
    loss.backward();
    opt.step();
    opt.zero_grad(/*set_to_none=*/true);  // as the PyTorch peer (its default)
    return loss;
  };
  // Process CPU time (user + system, all threads): on a shared machine, where wall time is
  // noise, the single-thread figure to compare.
  auto cpu_seconds = [] {
    rusage r{};
    getrusage(RUSAGE_SELF, &r);
    return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
           1e-6 * static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec);
  };
  for (int64_t i = 0; i < warmup; ++i) run();
  const auto t0 = std::chrono::steady_clock::now();
  const double c0 = cpu_seconds();
  Tensor loss;
  for (int64_t i = 0; i < steps; ++i) loss = run();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = cpu_seconds() - c0;
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);  // ru_maxrss is in KiB on Linux
  std::printf(
      "{\"impl\": \"oar\", \"model\": \"%s\", \"precision\": \"%s\", \"mode\": \"%s\", \"batch\": "
      "%ld, \"seq\": %ld, \"steps\": %ld, \"threads\": %d, \"ms_per_step\": %.3f, "
      "\"cpu_ms_per_step\": %.3f, \"throughput\": %.2f, \"peak_rss_mib\": %.1f, \"loss\": "
      "%.4f}\n",
      model_name.c_str(), precision.c_str(), mode.c_str(), static_cast<long>(batch),
      static_cast<long>(seq), static_cast<long>(steps), num_threads(), 1000.0 * s / steps,
      1000.0 * cpu / steps, batch * steps / s, ru.ru_maxrss / 1024.0, loss.item_double());
  return 0;
}
