#include "engine/ops/rnn.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "engine/autograd/grad_mode.h"
#include "engine/core/context.h"
#include "engine/core/error.h"
#include "engine/ops/binary.h"
#include "engine/ops/reduce.h"
#include "tests/support/gradcheck.h"

using namespace oar;
using oar::testing::rand_input;

namespace {

struct Config {
  bool lstm = true;
  int64_t T = 5, N = 3, I = 4, H = 3, L = 2;
  bool bidir = true;
  std::vector<int64_t> lengths;  // empty: all T
};

int64_t dirs(const Config& c) {
  return c.bidir ? 2 : 1;
}

std::vector<RnnWeights> make_weights(const Config& c, uint64_t seed, bool bias = true) {
  const int64_t G = c.lstm ? 4 : 3;
  std::vector<RnnWeights> w;
  for (int64_t l = 0; l < c.L; ++l)
    for (int64_t d = 0; d < dirs(c); ++d) {
      const int64_t in = l == 0 ? c.I : dirs(c) * c.H;
      seed += 10;
      w.push_back({rand_input({G * c.H, in}, seed, -0.6, 0.6),
                   rand_input({G * c.H, c.H}, seed + 1, -0.6, 0.6),
                   bias ? rand_input({G * c.H}, seed + 2, -0.6, 0.6) : Tensor(),
                   bias ? rand_input({G * c.H}, seed + 3, -0.6, 0.6) : Tensor()});
    }
  return w;
}

double sig(double v) {
  return 1.0 / (1.0 + std::exp(-v));
}

struct Ref {
  std::vector<double> out, hn, cn;  // out [T, N, D*H] time-major; hn, cn [L*D, N, H]
};

// Straight from the PyTorch formulas, one sequence and one step at a time, in double.
Ref reference(const Config& c, const Tensor& x_tm, const std::vector<RnnWeights>& w,
              const Tensor& h0, const Tensor& c0) {
  const int64_t T = c.T, N = c.N, H = c.H, D = dirs(c), G = c.lstm ? 4 : 3;
  auto vec = [](const Tensor& t) {
    auto f = t.to_vector<float>();
    return std::vector<double>(f.begin(), f.end());
  };
  std::vector<double> in = vec(x_tm);
  int64_t in_size = c.I;
  Ref r;
  r.hn.assign(c.L * D * N * H, 0.0);
  r.cn.assign(c.L * D * N * H, 0.0);
  std::vector<double> vh0 = h0.defined() ? vec(h0) : std::vector<double>(c.L * D * N * H, 0.0);
  std::vector<double> vc0 = c0.defined() ? vec(c0) : std::vector<double>(c.L * D * N * H, 0.0);
  for (int64_t l = 0; l < c.L; ++l) {
    std::vector<double> out(T * N * D * H, 0.0);
    for (int64_t d = 0; d < D; ++d) {
      const int64_t k = l * D + d;
      const auto wih = vec(w[k].w_ih), whh = vec(w[k].w_hh);
      const auto bih = w[k].b_ih.defined() ? vec(w[k].b_ih) : std::vector<double>(G * H, 0.0);
      const auto bhh = w[k].b_hh.defined() ? vec(w[k].b_hh) : std::vector<double>(G * H, 0.0);
      for (int64_t n = 0; n < N; ++n) {
        const int64_t len = c.lengths.empty() ? T : c.lengths[n];
        std::vector<double> h(vh0.begin() + (k * N + n) * H, vh0.begin() + (k * N + n + 1) * H);
        std::vector<double> cc(vc0.begin() + (k * N + n) * H, vc0.begin() + (k * N + n + 1) * H);
        for (int64_t s = 0; s < len; ++s) {
          const int64_t t = d ? len - 1 - s : s;
          std::vector<double> gx(G * H), gh(G * H);
          for (int64_t o = 0; o < G * H; ++o) {
            gx[o] = bih[o];
            gh[o] = bhh[o];
            for (int64_t i = 0; i < in_size; ++i)
              gx[o] += wih[o * in_size + i] * in[(t * N + n) * in_size + i];
            for (int64_t i = 0; i < H; ++i) gh[o] += whh[o * H + i] * h[i];
          }
          for (int64_t j = 0; j < H; ++j) {
            if (c.lstm) {
              const double ig = sig(gx[j] + gh[j]), fg = sig(gx[H + j] + gh[H + j]);
              const double gg = std::tanh(gx[2 * H + j] + gh[2 * H + j]);
              const double og = sig(gx[3 * H + j] + gh[3 * H + j]);
              cc[j] = fg * cc[j] + ig * gg;
              h[j] = og * std::tanh(cc[j]);
            } else {
              const double rg = sig(gx[j] + gh[j]), zg = sig(gx[H + j] + gh[H + j]);
              const double ng = std::tanh(gx[2 * H + j] + rg * gh[2 * H + j]);
              h[j] = (1 - zg) * ng + zg * h[j];
            }
            out[(t * N + n) * D * H + d * H + j] = h[j];
          }
        }
        for (int64_t j = 0; j < H; ++j) {
          r.hn[(k * N + n) * H + j] = h[j];
          r.cn[(k * N + n) * H + j] = cc[j];
        }
      }
    }
    in = out;
    in_size = D * H;
    r.out = out;
  }
  return r;
}

void expect_near(const Tensor& got, const std::vector<double>& want, double tol, const char* what) {
  const auto g = got.to_vector<float>();
  ASSERT_EQ(g.size(), want.size()) << what;
  for (size_t i = 0; i < g.size(); ++i) ASSERT_NEAR(g[i], want[i], tol) << what << " element " << i;
}

Tensor lengths_tensor(const Config& c) {
  return c.lengths.empty() ? Tensor() : tensor<int64_t>(c.lengths, {c.N});
}

RnnOutput run(const Config& c, const Tensor& x, const std::vector<RnnWeights>& w, const Tensor& h0,
              const Tensor& c0, bool batch_first = false, double dropout = 0.0,
              bool training = false, Generator* gen = nullptr) {
  if (c.lstm)
    return lstm(x, w, c.L, c.bidir, batch_first, lengths_tensor(c), h0, c0, dropout, training, gen);
  return gru(x, w, c.L, c.bidir, batch_first, lengths_tensor(c), h0, dropout, training, gen);
}

void check_against_reference(const Config& c, bool with_state, bool bias = true) {
  const int64_t S = c.L * dirs(c);
  Tensor x = rand_input({c.T, c.N, c.I}, 1);
  auto w = make_weights(c, 100, bias);
  Tensor h0 = with_state ? rand_input({S, c.N, c.H}, 2) : Tensor();
  Tensor c0 = with_state && c.lstm ? rand_input({S, c.N, c.H}, 3) : Tensor();
  RnnOutput r = run(c, x, w, h0, c0);
  ASSERT_EQ(r.output.shape(), (Shape{c.T, c.N, dirs(c) * c.H}));
  ASSERT_EQ(r.h_n.shape(), (Shape{S, c.N, c.H}));
  const Ref ref = reference(c, x, w, h0, c0);
  expect_near(r.output, ref.out, 1e-5, "output");
  expect_near(r.h_n, ref.hn, 1e-5, "h_n");
  if (c.lstm)
    expect_near(r.c_n, ref.cn, 1e-5, "c_n");
  else
    EXPECT_FALSE(r.c_n.defined());
}

}  // namespace

TEST(Lstm, MatchesReference) {
  Config c;
  check_against_reference(c, true);
  c.bidir = false;
  c.L = 1;
  check_against_reference(c, false);
  c.L = 3;
  check_against_reference(c, true, false);
}

TEST(Lstm, VariableLengthsBidirectional) {
  Config c;
  c.lengths = {5, 2, 4};
  check_against_reference(c, true);
  c.lengths = {3, 0, 1};  // a zero length keeps h0 / c0 as the final state
  check_against_reference(c, true);
}

TEST(Gru, MatchesReference) {
  Config c;
  c.lstm = false;
  check_against_reference(c, true);
  c.bidir = false;
  c.L = 1;
  check_against_reference(c, false);
  c.lengths = {5, 1, 3};
  c.bidir = true;
  c.L = 2;
  check_against_reference(c, true);
}

TEST(Lstm, PackedRowsEqualSeparateRuns) {
  // Each sequence run alone at its own length gives the same rows and states as the padded batch.
  Config c;
  c.lengths = {4, 2, 5};
  Tensor x = rand_input({c.T, c.N, c.I}, 4);
  auto w = make_weights(c, 200);
  Tensor h0 = rand_input({c.L * 2, c.N, c.H}, 5);
  Tensor c0 = rand_input({c.L * 2, c.N, c.H}, 6);
  NoGradGuard ng;
  RnnOutput all = run(c, x, w, h0, c0);
  for (int64_t n = 0; n < c.N; ++n) {
    Config one = c;
    one.N = 1;
    one.T = c.lengths[n];
    one.lengths.clear();
    RnnOutput r =
        run(one, x.narrow(1, n, 1).narrow(0, 0, one.T), w, h0.narrow(1, n, 1), c0.narrow(1, n, 1));
    auto a = all.output.narrow(1, n, 1).narrow(0, 0, one.T).contiguous().to_vector<float>();
    auto b = r.output.to_vector<float>();
    for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-5);
    auto pad =
        all.output.narrow(1, n, 1).narrow(0, one.T, c.T - one.T).contiguous().to_vector<float>();
    for (float v : pad) EXPECT_EQ(v, 0.0f);
    auto ha = all.h_n.narrow(1, n, 1).contiguous().to_vector<float>();
    auto hb = r.h_n.to_vector<float>();
    auto ca = all.c_n.narrow(1, n, 1).contiguous().to_vector<float>();
    auto cb = r.c_n.to_vector<float>();
    for (size_t i = 0; i < ha.size(); ++i) {
      EXPECT_NEAR(ha[i], hb[i], 1e-5);
      EXPECT_NEAR(ca[i], cb[i], 1e-5);
    }
  }
}

TEST(Gru, BatchFirstIsTransposed) {
  Config c;
  c.lstm = false;
  c.lengths = {5, 3, 2};
  Tensor x = rand_input({c.T, c.N, c.I}, 7);
  auto w = make_weights(c, 300);
  NoGradGuard ng;
  RnnOutput tm = run(c, x, w, Tensor(), Tensor());
  RnnOutput bf = run(c, x.transpose(0, 1).contiguous(), w, Tensor(), Tensor(), true);
  ASSERT_EQ(bf.output.shape(), (Shape{c.N, c.T, 2 * c.H}));
  auto a = tm.output.transpose(0, 1).contiguous().to_vector<float>();
  auto b = bf.output.to_vector<float>();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_FLOAT_EQ(a[i], b[i]);
  auto ha = tm.h_n.to_vector<float>(), hb = bf.h_n.to_vector<float>();
  for (size_t i = 0; i < ha.size(); ++i) EXPECT_FLOAT_EQ(ha[i], hb[i]);
}

namespace {

// Gradchecks every input (x, h0, c0, all weights) through output, h_n and c_n.
void gradcheck_all(Config c, bool batch_first, double dropout = 0.0) {
  const int64_t S = c.L * dirs(c);
  std::vector<Tensor> inputs{
      batch_first ? rand_input({c.N, c.T, c.I}, 11) : rand_input({c.T, c.N, c.I}, 11),
      rand_input({S, c.N, c.H}, 12), c.lstm ? rand_input({S, c.N, c.H}, 13) : Tensor()};
  for (const auto& w : make_weights(c, 400)) {
    inputs.push_back(w.w_ih);
    inputs.push_back(w.w_hh);
    inputs.push_back(w.b_ih);
    inputs.push_back(w.b_hh);
  }
  std::vector<Tensor> checked;
  for (const Tensor& t : inputs)
    if (t.defined()) checked.push_back(t);
  auto unpack = [c](const std::vector<Tensor>& in) {
    std::vector<RnnWeights> w;
    size_t i = c.lstm ? 3 : 2;
    for (int64_t k = 0; k < c.L * dirs(c); ++k, i += 4)
      w.push_back({in[i], in[i + 1], in[i + 2], in[i + 3]});
    return w;
  };
  for (int which = 0; which < (c.lstm ? 3 : 2); ++which) {
    auto f = [&, which](const std::vector<Tensor>& in) {
      Generator gen(99);  // the same dropout masks at every evaluation
      RnnOutput r = run(c, in[0], unpack(in), in[1], c.lstm ? in[2] : Tensor(), batch_first,
                        dropout, dropout > 0, &gen);
      return which == 0 ? r.output : which == 1 ? r.h_n : r.c_n;
    };
    EXPECT_GRADCHECK(f, checked);
  }
}

}  // namespace

TEST(Lstm, Gradients) {
  Config c;
  c.T = 3, c.N = 2, c.I = 3, c.H = 2;
  c.lengths = {3, 2};
  gradcheck_all(c, false);
  c.lengths.clear();
  c.bidir = false;
  gradcheck_all(c, true);
}

TEST(Gru, Gradients) {
  Config c;
  c.lstm = false;
  c.T = 3, c.N = 2, c.I = 3, c.H = 2;
  c.lengths = {2, 3};
  gradcheck_all(c, false);
  c.lengths.clear();
  gradcheck_all(c, true);
}

namespace {

// Output and every gradient of sum(output * weights) with the given OpenMP thread count.
std::vector<std::vector<float>> run_with_threads(const Config& c, int threads) {
  const int before = num_threads();
  set_num_threads(threads);
  const int64_t S = c.L * dirs(c);
  Tensor x = rand_input({c.T, c.N, c.I}, 31).set_requires_grad();
  Tensor h0 = rand_input({S, c.N, c.H}, 32).set_requires_grad();
  Tensor c0 = c.lstm ? rand_input({S, c.N, c.H}, 33).set_requires_grad() : Tensor();
  auto w = make_weights(c, 600);
  std::vector<Tensor> leaves{x, h0};
  if (c.lstm) leaves.push_back(c0);
  for (auto& wk : w)
    for (Tensor* t : {&wk.w_ih, &wk.w_hh, &wk.b_ih, &wk.b_hh})
      leaves.push_back(t->set_requires_grad());
  RnnOutput r = run(c, x, w, h0, c0);
  sum(mul(r.output, rand_input(r.output.shape(), 34))).backward();
  std::vector<std::vector<float>> out{r.output.contiguous().to_vector<float>()};
  for (const Tensor& t : leaves) out.push_back(t.grad().contiguous().to_vector<float>());
  set_num_threads(before);
  return out;
}

void expect_threads_agree(const Config& c) {
  const auto one = run_with_threads(c, 1), two = run_with_threads(c, 2);
  ASSERT_EQ(one.size(), two.size());
  for (size_t k = 0; k < one.size(); ++k) {
    ASSERT_EQ(one[k].size(), two[k].size());
    for (size_t i = 0; i < one[k].size(); ++i) ASSERT_NEAR(one[k][i], two[k][i], 1e-4) << k;
  }
}

}  // namespace

// Large enough that the recurrence splits hidden units over threads (and one chunk is not a
// multiple of 16 wide); the split must not change outputs or gradients.
TEST(Lstm, HiddenUnitsSplitOverThreads) {
  Config c;
  c.T = 4, c.N = 32, c.I = 8, c.H = 72, c.L = 1;
  c.lengths.assign(32, 4);
  c.lengths[3] = 1, c.lengths[7] = 0, c.lengths[20] = 3;
  check_against_reference(c, true);
  expect_threads_agree(c);
}

// Full lengths take other paths (saved buffers left unzeroed, the bias gradient summed in the
// step loop), bidirectional over two layers.
TEST(Lstm, FullLengthsSplitOverThreads) {
  Config c;
  c.T = 5, c.N = 32, c.I = 8, c.H = 72, c.L = 2;
  check_against_reference(c, true);
  expect_threads_agree(c);
}

TEST(Gru, HiddenUnitsSplitOverThreads) {
  Config c;
  c.lstm = false;
  c.T = 4, c.N = 32, c.I = 8, c.H = 72, c.L = 1;
  c.lengths.assign(32, 4);
  c.lengths[5] = 2, c.lengths[9] = 0;
  check_against_reference(c, true);
  expect_threads_agree(c);
}

TEST(Lstm, DropoutBetweenLayers) {
  Config c;
  c.T = 4, c.N = 2, c.I = 3, c.H = 3;
  Tensor x = rand_input({c.T, c.N, c.I}, 21);
  auto w = make_weights(c, 500);
  Tensor h0 = rand_input({4, c.N, c.H}, 22);
  Tensor c0 = rand_input({4, c.N, c.H}, 23);
  NoGradGuard ng;
  Generator g1(5), g2(5);
  RnnOutput a = run(c, x, w, h0, c0, false, 0.5, true, &g1);
  RnnOutput b = run(c, x, w, h0, c0, false, 0.5, true, &g2);
  EXPECT_EQ(a.output.to_vector<float>(), b.output.to_vector<float>());
  EXPECT_EQ(g1.state().offset, static_cast<uint64_t>(c.T * c.N * 2 * c.H));
  // Layer by layer: layer 1 sees layer 0's output times the counter-based mask.
  Config one = c;
  one.L = 1;
  RnnOutput l0 = run(one, x, {w[0], w[1]}, h0.narrow(0, 0, 2), c0.narrow(0, 0, 2));
  std::vector<float> mask(l0.output.numel());
  for (size_t i = 0; i < mask.size(); ++i)
    mask[i] = Generator::to_unit_float(Generator::hash(5, i)) >= 0.5f ? 2.0f : 0.0f;
  Tensor in1 = mul(l0.output, tensor<float>(mask, l0.output.shape()));
  one.I = 2 * c.H;
  RnnOutput l1 = run(one, in1, {w[2], w[3]}, h0.narrow(0, 2, 2), c0.narrow(0, 2, 2));
  auto got = a.output.to_vector<float>(), want = l1.output.to_vector<float>();
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-5);
  // Not training: no dropout.
  RnnOutput e = run(c, x, w, h0, c0, false, 0.5, false, &g1);
  const Ref ref = reference(c, x, w, h0, c0);
  expect_near(e.output, ref.out, 1e-5, "eval output");
}

TEST(Lstm, DropoutGradients) {
  Config c;
  c.T = 3, c.N = 2, c.I = 2, c.H = 2;
  c.bidir = false;
  c.lengths = {3, 1};
  gradcheck_all(c, false, 0.4);
}

TEST(Gru, Bf16RunsInF32AndCastsBack) {
  Config c;
  c.lstm = false;
  c.lengths = {5, 2, 3};
  Tensor x = rand_input({c.T, c.N, c.I}, 41);
  auto w = make_weights(c, 700);
  RnnOutput ref = run(c, x, w, Tensor(), Tensor());
  std::vector<RnnWeights> wb;
  for (const auto& e : w)
    wb.push_back({e.w_ih.detach().to(DType::bf16).set_requires_grad(),
                  e.w_hh.detach().to(DType::bf16), e.b_ih.detach().to(DType::bf16),
                  e.b_hh.detach().to(DType::bf16)});
  RnnOutput r = run(c, x.detach().to(DType::bf16), wb, Tensor(), Tensor());
  EXPECT_EQ(r.output.dtype(), DType::bf16);
  EXPECT_EQ(r.h_n.dtype(), DType::bf16);
  auto a = r.output.to_vector<float>(), b = ref.output.to_vector<float>();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 3e-2);
  r.output.to(DType::f32).backward(ones({c.T, c.N, 2 * c.H}));
  ASSERT_TRUE(wb[0].w_ih.grad().defined());
  EXPECT_EQ(wb[0].w_ih.grad().dtype(), DType::bf16);
}

TEST(Rnn, RejectsBadInput) {
  Config c;
  Tensor x = rand_input({c.T, c.N, c.I}, 31);
  auto w = make_weights(c, 600);
  const int64_t S = 4;
  EXPECT_THROW(lstm(x.select(0, 0), w, 2, true), Error);  // 2-D input
  EXPECT_THROW(lstm(x, {w[0], w[1]}, 2, true), Error);    // too few weight sets
  EXPECT_THROW(lstm(x, w, 2, false), Error);              // too many for 1 dir
  EXPECT_THROW(gru(x, w, 2, true), Error);                // LSTM-sized gates
  auto bad = w;
  bad[2].w_ih = rand_input({12, c.I}, 1);  // layer 1 expects input 2*H
  EXPECT_THROW(lstm(x, bad, 2, true), Error);
  bad = w;
  bad[0].b_hh = rand_input({5}, 1);
  EXPECT_THROW(lstm(x, bad, 2, true), Error);
  EXPECT_THROW(lstm(x, w, 2, true, false, tensor<int64_t>({5, 6, 1}, {3})), Error);  // > T
  EXPECT_THROW(lstm(x, w, 2, true, false, tensor<int64_t>({5, -1, 1}, {3})), Error);
  EXPECT_THROW(lstm(x, w, 2, true, false, tensor<int64_t>({5, 1}, {2})), Error);   // not [N]
  EXPECT_THROW(lstm(x, w, 2, true, false, tensor<float>({5, 1, 1}, {3})), Error);  // not integer
  EXPECT_THROW(lstm(x, w, 2, true, false, Tensor(), rand_input({S, c.N, c.H + 1}, 1)), Error);
  EXPECT_THROW(lstm(x, w, 2, true, false, Tensor(), Tensor(), rand_input({S - 1, c.N, c.H}, 1)),
               Error);
  EXPECT_THROW(lstm(x, w, 2, true, false, Tensor(), Tensor(), Tensor(), 1.0, true), Error);
  EXPECT_THROW(lstm(x, w, 0, true), Error);
}

namespace {

// Output, h_n, c_n and the gradients of every input of a random weighting of all three.
std::vector<std::vector<float>> outputs_and_grads(const Config& c, bool batch_first, bool bias) {
  const int64_t S = c.L * dirs(c);
  Tensor x = (batch_first ? rand_input({c.N, c.T, c.I}, 51) : rand_input({c.T, c.N, c.I}, 51))
                 .set_requires_grad();
  Tensor h0 = rand_input({S, c.N, c.H}, 52).set_requires_grad();
  Tensor c0 = c.lstm ? rand_input({S, c.N, c.H}, 53).set_requires_grad() : Tensor();
  auto w = make_weights(c, 800, bias);
  std::vector<Tensor> leaves{x, h0};
  if (c.lstm) leaves.push_back(c0);
  for (auto& wk : w)
    for (Tensor* t : {&wk.w_ih, &wk.w_hh, &wk.b_ih, &wk.b_hh})
      if (t->defined()) leaves.push_back(t->set_requires_grad());
  RnnOutput r = run(c, x, w, h0, c0, batch_first);
  Tensor loss = add(sum(mul(r.output, rand_input(r.output.shape(), 54))),
                    sum(mul(r.h_n, rand_input(r.h_n.shape(), 55))));
  if (c.lstm) loss = add(loss, sum(mul(r.c_n, rand_input(r.c_n.shape(), 56))));
  loss.backward();
  std::vector<std::vector<float>> out{r.output.contiguous().to_vector<float>(),
                                      r.h_n.contiguous().to_vector<float>()};
  if (c.lstm) out.push_back(r.c_n.contiguous().to_vector<float>());
  for (const Tensor& t : leaves) out.push_back(t.grad().contiguous().to_vector<float>());
  return out;
}

// oneDNN's RNN primitives (full lengths on the CPU) against oar's recurrence.
void expect_primitive_matches_recurrence(const Config& c, bool batch_first, bool bias = true) {
  std::vector<std::vector<float>> fused, ref;
  {
    RnnCpuPathGuard primitive(RnnCpuPath::primitive);
    fused = outputs_and_grads(c, batch_first, bias);
  }
  {
    RnnCpuPathGuard recurrence(RnnCpuPath::recurrence);
    ref = outputs_and_grads(c, batch_first, bias);
  }
  ASSERT_EQ(fused.size(), ref.size());
  for (size_t k = 0; k < ref.size(); ++k) {
    ASSERT_EQ(fused[k].size(), ref[k].size()) << k;
    for (size_t i = 0; i < ref[k].size(); ++i)
      ASSERT_NEAR(fused[k][i], ref[k][i], 2e-4 * (1.0 + std::abs(ref[k][i])))
          << "tensor " << k << " element " << i;
  }
}

}  // namespace

TEST(Lstm, PrimitiveMatchesReferenceRecurrence) {
  Config c;
  c.T = 7, c.N = 5, c.I = 6, c.H = 20, c.L = 3;
  expect_primitive_matches_recurrence(c, false);
  c.L = 2;
  expect_primitive_matches_recurrence(c, true, false);
  c.L = 1, c.bidir = false;
  expect_primitive_matches_recurrence(c, false);
  c.lengths.assign(c.N, c.T);  // full lengths given explicitly take the primitive too
  expect_primitive_matches_recurrence(c, false);
}

TEST(Gru, PrimitiveMatchesReferenceRecurrence) {
  Config c;
  c.lstm = false;
  c.T = 7, c.N = 5, c.I = 6, c.H = 20, c.L = 3;
  expect_primitive_matches_recurrence(c, false);
  c.L = 2;
  expect_primitive_matches_recurrence(c, true, false);
  c.L = 1, c.bidir = false;
  expect_primitive_matches_recurrence(c, false);
}

// Layers with enough recurrent work run oneDNN's primitives on all threads.
TEST(Rnn, PrimitiveMatchesReferenceRecurrenceThreaded) {
  const int before = num_threads();
  set_num_threads(2);
  Config c;  // N * G*H * H just reaches the threaded size (2^20) for the LSTM
  c.T = 3, c.N = 16, c.I = 8, c.H = 128, c.L = 1;
  expect_primitive_matches_recurrence(c, false);
  c.lstm = false, c.N = 24;
  expect_primitive_matches_recurrence(c, true);
  set_num_threads(before);
}
