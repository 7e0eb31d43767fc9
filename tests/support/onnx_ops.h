#pragma once
// ONNX operators computed with oar ops, for the conformance tests. A handler gets the node (for
// its attributes), one tensor per node input (undefined where an optional input is omitted) and
// the model's opset, and returns the node's outputs in order. It throws onnx::Skip for an
// attribute, dtype or form oar does not support: a skip is a missing feature, never a pass.
//
// Handlers live in one file per engine op family (onnx_ops_<family>.cpp); each family registers
// itself through an explicit call listed in onnx_op_families() (no static registration: the
// support library is static and the linker would drop unreferenced objects).
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "engine/tensor/tensor.h"
#include "tests/support/onnx.h"

namespace oar::onnx {

using Handler = std::function<std::vector<Tensor>(
    const Node& node, const std::vector<Tensor>& inputs, int64_t opset)>;

class OpRegistry {
 public:
  void add(const std::string& op_type, Handler h) { handlers_[op_type] = std::move(h); }
  const Handler* find(const std::string& op_type) const {
    auto it = handlers_.find(op_type);
    return it == handlers_.end() ? nullptr : &it->second;
  }
  size_t size() const { return handlers_.size(); }

 private:
  std::map<std::string, Handler> handlers_;
};

// One call per family; the name is the engine header the handlers use (engine/ops/<name>.h).
void register_elementwise_onnx_ops(OpRegistry& r);  // binary.h, unary.h, Cast, Identity
void register_shape_onnx_ops(OpRegistry& r);        // tensor views: Reshape, Transpose, ...
void register_reduce_onnx_ops(OpRegistry& r);       // ReduceSum, ReduceMean
void register_minmax_onnx_ops(OpRegistry& r);       // ReduceMax/Min, ArgMax/Min
void register_statistics_onnx_ops(OpRegistry& r);   // ReduceL2, ReduceLogSumExp
void register_softmax_onnx_ops(OpRegistry& r);      // Softmax, LogSoftmax
void register_sort_onnx_ops(OpRegistry& r);         // TopK, CumSum
void register_where_onnx_ops(OpRegistry& r);        // Where
void register_index_onnx_ops(OpRegistry& r);        // Gather, GatherElements, ScatterElements
void register_one_hot_onnx_ops(OpRegistry& r);      // OneHot
void register_join_onnx_ops(OpRegistry& r);         // Concat, Split, Pad, Tile
void register_matmul_onnx_ops(OpRegistry& r);       // MatMul, Gemm
void register_conv_onnx_ops(OpRegistry& r);         // Conv
void register_pool_onnx_ops(OpRegistry& r);         // MaxPool, AveragePool, Global*Pool
void register_norm_onnx_ops(OpRegistry& r);         // Batch/Layer/Group/InstanceNormalization
void register_rnn_onnx_ops(OpRegistry& r);          // LSTM, GRU
void register_dropout_onnx_ops(OpRegistry& r);      // Dropout
void register_loss_onnx_ops(OpRegistry& r);         // SoftmaxCrossEntropyLoss, NLLLoss

struct OpFamily {
  const char* name;
  void (*add)(OpRegistry&);
};
// Every family, in registration order.
const std::vector<OpFamily>& onnx_op_families();
// Registers every family (or, when `only` is non-empty, the named ones; an unknown name throws).
void register_all_onnx_ops(OpRegistry& r, const std::vector<std::string>& only = {});

// ---- helpers for handlers ----
// Input i, or undefined when the node has fewer inputs or omitted it.
Tensor input_or_none(const std::vector<Tensor>& in, size_t i);
// Input i, which must be present.
const Tensor& required(const Node& n, const std::vector<Tensor>& in, size_t i);
// The values of an integer tensor (a shape, axes, repeats, pads input).
std::vector<int64_t> int_values(const Tensor& t);
// A scalar tensor of `like`'s dtype.
Tensor scalar_like(const Tensor& like, double v);
// A Reduce* node's axes: the `axes` attribute before opset `input_from`, input 1 from it on.
// Empty axes reduce everything, unless noop_with_empty_axes makes the node an identity.
struct ReduceAxes {
  Shape dims;  // empty: all
  bool identity = false;
  bool keepdims = true;
};
ReduceAxes reduce_axes(const Node& n, const std::vector<Tensor>& in, int64_t opset,
                       int64_t input_from);
// Conv/pool padding in ONNX layout (all begins, then all ends) from `pads` or `auto_pad`
// (SAME_UPPER, SAME_LOWER, VALID) for the given spatial input sizes.
std::vector<int64_t> spatial_pads(const Node& n, const Shape& spatial,
                                  const std::vector<int64_t>& kernel,
                                  const std::vector<int64_t>& strides,
                                  const std::vector<int64_t>& dilations);
// Throws Skip naming the node and the reason.
[[noreturn]] void skip(const Node& n, const std::string& why);

}  // namespace oar::onnx
