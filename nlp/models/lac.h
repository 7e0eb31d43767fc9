#pragma once
// Baidu's LAC lexical analyser (the `lac_small` model that jieba's paddle mode runs): joint
// Chinese word segmentation, part-of-speech and entity tagging (PER/LOC/ORG/TIME), one tag per
// character in "X-B" / "X-I" / "O" form. The network (jieba/lac_small/nets.py):
//   word_emb[ids] -> 2 x [fc -> dynamic_gru forward ; fc -> dynamic_gru reverse ; concat]
//   -> fc (emissions) -> crf_decoding(crfw)
// State names are the Paddle file names (`word_emb`, `fc_0.w_0`, `gru_3.b_0`, `crfw`), so a
// model_baseline/ directory loads with load_state_dict as is.
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/nn/module.h"

namespace oar::nlp {

// Paddle's fc: y = x W + b with W stored [in, out] (not transposed, unlike nn::Linear).
class PaddleFc : public nn::Module {
 public:
  PaddleFc(int64_t in, int64_t out, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;  // [..., in] -> [..., out]
  std::string name() const override { return "PaddleFc"; }
  void describe(std::ostream& os) const override;
  Tensor w_0, b_0;
};

// Paddle Fluid's dynamic_gru (origin_mode=False). x: the fc-projected input [N, L, 3H] in gate
// order [update u, reset r, candidate c]; w [H, 3H] whose memory holds the [H, 2H] u/r weights
// followed by the [H, H] candidate weights; b [1, 3H]. Per step, h0 = 0:
//   u, r = sigmoid(x_ur + b_ur + h W_ur);  c = tanh(x_c + b_c + (r * h) W_c)
//   h = h - u * h + u * c
// (PyTorch's GRU applies r after the matmul and weighs h by u instead: a different cell.)
// lengths [N] in [1, L]: steps past a length output zeros and leave h unchanged; reverse runs
// each sequence from its last valid step. Differentiable (engine ops). Returns [N, L, H].
Tensor paddle_dynamic_gru(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& lengths,
                          bool reverse);

class PaddleGru : public nn::Module {
 public:
  PaddleGru(int64_t hidden, Generator* gen = nullptr);
  std::string name() const override { return "PaddleGru"; }
  void describe(std::ostream& os) const override;
  int64_t hidden;
  Tensor w_0, b_0;
};

struct LacConfig {
  int64_t vocab_size = 20941;
  int64_t emb_dim = 128;
  int64_t hidden = 128;
  int64_t num_layers = 2;  // bidirectional GRU layers
  int64_t num_tags = 57;
};

class LacModel : public nn::Module {
 public:
  explicit LacModel(const LacConfig& c, Generator* gen = nullptr);
  // ids i64 [N, L] (each < vocab_size), lengths [N] in [1, L] -> emissions f32 [N, L, num_tags].
  Tensor emissions(const Tensor& ids, const Tensor& lengths);
  // Viterbi tags (Paddle's crf_decoding) i64 [N, L], -1 past each length.
  Tensor decode(const Tensor& ids, const Tensor& lengths);
  Tensor forward(const Tensor& ids) override;  // emissions, every sequence full length
  std::string name() const override { return "LAC"; }
  void describe(std::ostream& os) const override;

  LacConfig config;
  Tensor word_emb, crfw;                        // [V, E], [T + 2, T]
  std::vector<std::shared_ptr<PaddleFc>> fc;    // 2 per layer, then the emission fc
  std::vector<std::shared_ptr<PaddleGru>> gru;  // 2 per layer (forward, reverse)
};

// The sizes of a model_baseline/ parameter set (word_emb, gru_0, fc_<last>); throws naming
// the directory when the parameters do not form a LAC network.
LacConfig lac_config_from(const std::map<std::string, Tensor>& params, const std::string& origin);

struct LacWord {
  std::string text;  // UTF-8
  std::string tag;   // n, v, PER, LOC, ORG, TIME, ... ("O" for untagged runs)
};

// A LAC directory as jieba ships it: word.dic ("id<TAB>char"), tag.dic ("id<TAB>tag"),
// model_baseline/ (Paddle parameter files).
class LacSegmenter {
 public:
  static LacSegmenter load(const std::string& dir);

  // Characters of a line as LAC sees them: Python's str.strip() whitespace removed from both
  // ends, then one entry per code point (an invalid UTF-8 byte is one entry of its own).
  static std::vector<std::string> characters(const std::string& text);
  // Character ids (unknown characters -> the "OOV" id).
  std::vector<int64_t> ids(const std::vector<std::string>& chars) const;
  // jieba's parse_result: a word starts at an "X-B" tag, or at "O" after a non-"O"; its tag is
  // the first character's tag without "-B"/"-I". Characters are kept as written (jieba shows
  // unknown ones as a space).
  static std::vector<LacWord> words(const std::vector<std::string>& chars,
                                    const std::vector<std::string>& tags);
  // Tags per character for a batch of lines (empty lines give empty results).
  std::vector<std::vector<int64_t>> tag_ids(const std::vector<std::vector<std::string>>& chars);
  std::vector<std::vector<LacWord>> segment(const std::vector<std::string>& texts);

  std::shared_ptr<LacModel> model;
  std::unordered_map<std::string, int64_t> char_ids;
  int64_t oov_id = 0;
  std::vector<std::string> tags;  // by id
};

// Registers `model: {name: lac, pretrained: DIR}` (called by nlp::register_components).
void register_lac_model();

}  // namespace oar::nlp
