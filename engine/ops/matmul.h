#pragma once
// Matrix products on oneDNN matmul (f32, bf16 on AMX/AVX512-BF16; f16 where the CPU has it).
#include <functional>
#include <vector>

#include "engine/tensor/tensor.h"

namespace oar {

// numpy matmul semantics: 1-D operands are promoted and the added dim removed; batch dims
// broadcast. Inputs of one dtype.
Tensor matmul(const Tensor& a, const Tensor& b);
// [B, M, K] x [B, K, N] -> [B, M, N] (no broadcasting).
Tensor bmm(const Tensor& a, const Tensor& b);
// x [..., in] . weight[out, in]^T + bias[out] (bias may be undefined). On AVX-512 CPUs with no
// gradient to record, the product runs on a copy of the weight packed on its first use (see
// engine/ops/cpu/packed_linear.h; OAR_PACKED_LINEAR=0 turns it off).
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());
// linear(x, stacked(), bias) where stacked() returns the weights stacked along out ([sum out_i,
// in]). Where the packed path applies it packs the parts themselves and stacked() is not called,
// so a caller that keeps a stacked copy for the other paths (BERT's query, key and value) need not
// build it there.
Tensor linear_stacked(const Tensor& x, const std::vector<Tensor>& weights, const Tensor& bias,
                      const std::function<Tensor()>& stacked);
// Drops every packed weight copy (the trainer calls it when an evaluation ends and training goes
// on); the next inference use packs again.
void release_packed_linear_weights();
enum class LinearActivation { none = 0, gelu = 1, gelu_tanh = 2, relu = 3 };
// act(linear(x, weight, bias)). On the CPU, when no gradient is needed (inference), the
// activation is a post-op of the same GEMM (no second pass over the output). When gradients are
// needed (f32 on the CPU), one pass after the GEMM writes act(h) and keeps act'(h) in place of
// the pre-activation h, and backward multiplies by it and sums the bias gradient in one pass.
// Elsewhere the two ops run unfused.
Tensor linear_act(const Tensor& x, const Tensor& weight, const Tensor& bias, LinearActivation act);
// alpha * op(a) op(b) + beta * c, with op = transpose when the flag is set (ONNX Gemm).
Tensor gemm(const Tensor& a, const Tensor& b, const Tensor& c = Tensor(), double alpha = 1.0,
            double beta = 1.0, bool trans_a = false, bool trans_b = false);

}  // namespace oar
