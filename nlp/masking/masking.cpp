#include "nlp/masking/masking.h"

#include <algorithm>
#include <fstream>

#include "engine/core/error.h"

namespace oar::nlp {

namespace {

// Bytes of the UTF-8 code point starting with `lead` (an invalid lead byte counts as one).
size_t utf8_len(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead >> 5) == 0x6) return 2;
  if ((lead >> 4) == 0xE) return 3;
  if ((lead >> 3) == 0x1E) return 4;
  return 1;
}

}  // namespace

void MaskingOptions::validate() const {
  OAR_CHECK(mask_prob > 0 && mask_prob <= 1, "masking: mask_prob must be in (0, 1], got ",
            mask_prob);
  OAR_CHECK(replace_mask >= 0 && replace_random >= 0 && replace_mask + replace_random <= 1,
            "masking: replace_mask (", replace_mask, ") and replace_random (", replace_random,
            ") must be non-negative and sum to at most 1");
}

std::vector<int32_t> token_units(std::span<const uint8_t> special) {
  std::vector<int32_t> units(special.size(), kNoUnit);
  int32_t next = 0;
  for (size_t i = 0; i < special.size(); ++i)
    if (!special[i]) units[i] = next++;
  return units;
}

std::vector<int32_t> whole_word_units(std::span<const uint8_t> special,
                                      std::span<const uint8_t> is_continuation) {
  OAR_CHECK(special.size() == is_continuation.size(), "whole_word_units: ", special.size(),
            " special flags for ", is_continuation.size(), " tokens");
  std::vector<int32_t> units(special.size(), kNoUnit);
  int32_t next = 0;
  for (size_t i = 0; i < special.size(); ++i) {
    if (special[i]) continue;
    const bool joins = is_continuation[i] && i > 0 && units[i - 1] != kNoUnit;
    units[i] = joins ? units[i - 1] : next++;
  }
  return units;
}

std::vector<int32_t> span_units(std::span<const uint8_t> special, std::span<const Offset> offsets,
                                std::span<const std::pair<uint32_t, uint32_t>> spans) {
  OAR_CHECK(special.size() == offsets.size(), "span_units: ", special.size(), " special flags for ",
            offsets.size(), " offsets");
  std::vector<int32_t> units(special.size(), kNoUnit);
  int32_t next = 0;
  size_t s = 0;       // first span that may still contain a token
  int64_t open = -1;  // the span index of the previous token's unit, -1 if none
  int32_t open_unit = kNoUnit;
  for (size_t i = 0; i < special.size(); ++i) {
    if (special[i]) {
      open = -1;
      continue;
    }
    const Offset o = offsets[i];
    while (s < spans.size() && spans[s].second <= o.begin) ++s;
    const bool inside = s < spans.size() && spans[s].first <= o.begin && o.end <= spans[s].second;
    if (inside && open == static_cast<int64_t>(s)) {
      units[i] = open_unit;
    } else {
      units[i] = next++;
      open = inside ? static_cast<int64_t>(s) : -1;
      open_unit = units[i];
    }
  }
  return units;
}

MaskedSequence mask_sequence(std::span<const int32_t> ids, std::span<const int32_t> units,
                             const MaskingOptions& o, int32_t mask_id, int32_t vocab_size,
                             const std::unordered_set<int32_t>& special_ids, Generator& rng) {
  OAR_CHECK(ids.size() == units.size(), "mask_sequence: ", ids.size(), " ids for ", units.size(),
            " units");
  OAR_CHECK(vocab_size > static_cast<int32_t>(special_ids.size()),
            "mask_sequence: a vocabulary of ", vocab_size, " has no ordinary token to draw");
  int32_t num_units = 0;
  for (int32_t u : units) num_units = std::max(num_units, u + 1);
  std::vector<uint8_t> chosen(static_cast<size_t>(num_units), 0);
  bool any = false;
  for (int32_t u = 0; u < num_units; ++u)
    if (rng.uniform() < o.mask_prob) chosen[static_cast<size_t>(u)] = 1, any = true;
  if (!any && o.at_least_one && num_units > 0)
    chosen[static_cast<size_t>(rng.next_u64() % static_cast<uint64_t>(num_units))] = 1;

  MaskedSequence m;
  m.input_ids.assign(ids.begin(), ids.end());
  m.labels.assign(ids.size(), -100);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (units[i] == kNoUnit || !chosen[static_cast<size_t>(units[i])]) continue;
    m.labels[i] = ids[i];
    const double r = rng.uniform();
    if (r < o.replace_mask) {
      m.input_ids[i] = mask_id;
    } else if (r < o.replace_mask + o.replace_random) {
      int32_t t;
      do {
        t = static_cast<int32_t>(rng.next_u64() % static_cast<uint64_t>(vocab_size));
      } while (special_ids.count(t));
      m.input_ids[i] = t;
    }
  }
  return m;
}

PhraseDictionary PhraseDictionary::from_phrases(const std::vector<std::string>& phrases) {
  PhraseDictionary d;
  for (const std::string& p : phrases) {
    size_t chars = 0;
    for (size_t i = 0; i < p.size(); i += utf8_len(static_cast<unsigned char>(p[i]))) ++chars;
    if (chars < 2) continue;
    d.phrases_.insert(p);
    d.max_chars_ = std::max(d.max_chars_, chars);
  }
  return d;
}

PhraseDictionary PhraseDictionary::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  OAR_CHECK(in, path, ": cannot read the phrase dictionary");
  std::vector<std::string> phrases;
  std::string line;
  while (std::getline(in, line)) {
    const size_t b = line.find_first_not_of(" \t\r");
    if (b == std::string::npos) continue;
    const size_t e = line.find_first_of(" \t\r", b);
    phrases.push_back(line.substr(b, e == std::string::npos ? std::string::npos : e - b));
  }
  PhraseDictionary d = from_phrases(phrases);
  OAR_CHECK(d.size() > 0, path, ": no phrase of two or more characters (one phrase a line)");
  return d;
}

std::vector<std::pair<uint32_t, uint32_t>> PhraseDictionary::spans(std::string_view text) const {
  std::vector<std::pair<uint32_t, uint32_t>> out;
  std::vector<size_t> ends;  // byte end of each of the next max_chars_ code points
  size_t pos = 0;
  while (pos < text.size()) {
    ends.clear();
    for (size_t p = pos; p < text.size() && ends.size() < max_chars_;) {
      p = std::min(text.size(), p + utf8_len(static_cast<unsigned char>(text[p])));
      ends.push_back(p);
    }
    size_t matched = 0;
    for (size_t n = ends.size(); n >= 2; --n)
      if (phrases_.count(std::string(text.substr(pos, ends[n - 1] - pos)))) {
        matched = ends[n - 1];
        break;
      }
    if (matched) {
      out.emplace_back(static_cast<uint32_t>(pos), static_cast<uint32_t>(matched));
      pos = matched;
    } else {
      pos = ends.empty() ? text.size() : ends[0];
    }
  }
  return out;
}

}  // namespace oar::nlp
