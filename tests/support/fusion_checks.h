#pragma once
// Helpers shared by the inference/training fusion tests (tests/vision/fusion_test.cpp,
// tests/video/models/video_fusion_test.cpp): BN layers with non-trivial statistics so a fold does
// real work, the unfused reference forward, and element-wise and norm-wise tensor comparisons.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "engine/autograd/grad_mode.h"
#include "engine/nn.h"
#include "tests/support/gradcheck.h"
#include "vision/models/fused.h"

namespace oar::testing {

// Every BN gets non-trivial statistics and affine parameters, so the fold does real work.
inline void randomise_batch_norms(nn::Module& m) {
  uint64_t seed = 100;
  NoGradGuard ng;
  for (auto& [name, mod] : m.named_modules())
    if (auto* bn = dynamic_cast<nn::BatchNorm*>(mod)) {
      const Shape s{bn->num_features};
      bn->running_mean.copy_(rand_input(s, seed++) * 0.5);
      bn->running_var.copy_(rand_input(s, seed++, 0.5, 2.0));
      bn->weight.copy_(rand_input(s, seed++, 0.5, 1.5));
      bn->bias.copy_(rand_input(s, seed++) * 0.2);
    }
}

// m's forward with the inference folds turned off: the module-by-module reference.
inline Tensor unfused(nn::Module& m, const Tensor& x) {
  vision::NoInferenceFusionGuard off;
  return m(x);
}

// Every element within tol * (1 + max |want|).
inline void expect_close(const Tensor& got, const Tensor& want, double tol,
                         const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  const auto g = got.contiguous().to_vector<float>(), w = want.contiguous().to_vector<float>();
  double scale = 0;
  for (float v : w) scale = std::max(scale, static_cast<double>(std::fabs(v)));
  for (size_t i = 0; i < g.size(); ++i)
    ASSERT_NEAR(g[i], w[i], tol * (1 + scale)) << what << " element " << i;
}

// ||got - want|| / ||want|| within tol: for gradients through many training-mode BNs, where
// single elements are chaotic but the tensor is not.
inline void expect_close_norm(const Tensor& got, const Tensor& want, double tol,
                              const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  const auto g = got.contiguous().to_vector<float>(), w = want.contiguous().to_vector<float>();
  double diff = 0, norm = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    diff += (static_cast<double>(g[i]) - w[i]) * (static_cast<double>(g[i]) - w[i]);
    norm += static_cast<double>(w[i]) * w[i];
  }
  EXPECT_LE(std::sqrt(diff), tol * std::sqrt(norm) + 1e-4) << what;  // floor: grads that are ~0
}

}  // namespace oar::testing
