// all-MiniLM-L6-v2 through oar's tokenizer and BertModel against Hugging Face transformers
// (tests/nlp/data/minilm_golden.json, made by scripts/golden/minilm_golden.py).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/autograd/grad_mode.h"
#include "engine/io/json.h"
#include "engine/ops.h"
#include "nlp/models/bert_pretrained.h"

namespace oar::nlp {
namespace {

std::string model_dir() {
  if (const char* e = std::getenv("OAR_MINILM_DIR")) return e;
  return std::string(OAR_SOURCE_DIR) + "/.deps/models/all-minilm-l6-v2";
}

Json read_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return Json::parse(ss.str(), path);
}

TEST(BertParity, MiniLmMatchesTransformers) {
  const std::string dir = model_dir();
  if (!std::filesystem::exists(dir + "/model.safetensors"))
    GTEST_SKIP() << dir << " is absent; scripts/setup installs all-MiniLM-L6-v2 there";
  PretrainedBert p = load_hf_bert(dir);
  const Json golden = read_json(std::string(OAR_SOURCE_DIR) + "/tests/nlp/data/minilm_golden.json");
  const auto& cases = golden.at("cases").as_array();
  ASSERT_GE(cases.size(), 20u);
  const int64_t hidden = golden.at("hidden_size").as_int();

  // Tokenize (must equal HF's ids exactly), then run all cases as ONE padded batch, so the
  // attention mask is exercised too.
  std::vector<ModelInput> inputs;
  size_t max_len = 0;
  for (const Json& c : cases) {
    const std::string a = c.at("text_a").as_string();
    ModelInput in = c.contains("text_b") ? p.tokenizer->encode_pair(a, c.at("text_b").as_string())
                                         : p.tokenizer->encode_single(a);
    std::vector<int32_t> want;
    for (const Json& v : c.at("input_ids").as_array())
      want.push_back(static_cast<int32_t>(v.as_int()));
    EXPECT_EQ(in.input_ids, want) << a;
    max_len = std::max(max_len, in.input_ids.size());
    inputs.push_back(std::move(in));
  }
  const int64_t n = static_cast<int64_t>(inputs.size()), len = static_cast<int64_t>(max_len);
  std::vector<int64_t> ids(static_cast<size_t>(n * len), 0), types(ids.size(), 0),
      mask(ids.size(), 0);
  for (int64_t i = 0; i < n; ++i)
    for (size_t j = 0; j < inputs[i].input_ids.size(); ++j) {
      const size_t k = static_cast<size_t>(i * len) + j;
      ids[k] = inputs[i].input_ids[j];
      types[k] = inputs[i].token_type_ids[j];
      mask[k] = inputs[i].attention_mask[j];
    }
  NoGradGuard ng;
  BertOutput out =
      p.model->encode(tensor(ids, {n, len}), tensor(types, {n, len}), tensor(mask, {n, len}));
  ASSERT_EQ(out.last_hidden_state.shape(), (Shape{n, len, hidden}));
  const Tensor h = out.last_hidden_state.contiguous();
  const Tensor pooled = out.pooled.contiguous();
  const float* hp = h.data<float>();
  const float* pp = pooled.data<float>();

  double max_head = 0, max_mean = 0, max_pooled = 0, max_sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    const Json& c = cases[static_cast<size_t>(i)];
    const auto& head = c.at("hidden_head").as_array();
    const auto& sums = c.at("hidden_sum").as_array();
    const int64_t real = static_cast<int64_t>(head.size());
    std::vector<double> mean(static_cast<size_t>(hidden), 0.0);
    for (int64_t t = 0; t < real; ++t) {
      const float* row = hp + (i * len + t) * hidden;
      const auto& want = head[static_cast<size_t>(t)].as_array();
      for (size_t d = 0; d < want.size(); ++d)
        max_head = std::max(max_head, std::abs(row[d] - want[d].as_double()));
      double s = 0;
      for (int64_t d = 0; d < hidden; ++d) {
        s += row[d];
        mean[static_cast<size_t>(d)] += row[d] / static_cast<double>(real);
      }
      max_sum = std::max(max_sum, std::abs(s - sums[static_cast<size_t>(t)].as_double()));
    }
    const auto& want_mean = c.at("mean_pooled").as_array();
    ASSERT_EQ(static_cast<int64_t>(want_mean.size()), hidden);
    for (int64_t d = 0; d < hidden; ++d)
      max_mean = std::max(max_mean, std::abs(mean[static_cast<size_t>(d)] -
                                             want_mean[static_cast<size_t>(d)].as_double()));
    const auto& want_pooled = c.at("pooled_head").as_array();
    for (size_t d = 0; d < want_pooled.size(); ++d)
      max_pooled = std::max(max_pooled, std::abs(pp[i * hidden + static_cast<int64_t>(d)] -
                                                 want_pooled[d].as_double()));
  }
  std::printf(
      "MiniLM parity over %lld inputs (padded batch, L=%lld): max |diff| hidden %.3g, "
      "mean-pooled %.3g, pooler %.3g, per-token sum %.3g\n",
      static_cast<long long>(n), static_cast<long long>(len), max_head, max_mean, max_pooled,
      max_sum);
  EXPECT_LT(max_head, 1e-4);
  EXPECT_LT(max_mean, 1e-4);
  EXPECT_LT(max_pooled, 1e-4);
  EXPECT_LT(max_sum, 2e-3);  // a sum of 384 values, each within float noise
}

}  // namespace
}  // namespace oar::nlp
