// Token classification: the MSRA-NER and CoNLL readers (first-sub-token alignment, words without
// tokens, truncation, errors), predictions mapped back to character spans, and a tiny BERT
// that learns the tags of a few sentences.
#include "nlp/tasks/token_classification.h"

#include <gtest/gtest.h>

#include <cmath>

#include "engine/autograd/grad_mode.h"
#include "engine/ops.h"
#include "nlp/readers/tagged_text.h"
#include "tests/support/gradcheck.h"
#include "tiny_bert.h"

namespace oar::nlp {
namespace {

const std::vector<std::string> kLabels{"B-PER", "I-PER", "B-LOC", "I-LOC", "O"};

std::string msra_line(const std::vector<std::string>& chars, const std::vector<std::string>& tags) {
  std::string s;
  for (size_t i = 0; i < chars.size(); ++i) s += (i ? "\x02" : "") + chars[i];
  s += "\t";
  for (size_t i = 0; i < tags.size(); ++i) s += (i ? "\x02" : "") + tags[i];
  return s + "\n";
}

std::string msra_data() {
  return "text_a\tlabel\n" +
         msra_line({"张", "三", "住", "在", "北", "京"},
                   {"B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC"}) +
         msra_line({"李", "四", " ", "在", "上", "海", "工", "作"},
                   {"B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC", "O", "O"}) +
         msra_line({"北", "京", "的", "张", "三"}, {"B-LOC", "I-LOC", "O", "B-PER", "I-PER"});
}

TEST(TaggedTextTest, MsraAlignsFirstSubTokensAndKeepsEmptyWords) {
  test::TinyVocabDir d("ner_msra");
  TaggedTextOptions o;
  o.labels = kLabels;
  TaggedTextDataset ds(d.write("train.tsv", msra_data()), d.tokenizer(), o);
  ASSERT_EQ(ds.size(), 3);
  const auto& s = ds.sentence(1);
  EXPECT_EQ(s.text, "李四 在上海工作");
  // the space has no token: it keeps its place (-1) and the next word follows
  EXPECT_EQ(s.first_token, (std::vector<int64_t>{1, 2, -1, 3, 4, 5, 6, 7}));
  EXPECT_EQ(s.spans[3], (std::pair<int64_t, int64_t>{3, 4}));
  EXPECT_EQ(s.tags, (std::vector<int64_t>{0, 1, 4, 4, 2, 3, 4, 4}));

  std::vector<readers::Example> ex;
  Generator g(0);
  for (int64_t i = 0; i < 3; ++i) ex.push_back(ds.get(i, g));
  Batch b = ds.collate(ex);
  EXPECT_EQ(b["input_ids"].size(1), 9);  // [CLS] 7 tokens [SEP]
  EXPECT_EQ(b["word_pos"].select(0, 1).to_vector<int64_t>(),
            (std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(b["word_index"].select(0, 1).to_vector<int64_t>(),
            (std::vector<int64_t>{0, 1, 3, 4, 5, 6, 7}));
  EXPECT_EQ(b["tags"].select(0, 2).to_vector<int64_t>(),
            (std::vector<int64_t>{2, 3, 4, 0, 1, -1, -1}));
  EXPECT_EQ(b["word_tags"].select(0, 0).to_vector<int64_t>(),
            (std::vector<int64_t>{0, 1, 4, 4, 2, 3, -1, -1}));
}

TEST(TaggedTextTest, ConllSubwordsTruncationAndErrors) {
  test::TinyVocabDir d("ner_conll");
  TaggedTextOptions o;
  o.format = TagFormat::conll;
  o.labels = kLabels;
  o.max_seq_len = 6;  // [CLS] + 4 tokens + [SEP]
  const std::string conll =
      "-DOCSTART- -X- O O\n\nJohn NNP B-PER\nplaying VBG O\nin IN O\nParis NNP B-LOC\n\n"
      "the DT O\ncat NN O\n";
  TaggedTextDataset ds(d.write("a.conll", conll), d.tokenizer(), o);
  ASSERT_EQ(ds.size(), 2);
  const auto& s = ds.sentence(0);
  EXPECT_EQ(s.text, "John playing in Paris");
  // john | play ##ing | in | (paris does not fit)
  EXPECT_EQ(s.first_token, (std::vector<int64_t>{1, 2, 4, -1}));
  EXPECT_EQ(s.spans[3], (std::pair<int64_t, int64_t>{16, 21}));

  EXPECT_THROW(TaggedTextDataset(d.write("b.conll", "John B-XYZ\n"), d.tokenizer(), o), Error);
  EXPECT_THROW(TaggedTextDataset(d.write("c.conll", "John B-PER\nruns\n"), d.tokenizer(), o),
               Error);
  o.format = TagFormat::msra;
  try {
    TaggedTextDataset(d.write("d.tsv", "张\x02三\tB-PER\n"), d.tokenizer(), o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("d.tsv:1: 2 words but 1 tags"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(TaggedTextDataset((d.dir / "missing.tsv").string(), d.tokenizer(), o), Error);
}

TEST(TokenClassificationTest, EntitySpansAreCharacterOffsets) {
  // words 张 三 住 在 北 京 (one code point each, 3 bytes each in UTF-8)
  std::vector<std::pair<int64_t, int64_t>> spans;
  for (int64_t i = 0; i < 6; ++i) spans.emplace_back(i, i + 1);
  const auto es =
      entity_spans({"B-PER", "I-PER", "O", "O", "I-LOC", "I-LOC"}, spans, "张三住在北京");
  ASSERT_EQ(es.size(), 2u);
  EXPECT_EQ(es[0].type, "PER");
  EXPECT_EQ(es[0].start, 0);
  EXPECT_EQ(es[0].end, 2);
  EXPECT_EQ(es[0].text, "张三");
  EXPECT_EQ(es[1].type, "LOC");  // I- after O starts a chunk
  EXPECT_EQ(es[1].start, 4);
  EXPECT_EQ(es[1].text, "北京");
  // CoNLL words joined by spaces: a chunk spans from its first word to its last
  const auto en = entity_spans({"O", "B-LOC", "I-LOC"}, {{0, 2}, {3, 6}, {7, 12}}, "in New York");
  ASSERT_EQ(en.size(), 1u);
  EXPECT_EQ(en[0].text, "New York");
  EXPECT_EQ(en[0].start, 3);
  EXPECT_EQ(en[0].end, 12);
}

TEST(TokenHeadTest, SoftmaxLossGradientAndDecoding) {
  auto head = make_token_head({"softmax", kLabels});
  const Tensor tags = tensor(std::vector<int64_t>{0, 1, 4, 2, -1, -1}, {2, 3});
  const Tensor mask = tensor(std::vector<int64_t>{1, 1, 1, 1, 0, 0}, {2, 3});
  auto f = [&](const std::vector<Tensor>& x) { return head->loss(x[0], tags, mask); };
  const std::vector<Tensor> xs{testing::rand_input({2, 3, 5}, 11)};
  EXPECT_GRADCHECK(f, xs);
  Tensor e = zeros({2, 3, 5});
  const Tensor dec = head->decode(add(e, tensor(std::vector<float>{0, 0, 0, 1, 0}, {5})), mask);
  EXPECT_EQ(dec.to_vector<int64_t>(), (std::vector<int64_t>{3, 3, 3, 3, -1, -1}));
}

TEST(TokenHeadTest, CrfLossGradientConstraintsAndEmptyRows) {
  auto head = make_token_head({"crf", kLabels, 3});
  EXPECT_TRUE(head->find("crf.transitions").defined());
  // row 1 has no scored word: it adds nothing and decodes to padding
  const Tensor tags = tensor(std::vector<int64_t>{0, 1, 4, -1, -1, -1}, {2, 3});
  const Tensor mask = tensor(std::vector<int64_t>{1, 1, 1, 0, 0, 0}, {2, 3});
  auto f = [&](const std::vector<Tensor>& x) { return head->loss(x[0], tags, mask); };
  const std::vector<Tensor> xs{testing::rand_input({2, 3, 5}, 12)};
  EXPECT_GRADCHECK(f, xs);
  EXPECT_GT(f(xs).item<double>(), 0.0);
  // emissions that favour O then I-PER: I-PER may not follow O under BIO, so the CRF avoids it
  std::vector<float> e(2 * 3 * 5, 0.f);
  e[4] = 3;         // word 0: O
  e[5 + 1] = 3;     // word 1: I-PER (forbidden after O)
  e[5 + 0] = 2.5f;  // ... B-PER nearly as good
  e[10 + 4] = 3;    // word 2: O
  const Tensor dec = head->decode(tensor(e, {2, 3, 5}), mask);
  EXPECT_EQ(dec.to_vector<int64_t>(), (std::vector<int64_t>{4, 0, 4, -1, -1, -1}));
  auto soft = make_token_head({"softmax", kLabels});
  EXPECT_EQ(soft->decode(tensor(e, {2, 3, 5}), mask).to_vector<int64_t>()[1], 1);
}

TEST(TokenClassificationTest, RejectsBadOptions) {
  TokenClassificationOptions o;
  o.labels = {"B-PER", "I-PER"};
  EXPECT_THROW(TokenClassificationTask(test::tiny_bert(), o), Error);  // no O
  o.labels = kLabels;
  o.head = "crf2";
  EXPECT_THROW(TokenClassificationTask(test::tiny_bert(), o), Error);
  o.head = "softmax";
  o.labels = {"X-PER", "O"};
  EXPECT_THROW(TokenClassificationTask(test::tiny_bert(), o), Error);
}

class TokenClassificationLearns : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenClassificationLearns, TagsAndPredictsSpans) {
  test::TinyVocabDir d("ner_train");
  TaggedTextOptions ro;
  ro.labels = kLabels;
  TaggedTextDataset ds(d.write("train.tsv", msra_data()), d.tokenizer(), ro);
  std::vector<readers::Example> ex;
  Generator g(0);
  for (int64_t i = 0; i < 3; ++i) ex.push_back(ds.get(i, g));
  Batch b = ds.collate(ex);

  TokenClassificationOptions o;
  o.labels = kLabels;
  o.dropout = 0;
  o.head = GetParam();
  TokenClassificationTask task(test::tiny_bert(), o);
  EXPECT_TRUE(task.model().find("classifier.weight").defined());
  const auto losses = test::train_steps(task, b, 35);
  if (o.head == "softmax") {
    EXPECT_NEAR(losses.front(), std::log(5.0), 0.1);  // small init: near-uniform
  }
  EXPECT_LT(losses.back(), 0.2 * losses.front());

  NoGradGuard ng;
  const Outputs out = task.forward(b);
  // the space word (no token) is predicted O; padding stays -1
  EXPECT_EQ(out.at("word_pred").select(0, 1).to_vector<int64_t>()[2], 4);
  EXPECT_EQ(out.at("word_pred").select(0, 2).to_vector<int64_t>()[5], -1);
  auto metrics = task.metrics();
  for (auto& m : metrics) m->update(out, b);
  EXPECT_DOUBLE_EQ(metrics[0]->compute()[2].second, 1.0);  // chunk F1 after fitting
  const auto recs = task.predict(out, b);
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[1].at("text").as_string(), "李四 在上海工作");
  const auto& ents = recs[1].at("entities").as_array();
  ASSERT_EQ(ents.size(), 2u);
  EXPECT_EQ(ents[0].at("text").as_string(), "李四");
  EXPECT_EQ(ents[1].at("type").as_string(), "LOC");
  EXPECT_EQ(ents[1].at("start").as_int(), 4);  // code points: 李 四 ␠ 在 上
  EXPECT_EQ(ents[1].at("end").as_int(), 6);
  EXPECT_EQ(ents[1].at("text").as_string(), "上海");
  EXPECT_EQ(recs[1].at("gold_entities").dump(), recs[1].at("entities").dump());
}

INSTANTIATE_TEST_SUITE_P(Heads, TokenClassificationLearns, ::testing::Values("softmax", "crf"));

}  // namespace
}  // namespace oar::nlp
