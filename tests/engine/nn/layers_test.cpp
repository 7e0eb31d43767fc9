// Layers: LayersConstruct.* need no ops beyond tensor creation and views; LayersForward.* run
// the layers' forward passes on the engine's ops (linear, conv, norms, embedding, dropout,
// attention, rnn).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "engine/autograd/grad_mode.h"
#include "engine/core/error.h"
#include "engine/nn.h"
#include "engine/ops.h"
#include "tests/support/gradcheck.h"

using namespace oar;
using namespace oar::nn;

namespace {

std::vector<std::string> names(const NamedTensors& nt) {
  std::vector<std::string> out;
  for (auto& [n, t] : nt) out.push_back(n);
  return out;
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (float v : t.to_vector<float>()) m = std::max(m, static_cast<double>(std::fabs(v)));
  return m;
}

void expect_near(const Tensor& a, const Tensor& b, double tol) {
  ASSERT_EQ(a.shape(), b.shape());
  auto va = a.to_vector<float>(), vb = b.to_vector<float>();
  for (size_t i = 0; i < va.size(); ++i) EXPECT_NEAR(va[i], vb[i], tol) << "element " << i;
}

}  // namespace

// ---------------------------------------------------------------- construction (no kernels)

TEST(LayersConstruct, ParameterCountsMatchPyTorch) {
  EXPECT_EQ(Linear(10, 5).num_parameters(), 55);
  EXPECT_EQ(Linear(10, 5, false).num_parameters(), 50);
  EXPECT_EQ(Conv1d(4, 8, 3).num_parameters(), 104);
  EXPECT_EQ(Conv2d(3, 8, {3, 3}).num_parameters(), 224);
  EXPECT_EQ(Conv2d(8, 8, {3, 3}, {.groups = 8}).num_parameters(), 80);
  EXPECT_EQ(Conv3d(2, 4, {3, 3, 3}, {.bias = false}).num_parameters(), 216);
  EXPECT_EQ(BatchNorm2d(8).num_parameters(), 16);
  EXPECT_EQ(BatchNorm1d(8, {.affine = false}).num_parameters(), 0);
  EXPECT_EQ(LayerNorm({8}).num_parameters(), 16);
  EXPECT_EQ(LayerNorm({4, 8}, 1e-5, true, false).num_parameters(), 32);
  EXPECT_EQ(GroupNorm(2, 8).num_parameters(), 16);
  EXPECT_EQ(Embedding(100, 8).num_parameters(), 800);
  EXPECT_EQ(MultiHeadAttention(16, 4).num_parameters(), 1088);
  EXPECT_EQ(MultiHeadAttention(16, 4, {.kdim = 8, .vdim = 6}).num_parameters(),
            16 * 16 + 16 * 8 + 16 * 6 + 16 * 16 + 4 * 16);
  EXPECT_EQ(LSTM(10, 20, {.num_layers = 2, .bidirectional = true}).num_parameters(), 15040);
  EXPECT_EQ(GRU(10, 20).num_parameters(), 1920);
  EXPECT_EQ(GRU(10, 20, {.bias = false}).num_parameters(), 1800);
}

TEST(LayersConstruct, PyTorchParameterNames) {
  LSTM lstm(3, 4, {.num_layers = 2, .bidirectional = true});
  EXPECT_EQ(names(lstm.named_parameters()),
            (std::vector<std::string>{
                "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_ih_l0_reverse",
                "weight_hh_l0_reverse", "bias_ih_l0_reverse", "bias_hh_l0_reverse", "weight_ih_l1",
                "weight_hh_l1", "bias_ih_l1", "bias_hh_l1", "weight_ih_l1_reverse",
                "weight_hh_l1_reverse", "bias_ih_l1_reverse", "bias_hh_l1_reverse"}));
  EXPECT_EQ(lstm.find("weight_ih_l1").shape(), (Shape{16, 8}));
  EXPECT_EQ(lstm.weights.size(), 4u);
  EXPECT_EQ(GRU(3, 4).find("weight_hh_l0").shape(), (Shape{12, 4}));
  EXPECT_EQ(names(MultiHeadAttention(8, 2).named_parameters()),
            (std::vector<std::string>{"q_proj.weight", "q_proj.bias", "k_proj.weight",
                                      "k_proj.bias", "v_proj.weight", "v_proj.bias",
                                      "out_proj.weight", "out_proj.bias"}));
  EXPECT_EQ(names(BatchNorm2d(3).state_dict()),
            (std::vector<std::string>{"weight", "bias", "running_mean", "running_var",
                                      "num_batches_tracked"}));
  EXPECT_EQ(names(BatchNorm2d(3, {.track_running_stats = false}).state_dict()),
            (std::vector<std::string>{"weight", "bias"}));
  Sequential seq(std::make_shared<Linear>(2, 3), std::make_shared<Dropout>(0.1),
                 std::make_shared<Linear>(3, 1));
  EXPECT_EQ(names(seq.named_parameters()),
            (std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"}));
  EXPECT_EQ(seq.size(), 3u);
  ModuleList list;
  list.push_back(std::make_shared<Linear>(2, 2));
  EXPECT_TRUE(list.at<Linear>(0));
  EXPECT_THROW(list.at<Conv>(0), Error);
  EXPECT_THROW(list[1], Error);
}

TEST(LayersConstruct, DefaultInitRanges) {
  Generator g(9);
  Linear lin(100, 10, true, &g);
  EXPECT_LE(max_abs(lin.weight), 0.1);
  EXPECT_GT(max_abs(lin.weight), 0.09);
  EXPECT_LE(max_abs(lin.bias), 0.1);
  Conv2d conv(3, 8, {3, 3}, {}, &g);
  EXPECT_LE(max_abs(conv.weight), 1.0 / std::sqrt(27.0));
  EXPECT_GT(max_abs(conv.weight), 0.8 / std::sqrt(27.0));
  LSTM lstm(10, 25, {}, &g);
  for (auto& p : lstm.parameters()) EXPECT_LE(max_abs(p), 0.2);
  EXPECT_GT(max_abs(lstm.find("weight_hh_l0")), 0.19);
  Embedding emb(50, 40, 3, &g);
  EXPECT_EQ(emb.weight.select(0, 3).to_vector<float>(), std::vector<float>(40, 0.0f));
  EXPECT_GT(max_abs(emb.weight), 2.0);  // N(0, 1)
  EXPECT_EQ(Embedding(10, 2, -1).padding_idx, 9);
  MultiHeadAttention mha(16, 4, {}, &g);
  const double xb = std::sqrt(6.0 / 64.0);
  EXPECT_LE(max_abs(mha.q_proj->weight), xb);
  EXPECT_GT(max_abs(mha.v_proj->weight), 0.9 * xb);
  EXPECT_EQ(max_abs(mha.k_proj->bias), 0.0);
  EXPECT_EQ(max_abs(mha.out_proj->bias), 0.0);
  EXPECT_LE(max_abs(mha.out_proj->weight), 0.25);
  BatchNorm2d bn(4);
  EXPECT_EQ(bn.weight.to_vector<float>(), std::vector<float>(4, 1.0f));
  EXPECT_EQ(bn.running_var.to_vector<float>(), std::vector<float>(4, 1.0f));
  EXPECT_EQ(bn.num_batches_tracked.item<int64_t>(), 0);
  // Same seed, same weights.
  Generator a(1), b(1);
  EXPECT_EQ(Linear(5, 5, true, &a).weight.to_vector<float>(),
            Linear(5, 5, true, &b).weight.to_vector<float>());
}

TEST(LayersConstruct, BadArgumentsAreErrors) {
  EXPECT_THROW(Conv2d(3, 8, {3, 3}, {.groups = 2}), Error);
  EXPECT_THROW(Conv2d(4, 8, {3, 3, 3}), Error);
  EXPECT_THROW(MultiHeadAttention(10, 3), Error);
  EXPECT_THROW(GroupNorm(3, 8), Error);
  EXPECT_THROW(Dropout(1.5), Error);
  EXPECT_THROW(Embedding(10, 2, 10), Error);
  EXPECT_THROW(Linear(0, 2), Error);
}

// ---------------------------------------------------------------- forward passes

TEST(LayersForward, LinearMatchesFormulaAndGradchecks) {
  Generator g(1);
  Linear lin(3, 2, true, &g);
  const Tensor x = randn({4, 5, 3}, &g);
  const Tensor y = lin(x);
  EXPECT_EQ(y.shape(), (Shape{4, 5, 2}));
  // y[..., o] = sum_i x[..., i] W[o, i] + b[o]
  const Tensor ref = add(sum(mul(x.unsqueeze(-2), lin.weight), {-1}), lin.bias);
  expect_near(y, ref, 1e-5);
  EXPECT_THROW(lin(randn({2, 4})), Error);
  Tensor xi = oar::testing::rand_input({2, 3}, 3);
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return lin(in[0]); },
                   std::vector<Tensor>{xi});
  lin.zero_grad();  // gradcheck's backward also reached the weights
  sum(lin(xi)).backward();
  ASSERT_TRUE(lin.weight.grad().defined());
  // dL/dW[o, i] = sum_n x[n, i]
  expect_near(lin.weight.grad(), sum(xi.detach(), {0}, true).expand({2, 3}), 1e-5);
}

TEST(LayersForward, ConvShapes) {
  Generator g(2);
  Conv1d c1(4, 6, 3, {.stride = {2}, .padding = {1}}, &g);
  EXPECT_EQ(c1(randn({2, 4, 9}, &g)).shape(), (Shape{2, 6, 5}));
  Conv2d c2(3, 8, {3, 3}, {.stride = {1}, .padding = {2}, .dilation = {2}}, &g);
  EXPECT_EQ(c2(randn({1, 3, 10, 12}, &g)).shape(), (Shape{1, 8, 10, 12}));
  Conv2d dw(8, 8, {3, 3}, {.padding = {1}, .groups = 8}, &g);
  EXPECT_EQ(dw(randn({2, 8, 5, 5}, &g)).shape(), (Shape{2, 8, 5, 5}));
  Conv3d c3(2, 4, {3, 3, 3}, {.stride = {1, 2, 2}, .padding = {1}}, &g);
  EXPECT_EQ(c3(randn({1, 2, 4, 8, 8}, &g)).shape(), (Shape{1, 4, 4, 4, 4}));
  EXPECT_THROW(c2(randn({1, 4, 10, 10}, &g)), Error);
  // A 1x1 convolution is a per-pixel linear map.
  Conv2d pw(3, 2, {1, 1}, {}, &g);
  const Tensor x = randn({1, 3, 2, 2}, &g);
  const Tensor ref =
      add(sum(mul(x.unsqueeze(1), pw.weight.unsqueeze(0)), {2}), pw.bias.reshape({1, 2, 1, 1}));
  expect_near(pw(x), ref, 1e-5);
  Tensor xi = oar::testing::rand_input({1, 4, 6}, 5);
  Conv1d small(4, 2, 3, {.padding = {1}}, &g);
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return small(in[0]); },
                   std::vector<Tensor>{xi});
}

TEST(LayersForward, BatchNormTrainAndEval) {
  Generator g(3);
  BatchNorm2d bn(3);
  const Tensor x = add(mul(randn({4, 3, 5, 5}, &g), 2.0), 1.0);
  const Tensor y = bn(x);
  const Tensor m = mean(y, {0, 2, 3});
  const Tensor v = mean(square(y), {0, 2, 3});
  for (float f : m.to_vector<float>()) EXPECT_NEAR(f, 0.0f, 1e-4);
  for (float f : v.to_vector<float>()) EXPECT_NEAR(f, 1.0f, 1e-3);
  EXPECT_EQ(bn.num_batches_tracked.item<int64_t>(), 1);
  const Tensor batch_mean = mean(x, {0, 2, 3});
  expect_near(bn.running_mean, mul(batch_mean, 0.1), 1e-5);
  bn.eval();
  const Tensor ye = bn(x);
  // eval: (x - running_mean) / sqrt(running_var + eps)
  const Tensor ref = div(sub(x, bn.running_mean.reshape({1, 3, 1, 1})),
                         sqrt(add(bn.running_var.reshape({1, 3, 1, 1}), 1e-5)));
  expect_near(ye, ref, 1e-4);
  EXPECT_EQ(bn.num_batches_tracked.item<int64_t>(), 1);
  // cumulative average (momentum=None)
  BatchNorm1d cum(2, {.momentum = -1});
  cum(tensor<float>({1, 2, 3, 4}, {2, 2}));
  cum(tensor<float>({5, 6, 7, 8}, {2, 2}));
  expect_near(cum.running_mean, tensor<float>({4, 5}), 1e-5);
  EXPECT_THROW(bn(randn({4, 3, 5}, &g)), Error);
}

TEST(LayersForward, LayerNormAndGroupNorm) {
  Generator g(4);
  LayerNorm ln({6});
  const Tensor x = randn({2, 3, 6}, &g);
  const Tensor y = ln(x);
  for (float f : mean(y, {-1}).to_vector<float>()) EXPECT_NEAR(f, 0.0f, 1e-5);
  for (float f : mean(square(y), {-1}).to_vector<float>()) EXPECT_NEAR(f, 1.0f, 1e-3);
  Tensor xi = oar::testing::rand_input({2, 6}, 6);
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return ln(in[0]); },
                   std::vector<Tensor>{xi});
  EXPECT_THROW(ln(randn({2, 5})), Error);
  GroupNorm gn(2, 4);
  const Tensor gy = gn(randn({2, 4, 3, 3}, &g));
  EXPECT_EQ(gy.shape(), (Shape{2, 4, 3, 3}));
  for (float f : mean(gy.reshape({2, 2, 18}), {-1}).to_vector<float>()) EXPECT_NEAR(f, 0.0f, 1e-5);
  Tensor gi = oar::testing::rand_input({1, 4, 3}, 7);
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return gn(in[0]); },
                   std::vector<Tensor>{gi});
}

TEST(LayersForward, EmbeddingLooksUpAndSkipsPadding) {
  Generator g(5);
  Embedding emb(10, 4, 0, &g);
  const Tensor ids = tensor<int64_t>({0, 3, 3, 9}, {2, 2});
  const Tensor y = emb(ids);
  EXPECT_EQ(y.shape(), (Shape{2, 2, 4}));
  EXPECT_EQ(y.select(0, 1).select(0, 1).to_vector<float>(),
            emb.weight.select(0, 9).to_vector<float>());
  sum(y).backward();
  EXPECT_EQ(emb.weight.grad().select(0, 0).to_vector<float>(), std::vector<float>(4, 0.0f));
  EXPECT_EQ(emb.weight.grad().select(0, 3).to_vector<float>(), std::vector<float>(4, 2.0f));
  EXPECT_THROW(emb(tensor<float>({1.0f})), Error);
}

TEST(LayersForward, DropoutUsesModuleGenerator) {
  Dropout drop(0.25);
  Generator g1(7), g2(7);
  const Tensor x = ones({4000});
  drop.set_generator(&g1);
  const auto a = drop(x).to_vector<float>();
  drop.set_generator(&g2);
  const auto b = drop(x).to_vector<float>();
  EXPECT_EQ(a, b);
  const double zeros_frac =
      static_cast<double>(std::count(a.begin(), a.end(), 0.0f)) / static_cast<double>(a.size());
  EXPECT_NEAR(zeros_frac, 0.25, 0.03);
  for (float v : a) EXPECT_TRUE(v == 0.0f || std::fabs(v - 1.0f / 0.75f) < 1e-6);
  drop.eval();
  EXPECT_EQ(drop(x).to_vector<float>(), x.to_vector<float>());
}

TEST(LayersForward, SequentialChains) {
  Generator g(6);
  auto first = std::make_shared<Linear>(4, 3, true, &g);
  auto second = std::make_shared<Linear>(3, 2, true, &g);
  Sequential seq(first, std::make_shared<Dropout>(0.5), second);
  seq.eval();
  const Tensor x = randn({5, 4}, &g);
  expect_near(seq(x), (*second)((*first)(x)), 1e-6);
}

TEST(LayersForward, MultiHeadAttentionMatchesManual) {
  Generator g(8);
  const int64_t n = 2, l = 5, e = 8, h = 2, d = 4;
  MultiHeadAttention mha(e, h, {}, &g);
  for (auto* lin : {mha.q_proj.get(), mha.k_proj.get(), mha.v_proj.get(), mha.out_proj.get()})
    init::uniform_(lin->bias, g, -0.1, 0.1);  // non-zero biases exercise the full path
  const Tensor x = randn({n, l, e}, &g);
  const Tensor y = mha(x);
  EXPECT_EQ(y.shape(), (Shape{n, l, e}));
  auto split = [&](const Tensor& t) { return t.reshape({n, l, h, d}).transpose(1, 2); };
  const Tensor q = split(linear(x, mha.q_proj->weight, mha.q_proj->bias));
  const Tensor k = split(linear(x, mha.k_proj->weight, mha.k_proj->bias));
  const Tensor v = split(linear(x, mha.v_proj->weight, mha.v_proj->bias));
  const Tensor att = softmax(div(matmul(q, k.transpose(-1, -2)), std::sqrt(4.0)), -1);
  const Tensor ctx = matmul(att, v).transpose(1, 2).reshape({n, l, e});
  expect_near(y, linear(ctx, mha.out_proj->weight, mha.out_proj->bias), 1e-5);

  // Padded keys do not influence the output.
  const Tensor pad =
      tensor<bool>({false, false, false, true, true, false, false, false, false, true}, {n, l});
  const Tensor y1 = mha.forward(x, x, x, Tensor(), pad);
  Tensor x2 = x.clone();
  {
    NoGradGuard ng;
    x2.select(0, 0).select(0, 4).fill_(100.0);
  }
  const Tensor y2 = mha.forward(x, x2, x2, Tensor(), pad);
  expect_near(y1, y2, 1e-5);
  // Sequence-first layout gives the same numbers.
  MultiHeadAttention seq_first(e, h, {.batch_first = false}, &g);
  std::map<std::string, Tensor> sd;
  for (auto& [name, t] : mha.state_dict()) sd[name] = t;
  seq_first.load_state_dict(sd);
  expect_near(seq_first(x.transpose(0, 1)).transpose(0, 1), y, 1e-5);
  // A causal bool mask (true = blocked): the first position only sees itself.
  Tensor causal = gt(arange(l).reshape({1, l}), arange(l).reshape({l, 1}));
  const Tensor yc = mha.forward(x, x, x, causal);
  const Tensor first_only = linear(linear(x.narrow(1, 0, 1), mha.v_proj->weight, mha.v_proj->bias),
                                   mha.out_proj->weight, mha.out_proj->bias);
  expect_near(yc.narrow(1, 0, 1), first_only, 1e-5);
}

TEST(LayersForward, RecurrentShapesAndOneStepLstm) {
  Generator g(9);
  LSTM lstm(3, 4, {.num_layers = 2, .bidirectional = true}, &g);
  const Tensor x = randn({6, 2, 3}, &g);  // [T, N, in]
  RnnOutput out = lstm.run(x);
  EXPECT_EQ(out.output.shape(), (Shape{6, 2, 8}));
  EXPECT_EQ(out.h_n.shape(), (Shape{4, 2, 4}));
  EXPECT_EQ(out.c_n.shape(), (Shape{4, 2, 4}));
  GRU gru(3, 5, {.batch_first = true}, &g);
  RnnOutput go = gru.run(randn({2, 7, 3}, &g));
  EXPECT_EQ(go.output.shape(), (Shape{2, 7, 5}));
  EXPECT_EQ(go.h_n.shape(), (Shape{1, 2, 5}));
  EXPECT_THROW(gru.run(randn({2, 7, 4}, &g)), Error);

  // One step of a single-layer LSTM against the cell equations (gates i, f, g, o).
  LSTM cell(3, 2, {}, &g);
  const Tensor x1 = randn({1, 1, 3}, &g);
  const Tensor h1 = cell(x1).reshape({2});
  // h0 = c0 = 0: gates = x W_ih^T + b_ih + b_hh, c = i g, h = o tanh(c).
  const Tensor gates = add(linear(x1.reshape({1, 3}), cell.weights[0].w_ih, cell.weights[0].b_ih),
                           cell.weights[0].b_hh)
                           .reshape({8});
  const Tensor i = sigmoid(gates.narrow(0, 0, 2)), gg = tanh(gates.narrow(0, 4, 2)),
               o = sigmoid(gates.narrow(0, 6, 2));
  expect_near(h1, mul(o, tanh(mul(i, gg))), 1e-5);

  Tensor xi = oar::testing::rand_input({3, 1, 3}, 11);
  LSTM small(3, 2, {}, &g);
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return small(in[0]); },
                   std::vector<Tensor>{xi});
}
