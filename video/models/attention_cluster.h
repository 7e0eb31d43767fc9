#pragma once
// Attention Cluster (Long et al., "Attention Clusters: Purely Attention Based Local Feature
// Integration for Video Classification", CVPR 2018; PaddleVideo's AttentionCluster): per
// modality a cluster of `cluster_nums[i]` shifting attention units. Unit k scores every frame
// (one linear map for the cluster), takes the softmax over the real frames, pools the features
// with those weights, applies the shifting operation (learnable scale w_k and shift b_k), and
// L2-normalises; the units' outputs are concatenated and divided by sqrt(units). The clusters
// are concatenated -> dropout -> fc 1024 + tanh -> fc 4096 + tanh -> fc num_classes (logits).
// Order-free by design: a permutation of the real frames leaves the output unchanged.
#include <memory>
#include <vector>

#include "video/models/sequence_model.h"

namespace oar::nn {
class Dropout;
class Linear;
}  // namespace oar::nn

namespace oar::video {

struct AttentionClusterOptions : SequenceModelOptions {
  std::vector<int64_t> cluster_nums = {32, 32};  // attention units per modality
  std::vector<int64_t> fc_sizes = {1024, 4096};  // each followed by tanh
};

// One cluster: [N, T, D] -> [N, units * D].
class ShiftingAttention : public nn::Module {
 public:
  ShiftingAttention(int64_t feature_dim, int64_t units, Generator* gen);
  // x [N, T, D] (zero past each length), valid bool [N, T].
  Tensor pool(const Tensor& x, const Tensor& valid);
  std::string name() const override { return "ShiftingAttention"; }

  int64_t feature_dim, units;
  std::shared_ptr<nn::Linear> scores;  // D -> units (PaddleVideo's 1x1 conv)
  Tensor shift_w, shift_b;             // [units]
};

class AttentionCluster : public SequenceModel {
 public:
  explicit AttentionCluster(const AttentionClusterOptions& options, Generator* gen = nullptr);
  std::string name() const override { return "AttentionCluster"; }

  AttentionClusterOptions options;
  std::vector<std::shared_ptr<ShiftingAttention>> clusters;  // children named by modality
  std::shared_ptr<nn::Dropout> dropout;
  std::vector<std::shared_ptr<nn::Linear>> fcs;  // children fc1, fc2, ...
  std::shared_ptr<nn::Linear> logits;

 protected:
  Tensor classify(const SequenceBatch& batch) override;
};

}  // namespace oar::video
