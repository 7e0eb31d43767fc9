#pragma once
// Module: named parameters, buffers and children, with dotted state names
// (`encoder.layer.0.attention.self.query.weight`) so real checkpoints map by name.
//
// Randomness: a module draws dropout masks from the generator set with set_generator (applied to
// the whole subtree, normally by the trainer); when none is set, the default generator is used.
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/core/generator.h"
#include "engine/tensor/tensor.h"

namespace oar::nn {

// What load_state_dict found.
struct LoadReport {
  struct Mismatch {
    std::string name;
    Shape expected;
    Shape got;
  };
  std::vector<std::string> missing;     // in the module, absent from the given state
  std::vector<std::string> unexpected;  // in the given state, unknown to the module
  std::vector<Mismatch> mismatched;     // present in both with different shapes (not copied)
  bool ok() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  std::string str() const;  // one problem per line
};

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module : public std::enable_shared_from_this<Module> {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Registers a parameter (sets requires_grad) and returns the same handle. Names are unique
  // within a module and contain no '.'.
  Tensor register_parameter(const std::string& name, Tensor value);
  // A buffer is state saved with the module but not trained (running statistics).
  Tensor register_buffer(const std::string& name, Tensor value);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> child) {
    add_child(name, child);
    return child;
  }

  // Registration order; own entries first, then children depth-first. Parameters shared between
  // modules (tied weights) appear once, under their first name.
  NamedTensors named_parameters() const;
  std::vector<Tensor> parameters() const;
  NamedTensors named_buffers() const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const {
    return children_;
  }
  // This module ("") and every descendant, pre-order, with dotted names.
  std::vector<std::pair<std::string, Module*>> named_modules();
  // Looks a parameter or buffer up by dotted name; undefined when absent.
  Tensor find(const std::string& dotted) const;
  std::shared_ptr<Module> child(const std::string& name) const;

  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Dropout and other random layers of this subtree draw from `gen` (null: default generator).
  // The generator must outlive the modules' use of it.
  void set_generator(Generator* gen);
  Generator* generator() const { return generator_; }

  // Parameters and buffers in PyTorch's state_dict order (per module: parameters, buffers, then
  // children); tied tensors appear under every name.
  NamedTensors state_dict() const;
  // Copies values in place (converting dtype). Entries with a different shape are not copied.
  // strict: throws an Error listing every missing, unexpected and mismatched entry (nothing is
  // copied then).
  LoadReport load_state_dict(const std::map<std::string, Tensor>& state, bool strict = true);

  // Moves every parameter, buffer and gradient of this subtree to `device` in place: each
  // TensorImpl is re-pointed at new storage, so handles held by layers and optimizers stay
  // valid. A flat module stays flat (its buffers are rebuilt on the new device). Tied
  // parameters move once. Optimizers must be created (or their state moved) afterwards.
  void to(Device device);

  // Zeroes gradients in place (one fill per flat buffer after flatten_parameters).
  void zero_grad();
  int64_t num_parameters() const;

  // Moves every parameter into one contiguous buffer per (dtype, device): each parameter's
  // TensorImpl is re-pointed at its slot (64-byte aligned), so handles held by layers and
  // optimizers stay valid. Gradients are pre-allocated as views of a parallel flat gradient
  // buffer; backward accumulates into them in place. Do not reset .grad to undefined afterwards
  // (zero it instead) or the parameter's gradient leaves the flat buffer.
  void flatten_parameters();
  bool is_flat() const { return !flat_.empty(); }
  // The flat buffers (one per dtype/device), empty before flatten_parameters. Each flat
  // parameter's .grad is its flat gradient buffer, so an optimizer built on flat_parameters()
  // updates every parameter with one op per buffer (the same hyper-parameters for all).
  std::vector<Tensor> flat_parameters() const;
  std::vector<Tensor> flat_gradients() const;

  virtual Tensor forward(const Tensor& x);
  // forward(x), reported to the active ForwardHookGuard of this thread (model summaries).
  Tensor operator()(const Tensor& x);

  virtual std::string name() const { return "Module"; }
  // One line about this module (its hyper-parameters); used by str().
  virtual void describe(std::ostream& os) const;
  // The tree of modules with parameter shapes.
  std::string str() const;

 protected:
  void add_child(const std::string& name, std::shared_ptr<Module> child);

 private:
  void collect_parameters(const std::string& prefix, NamedTensors& out,
                          std::vector<const TensorImpl*>& seen) const;
  void collect_buffers(const std::string& prefix, NamedTensors& out) const;
  void collect_state(const std::string& prefix, NamedTensors& out) const;
  void collect_modules(const std::string& prefix,
                       std::vector<std::pair<std::string, Module*>>& out);
  void write_tree(std::ostream& os, const std::string& label, int depth) const;
  void check_new_name(const std::string& name, const char* what) const;
  std::string name_str_for_error() const;

  struct Flat {
    Tensor params;
    Tensor grads;
  };
  NamedTensors params_;
  NamedTensors buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  std::vector<Flat> flat_;
  bool training_ = true;
  Generator* generator_ = nullptr;
};

// While alive, every Module::operator() call on this thread reports (module, output) to `hook`
// after the module's forward returns (used by `oar model summary`).
class ForwardHookGuard {
 public:
  using Hook = std::function<void(const Module&, const Tensor&)>;
  explicit ForwardHookGuard(Hook hook);
  ~ForwardHookGuard();
  ForwardHookGuard(const ForwardHookGuard&) = delete;
  ForwardHookGuard& operator=(const ForwardHookGuard&) = delete;

 private:
  Hook prev_;
};

}  // namespace oar::nn
