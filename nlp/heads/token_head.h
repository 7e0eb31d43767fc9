#pragma once
// Token-classification heads: they turn per-word emission scores into a loss and a tag decoding.
// The emissions are word-level and packed to the left (the task gathers each word's first
// sub-token), so a sequence model over tags sees one position per word with no holes. Heads:
// softmax (independent per word) and crf (a linear chain with BIO/BIOES transition constraints,
// nlp/layers/crf.h). A new head implements TokenHead and one line of make_token_head.
#include <memory>
#include <string>
#include <vector>

#include "engine/nn.h"

namespace oar::nlp {

class TokenHead : public nn::Module {
 public:
  // emissions [N, W, C] f32; tags [N, W] i64 (-1 at padding); mask [N, W] i64 (1 = word).
  // Returns a scalar: softmax the mean cross entropy per word, crf the mean NLL per sentence.
  virtual Tensor loss(const Tensor& emissions, const Tensor& tags, const Tensor& mask) = 0;
  // Best tag ids [N, W] i64, -1 at padding.
  virtual Tensor decode(const Tensor& emissions, const Tensor& mask) = 0;
};

// Independent per-word softmax: cross entropy of each word's tag; argmax decoding.
class SoftmaxTokenHead : public TokenHead {
 public:
  Tensor loss(const Tensor& emissions, const Tensor& tags, const Tensor& mask) override;
  Tensor decode(const Tensor& emissions, const Tensor& mask) override;
  std::string name() const override { return "SoftmaxTokenHead"; }
};

// Linear-chain CRF over the word tags (Paddle's transition layout, "crf.transitions"); transitions
// that the tag scheme forbids (O -> I-X, B-X -> I-Y, ...) score -inf in training and decoding.
// Sentences without any scored word add nothing to the loss and decode to padding.
class LinearChainCrf;
class CrfTokenHead : public TokenHead {
 public:
  CrfTokenHead(const std::vector<std::string>& tag_names, Generator* gen);
  Tensor loss(const Tensor& emissions, const Tensor& tags, const Tensor& mask) override;
  Tensor decode(const Tensor& emissions, const Tensor& mask) override;
  std::string name() const override { return "CrfTokenHead"; }

 private:
  std::shared_ptr<LinearChainCrf> crf_;
};

struct TokenHeadOptions {
  std::string kind = "softmax";
  std::vector<std::string> tag_names;  // in id order ("B-PER", "I-PER", ..., "O")
  uint64_t init_seed = 0;              // the CRF's transitions
};

// The heads make_token_head knows, for config validation ("softmax", "crf").
const std::vector<std::string>& token_head_kinds();
// Throws oar::Error naming the known kinds when `o.kind` is unknown.
std::shared_ptr<TokenHead> make_token_head(const TokenHeadOptions& o);

}  // namespace oar::nlp
