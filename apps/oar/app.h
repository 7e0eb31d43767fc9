#pragma once
// Shared pieces of the oar subcommands: loading configs (from a file or a run/checkpoint
// directory), registering components, and building the model, task and loaders.
#include <memory>
#include <string>
#include <vector>

#include "engine/config/config.h"
#include "engine/core/generator.h"
#include "engine/nn/module.h"
#include "engine/train/task.h"

namespace oar::app {

// Exit codes: 0 ok, 1 internal error, 2 bad input (config, data, files), 3 training diverged,
// 128 + signal when stopped by a signal (a checkpoint was written).
constexpr int kExitBadInput = 2;
constexpr int kExitDiverged = 3;

void register_all();

struct Source {
  Config config;
  std::string checkpoint;  // directory with model.safetensors when -c named a run/checkpoint
  std::string run_dir;     // the run directory it belongs to ("" for a plain config file)
};

// -c accepts a YAML file, a run directory (uses best/, else the newest checkpoint) or a
// checkpoint directory; overrides apply on top.
Source load_source(const std::string& path, const std::vector<std::string>& overrides);

// Validates the top-level sections and every component section the config names, for all
// data modes present (what `oar config validate` and every run do first).
void validate_all(Config& config);

struct Built {
  std::shared_ptr<nn::Module> model;
  std::shared_ptr<Task> task;
};
// Builds model and task; the model's initial parameters come from `seed`.
Built build(Config& config, uint64_t seed);

// Loads model weights from a checkpoint directory (model.safetensors) or a .safetensors file.
void load_weights(nn::Module& model, const std::string& path);

std::string default_output_dir(const Config& config);
// Creates the directory (and parents) and checks it is writable; oar::Error naming it if not.
void ensure_output_dir(const std::string& dir);

}  // namespace oar::app
