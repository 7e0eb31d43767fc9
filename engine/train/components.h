#pragma once
// The engine's registries of configurable components and the schemas of the config sections
// the trainer reads. Domain libraries add models and tasks from their register functions.
//
//   model:     {name: simple_cnn, ...}           -> models()
//   task:      {name: image_classification, ...} -> tasks(), given the model
//   optimizer: {name: adamw, lr: ..., ...}       -> optimizers(), given the model
//   lr:        {name: cosine, warmup_steps: ...} -> schedules(), given base lr and total steps
//   trainer:   {epochs: ..., ...}                -> trainer_options()
#include <memory>
#include <string>

#include "engine/config/config.h"
#include "engine/registry/registry.h"
#include "engine/train/task.h"
#include "engine/train/trainer.h"

namespace oar {
namespace nn {
class Module;
}
namespace optim {
class Optimizer;
class LrSchedule;
}  // namespace optim

struct ModelContext {
  Generator* init_generator = nullptr;  // parameter initialisation draws from it
};

Registry<nn::Module, ModelContext>& models();
Registry<Task, std::shared_ptr<nn::Module>>& tasks();
Registry<optim::Optimizer, nn::Module*>& optimizers();
// base lr, total optimizer steps of the run
Registry<optim::LrSchedule, double, int64_t>& schedules();

// Registers the optimizers and schedules (idempotent).
void register_engine_components();

// The `trainer` section: its schema and the options it yields (validated, defaults filled).
const Schema& trainer_schema();
const Schema& distributed_schema();  // trainer.distributed
const Schema& loss_scale_schema();   // trainer.loss_scale
TrainerOptions trainer_options(Config& config);

// The top-level sections a config may have.
const Schema& root_schema();

}  // namespace oar
