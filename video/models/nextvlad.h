#pragma once
// NeXtVLAD (Lin, Xiao & Fan, "NeXtVLAD: An Efficient Neural Network to Aggregate Frame-level
// Features for Large-scale Video Classification", ECCV 2018 workshops; PaddleVideo's NEXTVLAD):
// per modality, every real frame x [D] is expanded (fc to expansion * D), split into `groups`
// groups of F = expansion * D / groups dims, each group softly assigned to `cluster_size`
// clusters (a linear map + BN + softmax over clusters) and weighted by a per-group sigmoid
// attention; residuals to learned centres are summed over frames and groups, L2-normalised per
// cluster and batch-normalised. The modalities' VLADs are concatenated -> dropout -> fc
// `hidden_size` (no bias) + BN -> context gating (fc hidden/gating_reduction + BN + relu -> fc
// hidden + sigmoid, multiplied in) -> fc num_classes (logits).
// Only the real frames enter, as PaddleVideo's LoD sequences: the batch-norm statistics of the
// cluster assignments are taken over real frames only. Order-free by design.
#include <memory>
#include <vector>

#include "video/models/sequence_model.h"

namespace oar::nn {
class BatchNorm;
class Dropout;
class Linear;
}  // namespace oar::nn

namespace oar::video {

struct NeXtVladOptions : SequenceModelOptions {
  int64_t cluster_size = 128;
  int64_t groups = 8;
  int64_t expansion = 2;
  int64_t hidden_size = 2048;
  int64_t gating_reduction = 8;
};

// One modality: packed real frames [M, D] and their video of origin -> VLAD [N, K * F].
class NeXtVladPooling : public nn::Module {
 public:
  NeXtVladPooling(int64_t feature_dim, int64_t cluster_size, int64_t groups, int64_t expansion,
                  Generator* gen);
  // frames [M, D]: the real frames of a batch; rows i64 [M]: frame i's row n * T + t in the
  // padded [N * T] layout; n_videos, n_frames: N and T.
  Tensor pool(const Tensor& frames, const Tensor& rows, int64_t n_videos, int64_t n_frames);
  std::string name() const override { return "NeXtVladPooling"; }
  int64_t output_size() const { return cluster_size * group_dim; }

  int64_t feature_dim, cluster_size, groups, expansion, group_dim;
  std::shared_ptr<nn::Linear> expand;           // D -> expansion * D
  std::shared_ptr<nn::Linear> group_attention;  // expansion * D -> groups, sigmoid
  Tensor cluster_weights;                       // [groups * K, expansion * D] (no bias: BN follows)
  std::shared_ptr<nn::BatchNorm> cluster_bn;    // over groups * K
  Tensor centers;                               // [F, K] (the paper's cluster_weights2)
  std::shared_ptr<nn::BatchNorm> vlad_bn;       // over F * K
};

class NeXtVlad : public SequenceModel {
 public:
  explicit NeXtVlad(const NeXtVladOptions& options, Generator* gen = nullptr);
  std::string name() const override { return "NeXtVlad"; }

  NeXtVladOptions options;
  std::vector<std::shared_ptr<NeXtVladPooling>> vlads;  // children named by modality
  std::shared_ptr<nn::Dropout> dropout;
  std::shared_ptr<nn::Linear> hidden;  // no bias
  std::shared_ptr<nn::BatchNorm> hidden_bn;
  std::shared_ptr<nn::Linear> gate1;  // hidden -> hidden / gating_reduction, no bias
  std::shared_ptr<nn::BatchNorm> gate_bn;
  std::shared_ptr<nn::Linear> gate2;  // back to hidden, no bias
  std::shared_ptr<nn::Linear> logits;

 protected:
  Tensor classify(const SequenceBatch& batch) override;
};

}  // namespace oar::video
