#include "engine/nn/sequential.h"

#include "engine/core/error.h"

namespace oar::nn {

void Sequential::push_back(std::shared_ptr<Module> m) {
  register_module(std::to_string(items_.size()), m);
  items_.push_back(std::move(m));
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (auto& m : items_) y = m->forward(y);
  return y;
}

const std::shared_ptr<Module>& Sequential::operator[](size_t i) const {
  OAR_CHECK(i < items_.size(), "Sequential: index ", i, " out of range (size ", items_.size(), ")");
  return items_[i];
}

void ModuleList::push_back(std::shared_ptr<Module> m) {
  register_module(std::to_string(items_.size()), m);
  items_.push_back(std::move(m));
}

const std::shared_ptr<Module>& ModuleList::operator[](size_t i) const {
  OAR_CHECK(i < items_.size(), "ModuleList: index ", i, " out of range (size ", items_.size(), ")");
  return items_[i];
}

void ModuleList::type_error(size_t i) const {
  OAR_FAIL("ModuleList: element ", i, " is a ", items_[i]->name(), ", not the requested type");
}

}  // namespace oar::nn
