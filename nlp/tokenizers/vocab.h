#pragma once
// A WordPiece vocabulary: token <-> id, loaded from BERT's vocab.txt (one token a line, id = line
// index) or ERNIE's "token<TAB>id" lines.
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace oar::nlp {

class Vocab {
 public:
  enum class Format { automatic, bert, ernie };

  Vocab() = default;

  // Reads a vocabulary file. `automatic` picks ERNIE when the first line is "token<TAB>integer".
  // BERT lines lose trailing whitespace (as Hugging Face does). A duplicated token keeps its last
  // id, as Hugging Face does, unless it is one of `special_tokens`: then it is an error naming
  // file:line of both occurrences. A special token that is absent is an error naming the file.
  // ERNIE lines must be "token<TAB>id" with a unique non-negative id (errors name file:line).
  static Vocab load(const std::string& path, Format format = Format::automatic,
                    const std::vector<std::string>& special_tokens = {});

  // Builds a vocabulary from tokens in id order (tests, programmatic vocabularies).
  static Vocab from_tokens(const std::vector<std::string>& tokens);

  // Id of `token`, or -1.
  int32_t find(std::string_view token) const {
    auto it = ids_.find(token);
    return it == ids_.end() ? -1 : it->second;
  }
  // Id of a token that must exist; throws oar::Error naming the token and the vocabulary.
  int32_t id(std::string_view token) const;
  // Token of `id`; throws oar::Error when the id has no token.
  const std::string& token(int32_t id) const;
  bool has_id(int32_t id) const {
    return id >= 0 && size_t(id) < tokens_.size() && has_token_[size_t(id)];
  }

  // One past the largest id (the embedding table's row count must be at least this).
  size_t size() const { return tokens_.size(); }
  // All (token, id) pairs that map a token to an id (the last id of a duplicated token).
  const auto& entries() const { return ids_; }
  const std::string& source() const { return source_; }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, int32_t, Hash, std::equal_to<>> ids_;
  std::vector<std::string> tokens_;
  std::vector<bool> has_token_;
  std::string source_;
};

}  // namespace oar::nlp
