// Span extraction: SQuAD/CMRC JSON into doc-stride windows with start/end labels, n-best
// decoding across windows back to the original context, and a tiny BERT that learns answers.
#include "nlp/tasks/span_extraction.h"

#include <gtest/gtest.h>

#include <cmath>

#include "engine/autograd/grad_mode.h"
#include "engine/ops.h"
#include "nlp/readers/squad.h"
#include "tests/support/gradcheck.h"
#include "tiny_bert.h"

namespace oar::nlp {
namespace {

// context: "John lives in Paris. The cat sat on the mat." (answer_start counts characters)
const char* kSquad = R"({"version": "1.1", "data": [{"title": "t", "paragraphs": [
  {"context": "John lives in Paris. The cat sat on the mat.",
   "qas": [{"id": "q1", "question": "where does john live?",
            "answers": [{"text": "Paris", "answer_start": 14}, {"text": "in Paris", "answer_start": 11}]},
           {"id": "q2", "question": "what sat on the mat?",
            "answers": [{"text": "The cat", "answer_start": 21}]},
           {"id": "q3", "question": "who is the dog?", "answers": [], "is_impossible": true}]}]}]})";

// CMRC 2018 style: Chinese, answer_start one character off (as some CMRC entries are)
const char* kCmrc =
    R"({"data": [{"paragraphs": [{"id": "p", "context": "张三住在北京，李四住在上海。",
  "qas": [{"id": "c1", "question": "张三住在哪里？", "answers": [{"text": "北京", "answer_start": 5}]},
          {"id": "c2", "question": "谁住在上海？", "answers": [{"text": "李四", "answer_start": 7}]}]}]}]})";

Batch batch_of(const SquadDataset& ds) {
  std::vector<readers::Example> ex;
  Generator g(0);
  for (int64_t i = 0; i < ds.size(); ++i) ex.push_back(ds.get(i, g));
  return ds.collate(ex);
}

TEST(SquadReaderTest, WindowsAndLabels) {
  test::TinyVocabDir d("squad_read");
  SquadOptions o;
  o.max_seq_len = 16;  // question (5-6 tokens) + 3 specials leaves 7-8 context tokens
  o.doc_stride = 4;
  SquadDataset ds(d.write("train.json", kSquad), d.tokenizer(), o);
  ASSERT_EQ(ds.size(), 3);
  // context tokens: john lives in paris . the cat sat on the mat . (12)
  const auto& q1 = ds.item(0);
  EXPECT_EQ(q1.answers, (std::vector<std::string>{"Paris", "in Paris"}));
  // question "where does john live ?" = 5 tokens ("live" is [UNK]) -> 8 context tokens a window
  ASSERT_EQ(q1.windows.size(), 2u);  // [0, 8), [4, 12)
  // window 0: [CLS] q(5) [SEP] at 0..6, context from 7; paris is context token 3
  EXPECT_EQ(q1.windows[0].start, 10);
  EXPECT_EQ(q1.windows[0].stop, 10);
  EXPECT_EQ(q1.windows[0].begin[10], 14);  // byte offsets into the context
  EXPECT_EQ(q1.windows[0].end[10], 19);
  EXPECT_EQ(q1.windows[1].start, 0);          // the answer is outside window 1: [CLS]
  EXPECT_EQ(ds.item(2).windows[0].start, 0);  // impossible
  EXPECT_TRUE(ds.item(2).impossible);

  Batch b = batch_of(ds);
  EXPECT_EQ(b.size, 3);
  const int64_t t = b["input_ids"].size(0);
  EXPECT_EQ(t, static_cast<int64_t>(q1.windows.size() + ds.item(1).windows.size() +
                                    ds.item(2).windows.size()));
  EXPECT_EQ(b["window_example"].to_vector<int64_t>().front(), 0);
  EXPECT_EQ(b["window_example"].to_vector<int64_t>().back(), 2);
  EXPECT_EQ(b["offset_begin"].select(0, 0).to_vector<int64_t>()[0], -1);  // [CLS]

  SquadDataset cm(d.write("cmrc.json", kCmrc), d.tokenizer(), SquadOptions{});
  const auto& c1 = cm.item(0);
  ASSERT_EQ(c1.windows.size(), 1u);
  // [CLS] 张三住在哪里？→ 张 三 住 在 哪 里 [UNK] (7) [SEP] = 9; 北 is context token 4
  EXPECT_EQ(c1.windows[0].start, 13);
  EXPECT_EQ(c1.windows[0].stop, 14);

  EXPECT_THROW(SquadDataset(d.write("bad.json", R"({"data": [{"paragraphs": [{"qas": []}]}]})"),
                            d.tokenizer(), o),
               Error);
  EXPECT_THROW(SquadDataset(d.write("bad2.json", R"({"data": [)"), d.tokenizer(), o), Error);
  o.max_seq_len = 8;  // no room for the context
  EXPECT_THROW(SquadDataset(d.write("t.json", kSquad), d.tokenizer(), o), Error);
}

TEST(SpanDecodeTest, NBestAcrossWindowsByHand) {
  const std::string context = "aa bb cc dd";
  // two windows of 5 positions: [CLS] + 3 context tokens + [SEP]
  const int64_t b0[] = {-1, 0, 3, 6, -1}, e0[] = {-1, 2, 5, 8, -1};
  const int64_t b1[] = {-1, 3, 6, 9, -1}, e1[] = {-1, 5, 8, 11, -1};
  const float s0[] = {0, 1, 5, 0, 9}, t0[] = {0, 0, 0, 4, 9};  // [SEP] scores are ignored
  const float s1[] = {1, 0, 2, 6, 0}, t1[] = {0, 7, 0, 1, 0};  // end before start: ignored
  std::vector<WindowLogits> w{{s0, t0, b0, e0, 5}, {s1, t1, b1, e1, 5}};
  SpanDecodeOptions o;
  SpanDecoding d = decode_spans(w, context, o);
  // window 0: start "bb"(5) + end "cc"(4) = 9; window 1: start "dd"(6) + end "dd"(1) = 7
  EXPECT_EQ(d.answer.text, "bb cc");
  EXPECT_DOUBLE_EQ(d.answer.score, 9.0);
  EXPECT_EQ(d.nbest[1].text, "dd");
  EXPECT_DOUBLE_EQ(d.null_score, 0.0);  // min of the [CLS] scores 0 and 1
  o.max_answer_length = 1;
  d = decode_spans(w, context, o);
  EXPECT_EQ(d.answer.text, "dd");  // "bb cc" is two tokens
  o.max_answer_length = 30;
  o.allow_impossible = true;
  const float s2[] = {20, 1, 5, 0, 9};
  std::vector<WindowLogits> w2{{s2, t0, b0, e0, 5}};
  d = decode_spans(w2, context, o);
  EXPECT_EQ(d.answer.text, "");  // null 20 beats 9
  EXPECT_EQ(d.nbest[0].text, "bb cc");
}

TEST(SpanExtractionTest, LossIsTheMeanOfStartAndEndCrossEntropy) {
  SpanExtractionTask task(test::tiny_bert(), SpanExtractionOptions{});
  Batch b;
  b.tensors["start_positions"] = tensor(std::vector<int64_t>{2, 0, 5}, {3});
  b.tensors["end_positions"] = tensor(std::vector<int64_t>{3, 0, 5}, {3});
  auto f = [&](const std::vector<Tensor>& x) {
    return task.loss({{"start_logits", x[0]}, {"end_logits", x[1]}}, b);
  };
  const std::vector<Tensor> xs{testing::rand_input({3, 6}, 5), testing::rand_input({3, 6}, 6)};
  EXPECT_GRADCHECK(f, xs);
  // uniform logits: each cross entropy is log 6
  EXPECT_NEAR(f({zeros({3, 6}), zeros({3, 6})}).item<double>(), std::log(6.0), 1e-6);
}

TEST(SpanExtractionTest, LearnsAnswersAndScoresThem) {
  test::TinyVocabDir d("squad_train");
  SquadOptions ro;
  ro.max_seq_len = 16;
  ro.doc_stride = 4;
  SquadDataset ds(d.write("train.json", kSquad), d.tokenizer(), ro);
  Batch b = batch_of(ds);
  SpanExtractionOptions o;
  SpanExtractionTask task(test::tiny_bert(2), o);
  EXPECT_TRUE(task.model().find("qa_outputs.weight").defined());
  const auto losses = test::train_steps(task, b, 35);
  EXPECT_NEAR(losses.front(), std::log(16.0), 0.3);  // near-uniform over ~16 positions
  EXPECT_LT(losses.back(), 0.2 * losses.front());

  NoGradGuard ng;
  const Outputs out = task.forward(b);
  const auto recs = task.predict(out, b);
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[0].at("id").as_string(), "q1");
  EXPECT_EQ(recs[0].at("answer").as_string(), "Paris");  // cut from the original (cased) text
  EXPECT_EQ(recs[0].at("start").as_int(), 14);
  EXPECT_EQ(recs[1].at("answer").as_string(), "The cat");
  auto m = task.metrics();
  m[0]->update(out, b);
  // q1, q2 exact; q3 is impossible (gold "") but SQuAD 1.1 decoding always answers: EM 0
  EXPECT_NEAR(m[0]->compute()[0].second, 2.0 / 3.0, 1e-12);
}

}  // namespace
}  // namespace oar::nlp
