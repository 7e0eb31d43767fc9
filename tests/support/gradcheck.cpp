#include "tests/support/gradcheck.h"

#include <cmath>
#include <sstream>

#include "engine/autograd/grad_mode.h"
#include "engine/autograd/node.h"
#include "engine/ops/binary.h"
#include "engine/ops/reduce.h"

namespace oar::testing {

Tensor rand_input(const Shape& shape, uint64_t seed, double lo, double hi) {
  Generator g(seed);
  return rand(shape, &g, lo, hi).set_requires_grad();
}

std::string gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                      const std::vector<Tensor>& inputs, GradcheckOptions opt) {
  // Fixed output weights.
  Tensor w;
  {
    NoGradGuard ng;
    Tensor probe = f(inputs);
    Generator g(opt.seed);
    w = rand(probe.shape(), &g, 0.5, 1.5);
  }
  auto loss_value = [&]() {
    NoGradGuard ng;
    Tensor y = f(inputs).to(DType::f32).contiguous();
    const float* py = y.data<float>();
    const float* pw = w.data<float>();
    double acc = 0;
    for (int64_t i = 0; i < y.numel(); ++i) acc += static_cast<double>(py[i]) * pw[i];
    return acc;
  };
  std::vector<Tensor> leaves;
  for (const Tensor& t : inputs)
    if (t.requires_grad()) leaves.push_back(t);
  if (leaves.empty()) return "gradcheck: no input requires grad";
  Tensor y = f(inputs);
  if (!y.requires_grad()) return "gradcheck: output does not require grad";
  auto grads = autograd::grad({sum(mul(y.to(DType::f32), w))}, leaves);

  std::ostringstream err;
  for (size_t k = 0; k < leaves.size(); ++k) {
    Tensor x = leaves[k];
    if (x.dtype() != DType::f32) return "gradcheck: inputs must be f32";
    Tensor ga = grads[k].to(DType::f32).contiguous();
    const float* pa = ga.data<float>();
    // Perturb x element by element through a contiguous index walk of its storage view.
    Tensor xc = x.detach();
    const Shape st = contiguous_strides(x.shape());
    for (int64_t i = 0; i < x.numel(); ++i) {
      int64_t off = 0, rem = i;
      for (int64_t d = 0; d < x.dim(); ++d) {
        off += (rem / st[d]) * x.strides()[d];
        rem %= st[d];
      }
      float* p = static_cast<float*>(x.impl()->storage->data) + x.offset() + off;
      // Each write bumps the storage version, as in-place writers must (kernels cache
      // reordered copies of weights by it).
      auto& version = x.impl()->storage->version;
      const float orig = *p;
      *p = orig + static_cast<float>(opt.eps);
      ++version;
      const double lp = loss_value();
      *p = orig - static_cast<float>(opt.eps);
      ++version;
      const double lm = loss_value();
      *p = orig;
      ++version;
      const double num = (lp - lm) / (2 * opt.eps);
      const double ana = pa[i];
      if (!(std::fabs(num - ana) <= opt.atol + opt.rtol * std::fabs(num))) {
        err << "input " << k << " element " << i << ": analytic " << ana << " numeric " << num
            << " (shape " << shape_str(x.shape()) << ")";
        return err.str();
      }
    }
  }
  return "";
}

}  // namespace oar::testing
