// WordPiece vocabulary training: the order of the vocabulary, merges by frequency, ties,
// min_frequency, limit_alphabet, and a trained vocabulary tokenizing its corpus without [UNK].
#include <gtest/gtest.h>

#include <algorithm>
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
