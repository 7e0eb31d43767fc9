#pragma once
// SentencePiece models (unigram or BPE `.model` files) through Debian's libsentencepiece: encode
// text to pieces or ids, decode ids back to text, and train a model from lines of text. A build
// without libsentencepiece keeps these declarations; then every call throws oar::Error saying so.
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace oar::nlp {

// Whether this build links libsentencepiece.
bool sentencepiece_available();

class SentencePiece {
 public:
  // Loads a `.model` file; throws oar::Error naming the path when it is missing or not a model.
  static SentencePiece load(const std::string& path);
  ~SentencePiece();
  SentencePiece(SentencePiece&&) noexcept;
  SentencePiece& operator=(SentencePiece&&) noexcept;

  // Encoding is thread-safe (the library's processor is const after loading).
  std::vector<std::string> encode_pieces(std::string_view text) const;
  std::vector<int32_t> encode_ids(std::string_view text) const;
  // Ids outside [0, size()) are errors.
  std::string decode(std::span<const int32_t> ids) const;
  size_t size() const;
  int32_t unk_id() const;
  const std::string& piece(int32_t id) const;

 private:
  SentencePiece();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct SentencePieceTrainOptions {
  std::string model_type = "unigram";  // unigram | bpe | char | word
  int vocab_size = 8000;
  double character_coverage = 0.9995;  // 1.0 for small alphabets; 0.9995 for CJK
  int64_t input_sentence_size = 0;     // 0: every line; else a sample of that many
  uint64_t seed = 0;                   // only used when sampling
  std::vector<std::string> user_defined_symbols;
};

// Trains on the lines that `next_line` yields (false at the end) and writes `model_prefix`.model
// and `model_prefix`.vocab. Errors of the library are rethrown as oar::Error.
void train_sentencepiece(const std::function<bool(std::string&)>& next_line,
                         const std::string& model_prefix, const SentencePieceTrainOptions& o);

}  // namespace oar::nlp
