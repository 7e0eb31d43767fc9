#pragma once
// Masked-LM input corruption (BERT, Devlin et al. 2018; whole-word masking; ERNIE 1.0's
// phrase/entity masking, Sun et al. 2019). Tokens are grouped into masking units: a unit is
// chosen with probability mask_prob, and every token of a chosen unit is predicted; each
// predicted token becomes [MASK] (80%), a random token (10%) or stays (10%), decided per token
// as Google's create_pretraining_data.py does. Units:
//   token       every token is its own unit
//   whole_word  a word's WordPieces ("##" continuations join the token before) form one unit
//   phrase      tokens inside one span of the text (a segmenter's word or entity, or a dictionary
//               phrase) form one unit; tokens outside every span are their own units
// Special tokens ([CLS], [SEP], [PAD]) are never chosen. All draws come from the caller's
// generator, so a seeded loader repeats its masks exactly.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "engine/core/generator.h"
#include "nlp/tokenizers/bert_tokenizer.h"

namespace oar::nlp {

struct MaskingOptions {
  double mask_prob = 0.15;      // chance that a unit is chosen
  double replace_mask = 0.8;    // of chosen tokens: -> [MASK]
  double replace_random = 0.1;  // of chosen tokens: -> a random non-special token (rest kept)
  bool at_least_one = true;     // a sequence with candidates always gets one chosen unit
  void validate() const;        // throws oar::Error naming the bad value
};

// Unit id per token; kNoUnit marks a token that is never masked.
inline constexpr int32_t kNoUnit = -1;

// Each non-special token its own unit.
std::vector<int32_t> token_units(std::span<const uint8_t> special);
// WordPiece continuations (`is_continuation[i]`) join the unit of the token before them.
std::vector<int32_t> whole_word_units(std::span<const uint8_t> special,
                                      std::span<const uint8_t> is_continuation);
// Tokens whose byte offsets lie inside one of `spans` ([begin, end) byte ranges of the text,
// sorted, not overlapping) share a unit; other non-special tokens are units of their own.
std::vector<int32_t> span_units(std::span<const uint8_t> special, std::span<const Offset> offsets,
                                std::span<const std::pair<uint32_t, uint32_t>> spans);

struct MaskedSequence {
  std::vector<int32_t> input_ids;  // the corrupted ids
  std::vector<int32_t> labels;     // the original id at predicted positions, -100 elsewhere
};

// Corrupts `ids` (units as above, same length). Random replacements are uniform over
// [0, vocab_size) without `special_ids`.
MaskedSequence mask_sequence(std::span<const int32_t> ids, std::span<const int32_t> units,
                             const MaskingOptions& options, int32_t mask_id, int32_t vocab_size,
                             const std::unordered_set<int32_t>& special_ids, Generator& rng);

// A phrase list for dictionary masking, matched longest-first over code points (forward maximum
// matching). Each line's first whitespace-separated field is a phrase (jieba's dict.txt
// "word freq tag" lines work as they are); phrases of one code point are ignored.
class PhraseDictionary {
 public:
  // Throws oar::Error naming the file when it cannot be read or holds no phrase.
  static PhraseDictionary load(const std::string& path);
  static PhraseDictionary from_phrases(const std::vector<std::string>& phrases);
  // Byte ranges of the dictionary phrases found in `text`, left to right, not overlapping.
  std::vector<std::pair<uint32_t, uint32_t>> spans(std::string_view text) const;
  size_t size() const { return phrases_.size(); }

 private:
  std::unordered_set<std::string> phrases_;
  size_t max_chars_ = 0;  // longest phrase in code points
};

}  // namespace oar::nlp
