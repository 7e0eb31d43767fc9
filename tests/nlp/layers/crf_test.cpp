// The linear-chain CRF against brute force over every tag path, finite differences, BIO/BIOES
// constraints, and Paddle's transition layout.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include "engine/core/error.h"
#include "engine/io/json.h"
#include "engine/ops.h"
#include "nlp/layers/crf.h"
#include "tests/support/gradcheck.h"

namespace oar::nlp {
namespace {

// Every path of one sequence: log-sum-exp and arg-max of the scores (first max on ties, in
// lexicographic order of paths, which is what Paddle's backtracking gives for distinct scores).
struct Brute {
  double log_z;
  double best;
  std::vector<int64_t> path;
};

double path_score(const float* e, const float* w, int64_t t, const std::vector<int64_t>& y) {
  double s = w[y[0]] + w[t + y.back()];
  for (size_t k = 0; k < y.size(); ++k) s += e[k * static_cast<size_t>(t) + y[k]];
  for (size_t k = 1; k < y.size(); ++k) s += w[(y[k - 1] + 2) * t + y[k]];
  return s;
}

Brute brute(const float* e, const float* w, int64_t len, int64_t t) {
  std::vector<int64_t> y(static_cast<size_t>(len), 0);
  Brute b{0, -std::numeric_limits<double>::infinity(), {}};
  double zsum = 0;
  while (true) {
    const double s = path_score(e, w, t, y);
    if (std::isfinite(s)) zsum += std::exp(s);
    if (s > b.best) {
      b.best = s;
      b.path = y;
    }
    int64_t k = len - 1;
    while (k >= 0 && ++y[static_cast<size_t>(k)] == t) y[static_cast<size_t>(k--)] = 0;
    if (k < 0) break;
  }
  b.log_z = std::log(zsum);
  return b;
}

TEST(Crf, LogPartitionScoreAndViterbiMatchBruteForce) {
  const int64_t n = 3, l = 4, t = 4;
  const Tensor e = rand({n, l, t}, nullptr, -2, 2);
  const Tensor w = rand({t + 2, t}, nullptr, -1, 1);
  const Tensor lens = tensor<int64_t>({4, 1, 3}, {3});
  const Tensor tags = tensor<int64_t>({0, 1, 2, 3, 2, -1, 7, 7, 3, 3, 0, 9}, {n, l});
  const auto z = crf_log_partition(e, w, lens).to_vector<float>();
  const auto nll = crf_nll(e, w, tags, lens).to_vector<float>();
  const auto path = crf_viterbi(e, w, lens).to_vector<int64_t>();
  const int64_t lv[] = {4, 1, 3};
  for (int64_t b = 0; b < n; ++b) {
    const float* eb = e.data<float>() + b * l * t;
    const Brute r = brute(eb, w.data<float>(), lv[b], t);
    EXPECT_NEAR(z[static_cast<size_t>(b)], r.log_z, 1e-4) << b;
    std::vector<int64_t> y;
    for (int64_t s = 0; s < lv[b]; ++s) y.push_back(tags.data<int64_t>()[b * l + s]);
    EXPECT_NEAR(nll[static_cast<size_t>(b)], r.log_z - path_score(eb, w.data<float>(), t, y), 1e-4);
    EXPECT_GE(nll[static_cast<size_t>(b)], -1e-5);
    for (int64_t s = 0; s < l; ++s)
      EXPECT_EQ(path[static_cast<size_t>(b * l + s)],
                s < lv[b] ? r.path[static_cast<size_t>(s)] : -1)
          << b << "," << s;
  }
}

TEST(Crf, PaddleLayoutByHand) {
  // Two tags, two steps, zero emissions: start row favours tag 1, stop row favours tag 0, and
  // the transition 1 -> 0 is large: the best path is [1, 0] with score 1 + 3 + 2 = 6.
  const Tensor e = zeros({1, 2, 2});
  const Tensor w = tensor<float>({0, 1, 2, 0, 0, 0, 3, 0}, {4, 2});
  const Tensor lens = tensor<int64_t>({2}, {1});
  EXPECT_EQ(crf_viterbi(e, w, lens).to_vector<int64_t>(), (std::vector<int64_t>{1, 0}));
  const double z = std::log(std::exp(0 + 0 + 2) + std::exp(0 + 0 + 0) + std::exp(1 + 3 + 2) +
                            std::exp(1 + 0 + 0));
  EXPECT_NEAR(crf_log_partition(e, w, lens).item<float>(), z, 1e-5);
  // Ties go to the lowest tag index, as Paddle's strict '>' does.
  EXPECT_EQ(
      crf_viterbi(zeros({1, 3, 3}), zeros({5, 3}), tensor<int64_t>({3}, {1})).to_vector<int64_t>(),
      (std::vector<int64_t>{0, 0, 0}));
}

TEST(Crf, MatchesPaddleOperators) {
  // Paddle 2.6.2's linear_chain_crf (negative log-likelihood per sequence) and crf_decoding on
  // LoD sequences of lengths 4, 1, 6, 3 (tests/nlp/golden/crf_paddle_golden.py).
  const std::string path =
      std::string(OAR_SOURCE_DIR) + "/tests/nlp/layers/data/crf_paddle_golden.json";
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  const Json g = Json::parse(ss.str(), path);
  const int64_t t = g.at("num_tags").as_int();
  std::vector<int64_t> lens;
  for (const auto& v : g.at("lengths").as_array()) lens.push_back(v.as_int());
  const auto n = static_cast<int64_t>(lens.size());
  const int64_t l = *std::max_element(lens.begin(), lens.end());
  Tensor e = zeros({n, l, t});
  Tensor tags = full({n, l}, -1.0, DType::i64);
  const auto& em = g.at("emission").as_array();
  const auto& lab = g.at("label").as_array();
  size_t row = 0;
  for (int64_t b = 0; b < n; ++b)
    for (int64_t s = 0; s < lens[static_cast<size_t>(b)]; ++s, ++row) {
      for (int64_t k = 0; k < t; ++k)
        e.data<float>()[(b * l + s) * t + k] = static_cast<float>(
            em[row * static_cast<size_t>(t) + static_cast<size_t>(k)].as_double());
      tags.data<int64_t>()[b * l + s] = lab[row].as_int();
    }
  std::vector<float> wv;
  for (const auto& v : g.at("transition").as_array())
    wv.push_back(static_cast<float>(v.as_double()));
  const Tensor w = tensor(wv, {t + 2, t});
  const Tensor lt = tensor(lens, {n});
  const auto nll = crf_nll(e, w, tags, lt).to_vector<float>();
  const auto path_got = crf_viterbi(e, w, lt).to_vector<int64_t>();
  row = 0;
  for (int64_t b = 0; b < n; ++b) {
    EXPECT_NEAR(nll[static_cast<size_t>(b)],
                g.at("nll").as_array()[static_cast<size_t>(b)].as_double(), 1e-4)
        << b;
    for (int64_t s = 0; s < lens[static_cast<size_t>(b)]; ++s, ++row)
      EXPECT_EQ(path_got[static_cast<size_t>(b * l + s)], g.at("viterbi").as_array()[row].as_int());
  }
}

TEST(Crf, GradientsByFiniteDifferences) {
  const Tensor lens = tensor<int64_t>({3, 2}, {2});
  const Tensor tags = tensor<int64_t>({0, 2, 1, 1, 0, 5}, {2, 3});
  const auto f = [&](const std::vector<Tensor>& in) { return crf_nll(in[0], in[1], tags, lens); };
  EXPECT_GRADCHECK(
      f, (std::vector<Tensor>{testing::rand_input({2, 3, 3}, 1), testing::rand_input({5, 3}, 2)}));
  // With constraints: masked transitions get no gradient, the rest still match.
  const Tensor mask = crf_constraints({"B-X", "I-X", "O"}, TagScheme::bio).mask();
  const Tensor ok_tags = tensor<int64_t>({0, 1, 2, 2, 0, 0}, {2, 3});
  const auto g = [&](const std::vector<Tensor>& in) {
    return crf_nll(in[0], in[1], ok_tags, lens, mask);
  };
  EXPECT_GRADCHECK(
      g, (std::vector<Tensor>{testing::rand_input({2, 3, 3}, 3), testing::rand_input({5, 3}, 4)}));
}

TEST(Crf, BioConstraints) {
  const std::vector<std::string> tags = {"B-PER", "I-PER", "B-LOC", "I-LOC", "O"};
  const CrfConstraints c = crf_constraints(tags, TagScheme::bio);
  EXPECT_EQ(c.start, (std::vector<uint8_t>{1, 0, 1, 0, 1}));
  const auto allowed = [&](int i, int j) { return c.allowed[static_cast<size_t>(i * 5 + j)]; };
  EXPECT_TRUE(allowed(0, 1));
  EXPECT_TRUE(allowed(1, 1));
  EXPECT_FALSE(allowed(0, 3));  // B-PER -> I-LOC
  EXPECT_FALSE(allowed(4, 1));  // O -> I-PER
  EXPECT_TRUE(allowed(3, 0));
  // Emissions that prefer the illegal I-LOC everywhere: unconstrained decoding follows them,
  // constrained decoding must start a chunk first, and agrees with a masked brute force.
  const int64_t l = 4;
  Tensor e = rand({1, l, 5}, nullptr, -0.5, 0.5);
  for (int64_t s = 0; s < l; ++s) e.data<float>()[s * 5 + 3] += 5;
  const Tensor w = rand({7, 5}, nullptr, -0.1, 0.1);
  const Tensor lens = tensor<int64_t>({l}, {1});
  EXPECT_EQ(crf_viterbi(e, w, lens).to_vector<int64_t>()[0], 3);
  const Tensor mask = c.mask();
  const auto path = crf_viterbi(e, w, lens, mask).to_vector<int64_t>();
  const Tensor wm = masked_fill(w, logical_not(mask), -std::numeric_limits<double>::infinity());
  const Brute r = brute(e.data<float>(), wm.data<float>(), l, 5);
  EXPECT_EQ(path, r.path);
  EXPECT_EQ(path[0], 2);  // B-LOC then I-LOC...
  EXPECT_NEAR(crf_log_partition(e, w, lens, mask).item<float>(), r.log_z, 1e-4);
  // A gold path through a disallowed transition has infinite loss.
  const Tensor bad = tensor<int64_t>({4, 3, 3, 3}, {1, l});
  EXPECT_TRUE(std::isinf(crf_nll(e, w, bad, lens, mask).item<float>()));
  // LAC's suffix form parses too.
  EXPECT_EQ(crf_constraints({"PER-B", "PER-I", "O"}, TagScheme::bio).start,
            (std::vector<uint8_t>{1, 0, 1}));
  EXPECT_THROW(crf_constraints({"B-X", "E-X"}, TagScheme::bio), Error);
}

TEST(Crf, BioesConstraints) {
  const std::vector<std::string> tags = {"B-X", "I-X", "E-X", "S-X", "O"};
  const CrfConstraints c = crf_constraints(tags, TagScheme::bioes);
  EXPECT_EQ(c.start, (std::vector<uint8_t>{1, 0, 0, 1, 1}));
  EXPECT_EQ(c.stop, (std::vector<uint8_t>{0, 0, 1, 1, 1}));
  const auto allowed = [&](int i, int j) { return c.allowed[static_cast<size_t>(i * 5 + j)]; };
  EXPECT_TRUE(allowed(0, 1));
  EXPECT_TRUE(allowed(0, 2));
  EXPECT_FALSE(allowed(0, 4));  // B -> O
  EXPECT_FALSE(allowed(2, 1));  // E -> I
  EXPECT_TRUE(allowed(2, 0));
  EXPECT_TRUE(allowed(3, 3));
  // Every decoded path of random emissions is a well-formed BIOES sequence.
  const Tensor e = rand({8, 6, 5}, nullptr, -3, 3);
  const Tensor lens = tensor<int64_t>({6, 1, 2, 3, 4, 5, 6, 6}, {8});
  const auto p = crf_viterbi(e, zeros({7, 5}), lens, c.mask()).to_vector<int64_t>();
  const int64_t lv[] = {6, 1, 2, 3, 4, 5, 6, 6};
  for (int64_t b = 0; b < 8; ++b) {
    const auto at = [&](int64_t s) { return p[static_cast<size_t>(b * 6 + s)]; };
    EXPECT_TRUE(c.start[static_cast<size_t>(at(0))]) << b;
    EXPECT_TRUE(c.stop[static_cast<size_t>(at(lv[b] - 1))]) << b;
    for (int64_t s = 1; s < lv[b]; ++s)
      EXPECT_TRUE(allowed(static_cast<int>(at(s - 1)), static_cast<int>(at(s))));
  }
}

TEST(Crf, GradientDescentLearnsTheGoldPaths) {
  // Emissions and transitions as free parameters: minimising the batch NLL must make Viterbi
  // reproduce the gold tags, including a BIO-constrained model.
  const Tensor tags = tensor<int64_t>({0, 1, 1, 2, 2, 0, 1, 0, 0, 2, 0, 0}, {3, 4});
  const Tensor lens = tensor<int64_t>({4, 3, 2}, {3});
  LinearChainCrf crf(3);
  crf.set_constraints(crf_constraints({"B-X", "I-X", "O"}, TagScheme::bio));
  Tensor e = testing::rand_input({3, 4, 3}, 9, -0.1, 0.1);
  double first = 0, last = 0;
  for (int step = 0; step < 200; ++step) {
    Tensor loss = crf.loss(e, tags, lens);
    if (step == 0) first = loss.item<float>();
    last = loss.item<float>();
    e.set_grad(Tensor());
    crf.zero_grad();
    loss.backward();
    NoGradGuard ng;
    add_(e, e.grad(), -0.5);
    add_(crf.transitions, crf.transitions.grad(), -0.5);
  }
  EXPECT_LT(last, 0.05 * first);
  const auto path = crf.decode(e, lens).to_vector<int64_t>();
  EXPECT_EQ(path, (std::vector<int64_t>{0, 1, 1, 2, 2, 0, 1, -1, 0, 2, -1, -1}));
}

TEST(Crf, ModuleAndBadInputs) {
  LinearChainCrf crf(3);
  EXPECT_EQ(crf.named_parameters()[0].first, "transitions");
  EXPECT_EQ(crf.transitions.shape(), (Shape{5, 3}));
  const Tensor e = rand({2, 4, 3});
  const Tensor lens = tensor<int64_t>({4, 2}, {2});
  const Tensor tags = tensor<int64_t>({0, 1, 2, 0, 1, 1, 0, 0}, {2, 4});
  Tensor loss = crf.loss(e, tags, lens);
  EXPECT_EQ(loss.dim(), 0);
  loss.backward();
  EXPECT_TRUE(crf.transitions.grad().defined());
  EXPECT_EQ(crf.forward(e).shape(), (Shape{2, 4}));
  EXPECT_THROW(crf.decode(e, tensor<int64_t>({0, 2}, {2})), Error);  // length 0
  EXPECT_THROW(crf.decode(e, tensor<int64_t>({5, 2}, {2})), Error);  // past L
  EXPECT_THROW(crf.decode(rand({2, 4, 4}), lens), Error);            // wrong T
  EXPECT_THROW(crf.loss(e, tensor<int64_t>({0, 3, 0, 0, 0, 0, 0, 0}, {2, 4}), lens), Error);
  EXPECT_THROW(crf.set_constraints(crf_constraints({"B-X", "O"}, TagScheme::bio)), Error);
}

}  // namespace
}  // namespace oar::nlp
