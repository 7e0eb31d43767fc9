#include "nlp/models/bert.h"

#include <fstream>
#include <limits>
#include <ostream>
#include <sstream>

#include "engine/core/error.h"
#include "engine/io/safetensors.h"
#include "engine/ops.h"

namespace oar::nlp {

namespace {

int64_t int_key(const Json& j, const char* key, int64_t fallback, const std::string& where) {
  const Json* v = j.find(key);
  if (!v || v->is_null()) return fallback;
  OAR_CHECK(v->is_int(), where, ": '", key, "' must be an integer, got ", v->dump());
  return v->as_int();
}

double num_key(const Json& j, const char* key, double fallback, const std::string& where) {
  const Json* v = j.find(key);
  if (!v || v->is_null()) return fallback;
  OAR_CHECK(v->is_number(), where, ": '", key, "' must be a number, got ", v->dump());
  return v->as_double();
}

[[maybe_unused]] Tensor activation(const std::string& act, const Tensor& x) {
  if (act == "gelu") return gelu(x, false);
  if (act == "gelu_new" || act == "gelu_pytorch_tanh") return gelu(x, true);
  return relu(x);  // validated to be relu
}

// HF's _init_weights: N(0, initializer_range) weights, zero biases.
void init_linear(nn::Linear& l, Generator& gen) {
  nn::init::normal_(l.weight, gen, 0.0, 0.02);
  if (l.bias.defined()) nn::init::zeros_(l.bias);
}

std::shared_ptr<nn::Embedding> make_embedding(int64_t rows, int64_t dim, Generator& gen,
                                              std::optional<int64_t> padding_idx = std::nullopt) {
  auto e = std::make_shared<nn::Embedding>(rows, dim, padding_idx, &gen);
  nn::init::normal_(e->weight, gen, 0.0, 0.02);
  if (padding_idx) {
    NoGradGuard ng;
    e->weight.select(0, *padding_idx).zero_();
  }
  return e;
}

}  // namespace

BertConfig BertConfig::from_json(const Json& j, const std::string& where) {
  OAR_CHECK(j.is_object(), where, ": a BERT config must be a JSON object");
  BertConfig c;
  c.vocab_size = int_key(j, "vocab_size", c.vocab_size, where);
  c.hidden_size = int_key(j, "hidden_size", c.hidden_size, where);
  c.num_hidden_layers = int_key(j, "num_hidden_layers", c.num_hidden_layers, where);
  c.num_attention_heads = int_key(j, "num_attention_heads", c.num_attention_heads, where);
  c.intermediate_size = int_key(j, "intermediate_size", 4 * c.hidden_size, where);
  if (const Json* v = j.find("hidden_act")) {
    OAR_CHECK(v->is_string(), where, ": 'hidden_act' must be a string, got ", v->dump());
    c.hidden_act = v->as_string();
  }
  c.hidden_dropout_prob = num_key(j, "hidden_dropout_prob", c.hidden_dropout_prob, where);
  c.attention_probs_dropout_prob =
      num_key(j, "attention_probs_dropout_prob", c.attention_probs_dropout_prob, where);
  c.max_position_embeddings =
      int_key(j, "max_position_embeddings", c.max_position_embeddings, where);
  c.type_vocab_size = int_key(j, "type_vocab_size", c.type_vocab_size, where);
  // ERNIE 2.0's own configs name it sent_type_vocab_size and prefer it.
  c.type_vocab_size = int_key(j, "sent_type_vocab_size", c.type_vocab_size, where);
  c.layer_norm_eps = num_key(j, "layer_norm_eps", c.layer_norm_eps, where);
  c.pad_token_id = int_key(j, "pad_token_id", c.pad_token_id, where);
  if (const Json* v = j.find("use_task_id")) {
    OAR_CHECK(v->is_bool(), where, ": 'use_task_id' must be true or false, got ", v->dump());
    c.use_task_id = v->as_bool();
  }
  c.task_type_vocab_size = int_key(j, "task_type_vocab_size", c.task_type_vocab_size, where);
  if (const Json* v = j.find("position_embedding_type"); v && v->is_string())
    OAR_CHECK(v->as_string() == "absolute", where, ": position_embedding_type '", v->as_string(),
              "' is not supported (only 'absolute')");
  try {
    c.validate();
  } catch (const Error& e) {
    OAR_FAIL(where, ": ", e.what());
  }
  return c;
}

BertConfig BertConfig::from_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  OAR_CHECK(in, path, ": cannot read the model config");
  std::stringstream ss;
  ss << in.rdbuf();
  return from_json(Json::parse(ss.str(), path), path);
}

BertConfig BertConfig::ernie_1_0() {
  BertConfig c;
  c.vocab_size = 18000;
  c.hidden_act = "relu";
  c.max_position_embeddings = 513;
  c.layer_norm_eps = 1e-5;
  return c;
}

void BertConfig::validate() const {
  OAR_CHECK(
      vocab_size > 0 && hidden_size > 0 && num_hidden_layers >= 0 && num_attention_heads > 0 &&
          intermediate_size > 0 && max_position_embeddings > 0 && type_vocab_size > 0,
      "BERT sizes must be positive (vocab_size=", vocab_size, ", hidden_size=", hidden_size,
      ", num_hidden_layers=", num_hidden_layers, ", num_attention_heads=", num_attention_heads,
      ", intermediate_size=", intermediate_size,
      ", max_position_embeddings=", max_position_embeddings, ", type_vocab_size=", type_vocab_size,
      ")");
  OAR_CHECK(hidden_size % num_attention_heads == 0, "hidden_size ", hidden_size,
            " is not a multiple of num_attention_heads ", num_attention_heads);
  OAR_CHECK(hidden_act == "gelu" || hidden_act == "gelu_new" || hidden_act == "gelu_pytorch_tanh" ||
                hidden_act == "relu",
            "hidden_act '", hidden_act,
            "' is not supported (gelu, gelu_new, gelu_pytorch_tanh, relu)");
  OAR_CHECK(hidden_dropout_prob >= 0 && hidden_dropout_prob < 1 &&
                attention_probs_dropout_prob >= 0 && attention_probs_dropout_prob < 1,
            "dropout probabilities must be in [0, 1)");
  OAR_CHECK(layer_norm_eps > 0, "layer_norm_eps must be positive, got ", layer_norm_eps);
  OAR_CHECK(pad_token_id >= 0 && pad_token_id < vocab_size, "pad_token_id ", pad_token_id,
            " is outside the vocabulary of ", vocab_size);
  OAR_CHECK(!use_task_id || task_type_vocab_size > 0, "task_type_vocab_size must be positive");
}

// ---- embeddings ----

BertEmbeddings::BertEmbeddings(const BertConfig& c, Generator& gen) {
  word_embeddings = register_module(
      "word_embeddings", make_embedding(c.vocab_size, c.hidden_size, gen, c.pad_token_id));
  position_embeddings = register_module(
      "position_embeddings", make_embedding(c.max_position_embeddings, c.hidden_size, gen));
  token_type_embeddings = register_module("token_type_embeddings",
                                          make_embedding(c.type_vocab_size, c.hidden_size, gen));
  if (c.use_task_id)
    task_type_embeddings = register_module(
        "task_type_embeddings", make_embedding(c.task_type_vocab_size, c.hidden_size, gen));
  LayerNorm = register_module(
      "LayerNorm", std::make_shared<nn::LayerNorm>(Shape{c.hidden_size}, c.layer_norm_eps));
  dropout = register_module("dropout", std::make_shared<nn::Dropout>(c.hidden_dropout_prob));
}

Tensor BertEmbeddings::forward(const Tensor& input_ids, const Tensor& token_type_ids,
                               const Tensor& task_type_ids) {
  const int64_t len = input_ids.size(1);
  OAR_CHECK(len <= position_embeddings->num_embeddings, "BERT: sequence length ", len,
            " exceeds max_position_embeddings ", position_embeddings->num_embeddings);
  // Positions 0..L-1: a slice of the table broadcasts over the batch.
  Tensor x = add(word_embeddings->forward(input_ids), position_embeddings->weight.slice(0, 0, len));
  x = token_type_ids.defined() ? add(x, token_type_embeddings->forward(token_type_ids))
                               : add(x, token_type_embeddings->weight.select(0, 0));
  if (task_type_embeddings)
    x = task_type_ids.defined() ? add(x, task_type_embeddings->forward(task_type_ids))
                                : add(x, task_type_embeddings->weight.select(0, 0));
  return dropout->forward(LayerNorm->forward(x));
}

// ---- attention ----

BertSelfAttention::BertSelfAttention(const BertConfig& c, Generator& gen)
    : heads(c.num_attention_heads),
      head_dim(c.hidden_size / c.num_attention_heads),
      dropout_p(c.attention_probs_dropout_prob) {
  for (auto [name, slot] : {std::pair{"query", &query}, {"key", &key}, {"value", &value}}) {
    *slot = register_module(name,
                            std::make_shared<nn::Linear>(c.hidden_size, c.hidden_size, true, &gen));
    init_linear(**slot, gen);
  }
}

Tensor BertSelfAttention::packed(PackedCache& cache, const std::vector<Tensor>& parts) {
  bool grad = false;
  for (const Tensor& t : parts) grad = grad || (grad_enabled() && t.requires_grad());
  if (grad) return concat(parts, 0);  // autograd splits the gradient back
  std::lock_guard<std::mutex> lock(cache.mu);
  const bool fresh = cache.value.defined() && cache.stamp.current(parts) &&
                     cache.value.dtype() == parts[0].dtype() &&
                     cache.value.device() == parts[0].device();
  if (!fresh) {
    cache.stamp = SourceStamp(parts);
    cache.value = concat(parts, 0);
  }
  return cache.value;
}

Tensor BertSelfAttention::packed_weight() {
  return packed(weight_cache_, {query->weight, key->weight, value->weight});
}

Tensor BertSelfAttention::packed_bias() {
  return packed(bias_cache_, {query->bias, key->bias, value->bias});
}

Tensor BertSelfAttention::forward(const Tensor& x, const Tensor& mask) {
  const int64_t n = x.size(0), len = x.size(1), hidden = heads * head_dim;
  OAR_CHECK(x.dim() == 3 && x.size(2) == hidden, "BertSelfAttention: input ", shape_str(x.shape()),
            " must be [N, L, ", hidden, "]");
  // [N, L, 3 * hidden] -> q, k, v as [N, heads, L, D] views (row stride 3 * hidden); in
  // training their gradients come back as one [N, L, 3 * hidden] buffer.
  // Where inference packs weights (engine/ops/cpu/packed_linear.h) it packs the three parts
  // straight away, and the stacked copy is never built.
  const std::vector<Tensor> qkv =
      split_qkv_heads(linear_stacked(x, {query->weight, key->weight, value->weight}, packed_bias(),
                                     [this] { return packed_weight(); }),
                      heads);
  Tensor ctx = scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], mask, 0.0, dropout_p,
                                            is_training(), generator());
  return ctx.transpose(1, 2).reshape({n, len, hidden});
}

BertResidualOutput::BertResidualOutput(int64_t in, const BertConfig& c, Generator& gen) {
  dense = register_module("dense", std::make_shared<nn::Linear>(in, c.hidden_size, true, &gen));
  init_linear(*dense, gen);
  LayerNorm = register_module(
      "LayerNorm", std::make_shared<nn::LayerNorm>(Shape{c.hidden_size}, c.layer_norm_eps));
  dropout = register_module("dropout", std::make_shared<nn::Dropout>(c.hidden_dropout_prob));
}

Tensor BertResidualOutput::forward(const Tensor& x, const Tensor& residual) {
  // LayerNorm(dropout(dense(x)) + residual), fused on the CPU (the same mask and values).
  const Tensor h = dense->forward(x);
  OAR_CHECK(h.shape() == residual.shape(), "BertResidualOutput: dense output ",
            shape_str(h.shape()), " and residual ", shape_str(residual.shape()), " differ");
  return dropout_add_layer_norm(h, residual, LayerNorm->weight, LayerNorm->bias, LayerNorm->eps,
                                dropout->p, dropout->is_training(), dropout->generator());
}

BertAttention::BertAttention(const BertConfig& c, Generator& gen) {
  self = register_module("self", std::make_shared<BertSelfAttention>(c, gen));
  output = register_module("output", std::make_shared<BertResidualOutput>(c.hidden_size, c, gen));
}

Tensor BertAttention::forward(const Tensor& x, const Tensor& mask) {
  return output->forward(self->forward(x, mask), x);
}

BertIntermediate::BertIntermediate(const BertConfig& c, Generator& gen) : act(c.hidden_act) {
  dense = register_module(
      "dense", std::make_shared<nn::Linear>(c.hidden_size, c.intermediate_size, true, &gen));
  init_linear(*dense, gen);
}

Tensor BertIntermediate::forward(const Tensor& x) {
  // In inference the activation runs inside the GEMM (a oneDNN post-op on the CPU); in training
  // linear_act applies it unfused, as activation(act, dense->forward(x)) would.
  OAR_CHECK(x.dim() >= 1 && x.size(-1) == dense->in_features, "BertIntermediate: input ",
            shape_str(x.shape()), " must end in ", dense->in_features);
  const LinearActivation a = act == "gelu" ? LinearActivation::gelu
                             : act == "gelu_new" || act == "gelu_pytorch_tanh"
                                 ? LinearActivation::gelu_tanh
                                 : LinearActivation::relu;
  return linear_act(x, dense->weight, dense->bias, a);
}

BertLayer::BertLayer(const BertConfig& c, Generator& gen) {
  attention = register_module("attention", std::make_shared<BertAttention>(c, gen));
  intermediate = register_module("intermediate", std::make_shared<BertIntermediate>(c, gen));
  output =
      register_module("output", std::make_shared<BertResidualOutput>(c.intermediate_size, c, gen));
}

Tensor BertLayer::forward(const Tensor& x, const Tensor& mask) {
  Tensor h = attention->forward(x, mask);
  return output->forward(intermediate->forward(h), h);
}

// ---- model ----

BertModel::BertModel(BertConfig c, Generator* gen) : config(std::move(c)) {
  config.validate();
  Generator& g = gen ? *gen : default_generator();
  embeddings = register_module("embeddings", std::make_shared<BertEmbeddings>(config, g));
  auto encoder = register_module("encoder", std::make_shared<nn::Module>());
  auto layer_list = encoder->register_module("layer", std::make_shared<nn::Module>());
  for (int64_t i = 0; i < config.num_hidden_layers; ++i)
    layers.push_back(
        layer_list->register_module(std::to_string(i), std::make_shared<BertLayer>(config, g)));
  auto pooler = register_module("pooler", std::make_shared<nn::Module>());
  pooler_dense = pooler->register_module(
      "dense", std::make_shared<nn::Linear>(config.hidden_size, config.hidden_size, true, &g));
  init_linear(*pooler_dense, g);
}

BertOutput BertModel::encode(const Tensor& input_ids, const Tensor& token_type_ids,
                             const Tensor& attention_mask) {
  return encode(input_ids, token_type_ids, attention_mask, Tensor());
}

BertOutput BertModel::encode(const Tensor& input_ids, const Tensor& token_type_ids,
                             const Tensor& attention_mask, const Tensor& task_type_ids) {
  OAR_CHECK(input_ids.defined() && input_ids.dim() == 2, "BERT: input_ids must be [N, L], got ",
            input_ids.defined() ? shape_str(input_ids.shape()) : std::string("undefined"));
  const int64_t n = input_ids.size(0), len = input_ids.size(1);
  for (const Tensor* t : {&token_type_ids, &attention_mask, &task_type_ids})
    OAR_CHECK(!t->defined() || t->shape() == input_ids.shape(),
              "BERT: token_type_ids, "
              "attention_mask and task_type_ids must have input_ids' shape ",
              shape_str(input_ids.shape()), ", got ", shape_str(t->shape()));
  Tensor x = embeddings->forward(input_ids, token_type_ids, task_type_ids);
  Tensor mask;  // additive: 0 for real keys, -inf for padding, broadcast over heads and queries
  if (attention_mask.defined()) {
    Tensor pad = eq(attention_mask, 0.0).reshape({n, 1, 1, len});
    mask = masked_fill(zeros({n, 1, 1, len}, x.dtype(), x.device()), pad,
                       -std::numeric_limits<double>::infinity());
  }
  for (auto& layer : layers) x = layer->forward(x, mask);
  BertOutput out;
  out.last_hidden_state = x;
  out.pooled = tanh(pooler_dense->forward(x.select(1, 0)));
  return out;
}

Tensor BertModel::forward(const Tensor& input_ids) {
  return encode(input_ids, Tensor(), Tensor()).last_hidden_state;
}

void BertModel::describe(std::ostream& os) const {
  os << "BertModel(layers=" << config.num_hidden_layers << ", hidden=" << config.hidden_size
     << ", heads=" << config.num_attention_heads << ", ffn=" << config.intermediate_size
     << ", act=" << config.hidden_act << ", vocab=" << config.vocab_size << ")";
}

// ---- loading ----

std::map<std::string, Tensor> hf_bert_state(const std::map<std::string, Tensor>& state,
                                            std::vector<std::string>* dropped) {
  std::map<std::string, Tensor> out;
  auto ends_with = [](const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() &&
           s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  for (const auto& [raw, t] : state) {
    std::string name = raw;
    for (const char* prefix : {"bert.", "ernie.", "model."})
      if (name.rfind(prefix, 0) == 0) {
        name = name.substr(std::string(prefix).size());
        break;
      }
    if (ends_with(name, "LayerNorm.gamma")) name = name.substr(0, name.size() - 5) + "weight";
    if (ends_with(name, "LayerNorm.beta")) name = name.substr(0, name.size() - 4) + "bias";
    const bool encoder_part = name.rfind("embeddings.", 0) == 0 || name.rfind("encoder.", 0) == 0 ||
                              name.rfind("pooler.", 0) == 0;
    if (!encoder_part || name == "embeddings.position_ids") {
      if (dropped) dropped->push_back(raw);
      continue;
    }
    out[name] = t;
  }
  return out;
}

void load_hf_bert_weights(BertModel& model, const std::string& path) {
  const io::SafetensorsFile f = io::read_safetensors(path);
  const std::map<std::string, Tensor> state = hf_bert_state(f.as_map());
  nn::LoadReport r = model.load_state_dict(state, /*strict=*/false);
  std::vector<std::string> missing;
  for (const std::string& m : r.missing)
    if (m.rfind("pooler.", 0) != 0) missing.push_back(m);  // heads-only checkpoints lack a pooler
  r.missing = missing;
  OAR_CHECK(r.ok(), path, ": the weights do not fit this BERT configuration:\n", r.str());
}

// ---- masked-LM head ----

BertMlmHead::BertMlmHead(const BertConfig& c, Tensor word_embeddings, Generator& gen)
    : act(c.hidden_act), decoder_weight(std::move(word_embeddings)) {
  c.validate();
  OAR_CHECK(
      decoder_weight.defined() && decoder_weight.dim() == 2 &&
          decoder_weight.size(1) == c.hidden_size,
      "BertMlmHead: the tied word embeddings must be [V, ", c.hidden_size, "], got ",
      decoder_weight.defined() ? shape_str(decoder_weight.shape()) : std::string("undefined"));
  auto transform = register_module("transform", std::make_shared<nn::Module>());
  dense = transform->register_module(
      "dense", std::make_shared<nn::Linear>(c.hidden_size, c.hidden_size, true, &gen));
  init_linear(*dense, gen);
  LayerNorm = transform->register_module(
      "LayerNorm", std::make_shared<nn::LayerNorm>(Shape{c.hidden_size}, c.layer_norm_eps));
  bias = register_parameter(
      "bias", zeros({decoder_weight.size(0)}, decoder_weight.dtype(), decoder_weight.device()));
}

Tensor BertMlmHead::forward(const Tensor& x) {
  return linear(LayerNorm->forward(activation(act, dense->forward(x))), decoder_weight, bias);
}

bool load_hf_mlm_head(BertMlmHead& head, const std::string& path) {
  const io::SafetensorsFile f = io::read_safetensors(path);
  const std::string prefix = "cls.predictions.";
  std::map<std::string, Tensor> state;
  Tensor decoder_bias;
  for (const auto& [raw, t] : f.as_map()) {
    if (raw.rfind(prefix, 0) != 0) continue;
    std::string name = raw.substr(prefix.size());
    if (name == "decoder.weight") {
      OAR_CHECK(t.shape() == head.decoder_weight.shape(), path, ": ", raw, " is ",
                shape_str(t.shape()), ", the word embeddings are ",
                shape_str(head.decoder_weight.shape()));
      continue;
    }
    if (name == "decoder.bias") {
      decoder_bias = t;
      continue;
    }
    if (name.size() > 6 && name.compare(name.size() - 6, 6, ".gamma") == 0)
      name = name.substr(0, name.size() - 5) + "weight";
    if (name.size() > 5 && name.compare(name.size() - 5, 5, ".beta") == 0)
      name = name.substr(0, name.size() - 4) + "bias";
    state[name] = t;
  }
  if (state.empty() && !decoder_bias.defined()) return false;
  if (!state.count("bias") && decoder_bias.defined()) state["bias"] = decoder_bias;
  const nn::LoadReport r = head.load_state_dict(state, /*strict=*/true);
  OAR_CHECK(r.ok(), path, ": the cls.predictions tensors do not fit this masked-LM head:\n",
            r.str());
  return true;
}

}  // namespace oar::nlp
