#pragma once
// A WordPiece vocabulary learned from word counts, the way Hugging Face's WordPieceTrainer does it
// (a BPE trainer whose non-initial symbols carry the "##" prefix):
//   1. the special tokens, in the order given;
//   2. the alphabet: every character of the words (or the `limit_alphabet` most frequent, ties to
//      the smaller code point), in code point order;
//   3. the "##"-prefixed form of each character that occurs inside a word, in the order first
//      met while reading the words in byte order;
//   4. merges: the most frequent adjacent pair of symbols (ties: the pair of smaller ids) becomes
//      a new token, "a" + "##b" -> "ab" and "##a" + "##b" -> "##ab", until the vocabulary has
//      `vocab_size` tokens or the best pair occurs fewer than `min_frequency` times.
// Words are whatever the caller counts (`oar text build-vocab` uses BERT's basic tokenizer).
// Deterministic: the same counts give the same vocabulary (Hugging Face reads words in hash order,
// so the ids of step 3 may differ from it; the set of merges does not).
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace oar::nlp::text {

struct WordPieceTrainerOptions {
  size_t vocab_size = 30000;
  int64_t min_frequency = 0;
  std::vector<std::string> special_tokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  size_t limit_alphabet = 0;  // 0: no limit
  std::string continuing_subword_prefix = "##";
};

// The vocabulary in id order. Words must be valid UTF-8 and non-empty. Throws oar::Error on bad
// options (vocab_size smaller than the special tokens).
std::vector<std::string> train_wordpiece(const std::unordered_map<std::string, int64_t>& words,
                                         const WordPieceTrainerOptions& options);

}  // namespace oar::nlp::text
