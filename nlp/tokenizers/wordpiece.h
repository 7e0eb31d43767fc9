#pragma once
// WordPiece: greedy longest-match-first segmentation of one word into vocabulary pieces, the
// continuation pieces carrying a prefix ("##"), exactly as BERT and Hugging Face define it:
// a word of more than `max_input_chars_per_word` characters, or one with no full segmentation,
// becomes a single unknown token. Matching walks a byte trie, so each piece costs one pass over
// its bytes and nothing is allocated.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "nlp/tokenizers/vocab.h"

namespace oar::nlp {

struct WordPieceOptions {
  std::string unk_token = "[UNK]";
  std::string continuing_subword_prefix = "##";
  size_t max_input_chars_per_word = 100;
};

// A piece: token id and the byte range [begin, end) it covers in the word.
struct Piece {
  int32_t id;
  uint32_t begin, end;
};

class WordPiece {
 public:
  // Throws oar::Error when the vocabulary lacks the unknown token.
  WordPiece(const Vocab& vocab, WordPieceOptions options = {});

  // Appends the pieces of `word` (valid UTF-8, non-empty) to `out`.
  void tokenize(std::string_view word, std::vector<Piece>& out) const;

  int32_t unk_id() const { return unk_id_; }
  const WordPieceOptions& options() const { return options_; }

 private:
  struct Node {
    uint32_t edge_begin;  // edges [edge_begin, edge_begin + edge_count) in labels_/targets_
    uint32_t edge_count;
    int32_t token;  // id of the token ending here, or -1
  };
  void insert(uint32_t root, std::string_view bytes, int32_t id,
              std::vector<std::vector<std::pair<uint8_t, uint32_t>>>& children);
  uint32_t child(uint32_t node, uint8_t byte) const;
  // The longest vocabulary match of word[start..] from `root`: its end, or `start` when none.
  uint32_t longest(uint32_t root, std::string_view word, uint32_t start, int32_t& id) const;

  WordPieceOptions options_;
  int32_t unk_id_;
  std::vector<Node> nodes_;
  std::vector<uint8_t> labels_;
  std::vector<uint32_t> targets_;
  std::vector<uint32_t> root_dense_, cont_dense_;  // 256 children of the two roots (0 = none)
  uint32_t cont_root_ = 1;
};

}  // namespace oar::nlp
