#include "tests/support/onnx_ops.h"

#include <algorithm>

namespace oar::onnx {

const std::vector<OpFamily>& onnx_op_families() {
  static const std::vector<OpFamily> families = {
      {"elementwise", register_elementwise_onnx_ops},
      {"shape", register_shape_onnx_ops},
      {"reduce", register_reduce_onnx_ops},
      {"minmax", register_minmax_onnx_ops},
      {"statistics", register_statistics_onnx_ops},
      {"softmax", register_softmax_onnx_ops},
      {"sort", register_sort_onnx_ops},
      {"where", register_where_onnx_ops},
      {"index", register_index_onnx_ops},
      {"one_hot", register_one_hot_onnx_ops},
      {"join", register_join_onnx_ops},
      {"matmul", register_matmul_onnx_ops},
      {"conv", register_conv_onnx_ops},
      {"pool", register_pool_onnx_ops},
      {"norm", register_norm_onnx_ops},
      {"rnn", register_rnn_onnx_ops},
      {"dropout", register_dropout_onnx_ops},
      {"loss", register_loss_onnx_ops},
  };
  return families;
}

void register_all_onnx_ops(OpRegistry& r, const std::vector<std::string>& only) {
  for (const std::string& name : only) {
    bool known = false;
    for (const OpFamily& f : onnx_op_families()) known = known || name == f.name;
    if (!known) {
      std::string all;
      for (const OpFamily& f : onnx_op_families())
        all += std::string(all.empty() ? "" : ", ") + f.name;
      OAR_FAIL("onnx: unknown op family '", name, "' (known: ", all, ")");
    }
  }
  for (const OpFamily& f : onnx_op_families()) {
    bool on = only.empty();
    for (const std::string& name : only) on = on || name == f.name;
    if (on) f.add(r);
  }
}

Tensor input_or_none(const std::vector<Tensor>& in, size_t i) {
  return i < in.size() ? in[i] : Tensor();
}

const Tensor& required(const Node& n, const std::vector<Tensor>& in, size_t i) {
  OAR_CHECK(i < in.size() && in[i].defined(), "onnx: ", n.op_type, " needs input ", i);
  return in[i];
}

std::vector<int64_t> int_values(const Tensor& t) {
  OAR_CHECK(t.dtype() == DType::i64 || t.dtype() == DType::i32,
            "onnx: expected an integer tensor, got ", dtype_name(t.dtype()));
  return t.to_vector<int64_t>();
}

Tensor scalar_like(const Tensor& like, double v) {
  return scalar_tensor(v, like.dtype(), like.device());
}

ReduceAxes reduce_axes(const Node& n, const std::vector<Tensor>& in, int64_t opset,
                       int64_t input_from) {
  ReduceAxes r;
  r.keepdims = n.get_int("keepdims", 1) != 0;
  if (opset < input_from) {
    r.dims = n.get_ints("axes");
  } else if (Tensor t = input_or_none(in, 1); t.defined()) {
    r.dims = int_values(t);
  }
  r.identity = r.dims.empty() && n.get_int("noop_with_empty_axes", 0) != 0;
  return r;
}

std::vector<int64_t> spatial_pads(const Node& n, const Shape& spatial,
                                  const std::vector<int64_t>& kernel,
                                  const std::vector<int64_t>& strides,
                                  const std::vector<int64_t>& dilations) {
  const size_t k = spatial.size();
  const std::string mode = n.get_string("auto_pad", "NOTSET");
  if (mode == "NOTSET") {
    std::vector<int64_t> pads = n.get_ints("pads", std::vector<int64_t>(2 * k, 0));
    OAR_CHECK(pads.size() == 2 * k, "onnx: ", n.op_type, ": ", pads.size(), " pads for ", k,
              " spatial dims");
    return pads;
  }
  std::vector<int64_t> pads(2 * k, 0);
  if (mode == "VALID") return pads;
  OAR_CHECK(mode == "SAME_UPPER" || mode == "SAME_LOWER", "onnx: ", n.op_type, ": auto_pad '", mode,
            "' (allowed: NOTSET, SAME_UPPER, SAME_LOWER, VALID)");
  for (size_t i = 0; i < k; ++i) {
    const int64_t out = (spatial[i] + strides[i] - 1) / strides[i];
    const int64_t span = (kernel[i] - 1) * dilations[i] + 1;
    const int64_t total = std::max<int64_t>(0, (out - 1) * strides[i] + span - spatial[i]);
    const int64_t small = total / 2, big = total - small;
    pads[i] = mode == "SAME_UPPER" ? small : big;  // SAME_UPPER puts the extra pad at the end
    pads[k + i] = mode == "SAME_UPPER" ? big : small;
  }
  return pads;
}

void skip(const Node& n, const std::string& why) {
  throw Skip(n.op_type + ": " + why);
}

}  // namespace oar::onnx
