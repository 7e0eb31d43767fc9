#include "video/models/attention_cluster.h"

#include <cmath>

#include "engine/core/error.h"
#include "engine/nn.h"
#include "engine/ops.h"

namespace oar::video {

namespace {
// PaddleVideo's initialisation: MSRA (He) normal weights, std sqrt(2 / fan_in), and MSRA-uniform
// biases, bound sqrt(6 / size).
std::shared_ptr<nn::Linear> msra_linear(int64_t in, int64_t out, Generator& gen) {
  auto fc = std::make_shared<nn::Linear>(in, out, true, &gen);
  nn::init::normal_(fc->weight, gen, 0.0, std::sqrt(2.0 / static_cast<double>(in)));
  const double bound = std::sqrt(6.0 / static_cast<double>(out));
  nn::init::uniform_(fc->bias, gen, -bound, bound);
  return fc;
}
}  // namespace

ShiftingAttention::ShiftingAttention(int64_t feature_dim_, int64_t units_, Generator* gen)
    : feature_dim(feature_dim_), units(units_) {
  Generator& g = gen ? *gen : default_generator();
  scores = register_module("scores", msra_linear(feature_dim, units, g));
  // N(0, sqrt(1 / sqrt(units))), as PaddleVideo's `glorot`.
  const double std = std::sqrt(1.0 / std::sqrt(static_cast<double>(units)));
  shift_w = register_parameter("shift_w", zeros({units}));
  shift_b = register_parameter("shift_b", zeros({units}));
  nn::init::normal_(shift_w, g, 0.0, std);
  nn::init::normal_(shift_b, g, 0.0, std);
}

Tensor ShiftingAttention::pool(const Tensor& x, const Tensor& valid) {
  const int64_t n = x.size(0);
  const Tensor a = masked_time_softmax(scores->forward(x), valid);  // [N, T, K]
  Tensor v = bmm(a.transpose(1, 2).contiguous(), x.contiguous());   // [N, K, D]
  v = add(mul(v, shift_w.reshape({1, units, 1})), shift_b.reshape({1, units, 1}));
  // L2 normalisation of each unit's output (PaddlePaddle's l2_normalize, epsilon 1e-12), then
  // 1/sqrt(units) so that the concatenated cluster has unit norm.
  const Tensor norm2 = clamp(sum(square(v), {2}, true), 1e-12, INFINITY);
  v = mul(v, rsqrt(norm2));
  return div(v, std::sqrt(static_cast<double>(units))).reshape({n, units * feature_dim});
}

AttentionCluster::AttentionCluster(const AttentionClusterOptions& o, Generator* gen)
    : SequenceModel("attention_cluster", o), options(o) {
  OAR_CHECK(o.cluster_nums.size() == o.feature_names.size(),
            "attention_cluster: ", o.cluster_nums.size(), " cluster_nums for ",
            o.feature_names.size(), " feature_names (one cluster per modality)");
  OAR_CHECK(!o.fc_sizes.empty(),
            "attention_cluster: fc_sizes is empty (PaddleVideo: [1024, 4096])");
  Generator& g = gen ? *gen : default_generator();
  int64_t in = 0;
  for (size_t i = 0; i < o.feature_names.size(); ++i) {
    OAR_CHECK(o.cluster_nums[i] >= 1, "attention_cluster: cluster_nums[", i,
              "] = ", o.cluster_nums[i], " must be positive");
    clusters.push_back(register_module(
        o.feature_names[i],
        std::make_shared<ShiftingAttention>(o.feature_dims[i], o.cluster_nums[i], &g)));
    in += o.feature_dims[i] * o.cluster_nums[i];
  }
  dropout = register_module("dropout", std::make_shared<nn::Dropout>(o.drop_rate));
  for (size_t i = 0; i < o.fc_sizes.size(); ++i) {
    OAR_CHECK(o.fc_sizes[i] >= 1, "attention_cluster: fc_sizes[", i, "] = ", o.fc_sizes[i],
              " must be positive");
    fcs.push_back(register_module("fc" + std::to_string(i + 1), msra_linear(in, o.fc_sizes[i], g)));
    in = o.fc_sizes[i];
  }
  logits = register_module("logits", msra_linear(in, o.num_classes, g));
}

Tensor AttentionCluster::classify(const SequenceBatch& b) {
  std::vector<Tensor> outs;
  for (size_t i = 0; i < clusters.size(); ++i)
    outs.push_back(clusters[i]->pool(b.features[i], b.valid));
  Tensor h = dropout->forward(outs.size() == 1 ? outs[0] : concat(outs, 1));
  for (const auto& fc : fcs) h = tanh(fc->forward(h));
  return logits->forward(h);
}

}  // namespace oar::video
