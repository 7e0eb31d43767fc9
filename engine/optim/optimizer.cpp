#include "engine/optim/optimizer.h"

#include "engine/autograd/grad_mode.h"
#include "engine/core/error.h"
#include "engine/nn/module.h"

namespace oar::optim {

std::vector<ParamGroup> decay_groups(const nn::Module& module, double weight_decay) {
  ParamGroup decay, no_decay;
  decay.weight_decay = weight_decay;
  no_decay.weight_decay = 0.0;
  for (const auto& [name, p] : module.named_parameters()) {
    ParamGroup& g = p.dim() >= 2 ? decay : no_decay;
    g.params.push_back(p);
    g.names.push_back(name);
  }
  return {decay, no_decay};
}

Optimizer::Optimizer(std::vector<ParamGroup> groups, double lr, double weight_decay,
                     const char* what)
    : groups_(std::move(groups)) {
  OAR_CHECK(lr >= 0, what, ": lr must be >= 0, got ", lr);
  OAR_CHECK(weight_decay >= 0, what, ": weight_decay must be >= 0, got ", weight_decay);
  for (size_t g = 0; g < groups_.size(); ++g) {
    ParamGroup& pg = groups_[g];
    if (pg.lr < 0) pg.lr = lr;
    if (pg.weight_decay < 0) pg.weight_decay = weight_decay;
    OAR_CHECK(pg.names.empty() || pg.names.size() == pg.params.size(), what, ": group ", g, " has ",
              pg.params.size(), " params but ", pg.names.size(), " names");
    for (size_t i = 0; i < pg.params.size(); ++i) {
      const Tensor& p = pg.params[i];
      OAR_CHECK(p.defined() && is_floating(p.dtype()) && p.is_leaf(), what, ": parameter ",
                key_of(g, i), " must be a defined floating leaf tensor");
    }
  }
}

std::string Optimizer::key_of(size_t g, size_t i) const {
  const ParamGroup& pg = groups_[g];
  if (!pg.names.empty()) return pg.names[i];
  return std::to_string(g) + "." + std::to_string(i);
}

void Optimizer::zero_grad(bool set_to_none) {
  NoGradGuard no_grad;
  for (auto& pg : groups_)
    for (auto& p : pg.params) {
      if (!p.grad().defined()) continue;
      if (set_to_none) {
        p.set_grad(Tensor());
      } else {
        Tensor g = p.grad();
        g.zero_();
      }
    }
}

void Optimizer::set_lr(double lr) {
  for (auto& pg : groups_) pg.lr = lr;
}

Tensor* Optimizer::ParamState::find(const std::string& name) {
  for (auto& [n, t] : buffers)
    if (n == name) return &t;
  return nullptr;
}

Tensor& Optimizer::ParamState::get(const std::string& name, const Tensor& like, double init) {
  if (Tensor* t = find(name)) return *t;
  buffers.emplace_back(name, full(like.shape(), init, like.dtype(), like.device()));
  return buffers.back().second;
}

NamedTensors Optimizer::state_tensors() const {
  NamedTensors out;
  for (size_t g = 0; g < groups_.size(); ++g)
    for (size_t i = 0; i < groups_[g].params.size(); ++i) {
      auto it = state_.find(groups_[g].params[i].impl());
      if (it == state_.end()) continue;
      const std::string key = key_of(g, i);
      out.emplace_back(key + ".step",
                       scalar_tensor(static_cast<double>(it->second.step), DType::i64));
      for (const auto& [n, t] : it->second.buffers) out.emplace_back(key + "." + n, t);
    }
  return out;
}

void Optimizer::load_state(const std::map<std::string, Tensor>& state) {
  std::unordered_map<std::string, const Tensor*> params;
  for (size_t g = 0; g < groups_.size(); ++g)
    for (size_t i = 0; i < groups_[g].params.size(); ++i)
      params[key_of(g, i)] = &groups_[g].params[i];
  std::unordered_map<const TensorImpl*, ParamState> loaded;
  for (const auto& [key, t] : state) {
    const size_t dot = key.rfind('.');
    auto it = dot == std::string::npos ? params.end() : params.find(key.substr(0, dot));
    OAR_CHECK(it != params.end(), name(), " load_state: entry '", key,
              "' matches no parameter of this optimizer");
    const Tensor& p = *it->second;
    const std::string buf = key.substr(dot + 1);
    ParamState& ps = loaded[p.impl()];
    if (buf == "step") {
      OAR_CHECK(t.numel() == 1, name(), " load_state: '", key, "' must be a scalar");
      ps.step = static_cast<int64_t>(t.item_double());
    } else {
      OAR_CHECK(t.shape() == p.shape(), name(), " load_state: '", key, "' has shape ",
                shape_str(t.shape()), ", the parameter has ", shape_str(p.shape()));
      ps.buffers.emplace_back(buf, t.to(p.device()).to(p.dtype()).clone());
    }
  }
  state_ = std::move(loaded);
}

}  // namespace oar::optim

namespace oar::optim {

void Optimizer::to(Device device) {
  NoGradGuard no_grad;
  for (auto& [impl, ps] : state_)
    for (auto& [n, t] : ps.buffers)
      if (t.device() != device) t = t.to(device);
}

bool fused_cpu_update_ok(const Tensor& p, std::initializer_list<const Tensor*> others) {
  const auto ok = [&](const Tensor& t) {
    return t.device().is_cpu() && t.dtype() == DType::f32 && t.is_contiguous() &&
           t.shape() == p.shape();
  };
  if (!ok(p)) return false;
  for (const Tensor* t : others)
    if (t && !ok(*t)) return false;
  return true;
}

}  // namespace oar::optim
