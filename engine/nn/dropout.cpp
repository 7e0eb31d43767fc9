#include "engine/nn/dropout.h"

#include <ostream>

#include "engine/core/error.h"
#include "engine/ops/dropout.h"

namespace oar::nn {

Dropout::Dropout(double p_) : p(p_) {
  OAR_CHECK(p >= 0.0 && p <= 1.0, "Dropout: p must be in [0, 1], got ", p);
}

Tensor Dropout::forward(const Tensor& x) {
  if (!is_training() || p == 0.0) return x;
  return dropout(x, p, true, generator());
}

void Dropout::describe(std::ostream& os) const {
  os << "Dropout(p=" << p << ")";
}

}  // namespace oar::nn
