#pragma once
// Dropout with probability p in training, identity in eval. The mask comes from the module's
// generator (Module::set_generator, normally the trainer's), else the default generator.
#include "engine/nn/module.h"

namespace oar::nn {

class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5);
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "Dropout"; }
  void describe(std::ostream& os) const override;

  double p;
};

}  // namespace oar::nn
