#pragma once
// Inference linear layers on AVX-512 CPUs with the weight repacked once: out = act(x w^T + b) from
// [n, k] weights kept as 32-column panels [ceil(n/32)][k][32] (zero-padded), so each thread streams
// its panels front to back while every panel block is reused by all rows of x. Batch-1 BERT-shaped
// products (x [128, 384-3072]) run at 160-170 GFLOP/s per core this way, where oneDNN's matmul,
// which reads the weight as w's transpose on each call, runs at 130-140 with the weight out of
// cache. Used only with no gradient to record. Each weight is packed on its first use, and the copy
// kept until the weight's storage is written (its version changes: the next use packs again) or
// dies, so every call with the same operands gives the same bits. A row's result does not depend on
// the other rows either (each element sums k in the same order, in blocks set by k alone), so a
// sample gets the same output from the layer in a batch of any size; for that the path takes
// products of any row count (with cold weights it is 1.3-1.7x oneDNN's also at 1-15 rows).
#include <cstdint>
#include <vector>

#include "engine/tensor/tensor.h"

namespace oar::cpu {

// act(x [m, k] (f32, rows at any stride, columns adjacent) w^T + bias) as a new contiguous
// [m, n] f32 tensor, w [n, k] contiguous f32, bias [n] contiguous f32 or undefined; act: 0 none,
// 1 GELU (erf), 2 GELU (tanh), 3 ReLU. Returns an undefined tensor where this path does not apply
// (no AVX-512, other dtypes or layouts, an empty product, or OAR_PACKED_LINEAR=0 in the
// environment); the caller then runs its general GEMM.
Tensor packed_linear(const Tensor& x, const Tensor& w, const Tensor& bias, int act);
// The same with w the parts stacked along n ([n_0 + n_1 + ..., k]; every part but the last has a
// multiple of 32 rows, else undefined): one packed copy of the stack, without building it (BERT's
// query, key and value projections as one product).
Tensor packed_linear(const Tensor& x, const std::vector<Tensor>& ws, const Tensor& bias, int act);

// The kernel alone on an explicitly packed weight (for tests and benchmarks): panels from
// pack_linear_weight(w), the other arguments as above (k >= 1). Requires AVX-512
// (packed_linear_available).
bool packed_linear_available();
Tensor pack_linear_weight(const Tensor& w);
Tensor pack_linear_weights(const std::vector<Tensor>& ws);  // stacked along n, as above
void packed_linear_run(const Tensor& out, const Tensor& x, const Tensor& panels, int64_t n,
                       const Tensor& bias, int act);
// Drops every cached packed copy.
void packed_linear_release();
// Weights whose packed copy is cached and still alive (for tests).
int64_t packed_linear_cache_size();

}  // namespace oar::cpu
