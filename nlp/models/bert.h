#pragma once
// BERT (Devlin et al. 2018) and ERNIE 1.0/2.0 (the same post-LN encoder): embeddings (word +
// position + token type (+ task type)) -> LayerNorm -> dropout, then N layers of
// x = LN(x + dropout(SelfAttention(x))), x = LN(x + dropout(W2 act(W1 x))), and a pooler
// tanh(dense(h[CLS])). Module names equal Hugging Face's BertModel state dict
// (`encoder.layer.0.attention.self.query.weight`), so HF safetensors load by name.
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/io/json.h"
#include "engine/nn.h"
#include "engine/tensor/source_stamp.h"

namespace oar::nlp {

// Hugging Face config.json keys and defaults (BertConfig); ERNIE adds the task-type embedding.
struct BertConfig {
  int64_t vocab_size = 30522;
  int64_t hidden_size = 768;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t intermediate_size = 3072;
  std::string hidden_act = "gelu";  // gelu (erf), gelu_new / gelu_pytorch_tanh (tanh), relu
  double hidden_dropout_prob = 0.1;
  double attention_probs_dropout_prob = 0.1;
  int64_t max_position_embeddings = 512;
  int64_t type_vocab_size = 2;
  double layer_norm_eps = 1e-12;
  int64_t pad_token_id = 0;
  bool use_task_id = false;  // ERNIE 2.0/3.0: adds task_type_embeddings
  int64_t task_type_vocab_size = 3;

  // Reads the keys above from a parsed config.json (others are ignored; ERNIE's
  // sent_type_vocab_size is read as type_vocab_size; a missing intermediate_size is 4 * hidden).
  // Errors name `where` and the key.
  static BertConfig from_json(const Json& j, const std::string& where = "config.json");
  static BertConfig from_file(const std::string& path);
  // ERNIE 1.0 Chinese: relu, LayerNorm eps 1e-5, 18000 tokens, 513 positions.
  static BertConfig ernie_1_0();
  // Throws oar::Error naming the first invalid value.
  void validate() const;
};

// What the encoder returns.
struct BertOutput {
  Tensor last_hidden_state;  // [N, L, H]
  Tensor pooled;             // [N, H], tanh(dense(last_hidden_state[:, 0]))
};

// A text encoder that heads (classification, matching, tagging) build on.
class TextEncoder : public nn::Module {
 public:
  // input_ids, token_type_ids, attention_mask: [N, L] integer tensors (token_type_ids and
  // attention_mask may be undefined: all zeros / all ones). attention_mask 1 = real token.
  virtual BertOutput encode(const Tensor& input_ids, const Tensor& token_type_ids,
                            const Tensor& attention_mask) = 0;
  virtual int64_t hidden_size() const = 0;
};

class BertEmbeddings : public nn::Module {
 public:
  using nn::Module::forward;  // not hidden by the overload below (-Woverloaded-virtual)
  BertEmbeddings(const BertConfig& c, Generator& gen);
  // task_type_ids only when use_task_id (undefined: task 0).
  Tensor forward(const Tensor& input_ids, const Tensor& token_type_ids,
                 const Tensor& task_type_ids = Tensor());
  std::string name() const override { return "BertEmbeddings"; }

  std::shared_ptr<nn::Embedding> word_embeddings, position_embeddings, token_type_embeddings,
      task_type_embeddings;
  std::shared_ptr<nn::LayerNorm> LayerNorm;
  std::shared_ptr<nn::Dropout> dropout;
};

class BertSelfAttention : public nn::Module {
 public:
  using nn::Module::forward;  // not hidden by the overload below (-Woverloaded-virtual)
  BertSelfAttention(const BertConfig& c, Generator& gen);
  // x [N, L, H], mask additive, broadcasting to [N, heads, L, L] (or undefined).
  Tensor forward(const Tensor& x, const Tensor& mask);
  std::string name() const override { return "BertSelfAttention"; }

  int64_t heads, head_dim;
  double dropout_p;
  std::shared_ptr<nn::Linear> query, key, value;

  // The query, key and value projections run as one GEMM on [Wq; Wk; Wv] (N = 3 * hidden) and
  // attention reads the three heads-split operands in place from its output. Without gradients the
  // concatenated weight and bias are built once per weight version and kept here (the weight only
  // where inference does not run from packed weights, which stack the parts themselves); with
  // gradients they are concatenated per call (autograd splits the gradient back to the three
  // Linears).
  // Parameter names and checkpoints are those of the three Linears.
  Tensor packed_weight(), packed_bias();

 private:
  struct PackedCache {
    std::mutex mu;  // eval forwards may run concurrently
    Tensor value;
    SourceStamp stamp;  // of the parts value was made from
  };
  static Tensor packed(PackedCache& cache, const std::vector<Tensor>& parts);
  PackedCache weight_cache_, bias_cache_;
};

// dense -> dropout -> LayerNorm(. + residual); HF's BertSelfOutput and BertOutput.
class BertResidualOutput : public nn::Module {
 public:
  using nn::Module::forward;  // not hidden by the overload below (-Woverloaded-virtual)
  BertResidualOutput(int64_t in, const BertConfig& c, Generator& gen);
  Tensor forward(const Tensor& x, const Tensor& residual);
  std::string name() const override { return "BertResidualOutput"; }

  std::shared_ptr<nn::Linear> dense;
  std::shared_ptr<nn::LayerNorm> LayerNorm;
  std::shared_ptr<nn::Dropout> dropout;
};

class BertAttention : public nn::Module {
 public:
  using nn::Module::forward;  // not hidden by the overload below (-Woverloaded-virtual)
  BertAttention(const BertConfig& c, Generator& gen);
  Tensor forward(const Tensor& x, const Tensor& mask);
  std::string name() const override { return "BertAttention"; }

  std::shared_ptr<BertSelfAttention> self;
  std::shared_ptr<BertResidualOutput> output;
};

class BertIntermediate : public nn::Module {
 public:
  BertIntermediate(const BertConfig& c, Generator& gen);
  Tensor forward(const Tensor& x) override;  // act(dense(x))
  std::string name() const override { return "BertIntermediate"; }

  std::string act;
  std::shared_ptr<nn::Linear> dense;
};

class BertLayer : public nn::Module {
 public:
  using nn::Module::forward;  // not hidden by the overload below (-Woverloaded-virtual)
  BertLayer(const BertConfig& c, Generator& gen);
  Tensor forward(const Tensor& x, const Tensor& mask);
  std::string name() const override { return "BertLayer"; }

  std::shared_ptr<BertAttention> attention;
  std::shared_ptr<BertIntermediate> intermediate;
  std::shared_ptr<BertResidualOutput> output;
};

class BertModel : public TextEncoder {
 public:
  // Weights initialised as HF's _init_weights: N(0, 0.02) for linear and embedding weights
  // (padding row zeroed), zero biases, LayerNorm ones/zeros. gen null: default generator.
  explicit BertModel(BertConfig config, Generator* gen = nullptr);

  BertOutput encode(const Tensor& input_ids, const Tensor& token_type_ids,
                    const Tensor& attention_mask) override;
  // With the ERNIE task-type ids ([N, L], undefined: 0) when config.use_task_id.
  BertOutput encode(const Tensor& input_ids, const Tensor& token_type_ids,
                    const Tensor& attention_mask, const Tensor& task_type_ids);
  // input_ids [N, L] -> last hidden states [N, L, H] (no padding, token type 0).
  Tensor forward(const Tensor& input_ids) override;
  int64_t hidden_size() const override { return config.hidden_size; }
  std::string name() const override { return "BertModel"; }
  void describe(std::ostream& os) const override;

  BertConfig config;
  std::shared_ptr<BertEmbeddings> embeddings;
  std::vector<std::shared_ptr<BertLayer>> layers;  // children encoder.layer.{i}
  std::shared_ptr<nn::Linear> pooler_dense;        // child pooler.dense
};

// BERT's masked-LM head, Hugging Face's BertLMPredictionHead (`cls.predictions`): transform =
// LayerNorm(act(dense(x))), then logits = x E^T + bias where E is the encoder's word-embedding
// table (tied: the same tensor, so it is not a parameter of the head and trains through both
// uses). State names: transform.dense.{weight,bias}, transform.LayerNorm.{weight,bias}, bias.
class BertMlmHead : public nn::Module {
 public:
  // `word_embeddings`: the [V, H] table to tie to (BertModel::embeddings->word_embeddings->weight).
  BertMlmHead(const BertConfig& c, Tensor word_embeddings, Generator& gen);
  Tensor forward(const Tensor& x) override;  // [..., H] -> logits [..., V]
  std::string name() const override { return "BertMlmHead"; }

  std::string act;
  std::shared_ptr<nn::Linear> dense;         // child transform.dense
  std::shared_ptr<nn::LayerNorm> LayerNorm;  // child transform.LayerNorm
  Tensor bias;                               // [V]
  Tensor decoder_weight;                     // tied, [V, H]
};

// Loads the `cls.predictions.*` tensors of a Hugging Face BertForPreTraining / BertForMaskedLM
// safetensors file into `head` (LayerNorm.gamma/beta accepted; `decoder.bias` stands in for a
// missing `bias`; the tied `decoder.weight` is checked for shape and otherwise ignored). Returns
// false when the file has no `cls.predictions.` tensor (the head keeps its initial values);
// throws oar::Error naming the file when it has some but they do not fit.
bool load_hf_mlm_head(BertMlmHead& head, const std::string& safetensors_path);

// Maps a Hugging Face / converted-ERNIE state dict onto BertModel names: strips a `bert.` (or
// `ernie.`) prefix, renames LayerNorm.gamma/beta to weight/bias, and drops what the bare encoder
// does not have (embeddings.position_ids, cls.*, classifier.*, qa_outputs.*). `dropped` receives
// the names left out.
std::map<std::string, Tensor> hf_bert_state(const std::map<std::string, Tensor>& state,
                                            std::vector<std::string>* dropped = nullptr);

// Loads HF weights into `model`: every encoder tensor must be present with the right shape (the
// error names the file and each problem); a missing pooler keeps its initial values.
void load_hf_bert_weights(BertModel& model, const std::string& safetensors_path);

}  // namespace oar::nlp
