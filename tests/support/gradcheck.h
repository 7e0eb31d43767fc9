#pragma once
// Finite-difference gradient check: compares autograd's gradient of sum(f(inputs) * w) (w a
// fixed random weight, so every output element matters) with central differences.
#include <functional>
#include <string>
#include <vector>

#include "engine/tensor/tensor.h"

namespace oar::testing {

struct GradcheckOptions {
  double eps = 1e-3;
  double atol = 2e-3;
  double rtol = 2e-2;
  uint64_t seed = 7;
};

// Returns an empty string on success, else a description of the worst mismatch. Inputs must be
// f32; the ones with requires_grad are checked. f may return any floating shape.
std::string gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                      const std::vector<Tensor>& inputs, GradcheckOptions opt = {});

// A random f32 tensor with requires_grad, values in [lo, hi).
Tensor rand_input(const Shape& shape, uint64_t seed, double lo = -1.0, double hi = 1.0);

}  // namespace oar::testing

#define EXPECT_GRADCHECK(f, inputs, ...)                                             \
  do {                                                                               \
    const std::string _gc = ::oar::testing::gradcheck((f), (inputs), ##__VA_ARGS__); \
    EXPECT_TRUE(_gc.empty()) << _gc;                                                 \
  } while (0)
