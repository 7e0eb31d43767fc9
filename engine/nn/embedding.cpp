#include "engine/nn/embedding.h"

#include <ostream>

#include "engine/autograd/grad_mode.h"
#include "engine/core/error.h"
#include "engine/nn/init.h"
#include "engine/ops/index.h"

namespace oar::nn {

Embedding::Embedding(int64_t num, int64_t dim, std::optional<int64_t> pad, Generator* gen)
    : num_embeddings(num), embedding_dim(dim) {
  OAR_CHECK(num > 0 && dim > 0, "Embedding: sizes must be positive, got ", num, " x ", dim);
  if (pad) {
    OAR_CHECK(*pad >= -num && *pad < num, "Embedding(", num, ", ", dim, "): padding_idx ", *pad,
              " out of range");
    padding_idx = *pad < 0 ? *pad + num : *pad;
  }
  weight = register_parameter("weight", empty({num, dim}));
  init::normal_(weight, gen ? *gen : default_generator());
  if (padding_idx >= 0) {
    NoGradGuard no_grad;
    weight.select(0, padding_idx).zero_();
  }
}

Tensor Embedding::forward(const Tensor& ids) {
  OAR_CHECK(ids.dtype() == DType::i64 || ids.dtype() == DType::i32, "Embedding(", num_embeddings,
            ", ", embedding_dim, "): ids must be i64 or i32, got ", dtype_name(ids.dtype()));
  return embedding(weight, ids, padding_idx);
}

void Embedding::describe(std::ostream& os) const {
  os << "Embedding(" << num_embeddings << ", " << embedding_dim;
  if (padding_idx >= 0) os << ", padding_idx=" << padding_idx;
  os << ")";
}

}  // namespace oar::nn
