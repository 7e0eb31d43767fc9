#pragma once
// `oar text tokenize`'s core: one line (or chosen TSV columns of it) to WordPiece or
// SentencePiece tokens or ids, space-separated, columns joined by TAB.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace oar::nlp::text {

struct LineTokenizerOptions {
  std::string vocab;      // WordPiece vocabulary (BERT vocab.txt or ERNIE token<TAB>id)
  std::string spm;        // or a SentencePiece .model (exactly one of the two)
  bool lowercase = true;  // WordPiece: lower-case and strip accents (uncased BERT)
  bool ids = false;       // ids instead of tokens
  bool special = false;   // WordPiece: [CLS] ... [SEP] around each column
};

class LineTokenizer {
 public:
  // Throws oar::Error when neither or both of vocab/spm are given, or the model cannot load.
  explicit LineTokenizer(const LineTokenizerOptions& options);
  ~LineTokenizer();
  // Appends the tokens (or ids) of `text`, space-separated, to `out`. Thread-safe.
  void tokenize(std::string_view text, std::string& out) const;

 private:
  struct Impl;
  LineTokenizerOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace oar::nlp::text
