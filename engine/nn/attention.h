#pragma once
// Multi-head attention with separate q_proj, k_proj, v_proj and out_proj Linear layers (so
// checkpoints with separate query/key/value weights map by name). Inputs are batch-first
// [N, L, E] unless batch_first is false ([L, N, E], PyTorch's default).
#include <memory>

#include "engine/nn/linear.h"

namespace oar::nn {

struct MultiHeadAttentionOptions {
  double dropout = 0.0;  // on the attention weights, in training
  bool bias = true;
  int64_t kdim = 0;  // key input size; 0: embed_dim
  int64_t vdim = 0;  // value input size; 0: embed_dim
  bool batch_first = true;
};

class MultiHeadAttention : public Module {
 public:
  // Init as PyTorch's nn.MultiheadAttention: q/k/v weights xavier-uniform over the stacked
  // [3E, E] matrix (each their own when kdim/vdim differ), their biases and out_proj's bias zero.
  MultiHeadAttention(int64_t embed_dim, int64_t num_heads,
                     const MultiHeadAttentionOptions& opt = {}, Generator* gen = nullptr);
  // attn_mask: additive float mask broadcasting to [N, heads, Lq, Lk] (e.g. [Lq, Lk]), or a bool
  // mask where true means "may not attend". key_padding_mask: bool [N, Lk], true = padding.
  Tensor forward(const Tensor& query, const Tensor& key, const Tensor& value,
                 const Tensor& attn_mask = Tensor(), const Tensor& key_padding_mask = Tensor());
  // Self-attention without masks.
  Tensor forward(const Tensor& x) override { return forward(x, x, x); }
  std::string name() const override { return "MultiHeadAttention"; }
  void describe(std::ostream& os) const override;

  int64_t embed_dim, num_heads, head_dim;
  MultiHeadAttentionOptions options;
  std::shared_ptr<Linear> q_proj, k_proj, v_proj, out_proj;
};

}  // namespace oar::nn
