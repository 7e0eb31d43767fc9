#include "video/models/attention_lstm.h"

#include "engine/core/error.h"
#include "engine/nn.h"
#include "engine/ops.h"

namespace oar::video {

namespace {
// PaddlePaddle's fc default: Xavier-uniform weights; biases start at zero.
std::shared_ptr<nn::Linear> xavier_linear(int64_t in, int64_t out, Generator& gen) {
  auto fc = std::make_shared<nn::Linear>(in, out, true, &gen);
  nn::init::xavier_uniform_(fc->weight, gen);
  nn::init::zeros_(fc->bias);
  return fc;
}
}  // namespace

LstmAttentionPooling::LstmAttentionPooling(int64_t feature_dim, int64_t embedding_size,
                                           int64_t lstm_size, double drop_rate, Generator* gen) {
  Generator& g = gen ? *gen : default_generator();
  embedding = register_module("embedding", xavier_linear(feature_dim, embedding_size, g));
  nn::RnnOptions ro;
  ro.batch_first = true;
  ro.bidirectional = true;
  lstm = register_module("lstm", std::make_shared<nn::LSTM>(embedding_size, lstm_size, ro, &g));
  dropout = register_module("dropout", std::make_shared<nn::Dropout>(drop_rate));
  attention = register_module("attention", xavier_linear(2 * lstm_size, 1, g));
}

Tensor LstmAttentionPooling::pool(const Tensor& x, const Tensor& lengths, const Tensor& valid) {
  const Tensor e = tanh(embedding->forward(x));
  // Packed semantics: the backward direction starts at each video's last real frame, and
  // outputs past the length are zero.
  const Tensor h = dropout->forward(lstm->run(e, lengths).output);     // [N, T, 2H]
  const Tensor w = masked_time_softmax(attention->forward(h), valid);  // [N, T, 1]
  return sum(mul(h, w), {1});                                          // [N, 2H]
}

AttentionLstm::AttentionLstm(const AttentionLstmOptions& o, Generator* gen)
    : SequenceModel("attention_lstm", o), options(o) {
  OAR_CHECK(o.embedding_size >= 1 && o.lstm_size >= 1,
            "attention_lstm: embedding_size and lstm_size must be positive");
  OAR_CHECK(!o.fc_sizes.empty(), "attention_lstm: fc_sizes is empty (PaddleVideo: [8192, 4096])");
  Generator& g = gen ? *gen : default_generator();
  for (size_t i = 0; i < o.feature_names.size(); ++i)
    encoders.push_back(register_module(o.feature_names[i], std::make_shared<LstmAttentionPooling>(
                                                               o.feature_dims[i], o.embedding_size,
                                                               o.lstm_size, o.drop_rate, &g)));
  int64_t in = 2 * o.lstm_size * static_cast<int64_t>(o.feature_names.size());
  for (size_t i = 0; i < o.fc_sizes.size(); ++i) {
    OAR_CHECK(o.fc_sizes[i] >= 1, "attention_lstm: fc_sizes[", i, "] = ", o.fc_sizes[i],
              " must be positive");
    fcs.push_back(
        register_module("fc" + std::to_string(i + 1), xavier_linear(in, o.fc_sizes[i], g)));
    in = o.fc_sizes[i];
  }
  logits = register_module("logits", xavier_linear(in, o.num_classes, g));
}

Tensor AttentionLstm::classify(const SequenceBatch& b) {
  std::vector<Tensor> pooled;
  for (size_t i = 0; i < encoders.size(); ++i)
    pooled.push_back(encoders[i]->pool(b.features[i], b.lengths, b.valid));
  Tensor h = pooled.size() == 1 ? pooled[0] : concat(pooled, 1);
  // PaddleVideo: relu after the first fc, tanh after the last.
  for (size_t i = 0; i < fcs.size(); ++i) {
    h = fcs[i]->forward(h);
    h = i + 1 == fcs.size() ? tanh(h) : relu(h);
  }
  return logits->forward(h);
}

}  // namespace oar::video
