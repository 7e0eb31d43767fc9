#pragma once
// BERT's basic tokenizer (the normalizer and pre-tokenizer of Hugging Face's
// BertWordPieceTokenizer): clean text (drop NUL, U+FFFD and control characters; whitespace becomes
// a separator), put CJK ideographs in words of their own, optionally strip accents (NFD, drop
// non-spacing marks) and lower-case, then split off every punctuation character.
//
// Unicode tables come from ICU, restricted to what Hugging Face `tokenizers` knows: the general
// categories used for "control", "punctuation" and "non-spacing mark" follow Unicode 8.0 (the
// tables compiled into `tokenizers`), so characters assigned later are kept as ordinary letters,
// exactly as `tokenizers` does. Lower-casing is the full Unicode mapping of each character on its
// own (no final-sigma or locale context). NFD is applied per character (canonical reordering of
// surviving combining marks is not done; it changes nothing once marks are stripped).
// Checked against `tokenizers` 0.23.3 on every code point: identical except 55 characters that
// Unicode 16 added with lower-case mappings (e.g. U+1C89, U+A7CB), which ICU 72 (Unicode 15) does
// not know yet; they stay as they are here.
//
// Input is UTF-8. Invalid UTF-8 is not an error: each ill-formed byte is read as U+FFFD, which
// cleaning removes (what Python's decode(errors="replace") followed by BERT's cleaning gives).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace oar::nlp {

struct BasicOptions {
  bool lowercase = true;
  std::optional<bool> strip_accents;  // unset: follows `lowercase` (Hugging Face semantics)
  bool tokenize_chinese_chars = true;
  bool clean_text = true;
};

// A pre-tokenized word: bytes [begin, end) of BasicScratch::normalized.
struct Word {
  uint32_t begin, end;
};

// Working memory of one tokenization, reused across calls so that no token allocates.
// For every byte k of `normalized`, the character it came from spans original bytes
// [orig_begin[k], orig_end[k]) of the input text.
struct BasicScratch {
  std::string normalized;
  std::vector<uint32_t> orig_begin, orig_end;
  std::vector<Word> words;
};

class BasicTokenizer {
 public:
  explicit BasicTokenizer(BasicOptions options = {});
  ~BasicTokenizer();
  BasicTokenizer(BasicTokenizer&&) noexcept;
  BasicTokenizer& operator=(BasicTokenizer&&) noexcept;

  // Replaces the scratch's contents with the words of `text` (at most 4 GiB).
  void split(std::string_view text, BasicScratch& scratch) const;

  // The words of `text` as strings (convenience for tests and tools; allocates).
  std::vector<std::string> words(std::string_view text) const;

  const BasicOptions& options() const { return options_; }

 private:
  struct Tables;
  BasicOptions options_;
  bool lower_, strip_;
  std::unique_ptr<Tables> tables_;
};

}  // namespace oar::nlp
