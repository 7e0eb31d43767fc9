#pragma once
// Text-matching data grouped by query, for pairwise training and per-query ranking evaluation.
// A TSV file with a header naming its columns, in one of two layouts:
//   qid, text_a, text_b, label   candidates of one query share a qid (without a qid column they
//                                are grouped by text_a); label > 0 marks a relevant candidate
//   text_a, text_pos, text_neg   one triplet per line (SimNet's pairwise layout): a group of two
//                                candidates, the positive (label 1) and the negative (label 0)
// Each (text_a, candidate) pair is encoded [CLS] a [SEP] b [SEP]. One example is one query
// group; a batch concatenates the candidates of its groups: input_ids, token_type_ids,
// attention_mask [C, L]; label, group (which query of the batch) [C]. batch.size counts queries.
// meta: {qid, text_a, candidates: [text_b...]}.
#include <memory>
#include <string>
#include <vector>

#include "nlp/tokenizers/bert_tokenizer.h"
#include "readers/dataset.h"

namespace oar::nlp {

struct QueryGroupOptions {
  size_t max_seq_len = 128;
};

class QueryGroupDataset : public readers::Dataset {
 public:
  // Throws oar::Error naming the file and line of a malformed row.
  QueryGroupDataset(const std::string& path, std::shared_ptr<const BertTokenizer> tokenizer,
                    QueryGroupOptions options);
  int64_t size() const override { return static_cast<int64_t>(groups_.size()); }
  readers::Example get(int64_t index, Generator& rng) const override;
  Batch collate(std::vector<readers::Example>& examples) const override;
  int64_t length(int64_t index) const override;  // the longest candidate pair

  struct Candidate {
    std::string text_b;
    std::vector<int32_t> ids, types;
    int64_t label = 0;
  };
  struct Group {
    std::string qid, text_a;
    std::vector<Candidate> candidates;
  };
  const Group& group(int64_t i) const { return groups_[static_cast<size_t>(i)]; }

 private:
  std::shared_ptr<const BertTokenizer> tok_;
  std::vector<Group> groups_;
};

}  // namespace oar::nlp
