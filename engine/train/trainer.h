#pragma once
// One trainer for every task: epochs or steps, gradient accumulation, periodic evaluation,
// best-by-metric and last-K checkpoints, early stopping, bf16 autocast or fp16 autocast with
// dynamic loss scaling, exact resume, clean stops on SIGINT/SIGTERM, and logs (progress bar,
// metrics.jsonl, TensorBoard events).
//
// Devices: the trainer runs where the task's model lives (move it with Module::to before building
// the optimizer). Batches are copied there ahead of use (DeviceBatches); metrics and predictions
// read CPU copies of the outputs. Checkpoints hold CPU tensors and load onto the model's device,
// so a run saved on a GPU resumes on the CPU and the other way round.
//
// Run directory layout (DESIGN.md): config.yaml, metrics.jsonl, events.out.tfevents.*,
// ckpt/step-N/{model,optim}.safetensors + state.json + config.yaml, best/ (model, state, config).
#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/core/generator.h"
#include "engine/io/json.h"
#include "engine/train/batch.h"
#include "engine/train/grad_scaler.h"
#include "engine/train/task.h"

namespace oar {
namespace optim {
class Optimizer;
class LrSchedule;
}  // namespace optim
namespace dist {
class ProcessGroup;
class GradReducer;
}  // namespace dist

// Data parallel (trainer.distributed): used when the environment names several ranks.
struct DistributedOptions {
  std::string backend = "auto";  // auto (nccl on CUDA, else gloo), gloo, nccl
  double bucket_mb = 25.0;       // gradient bucket size
  double timeout_s = 300.0;      // rendezvous and collectives
  bool sync_batch_norm = false;  // batch statistics over all ranks
};

struct TrainerOptions {
  int64_t epochs = 1;
  int64_t max_steps = 0;                // optimizer steps; 0: the epochs decide
  int64_t grad_accum = 1;               // batches per optimizer step
  int64_t eval_every_steps = 0;         // 0: evaluate at epoch ends (see eval_every_epochs)
  int64_t eval_every_epochs = 1;        // 0: never at epoch ends
  int64_t save_every_steps = 0;         // extra checkpoints between evaluations; 0: none
  int64_t log_every = 50;               // steps between plain log lines and metrics.jsonl records
  std::string best_metric;              // e.g. "top1"; empty: the first metric reported
  bool best_max = true;                 // false: lower is better (e.g. "loss")
  int64_t early_stopping_patience = 0;  // evaluations without improvement before stopping; 0 off
  int64_t keep_last = 2;                // step checkpoints kept (best/ is separate)
  double clip_grad_norm = 0.0;          // 0: off
  bool bf16 = false;                    // autocast matmul/conv to bf16
  bool fp16 = false;                    // autocast to fp16 with dynamic loss scaling
  GradScalerOptions loss_scale;         // fp16 only
  uint64_t seed = 0;                    // dropout and other in-model randomness
  std::string output_dir;
  bool plain_progress = false;  // never draw the terminal bar
  DistributedOptions distributed;
};

struct EvalResult {
  std::vector<std::pair<std::string, double>> values;  // "loss" first, then the metrics'
  double get(const std::string& name) const;           // throws naming known names
};

struct FitResult {
  int64_t steps = 0;
  int64_t epochs_completed = 0;
  EvalResult last_eval;
  std::string best_metric;
  double best_value = 0.0;
  bool has_best = false;
  int interrupted_by = 0;  // the signal that stopped the run (0: finished)
  bool early_stopped = false;
  std::string last_checkpoint;
};

// Thrown when the loss becomes NaN/Inf; the last good checkpoint stays on disk.
class DivergedError : public Error {
 public:
  using Error::Error;
};

class Trainer {
 public:
  Trainer(Task& task, optim::Optimizer& optimizer, const optim::LrSchedule* schedule,
          BatchSource& train, BatchSource* valid, TrainerOptions options,
          std::string resolved_config_yaml);
  ~Trainer();

  // Trains from scratch, or from `resume` ("auto": the newest complete checkpoint of
  // output_dir, if any; a directory: that checkpoint).
  FitResult fit(const std::string& resume = "");
  EvalResult evaluate(BatchSource& source, const std::string& artifacts_dir = "");

  // Data parallel over `group` (not owned; outlives fit): parameters and buffers are broadcast
  // from rank 0 at the start of fit, gradients averaged in buckets during backward, evaluation
  // metrics merged; only rank 0 writes logs and checkpoints. The loaders must already be sharded.
  void set_process_group(dist::ProcessGroup* group) { group_ = group; }

  // The newest complete checkpoint directory under run_dir/ckpt ("" when none).
  static std::string latest_checkpoint(const std::string& run_dir);

 private:
  struct State {
    int64_t epoch = 0;
    int64_t batch_in_epoch = 0;
    int64_t step = 0;
    GeneratorState rng;
    bool has_best = false;
    double best_value = 0.0;
    int64_t best_step = 0;
    int64_t evals_without_improvement = 0;
  };

  void save_checkpoint(bool also_best);
  void load_checkpoint(const std::string& dir);
  void log_record(Json record);
  bool improved(double v) const;
  void prune_checkpoints();
  bool is_rank0() const;
  void sync_model_from_rank0();
  double mean_over_ranks(double v);

  Task& task_;
  optim::Optimizer& opt_;
  const optim::LrSchedule* schedule_;
  BatchSource& train_;
  BatchSource* valid_;
  TrainerOptions o_;
  std::string config_yaml_;
  Generator gen_;
  State st_;
  std::string best_name_;
  struct Logs;
  std::unique_ptr<Logs> logs_;
  dist::ProcessGroup* group_ = nullptr;
  std::unique_ptr<dist::GradReducer> reducer_;
  Device device_;
  std::unique_ptr<GradScaler> scaler_;  // fp16 only
};

// Runs the model (on its device) over a source and writes one JSON record per sample to
// `jsonl_path` (atomically: the file appears complete or not at all). Returns the number of
// records. bf16 / fp16: autocast to that dtype (at most one of them).
int64_t predict_to_file(Task& task, BatchSource& source, const std::string& jsonl_path,
                        bool bf16 = false, bool plain_progress = false, bool fp16 = false);

}  // namespace oar
