// WordPiece vocabulary training: the order of the vocabulary, merges by frequency, ties,
// min_frequency, limit_alphabet, and a trained vocabulary tokenizing its corpus without [UNK].
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <set>

#include "engine/core/error.h"
#include "nlp/text/wordpiece_trainer.h"
#include "nlp/tokenizers/vocab.h"
#include "nlp/tokenizers/wordpiece.h"

namespace oar::nlp::text {
namespace {

WordPieceTrainerOptions opts(size_t size, int64_t min_freq = 0) {
  WordPieceTrainerOptions o;
  o.vocab_size = size;
  o.min_frequency = min_freq;
  o.special_tokens = {"[PAD]", "[UNK]"};
  return o;
}

TEST(WordPieceTrainer, SpecialsAlphabetPrefixedCharsThenMerges) {
  // Pair counts: (h,##u)=15 [hug 10 + hugs 5], (##u,##g)=20 [hug, pug 5, hugs], (p,##u)=5,
  // (##g,##s)=5. First merge ##u+##g -> ##ug (20); then h+##ug (15); then (p=4, ##ug=10) and
  // (hug=11, ##s=9) tie at 5: the pair of smaller ids wins, so pug comes before hugs.
  const std::unordered_map<std::string, int64_t> words = {{"hug", 10}, {"pug", 5}, {"hugs", 5}};
  const auto v = train_wordpiece(words, opts(100));
  const std::vector<std::string> want = {"[PAD]", "[UNK]", "g",   "h",    "p",   "s",   "u",
                                         "##u",   "##g",   "##s", "##ug", "hug", "pug", "hugs"};
  EXPECT_EQ(v, want);
}

TEST(WordPieceTrainer, VocabSizeAndMinFrequencyStopMerging) {
  const std::unordered_map<std::string, int64_t> words = {{"hug", 10}, {"pug", 5}, {"hugs", 5}};
  EXPECT_EQ(train_wordpiece(words, opts(12)).size(), 12u);
  EXPECT_EQ(train_wordpiece(words, opts(12)).back(), "hug");
  // min_frequency 6: the merges of count 5 do not happen.
  const auto v = train_wordpiece(words, opts(100, 6));
  EXPECT_EQ(v.size(), 12u);
  EXPECT_EQ(v.back(), "hug");
  EXPECT_THROW(train_wordpiece(words, opts(1)), Error);
}

TEST(WordPieceTrainer, LimitAlphabetKeepsTheMostFrequentCharacters) {
  const std::unordered_map<std::string, int64_t> words = {{"aab", 3}, {"z", 1}};
  WordPieceTrainerOptions o = opts(4);
  o.limit_alphabet = 2;
  const auto v = train_wordpiece(words, o);
  // z is dropped; the "##" forms of the kept characters are added even past vocab_size, as in
  // Hugging Face, and no merge happens.
  EXPECT_EQ(v, (std::vector<std::string>{"[PAD]", "[UNK]", "a", "b", "##a", "##b"}));
}

// Against Hugging Face `tokenizers` 0.23.3's WordPieceTrainer
// (data/make_wordpiece_trainer_golden.py): the same tokens, and the same merges in the same order.
// The ids of the "##x" characters are not compared: Hugging Face assigns them in hash order.
TEST(WordPieceTrainer, MatchesHuggingFaceOnAZipfCorpus) {
  const std::string dir = std::string(OAR_SOURCE_DIR) + "/tests/nlp/text/data/";
  std::unordered_map<std::string, int64_t> words;
  std::ifstream in(dir + "zipf_words.tsv");
  ASSERT_TRUE(in) << dir;
  for (std::string line; std::getline(in, line);) {
    const size_t tab = line.find('\t');
    words[line.substr(0, tab)] = std::stoll(line.substr(tab + 1));
  }
  ASSERT_EQ(words.size(), 385u);
  std::vector<std::string> want;
  std::ifstream v(dir + "zipf_vocab100.txt");
  for (std::string line; std::getline(v, line);) want.push_back(line);
  ASSERT_EQ(want.size(), 100u);
  WordPieceTrainerOptions o;
  o.vocab_size = 100;
  const auto got = train_wordpiece(words, o);
  ASSERT_EQ(got.size(), want.size());
  EXPECT_EQ(std::set<std::string>(got.begin(), got.end()),
            std::set<std::string>(want.begin(), want.end()));
  const size_t merges_from = 5 + 10 + 10;  // specials, a-j, ##a-##j
  EXPECT_EQ(std::vector<std::string>(got.begin() + merges_from, got.end()),
            std::vector<std::string>(want.begin() + merges_from, want.end()));
  EXPECT_EQ(std::vector<std::string>(got.begin(), got.begin() + 15),
            std::vector<std::string>(want.begin(), want.begin() + 15));
}

TEST(WordPieceTrainer, TrainedVocabularyCoversItsCorpus) {
  const std::unordered_map<std::string, int64_t> words = {
      {"tokenization", 7}, {"token", 12},  {"tokens", 9}, {"北京", 4},
      {"unbelievable", 2}, {"believe", 5}, {"é", 3}};
  const auto tokens = train_wordpiece(words, opts(60));
  EXPECT_EQ(std::set<std::string>(tokens.begin(), tokens.end()).size(), tokens.size());
  const Vocab vocab = Vocab::from_tokens(tokens);
  const WordPiece wp(vocab);
  for (const auto& [w, c] : words) {
    std::vector<Piece> pieces;
    wp.tokenize(w, pieces);
    for (const auto& p : pieces) EXPECT_NE(p.id, wp.unk_id()) << w;
  }
  // Frequent words became whole tokens.
  EXPECT_GE(vocab.find("token"), 0);
}

}  // namespace
}  // namespace oar::nlp::text
