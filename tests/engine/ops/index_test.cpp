#include "engine/ops/index.h"

#include <gtest/gtest.h>
#include <omp.h>

#include "engine/autograd/grad_mode.h"
#include "engine/core/error.h"
#include "engine/ops/binary.h"
#include "engine/ops/reduce.h"
#include "tests/support/gradcheck.h"

using namespace oar;
using oar::testing::rand_input;

namespace {
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}
}  // namespace

TEST(Embedding, LooksUpRows) {
  Tensor w = arange(0.0, 12.0, 1.0, DType::f32).reshape({4, 3});
  Tensor ids = tensor<int64_t>({3, 0, 3, 1}, {2, 2});
  Tensor y = embedding(w, ids);
  EXPECT_EQ(y.shape(), (Shape{2, 2, 3}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{9, 10, 11, 0, 1, 2, 9, 10, 11, 3, 4, 5}));
  // i32 ids, a transposed (non-contiguous) weight, bf16 weight
  Tensor wt = arange(0.0, 12.0, 1.0, DType::f32).reshape({3, 4}).t();  // [4, 3]
  Tensor y2 = embedding(wt, tensor<int32_t>({2, 1}));
  EXPECT_EQ(y2.to_vector<float>(), (std::vector<float>{2, 6, 10, 1, 5, 9}));
  Tensor y3 = embedding(w.to(DType::bf16), tensor<int64_t>({1}));
  EXPECT_EQ(y3.dtype(), DType::bf16);
  EXPECT_EQ(y3.to(DType::f32).to_vector<float>(), (std::vector<float>{3, 4, 5}));
}

TEST(Embedding, GradientScatterAddsAndSkipsPadding) {
  Tensor w = rand_input({5, 3}, 3);
  Tensor ids = tensor<int64_t>({1, 4, 1, 0, 1, 2}, {3, 2});
  Tensor y = embedding(w, ids, /*padding_idx=*/4);
  Tensor gy = arange(0.0, 18.0, 1.0, DType::f32).reshape({3, 2, 3});
  y.backward(gy);
  // row 1 gets positions 0, 2, 4; row 0 position 3; row 2 position 5; row 4 is padding
  EXPECT_EQ(w.grad().to_vector<float>(),
            (std::vector<float>{9, 10, 11, 0 + 6 + 12, 1 + 7 + 13, 2 + 8 + 14, 15, 16, 17, 0, 0, 0,
                                0, 0, 0}));
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return embedding(in[0], ids); },
                   (std::vector<Tensor>{rand_input({5, 3}, 4)}));
}

TEST(Embedding, LargeBackwardMatchesSerialSum) {
  // Enough ids to run threaded; every id's gradient is its count times the row of ones.
  const int64_t V = 50, D = 64, N = 4000;
  Tensor w = zeros({V, D}).set_requires_grad();
  std::vector<int64_t> v(N);
  std::vector<float> count(V, 0);
  for (int64_t i = 0; i < N; ++i) {
    v[i] = (i * 7919) % V;
    count[v[i]] += 1;
  }
  sum(embedding(w, tensor<int64_t>(v, {N}))).backward();
  Tensor g = w.grad();
  for (int64_t r = 0; r < V; ++r) {
    EXPECT_FLOAT_EQ(g.select(0, r).select(0, 0).item<float>(), count[r]);
    EXPECT_FLOAT_EQ(g.select(0, r).select(0, D - 1).item<float>(), count[r]);
  }
}

TEST(Embedding, BadIdsThrow) {
  Tensor w = zeros({4, 2});
  const std::string msg = error_of([&] { embedding(w, tensor<int64_t>({0, 7})); });
  EXPECT_TRUE(contains(msg, "embedding") && contains(msg, "7") && contains(msg, "size 4")) << msg;
  EXPECT_THROW(embedding(w, tensor<int64_t>({-1})), Error);  // no negative ids in embedding
  EXPECT_THROW(embedding(w, tensor<float>({1.f})), Error);
  EXPECT_THROW(embedding(zeros({4}), tensor<int64_t>({1})), Error);
  EXPECT_THROW(embedding(w, tensor<int64_t>({1}), 4), Error);
}

TEST(Gather, TorchSemantics) {
  Tensor x = tensor<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor i0 = tensor<int64_t>({1, 0, 0, 0, 1, 1}, {2, 3});
  EXPECT_EQ(gather(x, 0, i0).to_vector<float>(), (std::vector<float>{4, 2, 3, 1, 5, 6}));
  Tensor i1 = tensor<int64_t>({2, 0, 1, -1}, {2, 2});  // negative counts from the end
  EXPECT_EQ(gather(x, -1, i1).to_vector<float>(), (std::vector<float>{3, 1, 5, 6}));
  // index smaller than x off dim; integer data; non-contiguous x
  Tensor xi = tensor<int64_t>({1, 2, 3, 4, 5, 6}, {2, 3}).t();  // [[1,4],[2,5],[3,6]]
  EXPECT_EQ(gather(xi, 1, tensor<int64_t>({1, 1}, {2, 1})).to_vector<int64_t>(),
            (std::vector<int64_t>{4, 5}));
}

TEST(Gather, GradientAccumulatesRepeats) {
  Tensor x = tensor<float>({1, 2, 3}, {1, 3}).set_requires_grad();
  Tensor idx = tensor<int64_t>({2, 2, 0, 2}, {1, 4});
  sum(gather(x, 1, idx)).backward();
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{1, 0, 3}));
  Tensor index = tensor<int64_t>({0, 2, 1, 1, 0, 4, 3, 3, 2, 0, 1, 1}, {3, 4}).t();  // [4, 3]
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>& in) {
        return gather(in[0].permute({1, 0}), 0, index);  // x is [5, 3] seen through a permute
      },
      (std::vector<Tensor>{rand_input({3, 5}, 5)}));
}

TEST(Gather, HalfGradientAccumulatesInFloat) {
  // 300 ones summed in bf16 would stall at 256.
  Tensor x = zeros({1, 3}, DType::bf16).set_requires_grad();
  sum(gather(x, 1, zeros({1, 300}, DType::i64))).backward();
  EXPECT_EQ(x.grad().to(DType::f32).to_vector<float>(), (std::vector<float>{300, 0, 0}));
}

TEST(Gather, BadIndexThrows) {
  Tensor x = zeros({2, 3});
  const std::string msg = error_of([&] { gather(x, 1, tensor<int64_t>({0, 3}, {1, 2})); });
  EXPECT_TRUE(contains(msg, "gather") && contains(msg, "index 3") && contains(msg, "size 3"))
      << msg;
  EXPECT_THROW(gather(x, 1, tensor<int64_t>({-4}, {1, 1})), Error);
  EXPECT_THROW(gather(x, 0, tensor<int64_t>({0, 0, 0, 0}, {1, 4})), Error);  // bigger than x
  EXPECT_THROW(gather(x, 0, tensor<int64_t>({0})), Error);                   // rank mismatch
  EXPECT_THROW(gather(x, 2, tensor<int64_t>({0}, {1, 1})), Error);           // bad dim
}

TEST(IndexSelect, PicksSlicesWithNegativeIndices) {
  Tensor x = arange(0.0, 24.0, 1.0, DType::f32).reshape({2, 3, 4});
  Tensor y = index_select(x, 1, tensor<int64_t>({2, -3, 2}));
  EXPECT_EQ(y.shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(y.select(0, 1).select(0, 0).to_vector<float>(), (std::vector<float>{20, 21, 22, 23}));
  EXPECT_EQ(y.select(0, 0).select(0, 1).to_vector<float>(), (std::vector<float>{0, 1, 2, 3}));
  // non-contiguous x, last dim, i32 index
  Tensor p = x.permute({2, 0, 1});  // [4, 2, 3], p[k, i, j] = x[i, j, k]
  Tensor z = index_select(p, -1, tensor<int32_t>({-1}));
  EXPECT_EQ(z.shape(), (Shape{4, 2, 1}));
  EXPECT_EQ(z.to_vector<float>(), (std::vector<float>{8, 20, 9, 21, 10, 22, 11, 23}));
  Tensor b = index_select(tensor<bool>({true, false, true}), 0, tensor<int64_t>({1, 0}));
  EXPECT_EQ(b.to_vector<bool>(), (std::vector<bool>{false, true}));
}

TEST(IndexSelect, Gradient) {
  Tensor idx = tensor<int64_t>({1, -1, 1, 0});
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>& in) {
        return index_select(in[0].slice(0, 0, 6, 2), 0, idx);  // [3, 4] of every other row
      },
      (std::vector<Tensor>{rand_input({5, 4}, 6)}));
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return index_select(in[0], -1, idx); },
                   (std::vector<Tensor>{rand_input({2, 3, 3}, 7)}));
  Tensor x = zeros({3}, DType::bf16).set_requires_grad();
  sum(index_select(x, 0, tensor<int64_t>({2, 2, 2}))).backward();
  EXPECT_EQ(x.grad().to(DType::f32).to_vector<float>(), (std::vector<float>{0, 0, 3}));
}

TEST(IndexSelect, BadIndexThrows) {
  Tensor x = zeros({2, 5});
  const std::string msg = error_of([&] { index_select(x, 1, tensor<int64_t>({1, -6})); });
  EXPECT_TRUE(contains(msg, "index_select") && contains(msg, "-6") && contains(msg, "size 5"))
      << msg;
  EXPECT_THROW(index_select(x, 0, tensor<int64_t>({0, 0}, {1, 2})), Error);  // 2-D index
}

TEST(TakeAlong, AnyRankIndex) {
  Tensor x = arange(0.0, 12.0, 1.0, DType::f32).reshape({3, 4});
  Tensor y = take_along(x, 1, tensor<int64_t>({3, 0, -1, 1}, {2, 2}));
  EXPECT_EQ(y.shape(), (Shape{3, 2, 2}));
  EXPECT_EQ(y.select(0, 2).to_vector<float>(), (std::vector<float>{11, 8, 11, 9}));
  Tensor s = take_along(x, 0, scalar_tensor(1, DType::i64));  // scalar index removes dim
  EXPECT_EQ(s.shape(), (Shape{4}));
  EXPECT_EQ(s.to_vector<float>(), (std::vector<float>{4, 5, 6, 7}));
  Tensor idx = tensor<int64_t>({0, 2, 2, 1, 0, 0}, {3, 2});
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return take_along(in[0], 0, idx); },
                   (std::vector<Tensor>{rand_input({3, 5}, 8)}));
  EXPECT_THROW(take_along(x, 0, tensor<int64_t>({3})), Error);
}

TEST(ScatterAdd, TorchSemantics) {
  Tensor x = zeros({2, 4});
  Tensor idx = tensor<int64_t>({0, 3, 0, 1, 1, 1}, {2, 3});
  Tensor src = tensor<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(scatter_add(x, 1, idx, src).to_vector<float>(),
            (std::vector<float>{4, 0, 0, 2, 0, 15, 0, 0}));
  // dim 0, index smaller than src, integer dtype
  Tensor xi = ones({3, 2}, DType::i64);
  Tensor si = tensor<int64_t>({10, 20, 30, 40, 50, 60}, {3, 2});
  Tensor r = scatter_add(xi, 0, tensor<int64_t>({2, 2}, {1, 2}), si);
  EXPECT_EQ(r.to_vector<int64_t>(), (std::vector<int64_t>{1, 1, 1, 1, 11, 21}));
  // the input is not modified
  EXPECT_EQ(x.to_vector<float>(), std::vector<float>(8, 0.f));
}

TEST(ScatterAdd, ThreadedFibersMatchSerial) {
  // A long fiber of collisions and many fibers, big enough to run threaded.
  const int64_t R = 64, K = 2048;
  std::vector<int64_t> iv(R * K);
  for (int64_t i = 0; i < R * K; ++i) iv[i] = (i * 31) % 5;
  Tensor idx = tensor<int64_t>(iv, {R, K});
  Tensor y = scatter_add(zeros({R, 5}), 1, idx, ones({R, K}));
  Tensor total = sum(y, {1});
  for (float v : total.to_vector<float>()) EXPECT_FLOAT_EQ(v, static_cast<float>(K));
  Tensor y1 =
      scatter_add(zeros({1, 3}), 1, tensor<int64_t>(std::vector<int64_t>(50000, 1), {1, 50000}),
                  ones({1, 50000}));
  EXPECT_EQ(y1.to_vector<float>(), (std::vector<float>{0, 50000, 0}));
}

TEST(ScatterAdd, Gradient) {
  Tensor idx = tensor<int64_t>({0, 2, 2, 1, 0, 0}, {2, 3});
  // src [2, 4] bigger than index in dim 1: its last column gets no gradient
  Tensor x = rand_input({3, 3}, 9), src = rand_input({4, 2}, 10);
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>& in) { return scatter_add(in[0].t(), 0, idx, in[1].t()); },
      (std::vector<Tensor>{x, src}));
  Tensor s = tensor<float>({1, 2, 3, 4}, {1, 4}).set_requires_grad();
  Tensor gy = tensor<float>({10, 20, 30}, {1, 3});
  scatter_add(zeros({1, 3}), 1, tensor<int64_t>({2, 0}, {1, 2}), s).backward(gy);
  EXPECT_EQ(s.grad().to_vector<float>(), (std::vector<float>{30, 10, 0, 0}));
}

TEST(ScatterAdd, BadInputsThrow) {
  Tensor x = zeros({2, 3});
  const std::string msg = error_of([&] {
    scatter_add(x, 0, tensor<int64_t>({2}, {1, 1}), ones({1, 1}));
  });
  EXPECT_TRUE(contains(msg, "scatter_add") && contains(msg, "index 2") && contains(msg, "size 2"))
      << msg;
  EXPECT_THROW(scatter_add(x, 0, tensor<int64_t>({0, 0}, {1, 2}), ones({1, 1})), Error);
  EXPECT_THROW(scatter_add(x, 0, tensor<int64_t>({0}, {1, 1}), ones({1})), Error);
}

TEST(IndexAdd, AccumulatesRepeatsAndGradient) {
  Tensor x = ones({4, 2});
  Tensor src = tensor<float>({1, 2, 3, 4, 5, 6}, {3, 2});
  Tensor y = index_add(x, 0, tensor<int64_t>({3, 0, -1}), src);
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{4, 5, 1, 1, 1, 1, 7, 9}));
  Tensor idx = tensor<int64_t>({2, 0, 2});
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>& in) {
        return index_add(in[0], 1, idx, in[1].permute({1, 0, 2}));
      },
      (std::vector<Tensor>{rand_input({2, 3, 2}, 11), rand_input({3, 2, 2}, 12)}));
  EXPECT_THROW(index_add(x, 0, tensor<int64_t>({4}), ones({1, 2})), Error);
  EXPECT_THROW(index_add(x, 0, tensor<int64_t>({1}), ones({2, 2})), Error);
}

TEST(Embedding, BackwardIsTheSameForAnyThreadCount) {
  // Each thread owns destination rows and adds in index order, so the sums match bit for bit.
  const int64_t V = 37, D = 48, N = 3000;
  Tensor ids = randint(0, V, {N});
  Tensor gy = randn({N, D});
  auto grad_with = [&](int threads) {
    const int before = omp_get_max_threads();
    omp_set_num_threads(threads);
    Tensor w = zeros({V, D}).set_requires_grad();
    embedding(w, ids).backward(gy);
    omp_set_num_threads(before);
    return w.grad().to_vector<float>();
  };
  EXPECT_EQ(grad_with(1), grad_with(3));
}

TEST(IndexSelect, LargeInputsMatchElementwise) {
  // Threaded paths: contiguous rows, a strided input, and gather splitting one long row.
  Tensor x = randn({64, 700});
  Tensor idx = randint(-64, 64, {300});
  Tensor y = index_select(x, 0, idx);
  Tensor yt = index_select(x.t(), 1, idx);  // [700, 300], strided input
  auto xv = x.to_vector<float>();
  auto iv = idx.to_vector<int64_t>();
  auto yv = y.to_vector<float>();
  auto ytv = yt.contiguous().to_vector<float>();
  for (int64_t k = 0; k < 300; ++k) {
    const int64_t r = iv[k] < 0 ? iv[k] + 64 : iv[k];
    for (int64_t c : {0, 313, 699}) {
      ASSERT_EQ(yv[k * 700 + c], xv[r * 700 + c]);
      ASSERT_EQ(ytv[c * 300 + k], xv[r * 700 + c]);
    }
  }
  Tensor row = randn({1, 100000});
  Tensor gi = randint(0, 100000, {1, 100000});
  Tensor gv = gather(row, 1, gi);
  auto rv = row.to_vector<float>();
  auto giv = gi.to_vector<int64_t>();
  auto gvv = gv.to_vector<float>();
  for (int64_t i = 0; i < 100000; i += 997) ASSERT_EQ(gvv[i], rv[giv[i]]);
}
