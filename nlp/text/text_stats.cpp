#include "nlp/text/text_stats.h"

#include <unicode/uchar.h>
#include <unicode/utf8.h>

#include <cmath>

namespace oar::nlp::text {

int64_t count_chars(std::string_view s) {
  int64_t n = 0;
  for (const char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

int64_t count_whitespace_tokens(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const auto n = static_cast<int32_t>(s.size());
  int64_t tokens = 0;
  bool in_token = false;
  for (int32_t i = 0; i < n;) {
    UChar32 c;
    U8_NEXT(p, i, n, c);
    const bool space = c >= 0 && u_isUWhiteSpace(c);
    if (!space && !in_token) ++tokens;
    in_token = !space;
  }
  return tokens;
}

void TextStats::add(std::string_view text, int64_t token_count) {
  ++lines;
  bytes += static_cast<int64_t>(text.size());
  const int64_t c = count_chars(text);
  chars += c;
  tokens += token_count;
  ++char_lengths[c];
  ++token_lengths[token_count];
}

void TextStats::merge(const TextStats& o) {
  lines += o.lines;
  bytes += o.bytes;
  chars += o.chars;
  tokens += o.tokens;
  for (const auto& [k, v] : o.char_lengths) char_lengths[k] += v;
  for (const auto& [k, v] : o.token_lengths) token_lengths[k] += v;
  for (const auto& [k, v] : o.labels) labels[k] += v;
  words += o.words;
  oov_words += o.oov_words;
  pieces += o.pieces;
  unk_pieces += o.unk_pieces;
}

int64_t percentile(const std::map<int64_t, int64_t>& histogram, double p) {
  int64_t total = 0;
  for (const auto& [len, count] : histogram) total += count;
  if (total == 0) return 0;
  // Nearest rank: the smallest length with at least ceil(p/100 * total) lines at or below it.
  const auto rank =
      std::max<int64_t>(1, static_cast<int64_t>(std::ceil(p / 100.0 * double(total))));
  int64_t seen = 0;
  for (const auto& [len, count] : histogram) {
    seen += count;
    if (seen >= rank) return len;
  }
  return histogram.rbegin()->first;
}

}  // namespace oar::nlp::text
