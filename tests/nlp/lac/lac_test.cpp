// LAC (jieba's lac_small) against the numpy reference tests/nlp/golden/lac_reference.py, whose
// output tests/nlp/lac/data/lac_golden.json was also checked against PaddlePaddle's own gru and
// crf_decoding operators (tests/nlp/golden/lac_paddle_check.py).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/config/config.h"
#include "engine/core/error.h"
#include "engine/io/json.h"
#include "engine/ops.h"
#include "engine/train/components.h"
#include "nlp/models/lac.h"
#include "nlp/register.h"
#include "tests/support/gradcheck.h"

namespace oar::nlp {
namespace {

const std::string kLac = "/usr/lib/python3/dist-packages/jieba/lac_small";

std::string lac_dir() {
  if (const char* e = std::getenv("OAR_LAC_DIR")) return e;
  return kLac;
}

Json golden() {
  const std::string path = std::string(OAR_SOURCE_DIR) + "/tests/nlp/lac/data/lac_golden.json";
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return Json::parse(ss.str(), path);
}

TEST(Lac, MatchesNumpyReference) {
  if (!std::filesystem::exists(lac_dir() + "/model_baseline/crfw"))
    GTEST_SKIP() << lac_dir() << " absent (Debian python3-jieba)";
  LacSegmenter lac = LacSegmenter::load(lac_dir());
  const Json g = golden();
  const auto& cases = g.at("cases").as_array();
  ASSERT_GE(cases.size(), 10u);
  std::vector<std::vector<std::string>> all_chars;
  double worst = 0;
  for (const auto& c : cases) {
    const std::string text = c.at("text").as_string();
    const auto chars = LacSegmenter::characters(text);
    all_chars.push_back(chars);
    std::vector<int64_t> want_ids;
    for (const auto& v : c.at("ids").as_array()) want_ids.push_back(v.as_int());
    ASSERT_EQ(lac.ids(chars), want_ids) << text;
    const auto n = static_cast<int64_t>(want_ids.size());
    NoGradGuard ng;
    const Tensor ids = tensor(want_ids, {1, n});
    const Tensor lens = tensor<int64_t>({n}, {1});
    const Tensor em = lac.model->emissions(ids, lens);
    const auto& pos = c.at("logit_positions").as_array();
    for (size_t p = 0; p < pos.size(); ++p) {
      const auto& row = c.at("logits").as_array()[p].as_array();
      for (size_t t = 0; t < row.size(); ++t) {
        const double d = std::abs(em.data<float>()[pos[p].as_int() * 57 + static_cast<int64_t>(t)] -
                                  row[t].as_double());
        worst = std::max(worst, d);
      }
    }
    std::vector<int64_t> want_tags;
    for (const auto& v : c.at("tags").as_array()) want_tags.push_back(v.as_int());
    EXPECT_EQ(lac.model->decode(ids, lens).to_vector<int64_t>(), want_tags) << text;
    const auto words = lac.segment({text})[0];
    const auto& ww = c.at("words").as_array();
    const auto& wt = c.at("word_tags").as_array();
    ASSERT_EQ(words.size(), ww.size()) << text;
    for (size_t k = 0; k < words.size(); ++k) {
      EXPECT_EQ(words[k].text, ww[k].as_string()) << text;
      EXPECT_EQ(words[k].tag, wt[k].as_string()) << text;
    }
  }
  EXPECT_LT(worst, 1e-4);
  // One padded batch gives the same tags as one sentence at a time.
  all_chars.push_back({});
  const auto batched = lac.tag_ids(all_chars);
  for (size_t k = 0; k < cases.size(); ++k) {
    std::vector<int64_t> want;
    for (const auto& v : cases[k].at("tags").as_array()) want.push_back(v.as_int());
    EXPECT_EQ(batched[k], want) << k;
  }
  EXPECT_TRUE(batched.back().empty());
}

TEST(Lac, StateNamesAreThePaddleFileNames) {
  LacConfig c;
  c.vocab_size = 10;
  c.emb_dim = 3;
  c.hidden = 2;
  c.num_tags = 5;
  LacModel m(c);
  std::vector<std::string> names;
  for (const auto& [n, t] : m.state_dict()) names.push_back(n);
  const std::vector<std::string> want = {
      "word_emb", "crfw",      "fc_0.w_0",  "fc_0.b_0",  "gru_0.w_0", "gru_0.b_0", "fc_1.w_0",
      "fc_1.b_0", "gru_1.w_0", "gru_1.b_0", "fc_2.w_0",  "fc_2.b_0",  "gru_2.w_0", "gru_2.b_0",
      "fc_3.w_0", "fc_3.b_0",  "gru_3.w_0", "gru_3.b_0", "fc_4.w_0",  "fc_4.b_0"};
  EXPECT_EQ(names, want);
  EXPECT_EQ(m.fc[2]->w_0.shape(), (Shape{4, 6}));
  EXPECT_EQ(m.forward(tensor<int64_t>({1, 2, 3, 4, 5, 6}, {2, 3})).shape(), (Shape{2, 3, 5}));
  EXPECT_THROW(m.emissions(tensor<int64_t>({1, 2}, {1, 2}), tensor<int64_t>({3}, {1})), Error);
}

TEST(Lac, PaddleGruByHandAndGradients) {
  // H = 1: u = sigmoid(x_u + b_u + h w_u), r = sigmoid(x_r + b_r + h w_r),
  // c = tanh(x_c + b_c + r h w_c), h' = h - u h + u c.
  const Tensor w = tensor<float>({0.5f, -0.25f, 0.75f}, {1, 3});
  const Tensor b = tensor<float>({0.1f, 0.2f, -0.3f}, {1, 3});
  const Tensor x = tensor<float>({0.3f, -0.2f, 0.4f, -0.1f, 0.6f, 0.2f}, {1, 2, 3});
  const auto sig = [](double v) { return 1 / (1 + std::exp(-v)); };
  double h = 0;
  std::vector<double> fwd;
  for (int s = 0; s < 2; ++s) {
    const float* xs = x.data<float>() + s * 3;
    const double u = sig(xs[0] + 0.1 + h * 0.5), r = sig(xs[1] + 0.2 - h * 0.25);
    const double c = std::tanh(xs[2] - 0.3 + r * h * 0.75);
    h = h - u * h + u * c;
    fwd.push_back(h);
  }
  const auto got = paddle_dynamic_gru(x, w, b, tensor<int64_t>({2}, {1}), false).to_vector<float>();
  EXPECT_NEAR(got[0], fwd[0], 1e-6);
  EXPECT_NEAR(got[1], fwd[1], 1e-6);
  // Reverse with length 1 of 2: only step 0 runs, from h = 0; step 1 outputs zero.
  const auto rev = paddle_dynamic_gru(x, w, b, tensor<int64_t>({1}, {1}), true).to_vector<float>();
  EXPECT_NEAR(rev[0], fwd[0], 1e-6);
  EXPECT_EQ(rev[1], 0.0f);

  const Tensor lens = tensor<int64_t>({3, 2}, {2});
  for (const bool reverse : {false, true}) {
    const auto f = [&](const std::vector<Tensor>& in) {
      return paddle_dynamic_gru(in[0], in[1], in[2], lens, reverse);
    };
    EXPECT_GRADCHECK(
        f, (std::vector<Tensor>{testing::rand_input({2, 3, 6}, 1), testing::rand_input({2, 6}, 2),
                                testing::rand_input({1, 6}, 3)}));
  }
}

TEST(Lac, CharactersAndWords) {
  // Python str.strip() whitespace (incl. U+3000 and U+00A0) goes; inner spaces stay.
  EXPECT_EQ(LacSegmenter::characters("\xe3\x80\x80 a\xc2\xa0"
                                     "b \t"),
            (std::vector<std::string>{"a", "\xc2\xa0", "b"}));
  EXPECT_EQ(LacSegmenter::characters("\xe4\xbd\xa0\xff!"),
            (std::vector<std::string>{"\xe4\xbd\xa0", "\xff", "!"}));
  const auto w = LacSegmenter::words({"a", "b", "c", "d", "e", "f"},
                                     {"PER-B", "PER-I", "O", "O", "v-I", "n-B"});
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w[0].text, "ab");
  EXPECT_EQ(w[0].tag, "PER");
  EXPECT_EQ(w[1].text, "cde");  // an "-I" after "O" continues the word, as jieba's parser does
  EXPECT_EQ(w[1].tag, "O");
  EXPECT_EQ(w[2].tag, "n");
}

TEST(Lac, BadDirectories) {
  EXPECT_THROW(LacSegmenter::load("/nonexistent/lac"), Error);
  if (!std::filesystem::exists(lac_dir() + "/model_baseline/crfw")) GTEST_SKIP();
  const auto tmp = std::filesystem::temp_directory_path() / "oar_lac_bad";
  std::filesystem::remove_all(tmp);
  std::filesystem::create_directories(tmp / "model_baseline");
  std::filesystem::copy_file(lac_dir() + "/word.dic", tmp / "word.dic");
  std::ofstream(tmp / "tag.dic") << "0\tn-B\n1\tO\n";
  try {
    LacSegmenter::load(tmp.string());
    ADD_FAILURE() << "an empty model_baseline/ loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model_baseline"), std::string::npos) << e.what();
  }
  for (const char* f :
       {"crfw",      "word_emb",  "fc_0.w_0",  "fc_0.b_0",  "fc_1.w_0",  "fc_1.b_0",  "fc_2.w_0",
        "fc_2.b_0",  "fc_3.w_0",  "fc_3.b_0",  "fc_4.w_0",  "fc_4.b_0",  "gru_0.w_0", "gru_0.b_0",
        "gru_1.w_0", "gru_1.b_0", "gru_2.w_0", "gru_2.b_0", "gru_3.w_0", "gru_3.b_0"})
    std::filesystem::copy_file(lac_dir() + "/model_baseline/" + f, tmp / "model_baseline" / f);
  try {
    LacSegmenter::load(tmp.string());  // 2 tags in tag.dic, 57 emissions
    ADD_FAILURE() << "a 2-tag tag.dic loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("57 outputs"), std::string::npos) << e.what();
  }
}

TEST(Lac, FromTheModelRegistry) {
  register_components();
  Config fresh = Config::from_string("model: {name: lac, vocab_size: 30, num_tags: 4, hidden: 3}");
  auto m = models().create_from(fresh, "model", ModelContext{});
  EXPECT_EQ(m->find("crfw").shape(), (Shape{6, 4}));
  EXPECT_EQ(m->find("fc_0.w_0").shape(), (Shape{3, 9}));
  Config bad = Config::from_string("model: {name: lac, pretrained: /nonexistent/lac}");
  EXPECT_THROW(models().create_from(bad, "model", ModelContext{}), Error);
  if (!std::filesystem::exists(lac_dir() + "/model_baseline/crfw")) GTEST_SKIP();
  Config real = Config::from_string("model: {name: lac, pretrained: " + lac_dir() + "}");
  auto lac = models().create_from(real, "model", ModelContext{});
  EXPECT_EQ(lac->find("word_emb").shape(), (Shape{20941, 128}));
}

}  // namespace
}  // namespace oar::nlp
