// Masked-LM masking: rates within binomial bounds on a seeded large draw, BERT's 80/10/10 split,
// special tokens never chosen, whole words and phrases masked as one unit, the phrase dictionary's
// longest match, LAC phrases, and draws that repeat with the generator.
#include "nlp/masking/masking.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>

#include "nlp/masking/masked_text.h"
#include "nlp/models/lac.h"
#include "tests/nlp/tasks/tiny_bert.h"

namespace oar::nlp {
namespace {

// |observed - n p| within 5 standard deviations of Binomial(n, p).
void expect_binomial(double count, double n, double p, const char* what) {
  const double sd = std::sqrt(n * p * (1 - p));
  EXPECT_LE(std::fabs(count - n * p), 5 * sd)
      << what << ": " << count << " of " << n << ", expected p = " << p;
}

TEST(MaskingTest, RatesAndEightyTenTen) {
  const int32_t vocab = 1000, mask_id = 4;
  const std::unordered_set<int32_t> special{0, 2, 3, 4};
  Generator g(123);
  std::vector<int32_t> ids(200000);
  for (auto& t : ids) t = 5 + static_cast<int32_t>(g.next_u64() % (vocab - 5));
  const std::vector<uint8_t> flags(ids.size(), 0);
  const auto units = token_units(flags);
  MaskingOptions o;
  Generator rng(7);
  const MaskedSequence m = mask_sequence(ids, units, o, mask_id, vocab, special, rng);
  double chosen = 0, masked = 0, kept = 0, random = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (m.labels[i] < 0) {
      EXPECT_EQ(m.input_ids[i], ids[i]);
      continue;
    }
    EXPECT_EQ(m.labels[i], ids[i]);
    chosen += 1;
    if (m.input_ids[i] == mask_id) {
      masked += 1;
    } else if (m.input_ids[i] == ids[i]) {
      kept += 1;
    } else {
      random += 1;
      EXPECT_FALSE(special.count(m.input_ids[i]));
    }
  }
  expect_binomial(chosen, double(ids.size()), 0.15, "chosen");
  expect_binomial(masked, chosen, 0.8, "[MASK]");
  // A random draw equals the original with chance 1/996.
  expect_binomial(random, chosen, 0.1 * (1 - 1.0 / 996), "random");
  expect_binomial(kept, chosen, 0.1 + 0.1 / 996, "kept");

  // Other shares and rates are honoured too.
  o.mask_prob = 0.4;
  o.replace_mask = 1.0;
  o.replace_random = 0.0;
  const MaskedSequence all = mask_sequence(ids, units, o, mask_id, vocab, special, rng);
  double n40 = 0;
  for (size_t i = 0; i < ids.size(); ++i)
    if (all.labels[i] >= 0) {
      n40 += 1;
      EXPECT_EQ(all.input_ids[i], mask_id);
    }
  expect_binomial(n40, double(ids.size()), 0.4, "mask_prob 0.4");
}

TEST(MaskingTest, SpecialTokensNeverChosenAndDrawsRepeat) {
  // [CLS] a b [SEP] c d [SEP] [PAD] [PAD]
  const std::vector<int32_t> ids{2, 10, 11, 3, 12, 13, 3, 0, 0};
  const std::vector<uint8_t> special{1, 0, 0, 1, 0, 0, 1, 1, 1};
  const auto units = token_units(special);
  EXPECT_EQ(units, (std::vector<int32_t>{-1, 0, 1, -1, 2, 3, -1, -1, -1}));
  MaskingOptions o;
  o.mask_prob = 0.9;
  int64_t seen = 0;
  for (uint64_t seed = 0; seed < 2000; ++seed) {
    Generator a(seed), b(seed);
    const MaskedSequence m = mask_sequence(ids, units, o, 4, 20, {0, 2, 3, 4}, a);
    const MaskedSequence again = mask_sequence(ids, units, o, 4, 20, {0, 2, 3, 4}, b);
    EXPECT_EQ(m.input_ids, again.input_ids);
    EXPECT_EQ(m.labels, again.labels);
    for (size_t i = 0; i < ids.size(); ++i) {
      if (special[i]) {
        EXPECT_EQ(m.labels[i], -100);
        EXPECT_EQ(m.input_ids[i], ids[i]);
      } else if (m.labels[i] >= 0) {
        ++seen;
        EXPECT_NE(m.input_ids[i], 0);
        EXPECT_NE(m.input_ids[i], 2);
        EXPECT_NE(m.input_ids[i], 3);
      }
    }
  }
  EXPECT_GT(seen, 6000);
  // A short sequence still gets one masked token.
  o.mask_prob = 0.001;
  for (uint64_t seed = 0; seed < 50; ++seed) {
    Generator g(seed);
    const MaskedSequence m = mask_sequence(ids, units, o, 4, 20, {0, 2, 3, 4}, g);
    int n = 0;
    for (int32_t l : m.labels) n += l >= 0;
    EXPECT_GE(n, 1);
  }
  o.mask_prob = 0;
  EXPECT_THROW(o.validate(), Error);
  o.mask_prob = 0.15;
  o.replace_random = 0.5;
  EXPECT_THROW(o.validate(), Error);
}

// Every unit's tokens are all predicted or none, over many draws; returns how many draws chose
// some multi-token unit (so the check is not vacuous).
int64_t expect_units_intact(const MaskedTextDataset& ds, int64_t index) {
  const auto& units = ds.units(index);
  int64_t multi = 0;
  for (uint64_t seed = 0; seed < 500; ++seed) {
    Generator g(seed);
    readers::Example ex = ds.get(index, g);
    const auto labels = ex.fields.at("mlm_labels").to_vector<int64_t>();
    std::map<int32_t, std::pair<int, int>> by_unit;  // unit -> (tokens, predicted)
    for (size_t i = 0; i < units.size(); ++i) {
      if (units[i] == kNoUnit) {
        EXPECT_EQ(labels[i], -100);
        continue;
      }
      by_unit[units[i]].first += 1;
      by_unit[units[i]].second += labels[i] >= 0;
    }
    for (const auto& [u, c] : by_unit) {
      EXPECT_TRUE(c.second == 0 || c.second == c.first) << "unit " << u << " split";
      if (c.first > 1 && c.second == c.first) ++multi;
    }
  }
  return multi;
}

TEST(MaskingTest, WholeWordKeepsWordPiecesTogether) {
  test::TinyVocabDir d("wwm");
  MaskedTextOptions o;
  o.unit = MaskingUnit::whole_word;
  o.masking.mask_prob = 0.3;
  MaskedTextDataset ds(std::vector<std::string>{"", "the cat playing on the mat playing", "  "},
                       d.tokenizer(), o, "lines");
  ASSERT_EQ(ds.size(), 1);
  // [CLS] the cat play ##ing on the mat play ##ing [SEP]
  EXPECT_EQ(ds.units(0), (std::vector<int32_t>{-1, 0, 1, 2, 2, 3, 4, 5, 6, 6, -1}));
  EXPECT_GT(expect_units_intact(ds, 0), 50);
  o.unit = MaskingUnit::token;
  MaskedTextDataset tokens(std::vector<std::string>{"the cat playing"}, d.tokenizer(), o, "lines");
  EXPECT_EQ(tokens.units(0), (std::vector<int32_t>{-1, 0, 1, 2, 3, -1}));
}

TEST(MaskingTest, DictionaryPhrasesLongestFirst) {
  const PhraseDictionary dict =
      PhraseDictionary::from_phrases({"北京", "北京人", "张三", "住", "在北"});
  EXPECT_EQ(dict.size(), 4u);  // "住" is one character
  // 张三 住 在 北京人: "在北" would match at 在 but forward maximum matching takes 张三 then
  // 在北 (longest at that position), leaving 京人.
  const std::string text = "张三住在北京人";
  const auto spans = dict.spans(text);
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(text.substr(spans[0].first, spans[0].second - spans[0].first), "张三");
  EXPECT_EQ(text.substr(spans[1].first, spans[1].second - spans[1].first), "在北");
  const auto s2 = dict.spans("住北京人x");
  ASSERT_EQ(s2.size(), 1u);
  EXPECT_EQ(s2[0], (std::pair<uint32_t, uint32_t>{3, 12}));  // 北京人, not 北京

  test::TinyVocabDir d("phrase");
  const std::string file = d.write("dict.txt", "张三 100 nr\n北京 50 ns\n\n上海 3\n");
  MaskedTextOptions o;
  o.unit = MaskingUnit::phrase;
  o.masking.mask_prob = 0.3;
  o.dictionary = std::make_shared<PhraseDictionary>(PhraseDictionary::load(file));
  MaskedTextDataset ds(std::vector<std::string>{"张三住在北京"}, d.tokenizer(), o, "lines");
  // [CLS] 张 三 住 在 北 京 [SEP]
  EXPECT_EQ(ds.units(0), (std::vector<int32_t>{-1, 0, 0, 1, 2, 3, 3, -1}));
  EXPECT_GT(expect_units_intact(ds, 0), 50);

  EXPECT_THROW(PhraseDictionary::load(d.write("empty.txt", "住\n在\n")), Error);
  EXPECT_THROW(PhraseDictionary::load("/nonexistent/dict.txt"), Error);
  MaskedTextOptions none;
  none.unit = MaskingUnit::phrase;
  EXPECT_THROW(MaskedTextDataset(std::vector<std::string>{"张三"}, d.tokenizer(), none, "x"),
               Error);
  EXPECT_THROW(MaskedTextDataset(std::vector<std::string>{"", " "}, d.tokenizer(), {}, "x"), Error);
  EXPECT_THROW(MaskedTextDataset("/nonexistent/text.txt", d.tokenizer(), {}), Error);
}

TEST(MaskingTest, LacPhrasesFromTheSegmenter) {
  const std::string dir = "/usr/lib/python3/dist-packages/jieba/lac_small";
  if (!std::filesystem::exists(dir + "/model_baseline/crfw"))
    GTEST_SKIP() << dir << " absent (Debian python3-jieba)";
  test::TinyVocabDir d("lac");
  MaskedTextOptions o;
  o.unit = MaskingUnit::phrase;
  o.masking.mask_prob = 0.3;
  o.segmenter = std::make_shared<LacSegmenter>(LacSegmenter::load(dir));
  const std::string line = "张三住在北京";
  const auto words = o.segmenter->segment({line})[0];
  MaskedTextDataset ds(std::vector<std::string>{line}, d.tokenizer(), o, "lines");
  // Tokens of one LAC word of two or more characters share a unit; the rest stand alone.
  std::vector<int32_t> expect{-1};
  int32_t next = 0;
  for (const LacWord& w : words) {
    const size_t chars = LacSegmenter::characters(w.text).size();
    for (size_t c = 0; c < chars; ++c) expect.push_back(chars >= 2 ? next : next + int32_t(c));
    next += chars >= 2 ? 1 : int32_t(chars);
  }
  expect.push_back(-1);
  EXPECT_EQ(ds.units(0), expect);
  EXPECT_GT(expect_units_intact(ds, 0), 10);
}

TEST(MaskingTest, ReaderBatchesAndTsvColumn) {
  test::TinyVocabDir d("mlmtsv");
  MaskedTextOptions o;
  o.tsv_column = "text_a";
  o.masking.mask_prob = 0.5;
  const std::string f = d.write("t.tsv", "label\ttext_a\n1\tthe cat sat\n0\tjohn lives in paris\n");
  MaskedTextDataset ds(f, d.tokenizer(), o);
  ASSERT_EQ(ds.size(), 2);
  Generator g(1);
  std::vector<readers::Example> ex{ds.get(0, g), ds.get(1, g)};
  const auto l0 = ex[0].fields.at("mlm_labels").to_vector<int64_t>();
  const auto l1 = ex[1].fields.at("mlm_labels").to_vector<int64_t>();
  Batch b = ds.collate(ex);
  EXPECT_EQ(b["input_ids"].shape(), (Shape{2, 6}));
  EXPECT_EQ(b["attention_mask"].select(0, 0).to_vector<int64_t>(),
            (std::vector<int64_t>{1, 1, 1, 1, 1, 0}));
  std::vector<int64_t> pos, lab;
  for (size_t j = 0; j < l0.size(); ++j)
    if (l0[j] >= 0) pos.push_back(int64_t(j)), lab.push_back(l0[j]);
  for (size_t j = 0; j < l1.size(); ++j)
    if (l1[j] >= 0) pos.push_back(6 + int64_t(j)), lab.push_back(l1[j]);
  EXPECT_EQ(b["mlm_positions"].to_vector<int64_t>(), pos);
  EXPECT_EQ(b["mlm_labels"].to_vector<int64_t>(), lab);
  o.tsv_column = "text";
  EXPECT_THROW(MaskedTextDataset(f, d.tokenizer(), o), Error);
}

}  // namespace
}  // namespace oar::nlp
