#include "engine/nn/module.h"

#include <gtest/gtest.h>

#include <cmath>

#include "engine/autograd/grad_mode.h"
#include "engine/core/error.h"
#include "engine/nn/batch_norm.h"
#include "engine/nn/linear.h"
#include "engine/nn/sequential.h"
#include "engine/ops/binary.h"
#include "engine/ops/reduce.h"
#include "engine/optim/adam.h"
#include "engine/optim/clip.h"
#include "engine/optim/sgd.h"

using namespace oar;
using namespace oar::nn;

namespace {

// BERT-like nesting: encoder.layer.<i>.attention.self.{query,key}
struct SelfAttention : Module {
  std::shared_ptr<Linear> query, key;
  SelfAttention() {
    query = register_module("query", std::make_shared<Linear>(4, 4));
    key = register_module("key", std::make_shared<Linear>(4, 4, false));
  }
  std::string name() const override { return "SelfAttention"; }
};
struct Attention : Module {
  Attention() { register_module("self", std::make_shared<SelfAttention>()); }
};
struct Layer : Module {
  Layer() {
    register_module("attention", std::make_shared<Attention>());
    register_module("norm", std::make_shared<BatchNorm1d>(4));
  }
};
struct Encoder : Module {
  Encoder() {
    auto layers = register_module("layer", std::make_shared<ModuleList>());
    layers->push_back(std::make_shared<Layer>());
    layers->push_back(std::make_shared<Layer>());
    scale = register_parameter("scale", ones({1}));
  }
  Tensor scale;
};

std::vector<std::string> names(const NamedTensors& nt) {
  std::vector<std::string> out;
  for (auto& [n, t] : nt) out.push_back(n);
  return out;
}

// y = sum(x * w, -1) + b: a linear regression made only of broadcasting mul/add/sum.
struct Regression : Module {
  Tensor w, b;
  explicit Regression(int64_t d) {
    w = register_parameter("w", zeros({d}));
    b = register_parameter("b", zeros({1}));
  }
  Tensor forward(const Tensor& x) override { return add(sum(mul(x, w), {-1}), b); }
};

}  // namespace

TEST(Module, DottedNamesInRegistrationOrder) {
  auto enc = std::make_shared<Encoder>();
  const std::vector<std::string> expect = {"scale",
                                           "layer.0.attention.self.query.weight",
                                           "layer.0.attention.self.query.bias",
                                           "layer.0.attention.self.key.weight",
                                           "layer.0.norm.weight",
                                           "layer.0.norm.bias",
                                           "layer.1.attention.self.query.weight",
                                           "layer.1.attention.self.query.bias",
                                           "layer.1.attention.self.key.weight",
                                           "layer.1.norm.weight",
                                           "layer.1.norm.bias"};
  EXPECT_EQ(names(enc->named_parameters()), expect);
  EXPECT_EQ(
      names(enc->named_buffers()),
      (std::vector<std::string>{"layer.0.norm.running_mean", "layer.0.norm.running_var",
                                "layer.0.norm.num_batches_tracked", "layer.1.norm.running_mean",
                                "layer.1.norm.running_var", "layer.1.norm.num_batches_tracked"}));
  for (auto& p : enc->parameters()) EXPECT_TRUE(p.requires_grad());
  EXPECT_EQ(enc->num_parameters(), 1 + 2 * (16 + 4 + 16 + 8));
  EXPECT_TRUE(enc->find("layer.1.attention.self.key.weight").defined());
  EXPECT_FALSE(enc->find("layer.1.attention.self.key.bias").defined());
  EXPECT_EQ(enc->named_modules().size(), 1u + 1 + 2 * 6);
  EXPECT_EQ(enc->named_modules()[3].first, "layer.0.attention");
}

TEST(Module, StateDictOrderFollowsPyTorch) {
  auto enc = std::make_shared<Encoder>();
  const auto sd = names(enc->state_dict());
  // per module: parameters, buffers, then children
  const std::vector<std::string> head = {"scale",
                                         "layer.0.attention.self.query.weight",
                                         "layer.0.attention.self.query.bias",
                                         "layer.0.attention.self.key.weight",
                                         "layer.0.norm.weight",
                                         "layer.0.norm.bias",
                                         "layer.0.norm.running_mean",
                                         "layer.0.norm.running_var",
                                         "layer.0.norm.num_batches_tracked",
                                         "layer.1.attention.self.query.weight"};
  ASSERT_EQ(sd.size(), 17u);
  EXPECT_EQ(std::vector<std::string>(sd.begin(), sd.begin() + 10), head);
  EXPECT_EQ(enc->state_dict()[8].second.dtype(), DType::i64);
}

TEST(Module, RegistrationErrors) {
  Module m;
  m.register_parameter("w", zeros({2}));
  EXPECT_THROW(m.register_parameter("w", zeros({2})), Error);
  EXPECT_THROW(m.register_buffer("a.b", zeros({2})), Error);
  EXPECT_THROW(m.register_parameter("i", zeros({2}, DType::i64)), Error);
  try {
    m.forward(zeros({1}));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("module Module has no single-tensor forward"),
              std::string::npos);
  }
}

TEST(Module, TiedParametersAppearOnce) {
  Module m;
  auto a = m.register_module("a", std::make_shared<Linear>(3, 3));
  auto b = m.register_module("b", std::make_shared<Module>());
  b->register_parameter("tied", a->weight);
  EXPECT_EQ(names(m.named_parameters()), (std::vector<std::string>{"a.weight", "a.bias"}));
  EXPECT_EQ(m.state_dict().size(), 3u);  // state_dict keeps every name
}

TEST(Module, LoadStateDictReportsAndCopies) {
  auto src = std::make_shared<Encoder>();
  auto dst = std::make_shared<Encoder>();
  std::map<std::string, Tensor> state;
  for (auto& [n, t] : src->state_dict()) state[n] = t;
  // exact load, with a dtype conversion on one entry
  state["scale"] = full({1}, 2.5, DType::bf16);
  LoadReport r = dst->load_state_dict(state);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(dst->scale.dtype(), DType::f32);
  EXPECT_FLOAT_EQ(dst->scale.item<float>(), 2.5f);
  EXPECT_EQ(dst->find("layer.1.attention.self.query.weight").to_vector<float>(),
            src->find("layer.1.attention.self.query.weight").to_vector<float>());

  // problems: one missing, one unexpected, one mismatched
  state.erase("layer.0.norm.bias");
  state["layer.0.extra"] = zeros({1});
  state["layer.1.norm.weight"] = zeros({5});
  state["scale"] = full({1}, 7.0);
  try {
    dst->load_state_dict(state, true);
    FAIL() << "strict load should throw";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("missing: layer.0.norm.bias"), std::string::npos) << msg;
    EXPECT_NE(msg.find("unexpected: layer.0.extra"), std::string::npos) << msg;
    EXPECT_NE(msg.find("layer.1.norm.weight expects [4], got [5]"), std::string::npos) << msg;
  }
  EXPECT_FLOAT_EQ(dst->scale.item<float>(), 2.5f);  // strict failure copies nothing
  r = dst->load_state_dict(state, false);
  EXPECT_EQ(r.missing, (std::vector<std::string>{"layer.0.norm.bias"}));
  EXPECT_EQ(r.unexpected, (std::vector<std::string>{"layer.0.extra"}));
  ASSERT_EQ(r.mismatched.size(), 1u);
  EXPECT_EQ(r.mismatched[0].expected, (Shape{4}));
  EXPECT_EQ(r.mismatched[0].got, (Shape{5}));
  EXPECT_FLOAT_EQ(dst->scale.item<float>(), 7.0f);
}

TEST(Module, TrainEvalIsRecursive) {
  auto enc = std::make_shared<Encoder>();
  EXPECT_TRUE(enc->is_training());
  enc->eval();
  for (auto& [n, m] : enc->named_modules()) EXPECT_FALSE(m->is_training()) << n;
  enc->train();
  for (auto& [n, m] : enc->named_modules()) EXPECT_TRUE(m->is_training()) << n;
  Generator g(3);
  enc->set_generator(&g);
  for (auto& [n, m] : enc->named_modules()) EXPECT_EQ(m->generator(), &g) << n;
}

TEST(Module, StrListsTree) {
  auto enc = std::make_shared<Encoder>();
  const std::string s = enc->str();
  EXPECT_NE(s.find("query: Linear(in=4, out=4, bias=true)"), std::string::npos) << s;
  EXPECT_NE(s.find("norm: BatchNorm1d(4"), std::string::npos) << s;
}

namespace {
// Trains y = 3 x0 - 2 x1 + 0.5 x2 + 1 with SGD; returns the final loss and weights.
std::pair<double, std::vector<float>> train_regression(bool flat, int steps) {
  auto model = std::make_shared<Regression>(3);
  if (flat) model->flatten_parameters();
  optim::SGD opt(model->parameters(), {.lr = 0.1, .momentum = 0.5});
  Generator gen(11);
  const Tensor x = randn({64, 3}, &gen);
  const Tensor y = add(sum(mul(x, tensor<float>({3.f, -2.f, 0.5f})), {-1}), 1.0);
  double loss_v = 0;
  for (int s = 0; s < steps; ++s) {
    model->zero_grad();
    Tensor d = sub(model->forward(x), y);
    Tensor loss = mean(mul(d, d));
    loss.backward();
    optim::clip_grad_norm(*model, 10.0);
    opt.step();
    loss_v = loss.item_double();
  }
  std::vector<float> w = model->w.to_vector<float>();
  w.push_back(model->b.item<float>());
  return {loss_v, w};
}
}  // namespace

TEST(Module, FlattenParametersKeepsValuesAndTrains) {
  auto enc = std::make_shared<Encoder>();
  std::vector<std::vector<float>> before;
  for (auto& p : enc->parameters()) before.push_back(p.to_vector<float>());
  auto query_w = enc->find("layer.0.attention.self.query.weight");
  enc->flatten_parameters();
  ASSERT_TRUE(enc->is_flat());
  ASSERT_EQ(enc->flat_parameters().size(), 1u);
  const Tensor flat = enc->flat_parameters()[0];
  const Tensor flat_grad = enc->flat_gradients()[0];
  size_t i = 0;
  for (auto& p : enc->parameters()) {
    EXPECT_TRUE(p.same_storage(flat));
    EXPECT_EQ(p.offset() % 16, 0);  // 64-byte aligned f32 slots
    EXPECT_EQ(p.to_vector<float>(), before[i++]);
    ASSERT_TRUE(p.grad().defined());
    EXPECT_TRUE(p.grad().same_storage(flat_grad));
  }
  EXPECT_TRUE(query_w.same_storage(flat));  // handles held elsewhere follow the move
  // Writing through the flat buffer shows in the parameters.
  {
    NoGradGuard ng;
    Tensor f = flat;
    f.fill_(0.25);
  }
  EXPECT_FLOAT_EQ(enc->scale.item<float>(), 0.25f);

  const auto [loss_flat, w_flat] = train_regression(true, 100);
  const auto [loss_ref, w_ref] = train_regression(false, 100);
  EXPECT_LT(loss_flat, 1e-4);
  EXPECT_NEAR(w_flat[0], 3.0f, 1e-2);
  EXPECT_NEAR(w_flat[3], 1.0f, 1e-2);
  EXPECT_EQ(w_flat, w_ref);  // same arithmetic, bit for bit
  EXPECT_DOUBLE_EQ(loss_flat, loss_ref);
}

TEST(Module, FlatGradientsAccumulateAndZeroInOneBuffer) {
  auto model = std::make_shared<Regression>(2);
  model->flatten_parameters();
  const Tensor x = tensor<float>({1, 2, 3, 4}, {2, 2});
  sum(model->forward(x)).backward();
  EXPECT_EQ(model->w.grad().to_vector<float>(), (std::vector<float>{4, 6}));
  sum(model->forward(x)).backward();  // accumulates in place
  EXPECT_EQ(model->w.grad().to_vector<float>(), (std::vector<float>{8, 12}));
  EXPECT_FLOAT_EQ(model->b.grad().item<float>(), 4.0f);
  EXPECT_FLOAT_EQ(sum(model->flat_gradients()[0]).item<float>(), 24.0f);
  model->zero_grad();
  EXPECT_FLOAT_EQ(sum(model->flat_gradients()[0]).item<float>(), 0.0f);
  EXPECT_TRUE(model->w.grad().same_storage(model->flat_gradients()[0]));
  // clip through the flat buffer: norm of (8, 12, 4) = sqrt(224)
  sum(mul(model->forward(x), 2.0)).backward();
  const double norm = optim::clip_grad_norm(*model, 1.0);
  EXPECT_NEAR(norm, std::sqrt(224.0), 1e-4);
  EXPECT_NEAR(sum(mul(model->flat_gradients()[0], model->flat_gradients()[0])).item<float>(), 1.0,
              1e-4);
}

TEST(Module, OptimizerCanStepTheFlatBuffer) {
  // The same Adam steps, per parameter and on the one flat buffer, give the same weights.
  auto per_param = std::make_shared<Regression>(5);
  auto flat = std::make_shared<Regression>(5);
  flat->flatten_parameters();
  optim::Adam a(per_param->parameters(), {.lr = 0.05});
  optim::Adam b(flat->flat_parameters(), {.lr = 0.05});
  Generator gen(4);
  const Tensor x = randn({16, 5}, &gen);
  const Tensor y = sum(x, {-1});
  for (int s = 0; s < 20; ++s) {
    for (auto* opt : {static_cast<optim::Optimizer*>(&a), static_cast<optim::Optimizer*>(&b)}) {
      Regression& m = opt == &a ? *per_param : *flat;
      m.zero_grad();
      Tensor d = sub(m.forward(x), y);
      mean(mul(d, d)).backward();
      opt->step();
    }
  }
  const auto wa = per_param->w.to_vector<float>(), wb = flat->w.to_vector<float>();
  for (size_t i = 0; i < wa.size(); ++i) EXPECT_NEAR(wa[i], wb[i], 1e-6);
  EXPECT_NEAR(per_param->b.item<float>(), flat->b.item<float>(), 1e-6);
  EXPECT_GT(std::fabs(wa[0]), 0.5);  // it moved towards 1
}

TEST(Module, ToTheSameDeviceKeepsHandlesValuesAndGradients) {
  // Plain: nothing is copied, so handles, storage, values and gradients are untouched.
  auto m = std::make_shared<Regression>(3);
  const Tensor x = tensor<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  sum(m->forward(x)).backward();
  const Tensor w = m->w;
  const auto storage_before = w.impl()->storage;
  m->to(Device::cpu());
  EXPECT_EQ(w.impl()->storage, storage_before);
  EXPECT_EQ(m->w.grad().to_vector<float>(), (std::vector<float>{5, 7, 9}));
  // An optimizer built before the move still steps the same parameters.
  optim::SGD opt(m->parameters(), optim::SgdOptions{0.1, 0.0});
  opt.step();
  for (int i = 0; i < 3; ++i) EXPECT_FLOAT_EQ(w.to_vector<float>()[i], -0.1f * (5.0f + 2 * i));

  // Flat: the module stays flat and the gradients keep their values in the new flat buffer.
  auto f = std::make_shared<Regression>(3);
  f->flatten_parameters();
  sum(f->forward(x)).backward();
  const Tensor fw = f->w;
  f->to(Device::cpu());
  ASSERT_TRUE(f->is_flat());
  EXPECT_TRUE(fw.same_storage(f->flat_parameters()[0]));
  EXPECT_TRUE(fw.grad().same_storage(f->flat_gradients()[0]));
  EXPECT_EQ(fw.grad().to_vector<float>(), (std::vector<float>{5, 7, 9}));
  EXPECT_FLOAT_EQ(f->b.grad().item<float>(), 2.0f);
  optim::SGD fopt(f->parameters(), optim::SgdOptions{0.1, 0.0});
  fopt.step();
  for (int i = 0; i < 3; ++i) EXPECT_FLOAT_EQ(fw.to_vector<float>()[i], -0.1f * (5.0f + 2 * i));
}

TEST(Module, ToCudaWithoutAGpuNamesTheDevice) {
  if (cuda_available()) GTEST_SKIP() << "a GPU is visible: tests/engine/gpu_models_test covers it";
  auto m = std::make_shared<Regression>(3);
  try {
    m->to(Device::cuda(0));
    FAIL() << "moved to cuda:0 without a GPU";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cuda"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(m->w.device().is_cpu());  // nothing moved
}
