#pragma once
// Row kernels (max along a dim, sort, topk, cumsum, reductions over several dims) work on
// contiguous rows: these move the dims they act on innermost, copying only when needed.
#include <vector>

#include "engine/tensor/tensor.h"

namespace oar::cpu {

// The permutation that keeps the other dims in order and puts `dims` (sorted) last.
inline Shape dims_last_perm(int64_t rank, const std::vector<int64_t>& dims) {
  Shape perm;
  std::vector<bool> moved(static_cast<size_t>(rank), false);
  for (int64_t d : dims) moved[static_cast<size_t>(d)] = true;
  for (int64_t d = 0; d < rank; ++d)
    if (!moved[static_cast<size_t>(d)]) perm.push_back(d);
  for (int64_t d : dims) perm.push_back(d);
  return perm;
}

// x (without history) with `dims` moved innermost, contiguous; a view when already so.
inline Tensor dims_last(const Tensor& x, const std::vector<int64_t>& dims) {
  return x.detach().permute(dims_last_perm(x.dim(), dims)).contiguous();
}

// Calls fill(rows) with a contiguous tensor laid out as out with `dims` innermost, then makes
// sure the values land in out (written in place when that layout is already out's).
template <typename F>
void into_dims_last(const Tensor& out, const std::vector<int64_t>& dims, F&& fill) {
  Tensor v = out.detach().permute(dims_last_perm(out.dim(), dims));
  if (v.is_contiguous()) {
    fill(v);
    return;
  }
  Tensor tmp = empty(v.shape(), out.dtype(), out.device());
  fill(tmp);
  v.copy_(tmp);
}

}  // namespace oar::cpu
