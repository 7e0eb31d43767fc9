#pragma once
// Shared by the task tests: a tiny vocabulary written to a temporary directory, a tiny BERT
// without dropout, and a few AdamW steps on one batch.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "engine/optim/adam.h"
#include "engine/train/task.h"
#include "nlp/models/bert.h"
#include "nlp/tokenizers/bert_tokenizer.h"

namespace oar::nlp::test {

inline const std::vector<std::string>& tiny_vocab() {
  static const std::vector<std::string> v{
      "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the",    "cat",   "sat",  "on",
      "mat",   "john",  "lives", "in",    "paris",  "berlin", "works", "at",   "acme",
      "play",  "##ing", "who",   "where", "what",   "is",     "a",     "does", ".",
      ",",     "?",     "dog",   "runs",  "fast",   "slow",   "red",   "blue", "张",
      "三",    "住",    "在",    "北",    "京",     "上",     "海",    "是",   "谁",
      "哪",    "里",    "李",    "四",    "工",     "作",     "的",    "人"};
  return v;
}

// A directory with vocab.txt; removed by the destructor.
struct TinyVocabDir {
  std::filesystem::path dir;
  explicit TinyVocabDir(const std::string& name) {
    dir =
        std::filesystem::temp_directory_path() / ("oar_" + name + "_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    std::ofstream f(dir / "vocab.txt");
    for (const auto& t : tiny_vocab()) f << t << "\n";
  }
  ~TinyVocabDir() { std::filesystem::remove_all(dir); }
  std::string vocab() const { return (dir / "vocab.txt").string(); }
  std::string write(const std::string& file, const std::string& text) const {
    std::ofstream f(dir / file, std::ios::binary);
    f << text;
    return (dir / file).string();
  }
  std::shared_ptr<BertTokenizer> tokenizer() const {
    return std::make_shared<BertTokenizer>(BertTokenizer::from_file(vocab()));
  }
};

inline std::shared_ptr<BertModel> tiny_bert(uint64_t seed = 1) {
  BertConfig c;
  c.vocab_size = static_cast<int64_t>(tiny_vocab().size());
  c.hidden_size = 32;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.intermediate_size = 64;
  c.max_position_embeddings = 64;
  c.hidden_dropout_prob = 0;
  c.attention_probs_dropout_prob = 0;
  Generator g(seed);
  return std::make_shared<BertModel>(c, &g);
}

// Losses of `steps` AdamW steps on one batch (the first is before any update).
inline std::vector<double> train_steps(Task& task, const Batch& batch, int steps,
                                       double lr = 3e-3) {
  optim::AdamWOptions o;
  o.lr = lr;
  o.weight_decay = 0;
  optim::AdamW opt(task.model().parameters(), o);
  task.model().train();
  std::vector<double> losses;
  for (int i = 0; i < steps; ++i) {
    opt.zero_grad();
    Tensor loss = task.loss(task.forward(batch), batch);
    losses.push_back(loss.item<double>());
    loss.backward();
    opt.step();
  }
  task.model().eval();
  return losses;
}

}  // namespace oar::nlp::test
