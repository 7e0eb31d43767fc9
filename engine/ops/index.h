#pragma once
// Indexing: embedding lookup, gather, index_select, scatter_add, index_add. Indices are i64 (i32
// accepted); an out-of-range index is an error naming the op, the index and the size. Except in
// embedding, an index in [-n, 0) counts from the end (as ONNX). Values move for any dtype.
#include "engine/tensor/tensor.h"

namespace oar {

// weight [V, D], ids [...] -> [..., D]. Rows equal to padding_idx (if >= 0) get no gradient.
Tensor embedding(const Tensor& weight, const Tensor& ids, int64_t padding_idx = -1);
// out[i][j][k] = x[index[i][j][k]][j][k] for dim 0, etc. (torch.gather / ONNX GatherElements).
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
// Picks slices of x along dim (ONNX Gather with a 1-D index, torch.index_select). Negative
// indices count from the end as in ONNX.
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
// ONNX Gather: any-rank indices; out shape = x.shape[:dim] + index.shape + x.shape[dim+1:].
Tensor take_along(const Tensor& x, int64_t dim, const Tensor& index);
// out = x with src added at index along dim (torch.scatter_add).
// index has src's rank, index.size(d) <= src.size(d) and, for d != dim, <= x.size(d).
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
// out = x with slice k of src along dim added to slice index[k] (torch.index_add); index 1-D,
// src.shape = x.shape with index.numel() at dim. Repeated indices accumulate.
Tensor index_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);

}  // namespace oar
