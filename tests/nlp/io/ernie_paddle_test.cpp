// ERNIE static-graph checkpoints (ernie_config.json + params/ of Paddle LoDTensor files) into
// BertModel: a small model's weights written under ERNIE's names (the table below, from
// docs/nlp-lac.md / the reference) load back into a fresh model that computes the same outputs.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "engine/autograd/grad_mode.h"
#include "engine/core/error.h"
#include "engine/ops.h"
#include "nlp/io/ernie_paddle.h"
#include "nlp/io/paddle_tensor.h"

namespace oar::nlp {
namespace {

// HF BertModel name -> ERNIE static name, and whether Paddle stores it transposed.
std::pair<std::string, bool> ernie_name(const std::string& hf) {
  const std::map<std::string, std::string> fixed = {
      {"embeddings.word_embeddings.weight", "word_embedding"},
      {"embeddings.position_embeddings.weight", "pos_embedding"},
      {"embeddings.token_type_embeddings.weight", "sent_embedding"},
      {"embeddings.LayerNorm.weight", "pre_encoder_layer_norm_scale"},
      {"embeddings.LayerNorm.bias", "pre_encoder_layer_norm_bias"},
      {"pooler.dense.weight", "pooled_fc.w_0"},
      {"pooler.dense.bias", "pooled_fc.b_0"}};
  if (fixed.count(hf)) return {fixed.at(hf), hf == "pooler.dense.weight"};
  const std::string rest = hf.substr(std::string("encoder.layer.").size());
  const std::string i = rest.substr(0, rest.find('.'));
  const std::string tail = rest.substr(rest.find('.') + 1);
  const std::map<std::string, std::string> per_layer = {
      {"attention.self.query.weight", "multi_head_att_query_fc.w_0"},
      {"attention.self.query.bias", "multi_head_att_query_fc.b_0"},
      {"attention.self.key.weight", "multi_head_att_key_fc.w_0"},
      {"attention.self.key.bias", "multi_head_att_key_fc.b_0"},
      {"attention.self.value.weight", "multi_head_att_value_fc.w_0"},
      {"attention.self.value.bias", "multi_head_att_value_fc.b_0"},
      {"attention.output.dense.weight", "multi_head_att_output_fc.w_0"},
      {"attention.output.dense.bias", "multi_head_att_output_fc.b_0"},
      {"attention.output.LayerNorm.weight", "post_att_layer_norm_scale"},
      {"attention.output.LayerNorm.bias", "post_att_layer_norm_bias"},
      {"intermediate.dense.weight", "ffn_fc_0.w_0"},
      {"intermediate.dense.bias", "ffn_fc_0.b_0"},
      {"output.dense.weight", "ffn_fc_1.w_0"},
      {"output.dense.bias", "ffn_fc_1.b_0"},
      {"output.LayerNorm.weight", "post_ffn_layer_norm_scale"},
      {"output.LayerNorm.bias", "post_ffn_layer_norm_bias"}};
  const std::string& p = per_layer.at(tail);
  return {"encoder_layer_" + i + "_" + p, p.find(".w_0") != std::string::npos};
}

void write(const std::filesystem::path& path, const Tensor& t) {
  const auto b = serialize_paddle_tensor(t);
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

TEST(ErniePaddle, StaticCheckpointLoadsIntoBertModel) {
  BertConfig c;
  c.vocab_size = 30;
  c.hidden_size = 8;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;
  c.intermediate_size = 16;
  c.hidden_act = "relu";
  c.max_position_embeddings = 20;
  c.layer_norm_eps = 1e-5;
  c.hidden_dropout_prob = c.attention_probs_dropout_prob = 0;
  Generator g1(1), g2(2);
  BertModel src(c, &g1);
  src.eval();
  // Layer norms start at 1/0: perturb them so a mix-up of scale and bias would show.
  for (auto& [name, t] : src.state_dict())
    if (name.find("LayerNorm") != std::string::npos) {
      NoGradGuard ng;
      t.copy_(add(t, rand(t.shape(), &g1, -0.5, 0.5)));
    }

  const auto dir = std::filesystem::temp_directory_path() / "oar_ernie_paddle_test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "params");
  std::ofstream(dir / "ernie_config.json")
      << R"({"attention_probs_dropout_prob": 0.0, "hidden_act": "relu", "hidden_dropout_prob": 0.0,
 "hidden_size": 8, "initializer_range": 0.02, "max_position_embeddings": 20,
 "num_attention_heads": 2, "num_hidden_layers": 2, "type_vocab_size": 2, "vocab_size": 30,
 "intermediate_size": 16})";
  for (const auto& [name, t] : src.state_dict()) {
    const auto [pname, transposed] = ernie_name(name);
    write(dir / "params" / pname, transposed ? t.t().contiguous() : t);
  }
  // Pre-training heads and optimizer state are present in real checkpoints and left out.
  write(dir / "params" / "mask_lm_trans_fc.w_0", rand({8, 8}));
  write(dir / "params" / "encoder_layer_0_ffn_fc_0.w_0_moment1_0", rand({8, 16}));
  std::vector<std::string> dropped;
  ernie_static_to_bert_state(read_paddle_dir((dir / "params").string()), &dropped);
  EXPECT_EQ(dropped, (std::vector<std::string>{"encoder_layer_0_ffn_fc_0.w_0_moment1_0",
                                               "mask_lm_trans_fc.w_0"}));

  ErniePaddle e = load_ernie_paddle(dir.string(), &g2);
  EXPECT_EQ(e.config.layer_norm_eps, 1e-5);  // Paddle's default, absent from ERNIE's config
  const Tensor ids = tensor<int64_t>({1, 5, 7, 2, 9, 3, 4, 0}, {2, 4});
  NoGradGuard ng;
  const auto want = src.encode(ids, Tensor(), Tensor());
  const auto got = e.model->encode(ids, Tensor(), Tensor());
  EXPECT_LT(amax(abs(sub(got.last_hidden_state, want.last_hidden_state))).item<float>(), 1e-6);
  EXPECT_LT(amax(abs(sub(got.pooled, want.pooled))).item<float>(), 1e-6);

  // A missing parameter is named, in BertModel's terms, with the directory.
  std::filesystem::remove(dir / "params" / "encoder_layer_1_ffn_fc_1.w_0");
  try {
    load_ernie_paddle(dir.string());
    ADD_FAILURE() << "loaded without encoder_layer_1_ffn_fc_1.w_0";
  } catch (const Error& err) {
    const std::string msg = err.what();
    EXPECT_NE(msg.find("params"), std::string::npos) << msg;
    EXPECT_NE(msg.find("encoder.layer.1.output.dense.weight"), std::string::npos) << msg;
  }
  EXPECT_THROW(load_ernie_paddle((dir / "absent").string()), Error);
}

}  // namespace
}  // namespace oar::nlp
