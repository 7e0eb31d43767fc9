#include "nlp/models/bert_pretrained.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/core/error.h"

namespace fs = std::filesystem;

namespace oar::nlp {

BertTokenizerOptions hf_tokenizer_options(const std::string& dir) {
  BertTokenizerOptions o;
  const fs::path path = fs::path(dir) / "tokenizer_config.json";
  std::ifstream in(path, std::ios::binary);
  if (!in) return o;
  std::stringstream ss;
  ss << in.rdbuf();
  const Json j = Json::parse(ss.str(), path.string());
  auto flag = [&](const char* key, bool& out) {
    if (const Json* v = j.find(key); v && v->is_bool()) out = v->as_bool();
  };
  auto token = [&](const char* key, std::string& out) {
    if (const Json* v = j.find(key); v && v->is_string()) out = v->as_string();
  };
  flag("do_lower_case", o.do_lower_case);
  flag("tokenize_chinese_chars", o.tokenize_chinese_chars);
  if (const Json* v = j.find("strip_accents"); v && v->is_bool()) o.strip_accents = v->as_bool();
  token("unk_token", o.unk_token);
  token("cls_token", o.cls_token);
  token("sep_token", o.sep_token);
  token("pad_token", o.pad_token);
  token("mask_token", o.mask_token);
  return o;
}

std::shared_ptr<BertTokenizer> load_hf_tokenizer(const std::string& dir) {
  const fs::path vocab = fs::path(dir) / "vocab.txt";
  OAR_CHECK(fs::exists(vocab), vocab.string(), ": missing (a BERT directory needs vocab.txt)");
  return std::make_shared<BertTokenizer>(
      BertTokenizer::from_file(vocab.string(), hf_tokenizer_options(dir)));
}

PretrainedBert load_hf_bert(const std::string& dir, Generator* gen) {
  const fs::path root(dir);
  OAR_CHECK(fs::is_directory(root), dir,
            ": not a directory (expected a Hugging Face BERT directory with config.json, "
            "model.safetensors and vocab.txt)");
  for (const char* f : {"config.json", "model.safetensors"})
    OAR_CHECK(fs::exists(root / f), (root / f).string(), ": missing");
  PretrainedBert p;
  p.config = BertConfig::from_file((root / "config.json").string());
  p.model = std::make_shared<BertModel>(p.config, gen);
  load_hf_bert_weights(*p.model, (root / "model.safetensors").string());
  p.model->eval();
  p.tokenizer = load_hf_tokenizer(dir);
  OAR_CHECK(static_cast<int64_t>(p.tokenizer->vocab().size()) <= p.config.vocab_size, dir,
            ": vocab.txt has ", p.tokenizer->vocab().size(),
            " tokens but config.json's vocab_size is ", p.config.vocab_size);
  return p;
}

}  // namespace oar::nlp
