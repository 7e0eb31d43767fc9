// Forward pass against an independent PyTorch implementation: tiny TSN, TSM, StNet and
// Non-local C2D/I3D (one bottleneck per stage, two in res3/res4 for Non-local, 4 stem channels)
// with weights and clips from closed formulas, run in float64 by
// tests/video/golden/frame_models_golden.py; oar's float32 logits must match its
// frame_models_tiny_logits.txt.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "engine/ops.h"
#include "tests/video/models/frame_models_support.h"
#include "video/models/nonlocal.h"
#include "video/models/stnet.h"
#include "video/models/tsm.h"
#include "video/models/tsn.h"

using namespace oar;
using namespace oar::video;
using namespace oar::video::testing;

namespace {

struct TinyReference {
  std::vector<ReferenceEntry> entries;
  std::vector<double> logits;
};

std::map<std::string, TinyReference> read_tiny_reference() {
  std::map<std::string, TinyReference> out;
  std::ifstream in(std::string(OAR_SOURCE_DIR) +
                   "/tests/video/golden/frame_models_tiny_logits.txt");
  for (std::string line; std::getline(in, line);) {
    std::istringstream ls(line);
    std::string model, name;
    ls >> model >> name;
    if (name == "#logits") {
      for (double v; ls >> v;) out[model].logits.push_back(v);
      continue;
    }
    std::string dtype, shape;
    ls >> dtype >> shape;
    ReferenceEntry e{name, dtype, {}};
    std::istringstream ss(shape);
    for (std::string d; std::getline(ss, d, ',');)
      if (!d.empty()) e.shape.push_back(std::stoll(d));
    out[model].entries.push_back(e);
  }
  return out;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The script's fill(): entry k, element i -> a multiplicative hash in [-1, 1), scaled by kind.
void fill(nn::Module& m) {
  NoGradGuard ng;
  int64_t k = 0;
  for (auto& [name, t] : m.state_dict()) {
    const int64_t kk = k++;
    if (ends_with(name, "num_batches_tracked")) continue;
    const int64_t n = t.numel();
    std::vector<float> v(static_cast<size_t>(n));
    const double bound = t.dim() >= 2 ? std::sqrt(6.0 / static_cast<double>(n / t.size(0))) : 0;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t h = (i * 2654435761LL + kk * 40503 + 12345) % 4294967296LL;
      const double s = static_cast<double>(h) / 2147483648.0 - 1.0;
      double x;
      if (ends_with(name, "running_var"))
        x = 1.0 + 0.25 * (1.0 + s);
      else if (ends_with(name, "running_mean") || ends_with(name, "bias"))
        x = 0.1 * s;
      else if (t.dim() == 1)
        x = 1.0 + 0.2 * s;
      else
        x = bound * s;
      v[static_cast<size_t>(i)] = static_cast<float>(x);
    }
    std::map<std::string, Tensor> one{{name, tensor(v, t.shape())}};
    ASSERT_TRUE(m.load_state_dict(one, false).mismatched.empty()) << name;
  }
}

// The script's clip(): sin(0.9 i + 0.1) + (a + 1) cos(0.7 b + c) h / size.
Tensor clip(int64_t n, int64_t t, int64_t size) {
  std::vector<float> v;
  int64_t i = 0;
  for (int64_t a = 0; a < n; ++a)
    for (int64_t b = 0; b < t; ++b)
      for (int64_t c = 0; c < 3; ++c)
        for (int64_t h = 0; h < size; ++h)
          for (int64_t w = 0; w < size; ++w, ++i)
            v.push_back(static_cast<float>(
                std::sin(0.9 * static_cast<double>(i) + 0.1) +
                static_cast<double>(a + 1) *
                    std::cos(0.7 * static_cast<double>(b) + static_cast<double>(c)) *
                    static_cast<double>(h) / static_cast<double>(size)));
  return tensor(v, {n, t, 3, size, size});
}

void check(const std::string& name, nn::Module& m, const Tensor& x,
           const std::map<std::string, TinyReference>& reference) {
  SCOPED_TRACE(name);
  const TinyReference& ref = reference.at(name);
  const auto state = m.state_dict();
  ASSERT_EQ(state.size(), ref.entries.size());
  for (size_t i = 0; i < state.size(); ++i) {
    ASSERT_EQ(state[i].first, ref.entries[i].name) << "entry " << i;
    ASSERT_EQ(state[i].second.shape(), ref.entries[i].shape) << ref.entries[i].name;
  }
  fill(m);
  m.eval();
  NoGradGuard ng;
  const auto y = m(x).to_vector<float>();
  ASSERT_EQ(y.size(), ref.logits.size());
  for (size_t i = 0; i < y.size(); ++i)
    EXPECT_NEAR(y[i], ref.logits[i], 2e-5 + 1e-4 * std::fabs(ref.logits[i])) << "logit " << i;
}

}  // namespace

TEST(GoldenLogits, TinyModelsMatchPyTorch) {
  const auto reference = read_tiny_reference();
  ASSERT_EQ(reference.size(), 5u) << "tests/video/golden/frame_models_tiny_logits.txt";
  Generator gen(1);
  {
    TsnOptions o;
    o.backbone = tiny_trunk();
    o.num_classes = 5;
    o.dropout = 0.5;
    Tsn m(o, &gen);
    check("tsn", m, clip(2, 3, 32), reference);
  }
  {
    TsmOptions o;
    o.backbone = tiny_trunk();
    o.num_classes = 5;
    Tsm m(o, &gen);
    check("tsm", m, clip(2, 4, 32), reference);
  }
  {
    StNetOptions o;
    o.backbone = tiny_trunk();
    o.seglen = 2;
    o.num_classes = 5;
    StNet m(o, &gen);
    check("stnet", m, clip(2, 6, 32), reference);
  }
  for (const bool i3d : {false, true}) {
    NonLocalOptions o;
    o.i3d = i3d;
    o.backbone = tiny_trunk();
    o.backbone.blocks = {1, 2, 2, 1};
    o.num_classes = 5;
    NonLocalNet m(o, &gen);
    check(i3d ? "nonlocal_i3d" : "nonlocal_c2d", m, clip(2, 8, 32), reference);
  }
}
