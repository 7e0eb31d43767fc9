#pragma once
// Optimizer base: parameter groups, per-parameter state that a checkpoint saves and restores
// exactly, and the decay / no-decay split. Steps run under NoGradGuard and update parameters in
// place (bumping Storage::version), so handles held by modules stay valid.
#include <cstdint>
#include <deque>
#include <initializer_list>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/tensor/tensor.h"

namespace oar::nn {
class Module;
}

namespace oar::optim {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

struct ParamGroup {
  std::vector<Tensor> params;
  // Optional, parallel to params: names the optimizer state ("<name>.exp_avg"); without names
  // the state is named "<group>.<index>.exp_avg".
  std::vector<std::string> names;
  double lr = -1.0;            // negative: the optimizer's lr
  double weight_decay = -1.0;  // negative: the optimizer's weight_decay
};

// Two groups of a module's parameters: weight_decay on matrices and kernels (rank >= 2), none on
// biases and norm weights (rank <= 1). Names come from named_parameters.
std::vector<ParamGroup> decay_groups(const nn::Module& module, double weight_decay);

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient (parameters without one are skipped).
  virtual void step() = 0;
  virtual std::string name() const = 0;
  // Zeroes gradients in place (keeps flat gradient views); set_to_none drops them instead.
  void zero_grad(bool set_to_none = false);
  std::vector<ParamGroup>& groups() { return groups_; }
  const std::vector<ParamGroup>& groups() const { return groups_; }
  // Sets every group's lr (what a schedule calls each step).
  void set_lr(double lr);
  double lr() const { return groups_.empty() ? 0.0 : groups_[0].lr; }

  // Per-parameter state as named tensors: "<param>.step" (i64 scalar) and each buffer
  // ("<param>.exp_avg", ...). Saving these and load_state restores the optimizer exactly.
  virtual NamedTensors state_tensors() const;
  // Replaces the state; throws naming the key for entries that match no parameter, and for
  // buffers whose shape differs from the parameter's.
  virtual void load_state(const std::map<std::string, Tensor>& state);
  // Moves every state buffer to `device` (after the parameters moved with Module::to).
  void to(Device device);

 protected:
  Optimizer(std::vector<ParamGroup> groups, double lr, double weight_decay, const char* what);

  struct ParamState {
    int64_t step = 0;
    // Creation order; a deque so references from get() survive later insertions.
    std::deque<std::pair<std::string, Tensor>> buffers;
    Tensor* find(const std::string& name);
    // The buffer, created as full_like(like, init) on first use.
    Tensor& get(const std::string& name, const Tensor& like, double init = 0.0);
  };
  ParamState& state_of(const Tensor& param) { return state_[param.impl()]; }

 private:
  std::string key_of(size_t group, size_t index) const;
  std::vector<ParamGroup> groups_;
  std::unordered_map<const TensorImpl*, ParamState> state_;
};

// Whether a fused CPU update kernel may take p and its companions (gradient, state buffers;
// null entries are skipped): every one a contiguous f32 CPU tensor of p's shape. Anything else
// (other devices and dtypes, strided views) runs the optimizer's composition of ops.
bool fused_cpu_update_ok(const Tensor& p, std::initializer_list<const Tensor*> others);

}  // namespace oar::optim
