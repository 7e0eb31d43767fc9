#include "nlp/io/ernie_paddle.h"

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "engine/core/error.h"
#include "engine/io/json.h"
#include "nlp/io/paddle_tensor.h"

namespace oar::nlp {

namespace {

// "fc.w_0" -> "weight" (transposed), "fc.b_0" -> "bias"; layer norms' scale/bias.
bool fc_part(const std::string& suffix, std::string& out, bool& transpose) {
  if (suffix == ".w_0") {
    out = "weight";
    transpose = true;
    return true;
  }
  if (suffix == ".b_0") {
    out = "bias";
    return true;
  }
  return false;
}

bool norm_part(const std::string& suffix, std::string& out) {
  if (suffix == "_scale") {
    out = "weight";
    return true;
  }
  if (suffix == "_bias") {
    out = "bias";
    return true;
  }
  return false;
}

// The BertModel name of one ERNIE parameter; false for names the encoder does not have.
bool bert_name(const std::string& name, std::string& to, bool& transpose) {
  static const std::regex layer_re(
      R"(encoder_layer_(\d+)_(multi_head_att_(query|key|value|output)_fc|ffn_fc_([01])|post_att_layer_norm|post_ffn_layer_norm)(\.w_0|\.b_0|_scale|_bias))");
  std::string part;
  transpose = false;
  std::smatch m;
  if (name == "word_embedding") {
    to = "embeddings.word_embeddings.weight";
  } else if (name == "pos_embedding") {
    to = "embeddings.position_embeddings.weight";
  } else if (name == "sent_embedding") {
    to = "embeddings.token_type_embeddings.weight";
  } else if (name == "task_embedding") {
    to = "embeddings.task_type_embeddings.weight";
  } else if (name.rfind("pre_encoder_layer_norm", 0) == 0 &&
             norm_part(name.substr(std::string("pre_encoder_layer_norm").size()), part)) {
    to = "embeddings.LayerNorm." + part;
  } else if (name.rfind("pooled_fc", 0) == 0 &&
             fc_part(name.substr(std::string("pooled_fc").size()), part, transpose)) {
    to = "pooler.dense." + part;
  } else if (std::regex_match(name, m, layer_re)) {
    const std::string prefix = "encoder.layer." + m[1].str() + ".";
    const std::string block = m[2].str();
    const std::string suffix = m[5].str();
    if (block.rfind("multi_head_att_", 0) == 0) {
      if (!fc_part(suffix, part, transpose)) return false;
      to = prefix +
           (m[3].str() == "output" ? "attention.output.dense."
                                   : "attention.self." + m[3].str() + ".") +
           part;
    } else if (block.rfind("ffn_fc_", 0) == 0) {
      if (!fc_part(suffix, part, transpose)) return false;
      to = prefix + (m[4].str() == "0" ? "intermediate.dense." : "output.dense.") + part;
    } else {
      if (!norm_part(suffix, part)) return false;
      to = prefix +
           (block == "post_att_layer_norm" ? "attention.output.LayerNorm." : "output.LayerNorm.") +
           part;
    }
  } else {
    return false;
  }
  return true;
}

}  // namespace

std::map<std::string, Tensor> ernie_static_to_bert_state(
    const std::map<std::string, Tensor>& params, std::vector<std::string>* dropped) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : params) {
    std::string to;
    bool transpose = false;
    if (!bert_name(name, to, transpose)) {
      if (dropped) dropped->push_back(name);
      continue;
    }
    if (transpose) {
      OAR_CHECK(t.dim() == 2, "ERNIE parameter '", name, "' should be an [in, out] matrix, got ",
                shape_str(t.shape()));
      out[to] = t.t().contiguous();
    } else {
      out[to] = t;
    }
  }
  return out;
}

void load_ernie_paddle_weights(BertModel& model, const std::string& params_dir) {
  const std::map<std::string, Tensor> state =
      ernie_static_to_bert_state(read_paddle_dir(params_dir));
  nn::LoadReport r = model.load_state_dict(state, /*strict=*/false);
  std::vector<std::string> missing;
  for (const std::string& m : r.missing)
    if (m.rfind("pooler.", 0) != 0) missing.push_back(m);
  r.missing = missing;
  OAR_CHECK(r.ok(), params_dir,
            ": the ERNIE parameters do not fit this configuration (names after mapping to "
            "BertModel's):\n",
            r.str());
}

ErniePaddle load_ernie_paddle(const std::string& dir, Generator* gen) {
  namespace fs = std::filesystem;
  std::string cfg = dir + "/ernie_config.json";
  if (!fs::exists(cfg)) cfg = dir + "/config.json";
  OAR_CHECK(fs::exists(cfg), dir, ": no ernie_config.json or config.json");
  std::ifstream in(cfg, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const Json j = Json::parse(ss.str(), cfg);
  ErniePaddle e;
  e.config = BertConfig::from_json(j, cfg);
  if (!j.contains("layer_norm_eps")) e.config.layer_norm_eps = 1e-5;
  e.config.validate();
  const std::string params = fs::is_directory(dir + "/params") ? dir + "/params" : dir;
  e.model = std::make_shared<BertModel>(e.config, gen);
  load_ernie_paddle_weights(*e.model, params);
  e.model->eval();
  return e;
}

}  // namespace oar::nlp
