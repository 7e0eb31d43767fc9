#pragma once
// Reading-comprehension data in SQuAD v1.1 / v2.0 JSON (CMRC 2018 and DRCD use the same layout):
// data[].paragraphs[].{context, qas[].{id, question, answers[{text, answer_start}],
// is_impossible}}. answer_start counts characters (code points), as the datasets do.
//
// One example is one question with all of its windows: the context is tokenized once and cut
// into windows of at most max_seq_len - |question| - 3 tokens that start every doc_stride tokens
// (BERT's run_squad), each fed as [CLS] question [SEP] window [SEP]; the question is cut to
// max_query_len tokens. Start/end labels are the tokens that cover the first answer's characters;
// when the answer is not wholly inside a window, or the question is impossible, both are 0
// ([CLS]).
//
// A batch concatenates the windows of its examples: input_ids, token_type_ids, attention_mask,
// offset_begin, offset_end (byte offsets of each token in the context, -1 outside it) [T, L];
// start_positions, end_positions, window_example (which example of the batch) [T]. batch.size
// counts examples. meta: {id, question, context, answers: [texts], is_impossible}.
#include <memory>
#include <string>
#include <vector>

#include "nlp/tokenizers/bert_tokenizer.h"
#include "readers/dataset.h"

namespace oar::nlp {

struct SquadOptions {
  size_t max_seq_len = 384;
  size_t doc_stride = 128;
  size_t max_query_len = 64;
};

class SquadDataset : public readers::Dataset {
 public:
  // Throws oar::Error naming the file and the JSON path of a malformed entry.
  SquadDataset(const std::string& path, std::shared_ptr<const BertTokenizer> tokenizer,
               SquadOptions options);
  int64_t size() const override { return static_cast<int64_t>(items_.size()); }
  readers::Example get(int64_t index, Generator& rng) const override;
  Batch collate(std::vector<readers::Example>& examples) const override;
  int64_t length(int64_t index) const override;  // the longest window of the item

  struct Window {
    std::vector<int32_t> ids, types;
    std::vector<int64_t> begin, end;  // byte offsets into the context; -1 outside it
    int64_t start = 0, stop = 0;      // labels (token positions in the window)
  };
  struct Item {
    std::string id, question, context;
    std::vector<std::string> answers;
    bool impossible = false;
    std::vector<Window> windows;
  };
  const Item& item(int64_t i) const { return items_[static_cast<size_t>(i)]; }

 private:
  std::shared_ptr<const BertTokenizer> tok_;
  SquadOptions o_;
  std::vector<Item> items_;
};

}  // namespace oar::nlp
