#pragma once
// Sequence-labelling data (NER): words with one tag each, in PaddleNLP/ERNIE's MSRA-NER format
// (a line per sentence: characters joined by U+0002, a tab, the tags joined by U+0002; an
// optional `text_a<TAB>label` header) or CoNLL column files (a token per line, the word in the
// first column and the tag in the last, blank lines between sentences, -DOCSTART- skipped).
// Files without tags (one column) are read for prediction.
//
// Each word is tokenized on its own; its first sub-token carries the word's tag (the others are
// not scored). A word that yields no token (a lone space or control character) keeps its place
// and is predicted as O, so predictions stay aligned with the input; so are the words that do
// not fit in max_seq_len.
//
// Fields per example: input_ids, token_type_ids [L]; word_pos [Wc] (the token position of each
// covered word's first sub-token, left-packed), word_index [Wc] (which word it is); word_tags
// [W] (gold tag ids of every word, when tagged); num_words (scalar). A batch pads them: ids with
// [PAD], word_pos with 0, word_index and word_tags with -1, and adds attention_mask [N, L],
// word_mask [N, Wc] and tags [N, Wc] (gold ids of the covered words, -1 at padding).
// meta: {"text": the sentence (words joined by nothing for MSRA, by a space for CoNLL),
//        "spans": [[begin, end], ...] code-point offsets of each word in text}.
#include <memory>
#include <string>
#include <vector>

#include "nlp/tokenizers/bert_tokenizer.h"
#include "readers/dataset.h"

namespace oar::nlp {

enum class TagFormat { msra, conll };

struct TaggedTextOptions {
  TagFormat format = TagFormat::msra;
  size_t max_seq_len = 128;         // including [CLS] and [SEP]
  std::vector<std::string> labels;  // tag names in id order; a tag outside them is an error
};

class TaggedTextDataset : public readers::Dataset {
 public:
  // Throws oar::Error naming the file and line of a malformed sentence or unknown tag.
  TaggedTextDataset(const std::string& path, std::shared_ptr<const BertTokenizer> tokenizer,
                    TaggedTextOptions options);
  int64_t size() const override { return static_cast<int64_t>(sentences_.size()); }
  readers::Example get(int64_t index, Generator& rng) const override;
  Batch collate(std::vector<readers::Example>& examples) const override;
  int64_t length(int64_t index) const override {
    return static_cast<int64_t>(sentences_[static_cast<size_t>(index)].ids.size());
  }
  bool has_tags() const { return has_tags_; }

  struct Sentence {
    std::vector<std::string> words;
    std::vector<int64_t> tags;                       // empty when untagged
    std::string text;                                // words joined
    std::vector<std::pair<int64_t, int64_t>> spans;  // code points of each word in text
    std::vector<int32_t> ids;                        // [CLS] tokens [SEP]
    std::vector<int64_t> first_token;                // per word; -1: no token / truncated
  };
  const Sentence& sentence(int64_t i) const { return sentences_[static_cast<size_t>(i)]; }

 private:
  void add(std::vector<std::string> words, std::vector<std::string> tags, const std::string& where);
  std::shared_ptr<const BertTokenizer> tok_;
  TaggedTextOptions o_;
  std::vector<Sentence> sentences_;
  bool has_tags_ = false;
};

}  // namespace oar::nlp
