#pragma once
// Plain text for masked-LM training: one document or sentence a line (blank lines skipped),
// tokenized once when the dataset is built ([CLS] line [SEP], truncated to max_seq_len), and
// masked anew each time an example is drawn, from the loader's generator (seeded by seed, epoch
// and index: runs repeat, and each epoch sees fresh masks).
//
// Fields per example: input_ids (corrupted), mlm_labels (original id or -100), i64 [L]. A batch
// has input_ids, token_type_ids (zeros), attention_mask (i64 [N, L]), and the predicted
// positions flattened: mlm_positions (index into N * L) and mlm_labels (their ids), i64 [M].
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "nlp/masking/masking.h"
#include "readers/dataset.h"

namespace oar::nlp {

class LacSegmenter;

enum class MaskingUnit { token, whole_word, phrase };

struct MaskedTextOptions {
  size_t max_seq_len = 128;
  // Non-empty: the file is a TSV whose header names this column, and its texts are the lines.
  std::string tsv_column;
  MaskingUnit unit = MaskingUnit::token;
  MaskingOptions masking;
  // phrase units: spans from a LAC segmenter (its words of two or more characters, which include
  // its PER/LOC/ORG/TIME entities), else from a phrase dictionary. One of them must be set.
  std::shared_ptr<LacSegmenter> segmenter;
  std::shared_ptr<const PhraseDictionary> dictionary;
};

class MaskedTextDataset : public readers::Dataset {
 public:
  // Throws oar::Error naming the file (and line) when it cannot be read, holds no text, or a
  // line cannot be tokenized.
  MaskedTextDataset(const std::string& path, std::shared_ptr<const BertTokenizer> tokenizer,
                    MaskedTextOptions options);
  // The same from lines in memory (`origin` names them in errors).
  MaskedTextDataset(const std::vector<std::string>& lines,
                    std::shared_ptr<const BertTokenizer> tokenizer, MaskedTextOptions options,
                    const std::string& origin);
  int64_t size() const override { return static_cast<int64_t>(rows_.size()); }
  readers::Example get(int64_t index, Generator& rng) const override;
  Batch collate(std::vector<readers::Example>& examples) const override;

  // The tokens and masking units of line `index` (tests, inspection).
  const std::vector<int32_t>& ids(int64_t index) const { return rows_[size_t(index)].ids; }
  const std::vector<int32_t>& units(int64_t index) const { return rows_[size_t(index)].units; }

 private:
  void build(const std::vector<std::string>& lines, const std::string& origin);

  struct Row {
    std::vector<int32_t> ids, units;
    std::string text;
  };
  std::shared_ptr<const BertTokenizer> tok_;
  MaskedTextOptions o_;
  std::unordered_set<int32_t> special_ids_;
  std::vector<Row> rows_;
};

}  // namespace oar::nlp
