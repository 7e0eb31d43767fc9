#include <string>

#include "engine/core/error.h"
#include "engine/ops/cpu/onednn.h"

namespace oar::cpu {

namespace {

struct SoftmaxForward {
  dnnl::softmax_forward::primitive_desc pd;
  dnnl::softmax_forward prim;
};
struct SoftmaxBackward {
  dnnl::softmax_backward::primitive_desc pd;
  dnnl::softmax_backward prim;
};

// Any softmax is one over the middle axis of [outer, n, inner] (or [outer, n] when inner = 1),
// so primitives are keyed by those sizes only.
Shape collapsed(const Shape& s, int64_t dim) {
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < dim; ++i) outer *= s[i];
  for (size_t i = static_cast<size_t>(dim) + 1; i < s.size(); ++i) inner *= s[i];
  if (inner == 1) return {outer, s[dim]};
  return {outer, s[dim], inner};
}

dnnl::algorithm algorithm_of(bool log) {
  return log ? dnnl::algorithm::softmax_log : dnnl::algorithm::softmax_accurate;
}

std::string key(const char* what, const Shape& s, bool log) {
  return std::string(what) + (log ? "log" : "accurate") + shape_str(s);
}

std::shared_ptr<SoftmaxForward> forward_primitive(const Shape& s, bool log) {
  return onednn::cached<SoftmaxForward>(key("softmax_fwd/", s, log), [&] {
    const auto md = onednn::plain_desc(s, DType::f32);
    dnnl::softmax_forward::primitive_desc pd(onednn::engine(), dnnl::prop_kind::forward_training,
                                             algorithm_of(log), md, md, 1);
    return std::make_shared<SoftmaxForward>(SoftmaxForward{pd, dnnl::softmax_forward(pd)});
  });
}

std::shared_ptr<SoftmaxBackward> backward_primitive(const Shape& s, bool log) {
  return onednn::cached<SoftmaxBackward>(key("softmax_bwd/", s, log), [&] {
    const auto md = onednn::plain_desc(s, DType::f32);
    auto fwd = forward_primitive(s, log);
    dnnl::softmax_backward::primitive_desc pd(onednn::engine(), algorithm_of(log), md, md, md, 1,
                                              fwd->pd);
    return std::make_shared<SoftmaxBackward>(SoftmaxBackward{pd, dnnl::softmax_backward(pd)});
  });
}

// bf16/f16 go through f32 (a copy each way) so one f32 primitive serves every dtype.
Tensor as_f32(const Tensor& t) {
  return t.dtype() == DType::f32 ? t : t.detach().to(DType::f32);
}

void copy_back(const Tensor& dst, const Tensor& f32) {
  if (dst.dtype() == DType::f32) return;
  Tensor d = dst;
  d.copy_(f32);
}

}  // namespace

void softmax(const Tensor& out, const Tensor& x, int64_t dim, bool log) {
  const Shape s = collapsed(x.shape(), dim);
  auto p = forward_primitive(s, log);
  const Tensor src = as_f32(x);
  const Tensor dst = out.dtype() == DType::f32 ? out : empty(out.shape(), DType::f32);
  const auto md = onednn::plain_desc(s, DType::f32);
  auto src_m = onednn::memory_of(src, md);
  auto dst_m = onednn::memory_of(dst, md);
  p->prim.execute(onednn::stream(), {{DNNL_ARG_SRC, src_m}, {DNNL_ARG_DST, dst_m}});
  onednn::stream().wait();
  copy_back(out, dst);
}

void softmax_backward(const Tensor& gx, const Tensor& g, const Tensor& out, int64_t dim, bool log) {
  const Shape s = collapsed(out.shape(), dim);
  auto p = backward_primitive(s, log);
  const Tensor gf = as_f32(g), of = as_f32(out);
  const Tensor dst = gx.dtype() == DType::f32 ? gx : empty(gx.shape(), DType::f32);
  const auto md = onednn::plain_desc(s, DType::f32);
  auto g_m = onednn::memory_of(gf, md);
  auto o_m = onednn::memory_of(of, md);
  auto d_m = onednn::memory_of(dst, md);
  p->prim.execute(onednn::stream(),
                  {{DNNL_ARG_DST, o_m}, {DNNL_ARG_DIFF_DST, g_m}, {DNNL_ARG_DIFF_SRC, d_m}});
  onednn::stream().wait();
  copy_back(gx, dst);
}

}  // namespace oar::cpu
