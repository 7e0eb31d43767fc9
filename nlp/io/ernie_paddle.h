#pragma once
// Original ERNIE 1.0 / 2.0 checkpoints (PaddlePaddle/ERNIE, 2019): a directory with
// ernie_config.json and params/ (one Paddle LoDTensor file per parameter, static-graph names such
// as `encoder_layer_3_multi_head_att_query_fc.w_0`), loaded as an oar BertModel.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nlp/models/bert.h"

namespace oar::nlp {

// Renames ERNIE's static parameter names to BertModel's (Hugging Face) names and transposes fc
// weights ([in, out] -> [out, in]):
//   word_embedding, pos_embedding, sent_embedding, task_embedding,
//   pre_encoder_layer_norm_{scale,bias}   -> embeddings.*
//   encoder_layer_{i}_multi_head_att_{query,key,value,output}_fc.{w_0,b_0},
//   encoder_layer_{i}_post_att_layer_norm_*, _ffn_fc_{0,1}.*, _post_ffn_layer_norm_*
//                                         -> encoder.layer.{i}.*
//   pooled_fc.{w_0,b_0}                   -> pooler.dense.*
// Pre-training heads (mask_lm_*, next_sent_fc*) and optimizer state are left out; `dropped`
// receives their names.
std::map<std::string, Tensor> ernie_static_to_bert_state(
    const std::map<std::string, Tensor>& params, std::vector<std::string>* dropped = nullptr);

// Loads params_dir into `model`: every encoder tensor must be present with the right shape (the
// error names the directory and each problem); a missing pooled_fc keeps its initial values.
void load_ernie_paddle_weights(BertModel& model, const std::string& params_dir);

struct ErniePaddle {
  BertConfig config;
  std::shared_ptr<BertModel> model;  // in eval mode
};

// dir/ernie_config.json (or config.json) and dir/params/ (or parameter files in dir itself).
// A config without layer_norm_eps gets Paddle's layer_norm default 1e-5 (ERNIE's), not BERT's.
ErniePaddle load_ernie_paddle(const std::string& dir, Generator* gen = nullptr);

}  // namespace oar::nlp
