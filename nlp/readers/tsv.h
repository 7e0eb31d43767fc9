#pragma once
// Tab-separated text examples for classification and matching: a header line names the columns
// (text_a, optional text_b, label; others are ignored), one example per line. Texts are
// tokenized once, when the dataset is built; batches are padded to their longest example
// (dynamic padding), not to max_seq_len.
//
// Fields per example: input_ids, token_type_ids (i64 [L]) and label (i64 scalar, when the file
// has a label column). A batch adds attention_mask (i64 [N, L], 1 = real token).
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "nlp/tokenizers/bert_tokenizer.h"
#include "readers/dataset.h"

namespace oar::nlp {

// The fields of one tab-separated line (views into it; an empty line is one empty field).
std::vector<std::string_view> split_tabs(std::string_view line);

struct TsvOptions {
  size_t max_seq_len = 128;  // including [CLS] and [SEP]; longer inputs are truncated
  // Label names in index order: the label column holds names. Empty: it holds integers.
  std::vector<std::string> labels;
};

class TsvTextDataset : public readers::Dataset {
 public:
  // Throws oar::Error naming the file and line of a malformed row or unknown label.
  TsvTextDataset(const std::string& path, std::shared_ptr<const BertTokenizer> tokenizer,
                 TsvOptions options);
  int64_t size() const override { return static_cast<int64_t>(rows_.size()); }
  readers::Example get(int64_t index, Generator& rng) const override;
  Batch collate(std::vector<readers::Example>& examples) const override;
  int64_t length(int64_t index) const override {
    return static_cast<int64_t>(rows_[static_cast<size_t>(index)].ids.size());
  }
  bool has_labels() const { return has_label_; }

 private:
  struct Row {
    std::vector<int32_t> ids, types;
    int64_t label = -1;
    std::string text_a, text_b;
  };
  std::vector<Row> rows_;
  bool has_label_ = false;
  bool has_text_b_ = false;
  int32_t pad_id_ = 0;
};

}  // namespace oar::nlp
