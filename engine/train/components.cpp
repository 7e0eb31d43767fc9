#include "engine/train/components.h"

#include "engine/nn/module.h"
#include "engine/optim/adagrad.h"
#include "engine/optim/adam.h"
#include "engine/optim/optimizer.h"
#include "engine/optim/rmsprop.h"
#include "engine/optim/schedule.h"
#include "engine/optim/sgd.h"

namespace oar {

Registry<nn::Module, ModelContext>& models() {
  static auto* r = new Registry<nn::Module, ModelContext>("model");
  return *r;
}
Registry<Task, std::shared_ptr<nn::Module>>& tasks() {
  static auto* r = new Registry<Task, std::shared_ptr<nn::Module>>("task");
  return *r;
}
Registry<optim::Optimizer, nn::Module*>& optimizers() {
  static auto* r = new Registry<optim::Optimizer, nn::Module*>("optimizer");
  return *r;
}
Registry<optim::LrSchedule, double, int64_t>& schedules() {
  static auto* r = new Registry<optim::LrSchedule, double, int64_t>("lr");
  return *r;
}

namespace {

Schema& common_optimizer_keys(Schema& s, double lr, double wd) {
  return s.key<double>("lr", lr, "learning rate (the schedule's peak)")
      .min(0)
      .key<double>("weight_decay", wd, "weight decay")
      .min(0)
      .key<bool>("decay_bias_and_norm", false,
                 "also decay biases and norm weights (1-D parameters); off as BERT and timm do");
}

std::vector<optim::ParamGroup> groups_for(const Config& c, const std::string& s, nn::Module* m) {
  const double wd = c.get<double>(s + ".weight_decay");
  if (c.get<bool>(s + ".decay_bias_and_norm")) {
    optim::ParamGroup g;
    for (auto& [name, p] : m->named_parameters()) {
      g.params.push_back(p);
      g.names.push_back(name);
    }
    g.weight_decay = wd;
    return {g};
  }
  return optim::decay_groups(*m, wd);
}

class ConstantLr : public optim::LrSchedule {
 public:
  explicit ConstantLr(double v) : v_(v) {}
  double lr(int64_t) const override { return v_; }

 private:
  double v_;
};

}  // namespace

void register_engine_components() {
  static bool done = false;
  if (done) return;
  done = true;

  {
    Schema s("optimizer", "sgd", "SGD with momentum and Nesterov (torch.optim.SGD)");
    common_optimizer_keys(s, 0.1, 0.0)
        .key<double>("momentum", 0.9, "momentum")
        .range(0, 1)
        .key<double>("dampening", 0.0, "dampening")
        .range(0, 1)
        .key<bool>("nesterov", false, "Nesterov momentum");
    optimizers().add(s, [](const Config& c, const std::string& k, nn::Module* m) {
      optim::SgdOptions o;
      o.lr = c.get<double>(k + ".lr");
      o.weight_decay = c.get<double>(k + ".weight_decay");
      o.momentum = c.get<double>(k + ".momentum");
      o.dampening = c.get<double>(k + ".dampening");
      o.nesterov = c.get<bool>(k + ".nesterov");
      return std::make_shared<optim::SGD>(groups_for(c, k, m), o);
    });
  }
  for (const bool decoupled : {false, true}) {
    Schema s("optimizer", decoupled ? "adamw" : "adam",
             decoupled ? "AdamW: Adam with decoupled weight decay (torch.optim.AdamW)"
                       : "Adam with L2 weight decay (torch.optim.Adam)");
    common_optimizer_keys(s, 1e-3, decoupled ? 0.01 : 0.0)
        .key<double>("beta1", 0.9, "first-moment decay")
        .range(0, 1)
        .key<double>("beta2", 0.999, "second-moment decay")
        .range(0, 1)
        .key<double>("eps", 1e-8, "denominator epsilon")
        .min(0)
        .key<bool>("amsgrad", false, "AMSGrad variant");
    optimizers().add(s,
                     [decoupled](const Config& c, const std::string& k,
                                 nn::Module* m) -> std::shared_ptr<optim::Optimizer> {
                       optim::AdamOptions o;
                       o.lr = c.get<double>(k + ".lr");
                       o.weight_decay = c.get<double>(k + ".weight_decay");
                       o.beta1 = c.get<double>(k + ".beta1");
                       o.beta2 = c.get<double>(k + ".beta2");
                       o.eps = c.get<double>(k + ".eps");
                       o.amsgrad = c.get<bool>(k + ".amsgrad");
                       if (decoupled) {
                         optim::AdamWOptions w;
                         static_cast<optim::AdamOptions&>(w) = o;
                         return std::make_shared<optim::AdamW>(groups_for(c, k, m), w);
                       }
                       return std::make_shared<optim::Adam>(groups_for(c, k, m), o);
                     });
  }
  {
    Schema s("optimizer", "rmsprop", "RMSProp, optionally centered (torch.optim.RMSprop)");
    common_optimizer_keys(s, 1e-2, 0.0)
        .key<double>("alpha", 0.99, "smoothing constant")
        .range(0, 1)
        .key<double>("eps", 1e-8, "denominator epsilon")
        .min(0)
        .key<double>("momentum", 0.0, "momentum")
        .range(0, 1)
        .key<bool>("centered", false, "normalise by the centred second moment");
    optimizers().add(s, [](const Config& c, const std::string& k, nn::Module* m) {
      optim::RmsPropOptions o;
      o.lr = c.get<double>(k + ".lr");
      o.weight_decay = c.get<double>(k + ".weight_decay");
      o.alpha = c.get<double>(k + ".alpha");
      o.eps = c.get<double>(k + ".eps");
      o.momentum = c.get<double>(k + ".momentum");
      o.centered = c.get<bool>(k + ".centered");
      return std::make_shared<optim::RMSProp>(groups_for(c, k, m), o);
    });
  }
  {
    Schema s("optimizer", "adagrad", "Adagrad (torch.optim.Adagrad)");
    common_optimizer_keys(s, 1e-2, 0.0)
        .key<double>("lr_decay", 0.0, "learning-rate decay")
        .min(0)
        .key<double>("initial_accumulator_value", 0.0, "initial sum of squares")
        .min(0)
        .key<double>("eps", 1e-10, "denominator epsilon")
        .min(0);
    optimizers().add(s, [](const Config& c, const std::string& k, nn::Module* m) {
      optim::AdagradOptions o;
      o.lr = c.get<double>(k + ".lr");
      o.weight_decay = c.get<double>(k + ".weight_decay");
      o.lr_decay = c.get<double>(k + ".lr_decay");
      o.initial_accumulator_value = c.get<double>(k + ".initial_accumulator_value");
      o.eps = c.get<double>(k + ".eps");
      return std::make_shared<optim::Adagrad>(groups_for(c, k, m), o);
    });
  }

  // Schedules: factories get the optimizer's lr and the run's total optimizer steps.
  schedules().add(Schema("lr", "constant", "the optimizer's lr throughout"),
                  [](const Config&, const std::string&, double base, int64_t) {
                    return std::make_shared<ConstantLr>(base);
                  });
  {
    Schema s("lr", "piecewise", "values[i] until boundaries[i] (steps), then the last value");
    s.required<std::vector<int64_t>>("boundaries", "step boundaries, increasing")
        .required<std::vector<double>>("values", "one more value than boundaries");
    schedules().add(s, [](const Config& c, const std::string& k, double, int64_t) {
      return std::make_shared<optim::PiecewiseLr>(c.get<std::vector<int64_t>>(k + ".boundaries"),
                                                  c.get<std::vector<double>>(k + ".values"));
    });
  }
  {
    Schema s("lr", "step", "lr * gamma^(step / step_size)");
    s.required<int64_t>("step_size", "steps between decays")
        .min(1)
        .key<double>("gamma", 0.1, "decay factor")
        .range(0, 1);
    schedules().add(s, [](const Config& c, const std::string& k, double base, int64_t) {
      return std::make_shared<optim::StepLr>(base, c.get<int64_t>(k + ".step_size"),
                                             c.get<double>(k + ".gamma"));
    });
  }
  {
    Schema s("lr", "exponential", "lr * gamma^step");
    s.required<double>("gamma", "decay per step").range(0, 1);
    schedules().add(s, [](const Config& c, const std::string& k, double base, int64_t) {
      return std::make_shared<optim::ExponentialLr>(base, c.get<double>(k + ".gamma"));
    });
  }
  {
    Schema s("lr", "cosine", "cosine annealing, optional warm restarts (SGDR)");
    s.key<int64_t>("t_max", 0, "period in steps; 0: the whole run")
        .min(0)
        .key<double>("eta_min", 0.0, "floor")
        .min(0)
        .key<int64_t>("restart_period", 0, "first restart period (T_0); 0: no restarts")
        .min(0)
        .key<int64_t>("restart_mult", 1, "period multiplier after each restart (T_mult)")
        .min(1);
    schedules().add(s,
                    [](const Config& c, const std::string& k, double base,
                       int64_t total) -> std::shared_ptr<optim::LrSchedule> {
                      const double eta = c.get<double>(k + ".eta_min");
                      const int64_t t0 = c.get<int64_t>(k + ".restart_period");
                      if (t0 > 0)
                        return std::make_shared<optim::CosineLr>(optim::CosineLr::with_restarts(
                            base, t0, c.get<int64_t>(k + ".restart_mult"), eta));
                      const int64_t t = c.get<int64_t>(k + ".t_max");
                      return std::make_shared<optim::CosineLr>(
                          base, t > 0 ? t : std::max<int64_t>(total, 1), eta);
                    });
  }
  {
    Schema s("lr", "warmup", "linear warmup, then constant/linear/cosine/polynomial decay");
    s.key<int64_t>("warmup_steps", 0, "steps of linear warmup from 0")
        .min(0)
        .key<double>("warmup_ratio", 0.0, "warmup as a fraction of the run (if steps is 0)")
        .range(0, 1)
        .key<std::string>("decay", "linear", "decay after warmup")
        .choices({"constant", "linear", "cosine", "polynomial"})
        .key<double>("end_lr", 0.0, "lr at the end of the run")
        .min(0)
        .key<double>("power", 1.0, "polynomial power")
        .min(0);
    schedules().add(s, [](const Config& c, const std::string& k, double base, int64_t total) {
      int64_t warm = c.get<int64_t>(k + ".warmup_steps");
      if (warm == 0) warm = static_cast<int64_t>(c.get<double>(k + ".warmup_ratio") * total);
      const std::string d = c.get<std::string>(k + ".decay");
      const optim::DecayKind kind = d == "constant"     ? optim::DecayKind::constant
                                    : d == "cosine"     ? optim::DecayKind::cosine
                                    : d == "polynomial" ? optim::DecayKind::polynomial
                                                        : optim::DecayKind::linear;
      return std::make_shared<optim::WarmupLr>(base, warm, std::max<int64_t>(total, warm + 1), kind,
                                               c.get<double>(k + ".end_lr"),
                                               c.get<double>(k + ".power"));
    });
  }
}

const Schema& trainer_schema() {
  static const Schema s = [] {
    Schema t("trainer", "trainer", "the training loop: length, evaluation, checkpoints, logs");
    t.key<int64_t>("epochs", 1, "passes over the training data")
        .min(0)
        .key<int64_t>("max_steps", 0, "stop after this many optimizer steps (0: epochs decide)")
        .min(0)
        .key<int64_t>("grad_accum", 1, "batches per optimizer step")
        .min(1)
        .key<int64_t>("eval_every_steps", 0, "evaluate every N steps (0: at epoch ends)")
        .min(0)
        .key<int64_t>("eval_every_epochs", 1, "evaluate every N epochs (0: never at epoch ends)")
        .min(0)
        .key<int64_t>("save_every_steps", 0, "extra checkpoints every N steps (0: none)")
        .min(0)
        .key<int64_t>("log_every", 50, "steps between log records")
        .min(1)
        .key<std::string>("best_metric", "", "metric that picks best/ (default: the first)")
        .key<std::string>("best_mode", "max", "whether higher or lower is better")
        .choices({"max", "min"})
        .key<int64_t>("early_stopping_patience", 0,
                      "evaluations without improvement before stopping (0: off)")
        .min(0)
        .key<int64_t>("keep_last", 2, "step checkpoints to keep")
        .min(1)
        .key<double>("clip_grad_norm", 0.0, "global gradient-norm clip (0: off)")
        .min(0)
        .key<bool>("bf16", false, "bf16 autocast for matmul and convolution")
        .key<bool>("fp16", false,
                   "fp16 autocast with dynamic loss scaling (f32 master weights); not with bf16")
        .map("loss_scale", "fp16 loss scaling: {init: 65536, growth_interval: 2000}")
        .key<int64_t>("seed", 42, "seed for initialisation, shuffling, augmentation and dropout")
        .min(0)
        .key<std::string>("output_dir", "", "run directory (default: runs/<config name>)")
        .key<int64_t>("threads", 0, "CPU threads (0: all cores)")
        .min(0)
        .map("distributed",
             "data parallel over ranks (oar launch, torchrun, Kubeflow): see "
             "`oar config doc distributed`");
    return t;
  }();
  return s;
}

const Schema& distributed_schema() {
  static const Schema s = [] {
    Schema d("trainer", "distributed",
             "data parallel, used when the environment names several ranks (WORLD_SIZE/RANK/"
             "MASTER_ADDR/MASTER_PORT or PADDLE_*); data.batch_size is per rank");
    d.key<std::string>("backend", "auto", "collectives: nccl on CUDA devices, gloo on CPU")
        .choices({"auto", "gloo", "nccl"})
        .key<double>("bucket_mb", 25.0, "gradient bucket size in MiB (PyTorch DDP's bucket_cap_mb)")
        .range(0.001, 4096)
        .key<double>("timeout_s", 300.0, "seconds to wait for other ranks before failing")
        .range(0.1, 86400)
        .key<bool>("sync_batch_norm", false, "batch-norm statistics over every rank's batch");
    return d;
  }();
  return s;
}

const Schema& loss_scale_schema() {
  static const Schema s = [] {
    Schema l("trainer", "loss_scale",
             "dynamic loss scaling for trainer.fp16 (PyTorch's GradScaler): a step with inf/NaN "
             "gradients is skipped and the scale halves; it doubles after growth_interval good "
             "steps");
    l.key<double>("init", 65536.0, "the first scale")
        .range(1e-8, 1e30)
        .key<int64_t>("growth_interval", 2000, "good steps in a row before the scale doubles")
        .min(1);
    return l;
  }();
  return s;
}

TrainerOptions trainer_options(Config& config) {
  if (!config.has("trainer"))
    config.set("trainer", YAML::Node(YAML::NodeType::Map), Origin{config.file(), 0, 0, "default"});
  validate(config, "trainer", trainer_schema());
  if (!config.has("trainer.distributed"))
    config.set("trainer.distributed", YAML::Node(YAML::NodeType::Map),
               Origin{config.file(), 0, 0, "default"});
  validate(config, "trainer.distributed", distributed_schema());
  if (!config.has("trainer.loss_scale"))
    config.set("trainer.loss_scale", YAML::Node(YAML::NodeType::Map),
               Origin{config.file(), 0, 0, "default"});
  validate(config, "trainer.loss_scale", loss_scale_schema());
  TrainerOptions o;
  o.distributed.backend = config.get<std::string>("trainer.distributed.backend");
  o.distributed.bucket_mb = config.get<double>("trainer.distributed.bucket_mb");
  o.distributed.timeout_s = config.get<double>("trainer.distributed.timeout_s");
  o.distributed.sync_batch_norm = config.get<bool>("trainer.distributed.sync_batch_norm");
  o.epochs = config.get<int64_t>("trainer.epochs");
  o.max_steps = config.get<int64_t>("trainer.max_steps");
  o.grad_accum = config.get<int64_t>("trainer.grad_accum");
  o.eval_every_steps = config.get<int64_t>("trainer.eval_every_steps");
  o.eval_every_epochs = config.get<int64_t>("trainer.eval_every_epochs");
  o.save_every_steps = config.get<int64_t>("trainer.save_every_steps");
  o.log_every = config.get<int64_t>("trainer.log_every");
  o.best_metric = config.get<std::string>("trainer.best_metric");
  o.best_max = config.get<std::string>("trainer.best_mode") == "max";
  o.early_stopping_patience = config.get<int64_t>("trainer.early_stopping_patience");
  o.keep_last = config.get<int64_t>("trainer.keep_last");
  o.clip_grad_norm = config.get<double>("trainer.clip_grad_norm");
  o.bf16 = config.get<bool>("trainer.bf16");
  o.fp16 = config.get<bool>("trainer.fp16");
  o.loss_scale.init_scale = config.get<double>("trainer.loss_scale.init");
  o.loss_scale.growth_interval = config.get<int64_t>("trainer.loss_scale.growth_interval");
  if (o.bf16 && o.fp16)
    throw config.error("trainer.fp16", "trainer.bf16 and trainer.fp16 are both true",
                       "choose one mixed-precision mode");
  o.seed = static_cast<uint64_t>(config.get<int64_t>("trainer.seed"));
  o.output_dir = config.get<std::string>("trainer.output_dir");
  if (o.epochs == 0 && o.max_steps == 0)
    throw config.error("trainer.epochs", "nothing to train: epochs and max_steps are both 0",
                       "set one of them");
  return o;
}

const Schema& root_schema() {
  static const Schema s = [] {
    Schema r("config", "root", "the sections of an oar config");
    r.map("model", "the network (model.name picks it)")
        .map("task", "loss, metrics and predictions (task.name picks it)")
        .map("data", "readers and loaders; data.train/valid/test/infer override shared keys")
        .map("optimizer", "the optimizer (optimizer.name picks it)")
        .map("lr", "the learning-rate schedule (lr.name picks it)")
        .map("trainer", "the training loop")
        .any("_base_", "files this config inherits from");
    return r;
  }();
  return s;
}

}  // namespace oar
