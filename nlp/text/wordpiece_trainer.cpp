#include "nlp/text/wordpiece_trainer.h"

#include <algorithm>
#include <map>
#include <queue>

#include "engine/core/error.h"

namespace oar::nlp::text {

namespace {

// Code point and byte length of the UTF-8 character at s[i].
std::pair<uint32_t, size_t> decode(const std::string& s, size_t i) {
  const auto b = static_cast<unsigned char>(s[i]);
  size_t n = b < 0x80 ? 1 : (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : 4;
  n = std::min(n, s.size() - i);
  uint32_t cp = n == 1 ? b : n == 2 ? (b & 0x1F) : n == 3 ? (b & 0x0F) : (b & 0x07);
  for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  return {cp, n};
}

uint64_t key(int32_t a, int32_t b) {
  return (uint64_t(uint32_t(a)) << 32) | uint32_t(b);
}

struct Candidate {
  int64_t count;
  uint64_t pair;
  // Max-heap order: larger count first, then the smaller pair of ids.
  bool operator<(const Candidate& o) const {
    return count != o.count ? count < o.count : pair > o.pair;
  }
};

}  // namespace

std::vector<std::string> train_wordpiece(const std::unordered_map<std::string, int64_t>& words,
                                         const WordPieceTrainerOptions& o) {
  OAR_CHECK(o.vocab_size >= o.special_tokens.size(), "--vocab-size ", o.vocab_size,
            " is smaller than the ", o.special_tokens.size(), " special tokens");
  std::vector<std::string> tokens;
  std::unordered_map<std::string, int32_t> ids;
  const auto add = [&](const std::string& t) {
    auto [it, fresh] = ids.emplace(t, int32_t(tokens.size()));
    if (fresh) tokens.push_back(t);
    return it->second;
  };
  for (const auto& s : o.special_tokens) add(s);

  // Words in byte order, so that everything below is deterministic.
  std::vector<std::pair<std::string, int64_t>> sorted(words.begin(), words.end());
  std::sort(sorted.begin(), sorted.end());

  // The alphabet.
  std::map<uint32_t, std::pair<std::string, int64_t>> chars;
  for (const auto& [w, count] : sorted)
    for (size_t i = 0; i < w.size();) {
      const auto [cp, n] = decode(w, i);
      auto& e = chars[cp];
      if (e.first.empty()) e.first = w.substr(i, n);
      e.second += count;
      i += n;
    }
  std::vector<uint32_t> alphabet;
  for (const auto& [cp, e] : chars) alphabet.push_back(cp);
  if (o.limit_alphabet > 0 && alphabet.size() > o.limit_alphabet) {
    std::stable_sort(alphabet.begin(), alphabet.end(),
                     [&](uint32_t a, uint32_t b) { return chars[a].second > chars[b].second; });
    alphabet.resize(o.limit_alphabet);
    std::sort(alphabet.begin(), alphabet.end());
  }
  std::unordered_map<uint32_t, bool> kept;
  for (const uint32_t cp : alphabet) {
    add(chars[cp].first);
    kept[cp] = true;
  }

  // Words as symbol ids; a character outside a limited alphabet is left out, as Hugging Face does.
  std::vector<std::vector<int32_t>> syms(sorted.size());
  std::vector<int64_t> counts(sorted.size());
  for (size_t w = 0; w < sorted.size(); ++w) {
    const std::string& word = sorted[w].first;
    counts[w] = sorted[w].second;
    bool first = true;
    for (size_t i = 0; i < word.size();) {
      const auto [cp, n] = decode(word, i);
      const std::string c = word.substr(i, n);
      i += n;
      if (!kept.count(cp)) continue;
      syms[w].push_back(first ? ids.at(c) : add(o.continuing_subword_prefix + c));
      first = false;
    }
  }

  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<uint32_t>> where;
  for (size_t w = 0; w < syms.size(); ++w)
    for (size_t i = 0; i + 1 < syms[w].size(); ++i) {
      const uint64_t p = key(syms[w][i], syms[w][i + 1]);
      pair_count[p] += counts[w];
      auto& list = where[p];
      if (list.empty() || list.back() != w) list.push_back(uint32_t(w));
    }
  std::priority_queue<Candidate> queue;
  for (const auto& [p, c] : pair_count)
    if (c > 0) queue.push({c, p});

  const std::string& prefix = o.continuing_subword_prefix;
  std::unordered_map<uint64_t, int64_t> delta;
  while (tokens.size() < o.vocab_size && !queue.empty()) {
    Candidate top = queue.top();
    queue.pop();
    const auto it = pair_count.find(top.pair);
    const int64_t current = it == pair_count.end() ? 0 : it->second;
    if (current != top.count) {  // stale: counts changed since it was queued
      if (current > 0) queue.push({current, top.pair});
      continue;
    }
    if (top.count < 1 || top.count < o.min_frequency) break;
    const auto a = int32_t(top.pair >> 32), b = int32_t(top.pair & 0xFFFFFFFFu);
    const std::string& tb = tokens[size_t(b)];
    const std::string merged =
        tokens[size_t(a)] +
        (tb.compare(0, prefix.size(), prefix) == 0 ? tb.substr(prefix.size()) : tb);
    const int32_t c = add(merged);

    std::vector<uint32_t> list = std::move(where[top.pair]);
    where.erase(top.pair);
    std::sort(list.begin(), list.end());
    list.erase(std::unique(list.begin(), list.end()), list.end());
    delta.clear();
    for (const uint32_t w : list) {
      auto& s = syms[w];
      const int64_t n = counts[w];
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        if (s[i] != a || s[i + 1] != b) continue;
        if (i > 0) {
          delta[key(s[i - 1], a)] -= n;
          delta[key(s[i - 1], c)] += n;
          where[key(s[i - 1], c)].push_back(w);
        }
        if (i + 2 < s.size()) {
          delta[key(b, s[i + 2])] -= n;
          delta[key(c, s[i + 2])] += n;
          where[key(c, s[i + 2])].push_back(w);
        }
        s[i] = c;
        s.erase(s.begin() + std::ptrdiff_t(i) + 1);
      }
    }
    pair_count.erase(top.pair);
    for (const auto& [p, d] : delta) {
      if (p == top.pair) continue;
      int64_t& pc = pair_count[p];
      pc += d;
      if (d > 0) queue.push({pc, p});
    }
  }
  return tokens;
}

}  // namespace oar::nlp::text
