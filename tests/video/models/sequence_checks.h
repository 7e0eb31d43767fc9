#pragma once
// Checks shared by the feature-sequence model tests: a small random batch with padding, padding
// invariance, frame-order (in)variance and a short optimisation run on a fixed batch.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include <memory>
#include <string>

#include <fstream>
#include <sstream>

#include "engine/config/config.h"
#include "engine/core/error.h"
#include "engine/io/json.h"
#include "engine/ops.h"
#include "engine/optim/adam.h"
#include "engine/train/components.h"
#include "video/models/sequence_model.h"
#include "video/models/sequence_register.h"

namespace oar::video::seqcheck {

// The model of configs/video/<file>, built through the registry (with `-o` style overrides).
inline std::shared_ptr<SequenceModel> from_shipped_config(const std::string& file,
                                                          const std::vector<std::string>& o = {}) {
  register_sequence_models();
  Config c = Config::load(std::string(OAR_SOURCE_DIR) + "/configs/video/" + file, o);
  Generator gen(1);
  auto m = std::dynamic_pointer_cast<SequenceModel>(models().create_from(c, "model", {&gen}));
  if (!m) OAR_FAIL(file, ": the model is not a SequenceModel");
  return m;
}

// The shipped config's model has the reference parameter count and name, and maps a
// YouTube-8M-shaped batch (rgb 1024-d, audio 128-d features, lengths 4 and 2) to 3862 classes.
inline void expect_shipped_reference(const std::string& file, int64_t parameters,
                                     const std::string& name) {
  const auto model = from_shipped_config(file);
  SequenceModel& m = *model;
  EXPECT_EQ(m.num_parameters(), parameters);
  EXPECT_EQ(m.name(), name);
  Generator gen(1);
  m.eval();
  NoGradGuard ng;
  EXPECT_EQ(m.forward(randn({2, 4, 1024}, &gen), randn({2, 4, 128}, &gen), tensor<int64_t>({4, 2}))
                .shape(),
            (Shape{2, 3862}));
}

// The PyTorch golden check (tests/video/golden/sequence_golden.py): every floating parameter and
// BN statistic set by golden_value(state name, index); inputs rgb = sin(0.37 i + 0.1), audio =
// cos(0.37 i + 0.2) (i the flat index), padding zero; eval mode. The largest difference from the
// torch logits stored under `key` in sequence_golden.json.
inline double golden_value(const std::string& name, int64_t j) {
  int k = 0;
  for (const unsigned char c : name) k += c;
  const double s = std::sin(0.731 * static_cast<double>(j) + k % 97);
  auto ends_with = [&](const std::string& suffix) {
    return name.size() >= suffix.size() &&
           name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (ends_with("running_var")) return 0.75 + 0.5 * std::fabs(s);
  if (ends_with("running_mean")) return 0.1 * s;
  return 0.5 * s;
}

inline double golden_difference(SequenceModel& m, const std::string& key) {
  NoGradGuard ng;
  for (auto& [name, t] : m.state_dict()) {
    if (t.dtype() != DType::f32) continue;
    std::vector<float> v(static_cast<size_t>(t.numel()));
    for (int64_t j = 0; j < t.numel(); ++j) v[j] = static_cast<float>(golden_value(name, j));
    Tensor dst = t;
    dst.copy_(tensor<float>(v, t.shape()));
  }
  const std::vector<int64_t> lens = {6, 2, 4};
  auto seq = [&](int64_t d, bool use_sin, double phase) {
    std::vector<float> v(static_cast<size_t>(3 * 6 * d));
    for (size_t i = 0; i < v.size(); ++i) {
      const double a = 0.37 * static_cast<double>(i) + phase;
      v[i] = static_cast<float>(use_sin ? std::sin(a) : std::cos(a));
    }
    return tensor<float>(v, {3, 6, d});
  };
  m.eval();
  const Tensor out = m.forward(seq(6, true, 0.1), seq(4, false, 0.2), tensor<int64_t>(lens, {3}));
  std::ifstream f(std::string(OAR_SOURCE_DIR) + "/tests/video/golden/sequence_golden.json");
  std::stringstream text;
  text << f.rdbuf();
  const Json golden = Json::parse(text.str(), "sequence_golden.json");
  const Json& want = golden.at(key);
  const auto got = out.contiguous().to_vector<float>();
  if (want.as_array().size() != got.size()) return INFINITY;
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i)
    worst = std::max(worst, std::fabs(got[i] - want.as_array()[i].as_double()));
  return worst;
}

// Two modalities (rgb 6-d, audio 4-d), N = 3 videos padded to T = 6 frames.
struct TinyBatch {
  Tensor rgb, audio, lengths;
};

inline TinyBatch tiny_batch(uint64_t seed, std::vector<int64_t> lengths = {6, 2, 4}) {
  Generator g(seed);
  const int64_t n = static_cast<int64_t>(lengths.size());
  return {randn({n, 6, 6}, &g), randn({n, 6, 4}, &g), tensor<int64_t>(lengths, {n})};
}

inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  const auto va = a.contiguous().to_vector<float>(), vb = b.contiguous().to_vector<float>();
  double m = 0;
  for (size_t i = 0; i < va.size(); ++i)
    m = std::max(m, static_cast<double>(std::fabs(va[i] - vb[i])));
  return m;
}

// x with every frame at or past lengths[n] replaced by `value`.
inline Tensor fill_padding(const Tensor& x, const std::vector<int64_t>& lengths, float value) {
  Tensor y = x.clone();
  float* p = y.data<float>();
  const int64_t t = x.size(1), d = x.size(2);
  for (int64_t n = 0; n < x.size(0); ++n)
    for (int64_t f = lengths[n]; f < t; ++f)
      for (int64_t j = 0; j < d; ++j) p[(n * t + f) * d + j] = value;
  return y;
}

// x with each video's real frames in reverse order (padding untouched).
inline Tensor reverse_real_frames(const Tensor& x, const std::vector<int64_t>& lengths) {
  Tensor y = x.clone();
  const float* px = x.contiguous().data<float>();
  float* p = y.data<float>();
  const int64_t t = x.size(1), d = x.size(2);
  for (int64_t n = 0; n < x.size(0); ++n)
    for (int64_t f = 0; f < lengths[n]; ++f)
      for (int64_t j = 0; j < d; ++j)
        p[(n * t + f) * d + j] = px[(n * t + lengths[n] - 1 - f) * d + j];
  return y;
}

// Outputs do not change when the padded frames change (to huge values, then to NaN), in the
// module's current mode (train mode exercises batch statistics).
inline void expect_padding_invariant(SequenceModel& m) {
  const std::vector<int64_t> lens = {6, 2, 4};
  const TinyBatch b = tiny_batch(11, lens);
  NoGradGuard ng;
  const Tensor ref = m.forward(b.rgb, b.audio, b.lengths);
  for (const float v : {1e6f, NAN}) {
    const Tensor out =
        m.forward(fill_padding(b.rgb, lens, v), fill_padding(b.audio, lens, v), b.lengths);
    EXPECT_EQ(max_abs_diff(ref, out), 0.0) << "padding value " << v;
  }
  // A video's output does not depend on how much padding the batch carries either.
  Generator g(15);
  const Tensor longer = m.forward(concat({b.rgb, randn({3, 3, 6}, &g)}, 1),
                                  concat({b.audio, randn({3, 3, 4}, &g)}, 1), b.lengths);
  EXPECT_LT(max_abs_diff(ref, longer), 1e-5);
}

// Largest output change when every video's real frames are reversed.
inline double order_sensitivity(SequenceModel& m) {
  const std::vector<int64_t> lens = {6, 3, 5};
  const TinyBatch b = tiny_batch(12, lens);
  NoGradGuard ng;
  const Tensor ref = m.forward(b.rgb, b.audio, b.lengths);
  const Tensor rev =
      m.forward(reverse_real_frames(b.rgb, lens), reverse_real_frames(b.audio, lens), b.lengths);
  return max_abs_diff(ref, rev);
}

// Mean BCE-with-logits on a fixed tiny batch with fixed multi-hot targets over `steps` Adam
// steps: returns {first loss, last loss}.
inline std::pair<double, double> fit_tiny_batch(SequenceModel& m, int steps, double lr) {
  const TinyBatch b = tiny_batch(13);
  Generator g(14);
  const Tensor target = lt(rand({3, m.num_classes()}, &g), 0.3).to(DType::f32);
  optim::AdamOptions ao;
  ao.lr = lr;
  optim::Adam opt(m.parameters(), ao);
  m.train();
  double first = 0, last = 0;
  for (int s = 0; s < steps; ++s) {
    opt.zero_grad();
    const Tensor loss =
        binary_cross_entropy_with_logits(m.forward(b.rgb, b.audio, b.lengths), target);
    loss.backward();
    opt.step();
    (s == 0 ? first : last) = loss.item_double();
  }
  return {first, last};
}

}  // namespace oar::video::seqcheck
