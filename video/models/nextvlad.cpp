#include "video/models/nextvlad.h"

#include <cmath>

#include "engine/core/error.h"
#include "engine/nn.h"
#include "engine/ops.h"

namespace oar::video {

namespace {
// The reference's variance-scaling initialisation: normal, std sqrt(2 / fan_in).
void he_normal(Tensor& w, int64_t fan_in, Generator& gen) {
  nn::init::normal_(w, gen, 0.0, std::sqrt(2.0 / static_cast<double>(fan_in)));
}
std::shared_ptr<nn::Linear> he_linear(int64_t in, int64_t out, bool bias, Generator& gen) {
  auto fc = std::make_shared<nn::Linear>(in, out, bias, &gen);
  he_normal(fc->weight, in, gen);
  if (bias) nn::init::zeros_(fc->bias);
  return fc;
}
}  // namespace

NeXtVladPooling::NeXtVladPooling(int64_t feature_dim_, int64_t cluster_size_, int64_t groups_,
                                 int64_t expansion_, Generator* gen)
    : feature_dim(feature_dim_),
      cluster_size(cluster_size_),
      groups(groups_),
      expansion(expansion_),
      group_dim(expansion_ * feature_dim_ / groups_) {
  Generator& g = gen ? *gen : default_generator();
  const int64_t wide = expansion * feature_dim;
  expand = register_module("expand", he_linear(feature_dim, wide, true, g));
  group_attention = register_module("group_attention", he_linear(wide, groups, true, g));
  cluster_weights = register_parameter("cluster_weights", zeros({groups * cluster_size, wide}));
  he_normal(cluster_weights, wide, g);
  cluster_bn =
      register_module("cluster_bn", std::make_shared<nn::BatchNorm1d>(groups * cluster_size));
  centers = register_parameter("centers", zeros({group_dim, cluster_size}));
  he_normal(centers, group_dim, g);
  vlad_bn = register_module("vlad_bn", std::make_shared<nn::BatchNorm1d>(group_dim * cluster_size));
}

Tensor NeXtVladPooling::pool(const Tensor& frames, const Tensor& rows, int64_t n, int64_t t) {
  const int64_t m = frames.size(0), k = cluster_size, f = group_dim;
  const Tensor e = expand->forward(frames);                      // [M, lambda D]
  const Tensor att = sigmoid(group_attention->forward(e));       // [M, G]
  Tensor act = cluster_bn->forward(linear(e, cluster_weights));  // [M, G K]
  act = mul(softmax(act.reshape({m, groups, k}), 2), att.reshape({m, groups, 1}));
  // Back to the padded layout (zeros for padding) so that each video sums its own frames.
  const Tensor p = index_add(zeros({n * t, groups * k}, act.dtype(), act.device()), 0, rows,
                             act.reshape({m, groups * k}))
                       .reshape({n, t * groups, k});
  const Tensor x = index_add(zeros({n * t, groups * f}, e.dtype(), e.device()), 0, rows, e)
                       .reshape({n, t * groups, f});
  const Tensor a = mul(sum(p, {1}, true), centers.reshape({1, f, k}));  // [N, F, K]
  Tensor vlad = sub(bmm(x.transpose(1, 2).contiguous(), p), a);         // [N, F, K]
  // Intra-normalisation: each cluster's residual to unit L2 norm (tf.nn.l2_normalize, eps 1e-12).
  vlad = mul(vlad, rsqrt(clamp(sum(square(vlad), {1}, true), 1e-12, INFINITY)));
  return vlad_bn->forward(vlad.reshape({n, f * k}));
}

NeXtVlad::NeXtVlad(const NeXtVladOptions& o, Generator* gen)
    : SequenceModel("nextvlad", o), options(o) {
  OAR_CHECK(o.cluster_size >= 1 && o.groups >= 1 && o.expansion >= 1 && o.hidden_size >= 1 &&
                o.gating_reduction >= 1,
            "nextvlad: cluster_size, groups, expansion, hidden_size and gating_reduction must "
            "be positive");
  OAR_CHECK(o.hidden_size / o.gating_reduction >= 1, "nextvlad: hidden_size ", o.hidden_size,
            " / gating_reduction ", o.gating_reduction, " is zero");
  Generator& g = gen ? *gen : default_generator();
  int64_t in = 0;
  for (size_t i = 0; i < o.feature_names.size(); ++i) {
    OAR_CHECK((o.expansion * o.feature_dims[i]) % o.groups == 0, "nextvlad: expansion ",
              o.expansion, " x feature_dims[", i, "] ", o.feature_dims[i],
              " is not divisible by groups ", o.groups);
    vlads.push_back(register_module(
        o.feature_names[i], std::make_shared<NeXtVladPooling>(o.feature_dims[i], o.cluster_size,
                                                              o.groups, o.expansion, &g)));
    in += vlads.back()->output_size();
  }
  const int64_t h = o.hidden_size, r = o.hidden_size / o.gating_reduction;
  dropout = register_module("dropout", std::make_shared<nn::Dropout>(o.drop_rate));
  hidden = register_module("hidden", he_linear(in, h, false, g));
  hidden_bn = register_module("hidden_bn", std::make_shared<nn::BatchNorm1d>(h));
  gate1 = register_module("gate1", he_linear(h, r, false, g));
  gate_bn = register_module("gate_bn", std::make_shared<nn::BatchNorm1d>(r));
  gate2 = register_module("gate2", he_linear(r, h, false, g));
  logits = register_module("logits", he_linear(h, o.num_classes, true, g));
}

Tensor NeXtVlad::classify(const SequenceBatch& b) {
  // The real frames, packed: row n * T + t for t < lengths[n].
  std::vector<int64_t> rows;
  for (int64_t n = 0; n < b.batch; ++n)
    for (int64_t t = 0; t < b.host_lengths[n]; ++t) rows.push_back(n * b.frames + t);
  const Device dev = b.features[0].device();
  const Tensor idx = tensor<int64_t>(rows, {static_cast<int64_t>(rows.size())}).to(dev);
  std::vector<Tensor> outs;
  for (size_t i = 0; i < vlads.size(); ++i) {
    const Tensor& x = b.features[i];
    const Tensor frames = index_select(x.reshape({b.batch * b.frames, x.size(2)}), 0, idx);
    outs.push_back(vlads[i]->pool(frames, idx, b.batch, b.frames));
  }
  Tensor v = dropout->forward(outs.size() == 1 ? outs[0] : concat(outs, 1));
  const Tensor h = hidden_bn->forward(hidden->forward(v));
  const Tensor gates = sigmoid(gate2->forward(relu(gate_bn->forward(gate1->forward(h)))));
  return logits->forward(mul(h, gates));
}

}  // namespace oar::video
