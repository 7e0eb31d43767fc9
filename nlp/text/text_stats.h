#pragma once
// `oar text stats`' accumulator: counts of lines, bytes, characters (code points) and tokens;
// length distributions kept as exact histograms (memory grows with the number of distinct
// lengths, not lines); label counts; OOV against a WordPiece vocabulary. One accumulator per
// worker thread, merged at the end.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>

namespace oar::nlp::text {

struct TextStats {
  int64_t lines = 0, bytes = 0, chars = 0, tokens = 0;
  std::map<int64_t, int64_t> char_lengths, token_lengths;  // length -> lines of that length
  std::unordered_map<std::string, int64_t> labels;
  // Against a vocabulary: words of the basic tokenizer not in it as a whole, and WordPiece pieces
  // that are [UNK].
  int64_t words = 0, oov_words = 0, pieces = 0, unk_pieces = 0;

  // Adds one text with its token count.
  void add(std::string_view text, int64_t token_count);
  void merge(const TextStats& other);
};

// Code points of valid UTF-8 `s`.
int64_t count_chars(std::string_view s);
// Whitespace-separated tokens of `s` (ASCII space, TAB, and other Unicode white space).
int64_t count_whitespace_tokens(std::string_view s);
// Nearest-rank percentile p in [0, 100] of a length histogram; 0 when it is empty.
int64_t percentile(const std::map<int64_t, int64_t>& histogram, double p);

}  // namespace oar::nlp::text
