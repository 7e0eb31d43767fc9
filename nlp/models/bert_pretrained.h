#pragma once
// A Hugging Face BERT directory (config.json, model.safetensors, vocab.txt and optionally
// tokenizer_config.json) loaded as an oar BertModel and BertTokenizer.
#include <memory>
#include <string>

#include "nlp/models/bert.h"
#include "nlp/tokenizers/bert_tokenizer.h"

namespace oar::nlp {

struct PretrainedBert {
  BertConfig config;
  std::shared_ptr<BertModel> model;  // in eval mode
  std::shared_ptr<BertTokenizer> tokenizer;
};

// The tokenizer options of `dir`'s tokenizer_config.json (do_lower_case, strip_accents,
// tokenize_chinese_chars, special tokens); defaults when the file is absent.
BertTokenizerOptions hf_tokenizer_options(const std::string& dir);
std::shared_ptr<BertTokenizer> load_hf_tokenizer(const std::string& dir);

// Reads dir/config.json, dir/model.safetensors and dir/vocab.txt. Errors name the file and what
// is wrong (a missing file, a bad key, a tensor that does not fit the config).
PretrainedBert load_hf_bert(const std::string& dir, Generator* gen = nullptr);

}  // namespace oar::nlp
