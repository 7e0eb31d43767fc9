#include "engine/nn/attention.h"

#include <cmath>
#include <limits>
#include <ostream>

#include "engine/autograd/grad_mode.h"
#include "engine/core/error.h"
#include "engine/nn/init.h"
#include "engine/ops/attention.h"
#include "engine/ops/binary.h"
#include "engine/ops/where.h"

namespace oar::nn {

MultiHeadAttention::MultiHeadAttention(int64_t e, int64_t heads,
                                       const MultiHeadAttentionOptions& opt, Generator* gen)
    : embed_dim(e), num_heads(heads), head_dim(heads > 0 ? e / heads : 0), options(opt) {
  OAR_CHECK(e > 0 && heads > 0 && e % heads == 0, "MultiHeadAttention: embed_dim=", e,
            " must be a positive multiple of num_heads=", heads);
  Generator& g = gen ? *gen : default_generator();
  const int64_t kdim = opt.kdim > 0 ? opt.kdim : e;
  const int64_t vdim = opt.vdim > 0 ? opt.vdim : e;
  q_proj = register_module("q_proj", std::make_shared<Linear>(e, e, opt.bias, &g));
  k_proj = register_module("k_proj", std::make_shared<Linear>(kdim, e, opt.bias, &g));
  v_proj = register_module("v_proj", std::make_shared<Linear>(vdim, e, opt.bias, &g));
  out_proj = register_module("out_proj", std::make_shared<Linear>(e, e, opt.bias, &g));
  if (kdim == e && vdim == e) {
    // xavier_uniform_ of the stacked in_proj_weight [3E, E].
    const double bound = std::sqrt(6.0 / static_cast<double>(e + 3 * e));
    for (auto* l : {&q_proj, &k_proj, &v_proj}) init::uniform_((*l)->weight, g, -bound, bound);
  } else {
    for (auto* l : {&q_proj, &k_proj, &v_proj}) init::xavier_uniform_((*l)->weight, g);
  }
  if (opt.bias)
    for (auto* l : {&q_proj, &k_proj, &v_proj, &out_proj}) init::zeros_((*l)->bias);
}

Tensor MultiHeadAttention::forward(const Tensor& query, const Tensor& key, const Tensor& value,
                                   const Tensor& attn_mask, const Tensor& key_padding_mask) {
  OAR_CHECK(query.dim() == 3 && key.dim() == 3 && value.dim() == 3,
            "MultiHeadAttention: query, key, value must be 3-D, got ", shape_str(query.shape()),
            ", ", shape_str(key.shape()), ", ", shape_str(value.shape()));
  // To [N, L, E].
  const Tensor q_in = options.batch_first ? query : query.transpose(0, 1);
  const Tensor k_in = options.batch_first ? key : key.transpose(0, 1);
  const Tensor v_in = options.batch_first ? value : value.transpose(0, 1);
  const int64_t n = q_in.size(0), lq = q_in.size(1), lk = k_in.size(1);
  OAR_CHECK(k_in.size(0) == n && v_in.size(0) == n && v_in.size(1) == lk,
            "MultiHeadAttention: batch/length mismatch between query ", shape_str(query.shape()),
            ", key ", shape_str(key.shape()), " and value ", shape_str(value.shape()));
  auto heads = [&](const Tensor& t, int64_t len) {
    return t.reshape({n, len, num_heads, head_dim}).transpose(1, 2);  // [N, H, L, D]
  };
  const Tensor q = heads(q_proj->forward(q_in), lq);
  const Tensor k = heads(k_proj->forward(k_in), lk);
  const Tensor v = heads(v_proj->forward(v_in), lk);

  const double neg_inf = -std::numeric_limits<double>::infinity();
  Tensor mask;
  if (attn_mask.defined()) {
    mask = attn_mask.dtype() == DType::boolean
               ? masked_fill(zeros(attn_mask.shape(), q.dtype(), q.device()), attn_mask, neg_inf)
               : attn_mask;
  }
  if (key_padding_mask.defined()) {
    OAR_CHECK(key_padding_mask.dtype() == DType::boolean && key_padding_mask.dim() == 2 &&
                  key_padding_mask.size(0) == n && key_padding_mask.size(1) == lk,
              "MultiHeadAttention: key_padding_mask must be bool [", n, ", ", lk, "], got ",
              dtype_name(key_padding_mask.dtype()), " ", shape_str(key_padding_mask.shape()));
    Tensor pad = masked_fill(zeros({n, 1, 1, lk}, q.dtype(), q.device()),
                             key_padding_mask.reshape({n, 1, 1, lk}), neg_inf);
    mask = mask.defined() ? add(mask, pad) : pad;
  }
  Tensor ctx = scaled_dot_product_attention(q, k, v, mask, 0.0, options.dropout, is_training(),
                                            generator());  // [N, H, Lq, D]
  Tensor out = out_proj->forward(ctx.transpose(1, 2).reshape({n, lq, embed_dim}));
  return options.batch_first ? out : out.transpose(0, 1);
}

void MultiHeadAttention::describe(std::ostream& os) const {
  os << "MultiHeadAttention(embed_dim=" << embed_dim << ", heads=" << num_heads
     << ", dropout=" << options.dropout << ")";
}

}  // namespace oar::nn
