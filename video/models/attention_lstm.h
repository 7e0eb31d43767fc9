#pragma once
// Attention LSTM (PaddleVideo's AttentionLSTM for YouTube-8M, models/attention_lstm): per
// modality, fc `embedding_size` + tanh -> bidirectional LSTM (`lstm_size` per direction) over the
// real frames -> dropout -> attention pooling (a learned score per frame, softmax over the real
// frames, weighted sum); the modalities concatenated -> fc 8192 + relu -> fc 4096 + tanh -> fc
// num_classes (logits; the task applies the sigmoid). Order-aware: the LSTMs read frames in order.
#include <memory>
#include <vector>

#include "video/models/sequence_model.h"

namespace oar::nn {
class Dropout;
class Linear;
class LSTM;
}  // namespace oar::nn

namespace oar::video {

struct AttentionLstmOptions : SequenceModelOptions {
  int64_t embedding_size = 512;
  int64_t lstm_size = 1024;                      // hidden units per direction
  std::vector<int64_t> fc_sizes = {8192, 4096};  // relu, then tanh (PaddleVideo's two fcs)
};

// The per-modality encoder: [N, T, D] and lengths -> pooled [N, 2 * lstm_size].
class LstmAttentionPooling : public nn::Module {
 public:
  LstmAttentionPooling(int64_t feature_dim, int64_t embedding_size, int64_t lstm_size,
                       double drop_rate, Generator* gen);
  // x [N, T, D] (zero past each length), lengths i64 [N], valid bool [N, T].
  Tensor pool(const Tensor& x, const Tensor& lengths, const Tensor& valid);
  std::string name() const override { return "LstmAttentionPooling"; }

  std::shared_ptr<nn::Linear> embedding;  // D -> embedding_size, tanh
  std::shared_ptr<nn::LSTM> lstm;         // bidirectional, batch first
  std::shared_ptr<nn::Dropout> dropout;
  std::shared_ptr<nn::Linear> attention;  // 2 * lstm_size -> 1 score per frame
};

class AttentionLstm : public SequenceModel {
 public:
  // gen: parameter initialisation (null: the default generator).
  explicit AttentionLstm(const AttentionLstmOptions& options, Generator* gen = nullptr);
  std::string name() const override { return "AttentionLstm"; }

  AttentionLstmOptions options;
  std::vector<std::shared_ptr<LstmAttentionPooling>> encoders;  // children named by modality
  std::vector<std::shared_ptr<nn::Linear>> fcs;                 // children fc1, fc2, ...
  std::shared_ptr<nn::Linear> logits;

 protected:
  Tensor classify(const SequenceBatch& batch) override;
};

}  // namespace oar::video
