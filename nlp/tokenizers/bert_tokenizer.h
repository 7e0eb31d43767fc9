#pragma once
// BERT's full tokenizer: BasicTokenizer then WordPiece, with the model inputs BERT and ERNIE take
// ([CLS] A [SEP] (B [SEP]), token types, attention mask, padding, truncation) and character
// offsets back into the original text. Ids equal Hugging Face `tokenizers`' BertWordPieceTokenizer
// with the same vocabulary and options.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "nlp/tokenizers/basic.h"
#include "nlp/tokenizers/vocab.h"
#include "nlp/tokenizers/wordpiece.h"

namespace oar::nlp {

struct BertTokenizerOptions {
  bool do_lower_case = true;
  std::optional<bool> strip_accents;  // unset: follows do_lower_case
  bool tokenize_chinese_chars = true;
  size_t max_input_chars_per_word = 100;
  std::string unk_token = "[UNK]", cls_token = "[CLS]", sep_token = "[SEP]", pad_token = "[PAD]",
              mask_token = "[MASK]";
  std::string continuing_subword_prefix = "##";
};

// Byte range [begin, end) of the original UTF-8 text; (0, 0) for special and padding tokens.
struct Offset {
  uint32_t begin, end;
  bool operator==(const Offset&) const = default;
};

// Tokens of one text, without special tokens.
struct Encoding {
  std::vector<int32_t> ids;
  std::vector<Offset> offsets;
};

enum class Truncation { longest_first, only_first, only_second, none };

struct EncodeOptions {
  size_t max_length = 512;  // including [CLS] and [SEP]
  Truncation truncation = Truncation::longest_first;
  bool pad_to_max_length = false;
};

// Model inputs for one example; all vectors have the same length.
struct ModelInput {
  std::vector<int32_t> input_ids, token_type_ids, attention_mask, special_tokens_mask;
  std::vector<Offset> offsets;  // into text a for type-0 tokens, into text b for type-1 tokens
};

class BertTokenizer {
 public:
  // Throws oar::Error when a special token of `options` is missing from the vocabulary.
  BertTokenizer(Vocab vocab, BertTokenizerOptions options = {});
  // Loads `vocab_path` (BERT or ERNIE format); duplicated or missing special tokens are errors.
  static BertTokenizer from_file(const std::string& vocab_path, BertTokenizerOptions options = {});

  // Ids and byte offsets of `text`'s tokens (no special tokens).
  Encoding encode(std::string_view text) const;
  // Same, appending to `out`, reusing `scratch` (the allocation-free form for loops).
  struct Scratch {
    BasicScratch basic;
    std::vector<Piece> pieces;
  };
  void encode(std::string_view text, Encoding& out, Scratch& scratch) const;

  // [CLS] a [SEP], or [CLS] a [SEP] b [SEP] when `b` is given, truncated to options.max_length
  // (Hugging Face's strategies; throws oar::Error when the strategy cannot reach the length),
  // padded with [PAD] to max_length when asked.
  ModelInput encode_pair(std::string_view a, const std::string_view* b,
                         const EncodeOptions& options = {}) const;
  ModelInput encode_single(std::string_view a, const EncodeOptions& options = {}) const {
    return encode_pair(a, nullptr, options);
  }
  ModelInput encode_pair(std::string_view a, std::string_view b,
                         const EncodeOptions& options = {}) const {
    return encode_pair(a, &b, options);
  }

  // encode() of every text on `threads` threads (0: hardware concurrency); results in input order.
  std::vector<Encoding> encode_batch(std::span<const std::string_view> texts,
                                     size_t threads = 0) const;

  // Tokens joined by spaces, "##" pieces glued to the previous token, then Hugging Face's
  // WordPiece decoder clean-up (" ." -> ".", " n't" -> "n't", ...). Unknown ids are errors.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = true) const;

  const Vocab& vocab() const { return vocab_; }
  const BertTokenizerOptions& options() const { return options_; }
  int32_t unk_id() const { return unk_id_; }
  int32_t cls_id() const { return cls_id_; }
  int32_t sep_id() const { return sep_id_; }
  int32_t pad_id() const { return pad_id_; }
  int32_t mask_id() const { return mask_id_; }

 private:
  bool is_special(int32_t id) const;

  Vocab vocab_;
  BertTokenizerOptions options_;
  BasicTokenizer basic_;
  WordPiece wordpiece_;
  int32_t unk_id_, cls_id_, sep_id_, pad_id_, mask_id_;
};

}  // namespace oar::nlp
