#include "nlp/tokenizers/basic.h"

#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/ustring.h>

#include <algorithm>
#include <array>
#include <mutex>
#include <unordered_map>

#include "engine/core/error.h"

namespace oar::nlp {
namespace {

constexpr uint32_t kMaxCp = 0x110000;
constexpr uint8_t kRemove = 1, kSpace = 2, kCjk = 4, kPunct = 8, kLowerMaps = 16, kStripMaps = 32;

// Hugging Face `tokenizers` classifies with Unicode 8.0 general categories (crate
// unicode_categories); later characters count as unassigned there.
bool known_to_tokenizers(UChar32 c) {
  UVersionInfo age;
  u_charAge(c, age);
  return age[0] < 8 || (age[0] == 8 && age[1] == 0);
}

int8_t category(UChar32 c) {
  return int8_t(u_charType(c));
}

// Characters whose category changed since Unicode 8.0 (found by comparing every code point with
// `tokenizers`): HANUNOO SIGN PAMUDPOD was Mn; the Mongolian ALI GALI BALUDA signs and JAVANESE
// CONSONANT SIGN KERET were not Mn; CANADIAN SYLLABICS CHI SIGN and SHARADA SANDHI MARK were Po.
bool is_nonspacing_mark(UChar32 c) {
  if (c == 0x1734) return true;
  if (c == 0x1885 || c == 0x1886 || c == 0xA9BD || c == 0x111C9) return false;
  return category(c) == U_NON_SPACING_MARK && known_to_tokenizers(c);
}

bool is_punctuation(UChar32 c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
      (c >= 123 && c <= 126))
    return true;
  if (c == 0x166D || c == 0x111C9) return true;
  if (!known_to_tokenizers(c)) return false;
  switch (category(c)) {
    case U_CONNECTOR_PUNCTUATION:
    case U_DASH_PUNCTUATION:
    case U_START_PUNCTUATION:
    case U_END_PUNCTUATION:
    case U_INITIAL_PUNCTUATION:
    case U_FINAL_PUNCTUATION:
    case U_OTHER_PUNCTUATION:
      return true;
    default:
      return false;
  }
}

bool is_control(UChar32 c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  if (!known_to_tokenizers(c)) return false;
  int8_t cat = category(c);
  return cat == U_CONTROL_CHAR || cat == U_FORMAT_CHAR || cat == U_PRIVATE_USE_CHAR ||
         cat == U_SURROGATE;
}

// The CJK ranges of `tokenizers`' BertNormalizer, including its 0x2B920 start (BERT's Python code
// has 0x2B820) so that ids match Hugging Face.
bool is_cjk(UChar32 c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

std::u32string to_u32(const icu::UnicodeString& s) {
  std::u32string out;
  for (int32_t i = 0; i < s.length();) {
    UChar32 c = s.char32At(i);
    out.push_back(char32_t(c));
    i += U16_LENGTH(c);
  }
  return out;
}

const icu::Normalizer2& nfd() {
  UErrorCode err = U_ZERO_ERROR;
  const icu::Normalizer2* n = icu::Normalizer2::getNFDInstance(err);
  OAR_CHECK(U_SUCCESS(err) && n, "tokenizer: ICU NFD normalizer unavailable: ", u_errorName(err));
  return *n;
}

std::u32string lower_full(char32_t c) {
  UChar src[2];
  int32_t n = 0;
  U16_APPEND_UNSAFE(src, n, UChar32(c));
  UChar dst[16];
  UErrorCode err = U_ZERO_ERROR;
  int32_t m = u_strToLower(dst, 16, src, n, "", &err);
  OAR_CHECK(U_SUCCESS(err), "tokenizer: ICU lower-casing failed: ", u_errorName(err));
  return to_u32(icu::UnicodeString(dst, m));
}

// One byte of flags per code point, built once from ICU.
const std::vector<uint8_t>& char_flags() {
  static const std::vector<uint8_t> flags = [] {
    std::vector<uint8_t> f(kMaxCp, 0);
    const icu::Normalizer2& n = nfd();
    icu::UnicodeString decomposition;
    for (UChar32 c = 0; c < UChar32(kMaxCp); ++c) {
      if (c >= 0xD800 && c < 0xE000) {
        f[c] = kRemove;  // never produced by the decoder; kept consistent anyway
        continue;
      }
      uint8_t v = 0;
      if (c == 0 || c == 0xFFFD || is_control(c)) v |= kRemove;
      if (c == '\t' || c == '\n' || c == '\r' || u_hasBinaryProperty(c, UCHAR_WHITE_SPACE))
        v |= kSpace;
      if (is_cjk(c)) v |= kCjk;
      if (is_punctuation(c)) v |= kPunct;
      if (u_tolower(c) != c || c == 0x130) v |= kLowerMaps;
      // Canonical decompositions added after Unicode 8.0 are unknown to `tokenizers` too.
      if ((known_to_tokenizers(c) && n.getDecomposition(c, decomposition)) || is_nonspacing_mark(c))
        v |= kStripMaps;
      f[c] = v;
    }
    return f;
  }();
  return flags;
}

// Writes `c` as UTF-8 at out; returns the byte count.
inline uint32_t put_utf8(char* out, char32_t c) {
  if (c < 0x80) {
    out[0] = char(c);
    return 1;
  }
  if (c < 0x800) {
    out[0] = char(0xC0 | (c >> 6));
    out[1] = char(0x80 | (c & 0x3F));
    return 2;
  }
  if (c < 0x10000) {
    out[0] = char(0xE0 | (c >> 12));
    out[1] = char(0x80 | ((c >> 6) & 0x3F));
    out[2] = char(0x80 | (c & 0x3F));
    return 3;
  }
  out[0] = char(0xF0 | (c >> 18));
  out[1] = char(0x80 | ((c >> 12) & 0x3F));
  out[2] = char(0x80 | ((c >> 6) & 0x3F));
  out[3] = char(0x80 | (c & 0x3F));
  return 4;
}

inline uint32_t utf8_len(char32_t c) {
  return c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
}

// Decodes one UTF-8 character at s[i] (i < n, s[i] >= 0x80); sets `len`. Ill-formed input
// (bad lead, truncated or bad continuation, overlong, surrogate, > U+10FFFF) yields U+FFFD for one
// byte.
inline char32_t decode_utf8(const unsigned char* s, size_t i, size_t n, size_t& len) {
  unsigned char b = s[i];
  auto cont = [&](size_t k) { return i + k < n && (s[i + k] & 0xC0) == 0x80; };
  len = 1;
  if (b >= 0xC2 && b <= 0xDF) {
    if (!cont(1)) return 0xFFFD;
    len = 2;
    return (char32_t(b & 0x1F) << 6) | (s[i + 1] & 0x3F);
  }
  if (b >= 0xE0 && b <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0xFFFD;
    char32_t c = (char32_t(b & 0x0F) << 12) | (char32_t(s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F);
    if (c < 0x800 || (c >= 0xD800 && c < 0xE000)) return 0xFFFD;
    len = 3;
    return c;
  }
  if (b >= 0xF0 && b <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0xFFFD;
    char32_t c = (char32_t(b & 0x07) << 18) | (char32_t(s[i + 1] & 0x3F) << 12) |
                 (char32_t(s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F);
    if (c < 0x10000 || c >= kMaxCp) return 0xFFFD;
    len = 4;
    return c;
  }
  return 0xFFFD;
}

}  // namespace

// What one tokenizer configuration does to each character: the shared flags, the ASCII fast path
// and the replacement strings of the characters this configuration changes.
struct BasicTokenizer::Tables {
  const std::vector<uint8_t>* flags;
  std::array<uint8_t, 128> ascii_flags;  // kRemove / kSpace / kPunct
  std::array<char, 128> ascii_out;
  uint8_t map_mask;  // which flag bits mean "this character is replaced"
  std::unordered_map<char32_t, std::u32string> replacement;
  size_t max_growth = 1;  // normalized bytes per input byte, at most
};

BasicTokenizer::BasicTokenizer(BasicOptions options)
    : options_(options),
      lower_(options.lowercase),
      strip_(options.strip_accents.value_or(options.lowercase)),
      tables_(std::make_unique<Tables>()) {
  Tables& t = *tables_;
  t.flags = &char_flags();
  const std::vector<uint8_t>& f = *t.flags;
  for (int c = 0; c < 128; ++c) {
    uint8_t v = f[size_t(c)];
    if (!options_.clean_text) v &= uint8_t(~kRemove);
    t.ascii_flags[size_t(c)] = v & (kRemove | kSpace | kPunct);
    t.ascii_out[size_t(c)] = char(lower_ && c >= 'A' && c <= 'Z' ? c + 32 : c);
  }
  t.map_mask = uint8_t((lower_ ? kLowerMaps : 0) | (strip_ ? kStripMaps : 0));
  if (t.map_mask == 0) return;
  const icu::Normalizer2& n = nfd();
  for (char32_t c = 0x80; c < kMaxCp; ++c) {
    if (!(f[c] & t.map_mask) || (c >= 0xD800 && c < 0xE000)) continue;
    std::u32string s(1, c);
    if (strip_) {
      UErrorCode err = U_ZERO_ERROR;
      std::u32string d = to_u32(n.normalize(icu::UnicodeString(UChar32(c)), err));
      OAR_CHECK(U_SUCCESS(err), "tokenizer: ICU NFD failed: ", u_errorName(err));
      s.clear();
      for (char32_t x : d)
        if (!is_nonspacing_mark(UChar32(x))) s.push_back(x);
    }
    if (lower_) {
      std::u32string l;
      for (char32_t x : s) l += lower_full(x);
      s = std::move(l);
    }
    if (s == std::u32string(1, c)) continue;
    size_t bytes = 0;
    for (char32_t x : s) bytes += utf8_len(x);
    t.max_growth = std::max(t.max_growth, (bytes + utf8_len(c) - 1) / utf8_len(c));
    t.replacement.emplace(c, std::move(s));
  }
}

BasicTokenizer::~BasicTokenizer() = default;
BasicTokenizer::BasicTokenizer(BasicTokenizer&&) noexcept = default;
BasicTokenizer& BasicTokenizer::operator=(BasicTokenizer&&) noexcept = default;

void BasicTokenizer::split(std::string_view text, BasicScratch& s) const {
  OAR_CHECK(text.size() < (size_t(1) << 32), "tokenizer: text of ", text.size(),
            " bytes is over the 4 GiB limit");
  const Tables& t = *tables_;
  const uint8_t* flags = t.flags->data();
  const bool clean = options_.clean_text, cjk = options_.tokenize_chinese_chars;
  size_t cap = text.size() * t.max_growth + 16;
  if (s.normalized.size() < cap) {
    s.normalized.resize(cap);
    s.orig_begin.resize(cap);
    s.orig_end.resize(cap);
  }
  s.words.clear();
  char* out = s.normalized.data();
  uint32_t* ob = s.orig_begin.data();
  uint32_t* oe = s.orig_end.data();
  uint32_t w = 0;  // normalized write position
  uint32_t word_start = 0;
  auto end_word = [&] {
    if (w > word_start) s.words.push_back({word_start, w});
    word_start = w;
  };
  auto emit = [&](char32_t c, uint32_t b, uint32_t e) {
    uint32_t start = w;
    w += put_utf8(out + w, c);
    for (uint32_t k = start; k < w; ++k) ob[k] = b, oe[k] = e;
  };
  // Appends normalized character `c` coming from original bytes [b, e): punctuation is a word.
  auto add = [&](char32_t c, uint32_t b, uint32_t e) {
    uint8_t fl = flags[c];
    if (fl & kSpace) {
      end_word();
    } else if (fl & kPunct) {
      end_word();
      emit(c, b, e);
      end_word();
    } else {
      emit(c, b, e);
    }
  };

  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    unsigned char byte = p[i];
    if (byte < 0x80) {
      uint8_t fl = t.ascii_flags[byte];
      if (fl == 0) {
        // The common case: a run of ASCII letters and digits.
        size_t j = i;
        do {
          out[w] = t.ascii_out[p[j]];
          ob[w] = uint32_t(j);
          oe[w] = uint32_t(j + 1);
          ++w;
          ++j;
        } while (j < n && p[j] < 0x80 && t.ascii_flags[p[j]] == 0);
        i = j;
        continue;
      }
      if (fl & kRemove) {
      } else if (fl & kSpace) {
        end_word();
      } else {  // punctuation
        end_word();
        out[w] = char(byte);
        ob[w] = uint32_t(i);
        oe[w] = uint32_t(i + 1);
        ++w;
        end_word();
      }
      ++i;
      continue;
    }
    size_t len;
    char32_t c = decode_utf8(p, i, n, len);
    uint32_t b = uint32_t(i), e = uint32_t(i + len);
    i += len;
    uint8_t fl = flags[c];
    if (clean && (fl & kRemove)) continue;
    if (fl & kSpace) {
      end_word();
      continue;
    }
    bool own_word = cjk && (fl & kCjk);
    if (own_word) end_word();
    if (fl & t.map_mask) {
      auto it = t.replacement.find(c);
      if (it != t.replacement.end()) {
        for (char32_t r : it->second) add(r, b, e);
      } else {
        add(c, b, e);
      }
    } else if (fl & kPunct) {
      add(c, b, e);
    } else {
      uint32_t start = w;
      for (uint32_t k = b; k < e; ++k) out[w++] = char(p[k]);
      for (uint32_t k = start; k < w; ++k) ob[k] = b, oe[k] = e;
    }
    if (own_word) end_word();
  }
  end_word();
}

std::vector<std::string> BasicTokenizer::words(std::string_view text) const {
  BasicScratch s;
  split(text, s);
  std::vector<std::string> out;
  for (const Word& w : s.words) out.emplace_back(s.normalized.substr(w.begin, w.end - w.begin));
  return out;
}

}  // namespace oar::nlp
