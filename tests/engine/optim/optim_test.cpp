#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "engine/autograd/grad_mode.h"
#include "engine/core/error.h"
#include "engine/core/generator.h"
#include "engine/io/safetensors.h"
#include "engine/nn/layer_norm.h"
#include "engine/nn/linear.h"
#include "engine/ops/binary.h"
#include "engine/ops/reduce.h"
#include "engine/ops/unary.h"
#include "engine/optim/adagrad.h"
#include "engine/optim/adam.h"
#include "engine/optim/clip.h"
#include "engine/optim/rmsprop.h"
#include "engine/optim/sgd.h"

using namespace oar;
using namespace oar::optim;

namespace {

const std::vector<double> kP0 = {0.5, -1.0, 2.0};
// Gradient at step t (1-based) for element i: varied signs and sizes.
double grad_at(int t, size_t i) {
  const double g[4][3] = {{0.1, -0.2, 0.3}, {-0.5, 0.05, 0.7}, {0.2, 0.4, -0.9}, {1.5, -0.3, 0.0}};
  return g[(t - 1) % 4][i];
}

// Runs `steps` steps of `opt` on a parameter starting at kP0, with fixed gradients.
std::vector<float> run(Tensor& p, Optimizer& opt, int first, int steps) {
  for (int t = first; t < first + steps; ++t) {
    std::vector<float> g;
    for (size_t i = 0; i < 3; ++i) g.push_back(static_cast<float>(grad_at(t, i)));
    p.set_grad(tensor<float>(g, {3}));
    opt.step();
  }
  return p.to_vector<float>();
}

Tensor param() {
  return tensor<float>({0.5f, -1.0f, 2.0f}, {3}).set_requires_grad();
}

// Reference updates written from PyTorch's documented algorithms, per element, in double.
using Ref = std::function<double(double p, double g, int t, std::vector<double>& s)>;
std::vector<double> reference(const Ref& f, int steps, size_t state) {
  std::vector<double> out;
  for (size_t i = 0; i < 3; ++i) {
    double p = kP0[i];
    std::vector<double> s(state, 0.0);
    for (int t = 1; t <= steps; ++t) p = f(p, grad_at(t, i), t, s);
    out.push_back(p);
  }
  return out;
}

void expect_close(const std::vector<float>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], want[i], 2e-6 * std::max(1.0, std::abs(want[i]))) << "element " << i;
}

}  // namespace

TEST(Optim, SgdMatchesFormulas) {
  const double lr = 0.1, mom = 0.9, damp = 0.1, wd = 0.01;
  {  // plain
    Tensor p = param();
    SGD opt({p}, {.lr = lr});
    expect_close(run(p, opt, 1, 4),
                 reference([&](double p, double g, int, auto&) { return p - lr * g; }, 4, 0));
  }
  {  // momentum + dampening + weight decay
    Tensor p = param();
    SGD opt({p}, {.lr = lr, .momentum = mom, .dampening = damp, .weight_decay = wd});
    expect_close(run(p, opt, 1, 4), reference(
                                        [&](double p, double g, int t, auto& s) {
                                          const double d = g + wd * p;
                                          s[0] = t == 1 ? d : mom * s[0] + (1 - damp) * d;
                                          return p - lr * s[0];
                                        },
                                        4, 1));
  }
  {  // nesterov
    Tensor p = param();
    SGD opt({p}, {.lr = lr, .momentum = mom, .nesterov = true});
    expect_close(run(p, opt, 1, 4), reference(
                                        [&](double p, double g, int t, auto& s) {
                                          s[0] = t == 1 ? g : mom * s[0] + g;
                                          return p - lr * (g + mom * s[0]);
                                        },
                                        4, 1));
  }
  Tensor p = param();
  EXPECT_THROW(SGD({p}, {.lr = 0.1, .nesterov = true}), Error);
}

TEST(Optim, SgdFusedPassMatchesComposition) {
  // A contiguous f32 parameter takes the one-pass CPU update; a strided view of the same values
  // takes the composition of ops. 10,001 elements: several threads' blocks and a remainder.
  Generator gen(7);
  const Tensor start = randn({101, 99}, &gen);
  for (const bool nesterov : {false, true}) {
    const SgdOptions o{.lr = 0.05,
                       .momentum = 0.9,
                       .dampening = nesterov ? 0.0 : 0.2,
                       .weight_decay = 1e-3,
                       .nesterov = nesterov};
    Tensor fused = start.clone().set_requires_grad();
    Tensor strided = start.transpose(0, 1).clone().transpose(0, 1).set_requires_grad();
    ASSERT_FALSE(strided.is_contiguous());
    SGD a({fused}, o), b({strided}, o);
    for (int t = 0; t < 5; ++t) {
      const Tensor g = randn({101, 99}, &gen);
      fused.set_grad(g.clone());
      strided.set_grad(g.clone());
      a.step();
      b.step();
    }
    const auto x = fused.to_vector<float>(), y = strided.contiguous().to_vector<float>();
    for (size_t i = 0; i < x.size(); ++i)
      ASSERT_NEAR(x[i], y[i], 1e-5 * std::max(1.0f, std::abs(y[i]))) << i << " " << nesterov;
  }
}

TEST(Optim, AdamAndAdamWMatchFormulas) {
  const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.1;
  auto adam_ref = [&](bool decoupled, bool amsgrad) {
    return [=](double p, double g, int t, std::vector<double>& s) {
      if (decoupled)
        p *= 1 - lr * wd;
      else
        g += wd * p;
      s[0] = b1 * s[0] + (1 - b1) * g;
      s[1] = b2 * s[1] + (1 - b2) * g * g;
      s[2] = std::max(s[2], s[1]);
      const double bc1 = 1 - std::pow(b1, t), bc2 = 1 - std::pow(b2, t);
      const double v = amsgrad ? s[2] : s[1];
      return p - lr / bc1 * s[0] / (std::sqrt(v) / std::sqrt(bc2) + eps);
    };
  };
  {
    Tensor p = param();
    Adam opt({p}, {.lr = lr, .weight_decay = wd});
    expect_close(run(p, opt, 1, 4), reference(adam_ref(false, false), 4, 3));
    EXPECT_EQ(opt.name(), "Adam");
  }
  {
    Tensor p = param();
    Adam opt({p}, {.lr = lr, .weight_decay = wd, .amsgrad = true});
    expect_close(run(p, opt, 1, 4), reference(adam_ref(false, true), 4, 3));
  }
  {
    Tensor p = param();
    AdamWOptions o;
    o.lr = lr;
    o.weight_decay = wd;
    AdamW opt({p}, o);
    expect_close(run(p, opt, 1, 4), reference(adam_ref(true, false), 4, 3));
    EXPECT_EQ(opt.name(), "AdamW");
    EXPECT_DOUBLE_EQ(AdamWOptions().weight_decay, 1e-2);
  }
}

TEST(Optim, RmsPropMatchesFormulas) {
  const double lr = 0.01, alpha = 0.9, eps = 1e-8, mom = 0.5, wd = 0.05;
  for (bool centered : {false, true})
    for (double m : {0.0, mom}) {
      Tensor p = param();
      RMSProp opt({p}, {.lr = lr,
                        .alpha = alpha,
                        .eps = eps,
                        .weight_decay = wd,
                        .momentum = m,
                        .centered = centered});
      expect_close(run(p, opt, 1, 4), reference(
                                          [&](double p, double g, int, auto& s) {
                                            g += wd * p;
                                            s[0] = alpha * s[0] + (1 - alpha) * g * g;
                                            double avg;
                                            if (centered) {
                                              s[1] = alpha * s[1] + (1 - alpha) * g;
                                              avg = std::sqrt(s[0] - s[1] * s[1]) + eps;
                                            } else {
                                              avg = std::sqrt(s[0]) + eps;
                                            }
                                            if (m > 0) {
                                              s[2] = m * s[2] + g / avg;
                                              return p - lr * s[2];
                                            }
                                            return p - lr * g / avg;
                                          },
                                          4, 3));
    }
}

TEST(Optim, AdagradMatchesFormulas) {
  const double lr = 0.1, decay = 0.01, wd = 0.02, init = 0.1, eps = 1e-10;
  Tensor p = param();
  Adagrad opt({p}, {.lr = lr,
                    .lr_decay = decay,
                    .weight_decay = wd,
                    .initial_accumulator_value = init,
                    .eps = eps});
  expect_close(run(p, opt, 1, 4), reference(
                                      [&](double p, double g, int t, auto& s) {
                                        if (t == 1) s[0] = init;
                                        g += wd * p;
                                        const double clr = lr / (1 + (t - 1) * decay);
                                        s[0] += g * g;
                                        return p - clr * g / (std::sqrt(s[0]) + eps);
                                      },
                                      4, 1));
}

TEST(Optim, SkipsParamsWithoutGradAndZeroGrad) {
  Tensor a = param(), b = param();
  SGD opt({a, b}, {.lr = 1.0});
  a.set_grad(ones({3}));
  opt.step();
  EXPECT_EQ(b.to_vector<float>(), (std::vector<float>{0.5f, -1.0f, 2.0f}));
  EXPECT_EQ(a.to_vector<float>(), (std::vector<float>{-0.5f, -2.0f, 1.0f}));
  const Tensor g = a.grad();
  opt.zero_grad();
  EXPECT_TRUE(a.grad().same_storage(g));
  EXPECT_EQ(a.grad().to_vector<float>(), (std::vector<float>{0, 0, 0}));
  opt.zero_grad(true);
  EXPECT_FALSE(a.grad().defined());
}

TEST(Optim, StepBumpsStorageVersion) {
  Tensor p = param();
  Adam opt({p});
  const uint64_t v0 = p.impl()->storage->version;
  p.set_grad(ones({3}));
  opt.step();
  EXPECT_GT(p.impl()->storage->version, v0);
}

TEST(Optim, DecayGroupsExcludeBiasAndNorms) {
  nn::Module m;
  auto fc = m.register_module("fc", std::make_shared<nn::Linear>(3, 2));
  auto ln = m.register_module("ln", std::make_shared<nn::LayerNorm>(Shape{2}));
  auto groups = decay_groups(m, 0.1);
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].names, (std::vector<std::string>{"fc.weight"}));
  EXPECT_EQ(groups[1].names, (std::vector<std::string>{"fc.bias", "ln.weight", "ln.bias"}));
  EXPECT_DOUBLE_EQ(groups[1].weight_decay, 0.0);
  const std::vector<float> w0 = fc->weight.to_vector<float>();
  const std::vector<float> b0 = fc->bias.to_vector<float>();
  AdamW opt(groups, [] {
    AdamWOptions o;
    o.lr = 0.5;
    return o;
  }());
  EXPECT_DOUBLE_EQ(opt.groups()[0].weight_decay, 0.1);
  EXPECT_DOUBLE_EQ(opt.groups()[1].lr, 0.5);
  for (auto& p : m.parameters()) p.set_grad(zeros_like(p));  // only decay moves anything
  opt.step();
  const std::vector<float> w1 = fc->weight.to_vector<float>();
  for (size_t i = 0; i < w0.size(); ++i) EXPECT_FLOAT_EQ(w1[i], w0[i] * (1 - 0.5f * 0.1f));
  EXPECT_EQ(fc->bias.to_vector<float>(), b0);
  EXPECT_EQ(ln->weight.to_vector<float>(), (std::vector<float>{1, 1}));
  opt.set_lr(0.01);
  EXPECT_DOUBLE_EQ(opt.groups()[0].lr, 0.01);
  EXPECT_DOUBLE_EQ(opt.groups()[1].lr, 0.01);
}

TEST(Optim, ClipGradNorm) {
  Tensor a = zeros({2}).set_requires_grad(), b = zeros({1}).set_requires_grad();
  a.set_grad(tensor<float>({3, 4}));
  b.set_grad(tensor<float>({12}));
  EXPECT_NEAR(clip_grad_norm({a, b}, 100.0), 13.0, 1e-6);
  EXPECT_EQ(a.grad().to_vector<float>(), (std::vector<float>{3, 4}));  // under the limit
  EXPECT_NEAR(clip_grad_norm({a, b}, 6.5), 13.0, 1e-6);
  EXPECT_NEAR(a.grad().to_vector<float>()[0], 1.5, 1e-6);
  EXPECT_NEAR(b.grad().to_vector<float>()[0], 6.0, 1e-6);
  EXPECT_THROW(clip_grad_norm({a}, 0.0), Error);
}

TEST(Optim, StateRestoresBitIdenticalSteps) {
  auto make = [](int which, Tensor& w, Tensor& b) -> std::unique_ptr<Optimizer> {
    ParamGroup g;
    g.params = {w, b};
    g.names = {"layer.weight", "layer.bias"};
    switch (which) {
      case 0:
        return std::make_unique<SGD>(std::vector<ParamGroup>{g},
                                     SgdOptions{.lr = 0.1, .momentum = 0.9});
      case 1:
        return std::make_unique<Adam>(std::vector<ParamGroup>{g},
                                      AdamOptions{.lr = 0.01, .amsgrad = true});
      case 2:
        return std::make_unique<RMSProp>(
            std::vector<ParamGroup>{g},
            RmsPropOptions{.lr = 0.01, .momentum = 0.3, .centered = true});
      default:
        return std::make_unique<Adagrad>(std::vector<ParamGroup>{g},
                                         AdagradOptions{.lr = 0.1, .lr_decay = 0.1});
    }
  };
  auto grads = [](int t, Tensor& w, Tensor& b) {
    Generator g(100 + static_cast<uint64_t>(t));
    w.set_grad(randn(w.shape(), &g));
    b.set_grad(randn(b.shape(), &g));
  };
  for (int which = 0; which < 4; ++which) {
    Tensor w = randn({4, 3}).set_requires_grad(), b = randn({4}).set_requires_grad();
    auto opt = make(which, w, b);
    for (int t = 0; t < 3; ++t) {
      grads(t, w, b);
      opt->step();
    }
    // Checkpoint through the safetensors byte format.
    auto ckpt = opt->state_tensors();
    ASSERT_FALSE(ckpt.empty());
    EXPECT_EQ(ckpt[0].first, "layer.weight.step");
    EXPECT_EQ(ckpt[0].second.item<int64_t>(), 3);
    std::vector<std::pair<std::string, Tensor>> params = {{"w", w}, {"b", b}};
    auto bytes = io::serialize_safetensors(ckpt);
    auto pbytes = io::serialize_safetensors(params);
    auto state = io::parse_safetensors(bytes.data(), bytes.size(), "optim").as_map();
    auto pstate = io::parse_safetensors(pbytes.data(), pbytes.size(), "params").as_map();

    Tensor w2 = pstate["w"].set_requires_grad(), b2 = pstate["b"].set_requires_grad();
    auto opt2 = make(which, w2, b2);
    opt2->load_state(state);
    for (int t = 3; t < 6; ++t) {
      grads(t, w, b);
      opt->step();
      grads(t, w2, b2);
      opt2->step();
    }
    EXPECT_EQ(w.to_vector<float>(), w2.to_vector<float>()) << opt->name();
    EXPECT_EQ(b.to_vector<float>(), b2.to_vector<float>()) << opt->name();
    state["nope.exp_avg"] = zeros({1});
    EXPECT_THROW(opt2->load_state(state), Error);
  }
}

TEST(Optim, TinyMlpLearns) {
  // y = sin(2 x0) + x1^2 fitted by a 2-16-1 tanh MLP made of broadcasting mul/add/sum.
  Generator gen(42);
  const Tensor x = rand({128, 2}, &gen, -1.0, 1.0);
  const Tensor y = add(sin(mul(x.select(1, 0), 2.0)), square(x.select(1, 1)));
  Tensor w1 = randn({16, 2}, &gen, 0.0, 0.7).set_requires_grad();
  Tensor b1 = zeros({16}).set_requires_grad();
  Tensor w2 = randn({16}, &gen, 0.0, 0.25).set_requires_grad();
  Tensor b2 = zeros({1}).set_requires_grad();
  Adam opt({w1, b1, w2, b2}, {.lr = 0.03});
  auto loss_fn = [&] {
    Tensor h = tanh(add(sum(mul(x.unsqueeze(1), w1), {-1}), b1));  // [128, 16]
    Tensor out = add(sum(mul(h, w2), {-1}), b2);
    Tensor d = sub(out, y);
    return mean(mul(d, d));
  };
  const double first = loss_fn().item_double();
  double last = first;
  for (int s = 0; s < 300; ++s) {
    opt.zero_grad();
    Tensor loss = loss_fn();
    loss.backward();
    clip_grad_norm({w1, b1, w2, b2}, 5.0);
    opt.step();
    last = loss.item_double();
  }
  EXPECT_LT(last, first * 0.05) << "first " << first << " last " << last;
}
