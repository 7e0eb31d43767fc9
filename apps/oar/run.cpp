// oar train | eval | predict
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "apps/oar/app.h"
#include "apps/oar/commands.h"
#include "engine/core/context.h"
#ifdef OAR_WITH_CUDA
#include "engine/core/cuda/runtime.h"
#endif
#include "engine/core/error.h"
#include "engine/dist/process_group.h"
#include "engine/dist/rendezvous.h"
#include "engine/dist/sync_batch_norm.h"
#include "engine/io/atomic_file.h"
#include "engine/io/json.h"
#include "engine/optim/optimizer.h"
#include "engine/optim/schedule.h"
#include "engine/train/components.h"
#include "engine/train/trainer.h"
#include "readers/registry.h"

namespace fs = std::filesystem;

namespace oar::app {

namespace {

// Applies the command-line flags that mirror config keys, so the saved config records them.
std::vector<std::string> flag_overrides(const RunOptions& o) {
  std::vector<std::string> ov = o.overrides;
  if (o.seed >= 0) ov.push_back("trainer.seed=" + std::to_string(o.seed));
  if (!o.output.empty()) ov.push_back("trainer.output_dir=" + o.output);
  if (o.threads > 0) ov.push_back("trainer.threads=" + std::to_string(o.threads));
  return ov;
}

// The device a command runs on: --device cpu, cuda or cuda:N (with several ranks, plain `cuda`
// means the rank's local GPU). Also sizes the CPU thread pool.
Device setup_device(const RunOptions& o, const Config& c, int local_rank = -1) {
  Device d = Device::parse(o.device);
  if (!d.is_cpu() && !cuda_available())
    OAR_FAIL("--device ", o.device,
             ": no CUDA device is available to this build of oar (use --device cpu)");
  if (d.is_cuda() && o.device == "cuda" && local_rank >= 0) d.index = local_rank;
#ifdef OAR_WITH_CUDA
  if (d.is_cuda() && d.index >= cuda::device_count())
    OAR_FAIL("--device ", o.device, ": ", d.str(), " is not available: ", cuda::device_count(),
             " CUDA device(s) visible (cuda:0..cuda:", cuda::device_count() - 1, ")");
#endif
  int64_t threads = o.threads > 0 ? o.threads : c.get<int64_t>("trainer.threads", 0);
  if (threads > 0) set_num_threads(static_cast<int>(threads));
  return d;
}

std::string weights_for(const Source& s, const RunOptions& o, const Config& c) {
  if (!o.checkpoint.empty()) return o.checkpoint;
  if (!s.checkpoint.empty()) return s.checkpoint;
  const std::string run = default_output_dir(c);
  if (fs::exists(fs::path(run) / "best" / "model.safetensors"))
    return (fs::path(run) / "best").string();
  const std::string last = Trainer::latest_checkpoint(run);
  if (!last.empty()) return last;
  OAR_FAIL("no trained weights for ", o.config, ": looked in ", run, "/best and ", run,
           "/ckpt; pass --checkpoint DIR or a run directory as -c");
}

std::string out_dir_for(const Source& s, const RunOptions& o, const Config& c) {
  if (!o.output.empty()) return o.output;
  if (!s.run_dir.empty()) return s.run_dir;
  return default_output_dir(c);
}

}  // namespace

int cmd_train(const RunOptions& o) {
  register_all();
  Source s = load_source(o.config, flag_overrides(o));
  Config& c = s.config;
  validate_all(c);
  TrainerOptions t = trainer_options(c);
  if (t.output_dir.empty()) t.output_dir = default_output_dir(c);
  t.plain_progress = o.plain;
  ensure_output_dir(t.output_dir);
  // Data parallel when the environment (oar launch, torchrun, Kubeflow, Volcano, Paddle) names
  // several ranks; everything else stays as in a single-process run.
  std::unique_ptr<dist::ProcessGroup> group;
  std::string resume = o.resume;
  auto env = dist::rendezvous_from_env();
  const bool distributed = env && env->world_size > 1;
  // One GPU per rank: plain `cuda` is the rank's local GPU.
  const Device device = setup_device(o, c, distributed ? env->local_rank : -1);
  if (distributed) {
    const Device d = device;
    group = dist::init_process_group(
        *env, t.distributed.backend, d,
        std::chrono::milliseconds(static_cast<int64_t>(t.distributed.timeout_s * 1000)));
    if (env->restart_count > 0 && resume.empty()) resume = "auto";  // a restarted group
    if (group->rank() != 0) t.plain_progress = true;
    std::fprintf(stderr, "oar train: rank %d of %d (%s, local rank %d), backend %s\n",
                 group->rank(), group->size(), env->source.c_str(), env->local_rank,
                 group->backend().c_str());
  }
  const int rank = group ? group->rank() : 0, world = group ? group->size() : 1;
  Built b = build(c, t.seed);
  if (!s.checkpoint.empty()) load_weights(*b.model, s.checkpoint);
  // The model moves before the optimizer sees its parameters, so its state is made there too.
  b.model->to(device);
  if (group && t.distributed.sync_batch_norm) dist::enable_sync_batch_norm(*group);
  auto optimizer = optimizers().create_from(c, "optimizer", b.model.get());
  auto train = readers::make_loader(c, "train", t.seed, rank, world);
  std::shared_ptr<readers::DataLoader> valid;
  if (readers::has_mode(c, "valid")) valid = readers::make_loader(c, "valid", t.seed, rank, world);
  const int64_t steps_per_epoch = (train->num_batches() + t.grad_accum - 1) / t.grad_accum;
  const int64_t total = t.max_steps > 0 ? t.max_steps : steps_per_epoch * t.epochs;
  auto schedule = schedules().create_from(c, "lr", optimizer->lr(), total);
  std::fprintf(
      stderr, "oar train: %s -> %s (%ld parameters, %ld training samples, %ld steps, %s)\n",
      o.config.c_str(), t.output_dir.c_str(), static_cast<long>(b.model->num_parameters()),
      static_cast<long>(train->num_samples()), static_cast<long>(total), device.str().c_str());
  Trainer trainer(*b.task, *optimizer, schedule.get(), *train, valid.get(), t, c.dump());
  trainer.set_process_group(group.get());
  FitResult r = trainer.fit(resume);
  if (group && t.distributed.sync_batch_norm) dist::disable_sync_batch_norm();
  if (r.interrupted_by) return 128 + r.interrupted_by;
  if (r.has_best)
    std::fprintf(stderr, "best %s %.4f; weights in %s/best\n", r.best_metric.c_str(), r.best_value,
                 t.output_dir.c_str());
  std::fprintf(stderr, "run directory: %s\n", t.output_dir.c_str());
  return 0;
}

int cmd_eval(const RunOptions& o) {
  register_all();
  Source s = load_source(o.config, flag_overrides(o));
  Config& c = s.config;
  validate_all(c);
  const Device device = setup_device(o, c);
  const std::string split = !o.split.empty()               ? o.split
                            : readers::has_mode(c, "test") ? "test"
                                                           : "valid";
  const std::string weights = weights_for(s, o, c);
  TrainerOptions t = trainer_options(c);
  t.output_dir = out_dir_for(s, o, c);
  t.plain_progress = o.plain;
  Built b = build(c, t.seed);
  load_weights(*b.model, weights);
  b.model->to(device);
  auto source = readers::make_loader(c, split, t.seed);
  // Evaluation needs no optimizer; the trainer's evaluate() only uses the task.
  auto optimizer = optimizers().create_from(c, "optimizer", b.model.get());
  Trainer trainer(*b.task, *optimizer, nullptr, *source, nullptr, t, c.dump());
  const fs::path dir = fs::path(t.output_dir) / ("eval-" + split);
  ensure_output_dir(dir.string());
  EvalResult r = trainer.evaluate(*source, dir.string());
  Json j = Json::object();
  j["weights"] = weights;
  j["split"] = split;
  j["samples"] = source->num_samples();
  Json m = Json::object();
  std::printf("%-20s %s\n", "metric", "value");
  for (const auto& [k, v] : r.values) {
    std::printf("%-20s %.4f\n", k.c_str(), v);
    m[k] = v;
  }
  j["metrics"] = m;
  io::write_file_atomic(dir / "metrics.json", j.dump(2) + "\n");
  std::fprintf(stderr, "wrote %s\n", (dir / "metrics.json").c_str());
  return 0;
}

int cmd_predict(const RunOptions& o) {
  register_all();
  std::vector<std::string> ov = flag_overrides(o);
  Source s = load_source(o.config, ov);
  Config& c = s.config;
  if (!o.inputs.empty()) {
    const std::string reader = c.get<std::string>("data.name", "");
    const std::string key = readers::input_key(reader);
    if (key.empty())
      OAR_FAIL("--input: reader '", reader,
               "' does not take inputs on the command line; use data.infer");
    YAML::Node list(YAML::NodeType::Sequence);
    if (o.inputs.size() == 1) {
      c.set("data.infer." + key, YAML::Node(fs::absolute(o.inputs[0]).string()),
            Origin{"--input", 0, 0, "override"});
    } else {
      for (const auto& in : o.inputs) list.push_back(fs::absolute(in).string());
      c.set("data.infer." + key, list, Origin{"--input", 0, 0, "override"});
    }
  }
  validate_all(c);
  const Device device = setup_device(o, c);
  const std::string weights = weights_for(s, o, c);
  TrainerOptions t = trainer_options(c);
  Built b = build(c, t.seed);
  load_weights(*b.model, weights);
  b.model->to(device);
  auto source = readers::make_loader(c, "infer", t.seed);
  const fs::path out = fs::path(out_dir_for(s, o, c)) / "predictions.jsonl";
  ensure_output_dir(out.parent_path().string());
  const int64_t n = predict_to_file(*b.task, *source, out.string(), t.bf16, o.plain, t.fp16);
  std::ifstream in(out);
  std::string line;
  for (int i = 0; i < o.show && std::getline(in, line); ++i) {
    const Json r = Json::parse(line, out.string());
    std::string desc;
    for (const auto& [k, v] : r.as_object())
      if (k != "topk" && k != "truth" && k != "truth_label") desc += k + " " + v.dump() + " ";
    std::string top;
    if (const Json* tk = r.find("topk")) {
      int shown = 0;
      for (const Json& e : tk->as_array()) {
        if (shown++ == 3) break;
        const Json* label = e.find("label");
        top += (top.empty() ? "" : ", ") + (label ? label->as_string() : e.at("class").dump()) +
               " " + std::to_string(e.at("score").as_double()).substr(0, 5);
      }
    }
    std::printf("%s-> %s", desc.c_str(), top.c_str());
    if (const Json* tl = r.find("truth_label"))
      std::printf("   (truth: %s)", tl->as_string().c_str());
    else if (const Json* tr = r.find("truth"))
      std::printf("   (truth: %s)", tr->dump().c_str());
    std::printf("\n");
  }
  std::fprintf(stderr, "%ld predictions in %s\n", static_cast<long>(n), out.c_str());
  return 0;
}

}  // namespace oar::app
