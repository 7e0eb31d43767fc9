#pragma once
// Joining and splitting along a dimension, padding and repetition.
#include <string>
#include <vector>

#include "engine/tensor/tensor.h"

namespace oar {

Tensor concat(const std::vector<Tensor>& xs, int64_t dim);
Tensor stack(const std::vector<Tensor>& xs, int64_t dim);
// Pieces of the given sizes along dim (views).
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim);
// n nearly-equal pieces (the last may be smaller, as torch.chunk).
std::vector<Tensor> chunk(const Tensor& x, int64_t n, int64_t dim);
// pads = {before_0, after_0, before_1, after_1, ...} per dimension from the FIRST dim (ONNX
// order regrouped); mode "constant" | "reflect" | "edge". Negative pads crop.
Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, const std::string& mode = "constant",
           double value = 0.0);
// Tiles x `repeats[i]` times along each dim (torch.repeat / ONNX Tile).
Tensor repeat(const Tensor& x, const Shape& repeats);

}  // namespace oar
