// BertSelfAttention's packed QKV projection (one GEMM on [Wq; Wk; Wv], attention reading the
// three operands in place) against the unfused composition: three Linears, a head split each,
// scaled_dot_product_attention. Values in eval (with the cached packed weight, which must follow
// in-place weight updates) and gradients in training (against the composition and by finite
// differences).
#include <gtest/gtest.h>

#include "engine/autograd/grad_mode.h"
#include "engine/core/error.h"
#include "engine/ops.h"
#include "nlp/models/bert.h"
#include "tests/support/gradcheck.h"

namespace oar::nlp {
namespace {

BertConfig tiny() {
  BertConfig c;
  c.vocab_size = 50;
  c.hidden_size = 16;
  c.num_hidden_layers = 1;
  c.num_attention_heads = 4;
  c.intermediate_size = 32;
  c.max_position_embeddings = 20;
  c.attention_probs_dropout_prob = 0.0;
  return c;
}

// The unfused reference: HF's BertSelfAttention.
Tensor reference(const BertSelfAttention& a, const Tensor& x, const Tensor& mask) {
  const int64_t n = x.size(0), len = x.size(1);
  auto split = [&](const nn::Linear& l) {
    return linear(x, l.weight, l.bias).reshape({n, len, a.heads, a.head_dim}).transpose(1, 2);
  };
  return scaled_dot_product_attention(split(*a.query), split(*a.key), split(*a.value), mask)
      .transpose(1, 2)
      .reshape({n, len, a.heads * a.head_dim});
}

double max_diff(const Tensor& a, const Tensor& b) {
  return amax(abs(sub(a, b))).item<double>();
}

Tensor padding_mask() {  // [2, 1, 1, 5]: the second sequence has two padding keys
  Tensor m = zeros({2, 1, 1, 5});
  NoGradGuard ng;
  m.select(0, 1).select(0, 0).select(0, 0).slice(0, 3, 5).fill_(-1e30);
  return m;
}

TEST(BertSelfAttentionTest, PackedQkvMatchesThreeLinearsAndFollowsWeightUpdates) {
  Generator g(3);
  BertSelfAttention a(tiny(), g);
  a.eval();
  NoGradGuard ng;
  const Tensor x = randn({2, 5, 16}, &g);
  const Tensor mask = padding_mask();
  const Tensor y = a.forward(x, mask);
  EXPECT_EQ(y.shape(), (Shape{2, 5, 16}));
  EXPECT_LT(max_diff(y, reference(a, x, mask)), 1e-5);
  EXPECT_LT(max_diff(a.forward(x, Tensor()), reference(a, x, Tensor())), 1e-5);
  // The cached packed weight must see in-place updates (an optimizer step, a checkpoint load).
  mul_(a.key->weight, -2.0);
  a.value->bias.copy_(randn({16}, &g));
  const Tensor y2 = a.forward(x, mask);
  EXPECT_GT(max_diff(y2, y), 1e-3);
  EXPECT_LT(max_diff(y2, reference(a, x, mask)), 1e-5);
  // ... and a replaced parameter tensor.
  a.query->weight = randn({16, 16}, &g);
  EXPECT_LT(max_diff(a.forward(x, mask), reference(a, x, mask)), 1e-5);
  EXPECT_THROW(a.forward(randn({2, 5, 8}), mask), Error);
}

TEST(BertSelfAttentionTest, PackedQkvGradientsMatchTheComposition) {
  Generator g(4);
  BertSelfAttention a(tiny(), g);
  a.train();
  const Tensor x = randn({2, 5, 16}, &g).set_requires_grad();
  const Tensor mask = padding_mask();
  const Tensor w = randn({2, 5, 16}, &g);
  std::vector<Tensor> params;
  for (const auto* l : {a.query.get(), a.key.get(), a.value.get()}) {
    params.push_back(l->weight);
    params.push_back(l->bias);
  }
  auto grads = [&](const Tensor& y) {
    for (Tensor p : params) p.set_grad(Tensor());
    Tensor xg = x;
    xg.set_grad(Tensor());
    sum(mul(y, w)).backward();
    std::vector<Tensor> out{x.grad()};
    for (const Tensor& p : params) out.push_back(p.grad());
    return out;
  };
  const auto fused = grads(a.forward(x, mask));
  const auto ref = grads(reference(a, x, mask));
  for (size_t i = 0; i < fused.size(); ++i) {
    ASSERT_TRUE(fused[i].defined()) << i;
    EXPECT_LT(max_diff(fused[i], ref[i]), 1e-5) << i;
  }
}

TEST(BertSelfAttentionTest, PackedQkvGradcheck) {
  Generator g(5);
  BertSelfAttention a(tiny(), g);
  a.train();
  const Tensor mask = padding_mask();
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>& in) {
        a.query->weight = in[1];
        a.key->bias = in[2];
        a.value->weight = in[3];
        return a.forward(in[0], mask);
      },
      (std::vector<Tensor>{
          oar::testing::rand_input({2, 5, 16}, 1), oar::testing::rand_input({16, 16}, 2, -0.3, 0.3),
          oar::testing::rand_input({16}, 3), oar::testing::rand_input({16, 16}, 4, -0.3, 0.3)}));
}

}  // namespace
}  // namespace oar::nlp
