#pragma once
// Sequential: children named "0", "1", ... whose forwards chain. ModuleList: an indexed list of
// children without a forward of its own (the owner decides how to call them).
#include <memory>
#include <vector>

#include "engine/nn/module.h"

namespace oar::nn {

class Sequential : public Module {
 public:
  Sequential() = default;
  template <typename... Ms>
  explicit Sequential(std::shared_ptr<Ms>... modules) {
    (push_back(std::move(modules)), ...);
  }
  void push_back(std::shared_ptr<Module> m);
  Tensor forward(const Tensor& x) override;
  size_t size() const { return items_.size(); }
  const std::shared_ptr<Module>& operator[](size_t i) const;
  std::string name() const override { return "Sequential"; }

 private:
  std::vector<std::shared_ptr<Module>> items_;
};

class ModuleList : public Module {
 public:
  ModuleList() = default;
  void push_back(std::shared_ptr<Module> m);
  size_t size() const { return items_.size(); }
  const std::shared_ptr<Module>& operator[](size_t i) const;
  // The i-th child as M (throws naming the index when it is another type).
  template <typename M>
  std::shared_ptr<M> at(size_t i) const {
    auto p = std::dynamic_pointer_cast<M>((*this)[i]);
    if (!p) type_error(i);
    return p;
  }
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }
  std::string name() const override { return "ModuleList"; }

 private:
  [[noreturn]] void type_error(size_t i) const;
  std::vector<std::shared_ptr<Module>> items_;
};

}  // namespace oar::nn
