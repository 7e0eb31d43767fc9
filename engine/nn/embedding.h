#pragma once
// Lookup table weight [num_embeddings, embedding_dim], init N(0, 1) with the padding row zeroed.
#include <optional>

#include "engine/nn/module.h"

namespace oar::nn {

class Embedding : public Module {
 public:
  // padding_idx: a row that gets no gradient (negative counts from the end, as PyTorch).
  Embedding(int64_t num_embeddings, int64_t embedding_dim,
            std::optional<int64_t> padding_idx = std::nullopt, Generator* gen = nullptr);
  // ids [...] (i64 or i32) -> [..., embedding_dim]
  Tensor forward(const Tensor& ids) override;
  std::string name() const override { return "Embedding"; }
  void describe(std::ostream& os) const override;

  int64_t num_embeddings, embedding_dim;
  int64_t padding_idx = -1;  // normalised; -1: none
  Tensor weight;
};

}  // namespace oar::nn
