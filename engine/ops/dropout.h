#pragma once
#include "engine/core/generator.h"
#include "engine/tensor/tensor.h"

namespace oar {

// Zeroes elements with probability p and scales the rest by 1/(1-p) when training; the mask
// comes from `gen` (the default generator when null), so runs repeat under a seed.
Tensor dropout(const Tensor& x, double p, bool training, Generator* gen = nullptr);

}  // namespace oar
