#include "engine/ops/attention.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "engine/autograd/grad_mode.h"
#include "engine/core/error.h"
#include "engine/ops.h"
#include "tests/support/gradcheck.h"

using namespace oar;
using oar::testing::rand_input;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// softmax(q k^T * scale + mask) (dropped by keep[b, i, j]) v, per head, in double. mask is
// given already broadcast to [B, Lq, Lk] (empty: none).
std::vector<double> reference(const Tensor& q, const Tensor& k, const Tensor& v,
                              const std::vector<float>& mask, double scale,
                              const std::vector<float>& keep = {}) {
  const int64_t Lq = q.size(-2), D = q.size(-1), Lk = k.size(-2), Dv = v.size(-1);
  const int64_t B = q.numel() / (Lq * D);
  const auto pq = q.contiguous().to_vector<float>(), pk = k.contiguous().to_vector<float>(),
             pv = v.contiguous().to_vector<float>();
  std::vector<double> out(B * Lq * Dv, 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < Lq; ++i) {
      std::vector<double> s(Lk);
      double mx = -kInf;
      for (int64_t j = 0; j < Lk; ++j) {
        double acc = 0;
        for (int64_t d = 0; d < D; ++d)
          acc += double(pq[(b * Lq + i) * D + d]) * pk[(b * Lk + j) * D + d];
        s[j] = acc * scale + (mask.empty() ? 0.0 : mask[(b * Lq + i) * Lk + j]);
        mx = std::max(mx, s[j]);
      }
      if (mx == -kInf) continue;  // fully masked: zeros
      double sum = 0;
      for (int64_t j = 0; j < Lk; ++j) sum += (s[j] = std::exp(s[j] - mx));
      for (int64_t j = 0; j < Lk; ++j) {
        const double w = s[j] / sum * (keep.empty() ? 1.0 : keep[(b * Lq + i) * Lk + j]);
        for (int64_t e = 0; e < Dv; ++e)
          out[(b * Lq + i) * Dv + e] += w * pv[(b * Lk + j) * Dv + e];
      }
    }
  return out;
}

void expect_near(const Tensor& got, const std::vector<double>& want, double tol) {
  const auto g = got.to_vector<float>();
  ASSERT_EQ(g.size(), want.size());
  for (size_t i = 0; i < g.size(); ++i) {
    ASSERT_FALSE(std::isnan(g[i])) << "element " << i;
    ASSERT_NEAR(g[i], want[i], tol) << "element " << i;
  }
}

}  // namespace

TEST(Attention, MatchesReference) {
  Tensor q = rand_input({2, 3, 4, 5}, 1), k = rand_input({2, 3, 6, 5}, 2),
         v = rand_input({2, 3, 6, 7}, 3);
  Tensor out = scaled_dot_product_attention(q, k, v);
  ASSERT_EQ(out.shape(), (Shape{2, 3, 4, 7}));
  expect_near(out, reference(q, k, v, {}, 1.0 / std::sqrt(5.0)), 1e-5);
  expect_near(scaled_dot_product_attention(q, k, v, Tensor(), 0.7), reference(q, k, v, {}, 0.7),
              1e-5);
  // Rank 2 (a single head).
  Tensor q2 = rand_input({3, 4}, 4), k2 = rand_input({5, 4}, 5), v2 = rand_input({5, 2}, 6);
  expect_near(scaled_dot_product_attention(q2, k2, v2), reference(q2, k2, v2, {}, 0.5), 1e-5);
}

// Row lengths around the softmax's vector widths (the exp pass runs 16 lanes wide on AVX-512
// CPUs, 8 otherwise, then a scalar tail), with scores spread wide enough that some exps
// underflow to 0.
TEST(Attention, RowLengthsAroundVectorWidthsMatchReference) {
  for (int64_t Lk : {1, 7, 8, 9, 15, 16, 17, 31, 33, 40, 129}) {
    Tensor q = mul(rand_input({2, 3, 5}, 20 + Lk), 30.0), k = rand_input({2, Lk, 5}, 40 + Lk),
           v = rand_input({2, Lk, 4}, 60 + Lk);
    expect_near(scaled_dot_product_attention(q, k, v, Tensor(), 1.0), reference(q, k, v, {}, 1.0),
                1e-5);
  }
}

TEST(Attention, MaskBroadcastsAndFullyMaskedRowIsZero) {
  const int64_t B = 2, H = 2, Lq = 3, Lk = 4;
  Tensor q = rand_input({B, H, Lq, 3}, 7), k = rand_input({B, H, Lk, 3}, 8),
         v = rand_input({B, H, Lk, 2}, 9);
  // Padding mask [B, 1, 1, Lk]: batch 1 attends to its first 2 keys only.
  std::vector<float> pad{0, 0, 0, 0, 0, 0, -kInf, -kInf};
  Tensor mask = tensor<float>(pad, {B, 1, 1, Lk});
  std::vector<float> full;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < Lq; ++i)
        for (int64_t j = 0; j < Lk; ++j) full.push_back(pad[b * Lk + j]);
  const double sc = 1.0 / std::sqrt(3.0);
  expect_near(scaled_dot_product_attention(q, k, v, mask), reference(q, k, v, full, sc), 1e-5);
  // Causal [Lq, Lk] mask with row 0 fully masked: that row's output is 0, not NaN.
  std::vector<float> causal{-kInf, -kInf, -kInf, -kInf, 0, -kInf, -kInf, -kInf, 0, 0, -kInf, -kInf};
  full.clear();
  for (int64_t b = 0; b < B * H; ++b) full.insert(full.end(), causal.begin(), causal.end());
  Tensor out = scaled_dot_product_attention(q, k, v, tensor<float>(causal, {Lq, Lk}));
  expect_near(out, reference(q, k, v, full, sc), 1e-5);
  EXPECT_EQ(out.select(2, 0).contiguous().to_vector<float>(), std::vector<float>(B * H * 2, 0.0f));
  // A bool mask (true = attend) equals the additive 0 / -inf one.
  std::vector<uint8_t> keep_bits;
  for (float m : causal) keep_bits.push_back(m == 0.0f);
  Tensor bmask = tensor<uint8_t>(keep_bits, {Lq, Lk}).to(DType::boolean);
  expect_near(scaled_dot_product_attention(q, k, v, bmask), reference(q, k, v, full, sc), 1e-5);
  // Gradients stay finite with a fully masked row.
  Tensor s = scaled_dot_product_attention(q, k, v, tensor<float>(causal, {Lq, Lk}));
  s.backward(ones_like(s));
  for (float g : q.grad().to_vector<float>()) EXPECT_FALSE(std::isnan(g));
  for (float g : k.grad().to_vector<float>()) EXPECT_FALSE(std::isnan(g));
}

TEST(Attention, Gradients) {
  std::vector<Tensor> in{rand_input({2, 3, 4}, 11), rand_input({2, 5, 4}, 12),
                         rand_input({2, 5, 3}, 13), rand_input({3, 5}, 14)};
  auto f = [](const std::vector<Tensor>& t) {
    return scaled_dot_product_attention(t[0], t[1], t[2], t[3], 0.8);
  };
  EXPECT_GRADCHECK(f, in);
  in[3] = rand_input({2, 1, 5}, 15);  // a per-batch mask broadcast over queries
  EXPECT_GRADCHECK(f, in);
  // A partially -inf mask (not differentiated) with the default scale.
  std::vector<Tensor> qkv{in[0], in[1], in[2]};
  Tensor m = tensor<float>({0, 0, -kInf, 0, -kInf}, {1, 1, 5});
  auto g = [m](const std::vector<Tensor>& t) {
    return scaled_dot_product_attention(t[0], t[1], t[2], m);
  };
  EXPECT_GRADCHECK(g, qkv);
}

TEST(Attention, DropoutUsesCounterBasedMask) {
  const int64_t B = 2, Lq = 3, Lk = 4;
  const double p = 0.3;
  Tensor q = rand_input({B, Lq, 2}, 21), k = rand_input({B, Lk, 2}, 22),
         v = rand_input({B, Lk, 3}, 23);
  Generator g1(9), g2(9);
  Tensor a = scaled_dot_product_attention(q, k, v, Tensor(), 0.0, p, true, &g1);
  Tensor b = scaled_dot_product_attention(q, k, v, Tensor(), 0.0, p, true, &g2);
  EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());
  EXPECT_EQ(g1.state().offset, static_cast<uint64_t>(B * Lq * Lk));
  std::vector<float> keep(B * Lq * Lk);
  for (size_t i = 0; i < keep.size(); ++i)
    keep[i] = Generator::to_unit_float(Generator::hash(9, i)) >= p ? 1.0f / (1.0f - p) : 0.0f;
  const double sc = 1.0 / std::sqrt(2.0);
  expect_near(a, reference(q, k, v, {}, sc, keep), 1e-5);
  // Not training: no dropout, generator untouched.
  expect_near(scaled_dot_product_attention(q, k, v, Tensor(), 0.0, p, false, &g1),
              reference(q, k, v, {}, sc), 1e-5);
  EXPECT_EQ(g1.state().offset, static_cast<uint64_t>(B * Lq * Lk));
  // Gradients through the same mask.
  auto f = [p](const std::vector<Tensor>& t) {
    Generator gen(9);
    return scaled_dot_product_attention(t[0], t[1], t[2], Tensor(), 0.0, p, true, &gen);
  };
  EXPECT_GRADCHECK(f, (std::vector<Tensor>{q, k, v}));
}

// Rows long enough for the vector loops and the eight-at-a-time keep bits (Lq * Lk = 333, not a
// multiple of 8, so each head's bits end in a partial byte): the mask is the counter-based rule,
// and values and gradients equal the unfused composition softmax -> multiply by the keep factors
// -> matmul, with an additive padding mask.
TEST(Attention, DropoutOnLongRowsMatchesComposition) {
  const int64_t B = 3, Lq = 9, Lk = 37, D = 5;
  const double p = 0.35;
  Tensor q = rand_input({B, Lq, D}, 61), k = rand_input({B, Lk, D}, 62),
         v = rand_input({B, Lk, D}, 63);
  std::vector<float> mvals(B * Lk, 0.0f);
  for (int64_t j = 30; j < Lk; ++j) mvals[2 * Lk + j] = -kInf;  // padding in head 2
  Tensor mask = tensor<float>(mvals, {B, 1, Lk});
  std::vector<float> keep(B * Lq * Lk);
  for (size_t i = 0; i < keep.size(); ++i)
    keep[i] = Generator::to_unit_float(Generator::hash(5, 100 + i)) >= static_cast<float>(p)
                  ? static_cast<float>(1.0 / (1.0 - p))
                  : 0.0f;
  const Tensor keep_t = tensor<float>(keep, {B, Lq, Lk});
  auto fused = [&](const std::vector<Tensor>& t) {
    Generator gen(5);
    gen.reserve(100);
    return scaled_dot_product_attention(t[0], t[1], t[2], mask, 0.0, p, true, &gen);
  };
  auto composed = [&](const std::vector<Tensor>& t) {
    const Tensor scores = add(mul(matmul(t[0], t[1].transpose(1, 2)), 1.0 / std::sqrt(5.0)), mask);
    return matmul(mul(softmax(scores, -1), keep_t), t[2]);
  };
  std::vector<Tensor> in{q, k, v};
  std::vector<float> mfull(B * Lq * Lk);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < Lq; ++i)
      for (int64_t j = 0; j < Lk; ++j) mfull[(b * Lq + i) * Lk + j] = mvals[b * Lk + j];
  expect_near(fused(in), reference(q, k, v, mfull, 1.0 / std::sqrt(5.0), keep), 1e-5);
  Tensor w = rand_input({B, Lq, D}, 64).detach();
  std::vector<Tensor> a, c;
  for (const Tensor& t : in) {
    a.push_back(t.detach().set_requires_grad());
    c.push_back(t.detach().set_requires_grad());
  }
  sum(mul(fused(a), w)).backward();
  sum(mul(composed(c), w)).backward();
  for (size_t i = 0; i < 3; ++i) {
    const auto ga = a[i].grad().to_vector<float>(), gc = c[i].grad().to_vector<float>();
    ASSERT_EQ(ga.size(), gc.size());
    for (size_t e = 0; e < ga.size(); ++e) EXPECT_NEAR(ga[e], gc[e], 1e-5) << i << " " << e;
  }
  EXPECT_GRADCHECK(fused, in);
}

TEST(Attention, Bf16RunsInF32AndCastsBack) {
  Tensor q = rand_input({2, 3, 4}, 41), k = rand_input({2, 5, 4}, 42),
         v = rand_input({2, 5, 3}, 43);
  Tensor qb = q.detach().to(DType::bf16).set_requires_grad();
  Tensor out =
      scaled_dot_product_attention(qb, k.detach().to(DType::bf16), v.detach().to(DType::bf16));
  EXPECT_EQ(out.dtype(), DType::bf16);
  auto a = out.to_vector<float>(), b = scaled_dot_product_attention(q, k, v).to_vector<float>();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 3e-2);
  out.to(DType::f32).backward(ones({2, 3, 3}));
  ASSERT_TRUE(qb.grad().defined());
  EXPECT_EQ(qb.grad().dtype(), DType::bf16);
}

TEST(Attention, RejectsBadInput) {
  Tensor q = rand_input({2, 3, 4}, 31), k = rand_input({2, 5, 4}, 32),
         v = rand_input({2, 5, 3}, 33);
  EXPECT_THROW(scaled_dot_product_attention(q, rand_input({2, 5, 3}, 1), v), Error);  // D
  EXPECT_THROW(scaled_dot_product_attention(q, k, rand_input({2, 4, 3}, 1)), Error);  // Lk
  EXPECT_THROW(scaled_dot_product_attention(q, rand_input({3, 5, 4}, 1), v), Error);  // batch
  EXPECT_THROW(scaled_dot_product_attention(q.select(0, 0), k, v), Error);            // rank
  EXPECT_THROW(scaled_dot_product_attention(q, k, v, rand_input({3, 4}, 1)), Error);  // mask
  EXPECT_THROW(scaled_dot_product_attention(q, k, v, Tensor(), 0.0, 1.0, true), Error);
  EXPECT_THROW(scaled_dot_product_attention(q, k, v, tensor<int64_t>({0, 1, 1, 0, 0}, {5})), Error);
}

// The head split of [N, L, heads * D] projections is read in place (strided), the output is laid
// out so that merging the heads back is a view, and results and gradients equal those of
// contiguous copies.
TEST(Attention, StridedHeadSplitEqualsContiguous) {
  const int64_t N = 2, L = 5, heads = 3, D = 4;
  auto split = [&](const Tensor& t) { return t.reshape({N, L, heads, D}).transpose(1, 2); };
  Tensor x = rand_input({N, L, heads * D}, 51), y = rand_input({N, L, heads * D}, 52),
         z = rand_input({N, L, heads * D}, 53);
  Tensor mask = tensor<float>({0, 0, 0, 0, 0, 0, 0, -kInf, -kInf, -kInf}, {N, 1, 1, L});
  Tensor out = scaled_dot_product_attention(split(x), split(y), split(z), mask);
  ASSERT_EQ(out.shape(), (Shape{N, heads, L, D}));
  EXPECT_TRUE(out.transpose(1, 2).is_contiguous());  // the merge is a view
  Tensor ref = scaled_dot_product_attention(split(x).contiguous(), split(y).contiguous(),
                                            split(z).contiguous(),
                                            mask.expand({N, heads, L, L}).contiguous());
  EXPECT_EQ(out.contiguous().to_vector<float>(), ref.contiguous().to_vector<float>());
  // The bool keep-mask broadcast in place.
  Tensor keep = ne(mask, -kInf);
  EXPECT_EQ(scaled_dot_product_attention(split(x), split(y), split(z), keep)
                .contiguous()
                .to_vector<float>(),
            ref.contiguous().to_vector<float>());
  // Finite-difference gradients through the split and merge, with and without dropout; the mask
  // gradient too.
  auto f = [&](const std::vector<Tensor>& t) {
    return scaled_dot_product_attention(split(t[0]), split(t[1]), split(t[2]), t[3])
        .transpose(1, 2)
        .reshape({N, L, heads * D});
  };
  EXPECT_GRADCHECK(f, (std::vector<Tensor>{x, y, z, rand_input({N, 1, 1, L}, 54)}));
  auto g = [&](const std::vector<Tensor>& t) {
    Generator gen(3);
    return scaled_dot_product_attention(split(t[0]), split(t[1]), split(t[2]), mask, 0.0, 0.2, true,
                                        &gen);
  };
  EXPECT_GRADCHECK(g, (std::vector<Tensor>{x, y, z}));
  // Gradients of the strided path equal those of the contiguous one.
  Tensor xs = x.detach().set_requires_grad(), xc = x.detach().set_requires_grad();
  sum(mul(scaled_dot_product_attention(split(xs), split(y), split(z), mask), ref.detach()))
      .backward();
  sum(mul(scaled_dot_product_attention(split(xc).contiguous(), split(y), split(z), mask),
          ref.detach()))
      .backward();
  const auto gs = xs.grad().to_vector<float>(), gc = xc.grad().to_vector<float>();
  ASSERT_EQ(gs.size(), gc.size());
  for (size_t i = 0; i < gs.size(); ++i) EXPECT_NEAR(gs[i], gc[i], 1e-6);
}

TEST(Attention, SplitQkvHeadsViewsAndGradients) {
  const int64_t N = 2, L = 5, heads = 3, D = 4, H = heads * D;
  Tensor qkv = rand_input({N, L, 3 * H}, 61);
  auto select_split = [&](const Tensor& t, int64_t i) {  // the unfused composition
    return t.view({N, L, 3, heads, D}).select(2, i).transpose(1, 2);
  };
  const std::vector<Tensor> parts = split_qkv_heads(qkv, heads);
  ASSERT_EQ(parts.size(), 3u);
  for (int64_t i = 0; i < 3; ++i) {
    ASSERT_EQ(parts[i].shape(), (Shape{N, heads, L, D}));
    EXPECT_TRUE(parts[i].same_storage(qkv));  // views, no copy
    EXPECT_EQ(parts[i].contiguous().to_vector<float>(),
              select_split(qkv, i).contiguous().to_vector<float>());
  }
  Tensor mask = tensor<float>({0, 0, 0, 0, 0, 0, 0, -kInf, -kInf, -kInf}, {N, 1, 1, L});
  // Finite differences: attention on the split (the packed gradient buffer), with and without
  // dropout, and uses that are not attention (the gradients copied into one buffer, a part
  // that gets none zero).
  auto attn = [&](const std::vector<Tensor>& t) {
    const auto p = split_qkv_heads(t[0], heads);
    return scaled_dot_product_attention(p[0], p[1], p[2], mask);
  };
  EXPECT_GRADCHECK(attn, (std::vector<Tensor>{qkv}));
  auto dropped = [&](const std::vector<Tensor>& t) {
    Generator gen(5);
    const auto p = split_qkv_heads(t[0], heads);
    return scaled_dot_product_attention(p[0], p[1], p[2], mask, 0.0, 0.3, true, &gen);
  };
  EXPECT_GRADCHECK(dropped, (std::vector<Tensor>{qkv}));
  auto other = [&](const std::vector<Tensor>& t) {
    const auto p = split_qkv_heads(t[0], heads);
    return add(mul(p[0], p[2]), p[2]);  // k gets no gradient
  };
  EXPECT_GRADCHECK(other, (std::vector<Tensor>{qkv}));
  // Equal to the select-based composition's gradient, accumulating into .grad across calls.
  Tensor w = rand_input({N, heads, L, D}, 62).detach();
  Tensor a = qkv.detach().set_requires_grad(), b = qkv.detach().set_requires_grad();
  for (int rep = 0; rep < 2; ++rep) {
    const auto p = split_qkv_heads(a, heads);
    sum(mul(scaled_dot_product_attention(p[0], p[1], p[2], mask), w)).backward();
    sum(mul(scaled_dot_product_attention(select_split(b, 0), select_split(b, 1), select_split(b, 2),
                                         mask),
            w))
        .backward();
    const auto ga = a.grad().to_vector<float>(), gb = b.grad().to_vector<float>();
    ASSERT_EQ(ga.size(), gb.size());
    for (size_t i = 0; i < ga.size(); ++i) ASSERT_NEAR(ga[i], gb[i], 1e-6) << "rep " << rep;
  }
  // Through a linear (BERT's packed projection): the gradient of the projection's input.
  Tensor x = rand_input({N, L, H}, 63), wt = rand_input({3 * H, H}, 64);
  auto proj = [&](const std::vector<Tensor>& t) {
    Generator gen(9);
    const auto p = split_qkv_heads(linear(t[0], t[1]), heads);
    return scaled_dot_product_attention(p[0], p[1], p[2], mask, 0.0, 0.2, true, &gen);
  };
  EXPECT_GRADCHECK(proj, (std::vector<Tensor>{x, wt}));
}

TEST(Attention, SplitQkvHeadsRejectsBadInput) {
  EXPECT_THROW(split_qkv_heads(Tensor(), 2), Error);
  EXPECT_THROW(split_qkv_heads(rand_input({2, 3, 12}, 1), 0), Error);
  EXPECT_THROW(split_qkv_heads(rand_input({2, 3, 10}, 1), 2), Error);  // not 3 * heads * D
  EXPECT_THROW(split_qkv_heads(rand_input({6, 12}, 1), 2), Error);     // not [N, L, ...]
}
