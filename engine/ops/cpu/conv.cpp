// CPU convolution on oneDNN (forward_training, backward_data, backward_weights). Each primitive
// lets oneDNN choose its layouts (format_tag::any); user tensors stay plain and are reordered
// in and out by cached reorder primitives. A parameter's reordered weight is cached by
// (storage, storage version), so an unchanged weight is reordered once. Depthwise 2-D
// convolutions on plain f32 memory use our own loops instead (depthwise_conv.h).
// conv_forward_fused adds a residual (oneDNN's sum post-op, the residual first placed in the
// primitive's destination layout) and a ReLU/ReLU6 (eltwise post-op) in the same pass.
// A channels-last input and output (conv_layout.h) are the primitive's own source and destination
// (oneDNN's NHWC kernels): nothing is reordered but a parameter's weight, once.
#include <algorithm>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "engine/core/error.h"
#include "engine/ops/conv_backward.h"
#include "engine/ops/conv_bn.h"
#include "engine/ops/conv_fused.h"
#include "engine/ops/conv_layout.h"
#include "engine/ops/cpu/bn_blocked.h"
#include "engine/ops/cpu/depthwise_conv.h"
#include "engine/ops/cpu/loops.h"
#include "engine/ops/cpu/onednn.h"
#include "engine/tensor/source_stamp.h"

namespace oar::cpu {

namespace {

using dnnl::memory;

// One argument of a primitive: the user's plain layout, the primitive's layout, and the
// reorder between them (user -> primitive for inputs, primitive -> user for outputs).
struct Arg {
  memory::desc user, inner;
  std::optional<dnnl::reorder> re;
};

Arg input_arg(const memory::desc& user, const memory::desc& inner) {
  Arg a{user, inner, std::nullopt};
  if (user != inner)
    a.re = dnnl::reorder(
        dnnl::reorder::primitive_desc(onednn::engine(), user, onednn::engine(), inner));
  return a;
}

Arg output_arg(const memory::desc& user, const memory::desc& inner) {
  Arg a{user, inner, std::nullopt};
  if (user != inner)
    a.re = dnnl::reorder(
        dnnl::reorder::primitive_desc(onednn::engine(), inner, onednn::engine(), user));
  return a;
}

struct ConvPrimitive {
  dnnl::primitive prim;
  memory::desc scratch;
  Arg a0, a1, a2;  // fwd: src, weights, dst; bwd data: diff_dst, weights, diff_src;
                   // bwd weights: src, diff_dst, diff_weights
  // Fused forward with a residual: read in place by a binary post-op (channels-last residual and
  // output), else copied into dst's layout by `res` and added by a sum post-op.
  bool res_binary = false;
  std::optional<dnnl::reorder> res;
  memory::desc bias;  // fwd bias or bwd diff_bias (plain); zero-dim when absent
};

// A parameter's weight in a primitive's layout, valid while `stamp` is current for the weight.
struct CachedWeight {
  std::mutex mu;
  SourceStamp stamp;
  Tensor buf;
};

void append(std::string& key, const std::vector<int64_t>& v) {
  key.push_back(static_cast<char>(v.size()));
  key.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(int64_t));
}

// Everything that determines the primitives of one convolution.
std::string conv_key(const char* kind, const Tensor& x_or_gx, const Shape& x_strides,
                     const Tensor& w, const Shape& out_shape, const Tensor& bias_like,
                     const ConvGeometry& g) {
  std::string key = kind;
  key.reserve(320);
  key.push_back(static_cast<char>(x_or_gx.dtype()));
  key.push_back(static_cast<char>(w.dtype()));
  key.push_back(bias_like.defined() ? static_cast<char>(bias_like.dtype()) : char(-1));
  append(key, x_or_gx.shape());
  append(key, x_strides);
  append(key, w.shape());
  append(key, out_shape);
  append(key, g.stride);
  append(key, g.pad_begin);
  append(key, g.pad_end);
  append(key, g.dilation);
  append(key, {g.groups});
  return key;
}

// oneDNN's descriptors for one convolution: weights are [G, O/G, C/G, *k] when grouped.
struct Descs {
  memory::dims src, weights, dst, strides, dil, pad_l, pad_r;
  memory::data_type dt;
};

Descs descs_of(const Shape& x, const Shape& w, const Shape& y, DType dtype, const ConvGeometry& g) {
  Descs d;
  d.src = onednn::dims(x);
  d.dst = onednn::dims(y);
  d.weights = onednn::dims(w);
  if (g.groups > 1) {
    d.weights[0] /= g.groups;
    d.weights.insert(d.weights.begin(), g.groups);
  }
  d.strides = g.stride;
  d.pad_l = g.pad_begin;
  d.pad_r = g.pad_end;
  for (int64_t v : g.dilation) d.dil.push_back(v - 1);  // oneDNN counts the gaps
  d.dt = onednn::data_type(dtype);
  return d;
}

memory::desc any(const memory::dims& dims, memory::data_type dt) {
  return memory::desc(dims, dt, memory::format_tag::any);
}

memory::desc plain(const memory::dims& dims, memory::data_type dt) {
  return memory::desc(dims, dt, onednn::dims(contiguous_strides(Shape(dims.begin(), dims.end()))));
}

dnnl::primitive_attr user_scratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

// src_dst: the source and destination descriptors to use (channels-last tensors as they are),
// or null to let oneDNN choose. add_residual (with src_dst): a residual laid out as the
// destination is added by a binary post-op, read where it lies (`sum` instead adds what the
// destination holds).
dnnl::convolution_forward::primitive_desc forward_pd(
    const Descs& d, const memory::desc* bias, bool sum = false,
    ConvActivation act = ConvActivation::none,
    const std::pair<memory::desc, memory::desc>* src_dst = nullptr, bool add_residual = false) {
  const auto src = src_dst ? src_dst->first : any(d.src, d.dt);
  const auto dst = src_dst ? src_dst->second : any(d.dst, d.dt);
  auto attr = user_scratchpad();
  if (sum || add_residual || act != ConvActivation::none) {
    dnnl::post_ops po;
    if (sum) po.append_sum(1.f);
    if (add_residual) po.append_binary(dnnl::algorithm::binary_add, dst);
    if (act == ConvActivation::relu) po.append_eltwise(dnnl::algorithm::eltwise_relu, 0.f, 0.f);
    if (act == ConvActivation::relu6) po.append_eltwise(dnnl::algorithm::eltwise_clip_v2, 0.f, 6.f);
    attr.set_post_ops(po);
  }
  const auto wei = any(d.weights, d.dt);
  if (bias)
    return dnnl::convolution_forward::primitive_desc(
        onednn::engine(), dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
        src, wei, *bias, dst, d.strides, d.dil, d.pad_l, d.pad_r, attr);
  return dnnl::convolution_forward::primitive_desc(
      onednn::engine(), dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, src,
      wei, dst, d.strides, d.dil, d.pad_l, d.pad_r, attr);
}

[[noreturn]] void unsupported(const char* what, const Tensor& x, const dnnl::error& e) {
  OAR_FAIL("conv: oneDNN has no ", what, " for ", dtype_name(x.dtype()), " input ",
           shape_str(x.shape()), " on this CPU (", e.what(), ")");
}

// Runs the input reorder when needed; `keep` holds the reordered buffer until execution ends.
memory input(const Arg& a, void* ptr, std::vector<Tensor>& keep) {
  memory user(a.user, onednn::engine(), ptr);
  if (!a.re) return user;
  keep.push_back(onednn::buffer_for(a.inner));
  memory in(a.inner, onednn::engine(), keep.back().raw_data());
  a.re->execute(onednn::stream(), user, in);
  return in;
}

memory output(const Arg& a, void* ptr, std::vector<Tensor>& keep) {
  if (!a.re) return memory(a.user, onednn::engine(), ptr);
  keep.push_back(onednn::buffer_for(a.inner));
  return memory(a.inner, onednn::engine(), keep.back().raw_data());
}

void finish(const Arg& a, const memory& inner, void* ptr) {
  if (!a.re) return;
  memory user(a.user, onednn::engine(), ptr);
  a.re->execute(onednn::stream(), const_cast<memory&>(inner), user);
}

// The weight in the primitive's layout. For a parameter the reordered copy is kept (keyed by
// primitive and storage) and redone only when the storage's version changes.
memory weight(const Arg& a, const Tensor& w, bool cache, const std::string& prim_key,
              std::vector<Tensor>& keep) {
  if (!a.re || !cache) return input(a, w.raw_data(), keep);
  std::string key = prim_key;
  key += "/w";
  const auto* sp = w.impl()->storage.get();
  key.append(reinterpret_cast<const char*>(&sp), sizeof(sp));
  const int64_t off = w.offset();
  key.append(reinterpret_cast<const char*>(&off), sizeof(off));
  auto c = onednn::cached<CachedWeight>(key, [] { return std::make_shared<CachedWeight>(); });
  std::lock_guard<std::mutex> lock(c->mu);
  if (!c->buf.defined() || !c->stamp.current({w})) {
    c->stamp = SourceStamp({w});
    if (!c->buf.defined()) c->buf = onednn::buffer_for(a.inner);
    memory user(a.user, onednn::engine(), w.raw_data());
    memory in(a.inner, onednn::engine(), c->buf.raw_data());
    a.re->execute(onednn::stream(), user, in);
    onednn::stream().wait();
  }
  keep.push_back(c->buf);
  return memory(a.inner, onednn::engine(), c->buf.raw_data());
}

void add_scratchpad(const ConvPrimitive& p, std::unordered_map<int, memory>& args,
                    std::vector<Tensor>& keep) {
  if (p.scratch.get_size() == 0) return;
  keep.push_back(onednn::buffer_for(p.scratch));
  args.emplace(DNNL_ARG_SCRATCHPAD, memory(p.scratch, onednn::engine(), keep.back().raw_data()));
}

}  // namespace

namespace {

// out = act(out + residual) in place, for the depthwise loops (plain contiguous f32).
void epilogue(const Tensor& out, const Tensor& residual, ConvActivation act) {
  float* o = out.data<float>();
  const float* r = residual.defined() ? residual.data<float>() : nullptr;
  const int64_t n = out.numel();
  const float hi = act == ConvActivation::relu6 ? 6.f : std::numeric_limits<float>::infinity();
  const float lo = act == ConvActivation::none ? -std::numeric_limits<float>::infinity() : 0.f;
  for (int64_t i = 0; i < n; ++i) {
    float v = r ? o[i] + r[i] : o[i];
    o[i] = std::min(std::max(v, lo), hi);
  }
}

}  // namespace

void conv_forward_fused(const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias,
                        const Tensor& residual, ConvActivation act, const ConvGeometry& g,
                        bool cache_weight) {
  if (plain_depthwise(x, w, g)) {
    depthwise_forward(out, x, w, bias, g);
    if (residual.defined() || act != ConvActivation::none) epilogue(out, residual, act);
    return;
  }
  const bool sum = residual.defined();
  // out is channels-last exactly when x is (conv_impl); the primitive then works on both as they
  // are. out's and the residual's layouts are part of the key.
  const bool channels_last = is_channels_last(x) && is_channels_last(out);
  std::string key = conv_key("conv.fwd", x, x.strides(), w, out.shape(), bias, g);
  key.push_back(static_cast<char>(sum));
  key.push_back(static_cast<char>(act));
  key.push_back(static_cast<char>(channels_last));
  if (sum) append(key, residual.strides());
  auto p = onednn::cached<ConvPrimitive>(key, [&] {
    const Descs d = descs_of(x.shape(), w.shape(), out.shape(), x.dtype(), g);
    auto c = std::make_shared<ConvPrimitive>();
    try {
      if (bias.defined()) c->bias = plain({w.size(0)}, onednn::data_type(bias.dtype()));
      const std::pair<memory::desc, memory::desc> src_dst{onednn::desc_of(x), onednn::desc_of(out)};
      const memory::desc* b = bias.defined() ? &c->bias : nullptr;
      auto make = [&] {
        if (sum && channels_last && src_dst.second == onednn::desc_of(residual)) {
          try {  // the residual as it is: no copy (where this oneDNN kernel takes the post-op)
            auto pd = forward_pd(d, b, false, act, &src_dst, true);
            c->res_binary = true;
            return pd;
          } catch (const dnnl::error&) {
          }
        }
        return forward_pd(d, b, sum, act, channels_last ? &src_dst : nullptr);
      };
      const auto pd = make();
      c->prim = dnnl::convolution_forward(pd);
      c->scratch = pd.scratchpad_desc();
      c->a0 = input_arg(onednn::desc_of(x), pd.src_desc());
      c->a1 = input_arg(plain(d.weights, d.dt), pd.weights_desc());
      c->a2 = output_arg(onednn::desc_of(out), pd.dst_desc());
      if (sum && !c->res_binary)
        c->res = dnnl::reorder(dnnl::reorder::primitive_desc(
            onednn::engine(), onednn::desc_of(residual), onednn::engine(), pd.dst_desc()));
    } catch (const dnnl::error& e) {
      unsupported("forward convolution", x, e);
    }
    return c;
  });
  std::vector<Tensor> keep;
  std::unordered_map<int, memory> args;
  args.emplace(DNNL_ARG_SRC, input(p->a0, x.raw_data(), keep));
  args.emplace(DNNL_ARG_WEIGHTS, weight(p->a1, w, cache_weight, key, keep));
  if (bias.defined())
    args.emplace(DNNL_ARG_BIAS, memory(p->bias, onednn::engine(), bias.raw_data()));
  memory dst = output(p->a2, out.raw_data(), keep);
  if (p->res_binary) {
    args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1,
                 memory(onednn::desc_of(residual), onednn::engine(), residual.raw_data()));
  } else if (sum) {  // the residual, copied into the destination (in its layout), is summed into
    memory user(onednn::desc_of(residual), onednn::engine(), residual.raw_data());
    p->res->execute(onednn::stream(), user, dst);
  }
  args.emplace(DNNL_ARG_DST, dst);
  add_scratchpad(*p, args, keep);
  p->prim.execute(onednn::stream(), args);
  finish(p->a2, dst, out.raw_data());
  onednn::stream().wait();
}

void conv_forward(const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias,
                  const ConvGeometry& g, bool cache_weight) {
  conv_forward_fused(out, x, w, bias, Tensor(), ConvActivation::none, g, cache_weight);
}

namespace {

// dL/dy reordered once for both backward primitives when they want it in the same layout (the
// usual case: one reorder of the output-sized gradient per convolution instead of two).
struct SharedGradOut {
  bool set = false;
  memory::desc inner;
  memory mem;
  std::vector<Tensor> keep;
};

memory grad_out_input(const Arg& a, const Tensor& gy, SharedGradOut* share,
                      std::vector<Tensor>& keep) {
  if (!share || !a.re) return input(a, gy.raw_data(), keep);
  if (share->set && share->inner == a.inner) return share->mem;
  memory m = input(a, gy.raw_data(), share->keep);
  share->set = true;
  share->inner = a.inner;
  share->mem = m;
  return m;
}

void backward_data(const Tensor& gx, const Tensor& gy, const Tensor& w, const ConvGeometry& g,
                   bool cache_weight, SharedGradOut* share) {
  if (plain_depthwise(gx, w, g) && gy.is_contiguous()) return depthwise_backward_data(gx, gy, w, g);
  const std::string key = conv_key("conv.bwd_data", gx, gx.strides(), w, gy.shape(), Tensor(), g);
  auto p = onednn::cached<ConvPrimitive>(key, [&] {
    const Descs d = descs_of(gx.shape(), w.shape(), gy.shape(), gx.dtype(), g);
    auto c = std::make_shared<ConvPrimitive>();
    try {
      const auto hint = forward_pd(d, nullptr);
      const dnnl::convolution_backward_data::primitive_desc pd(
          onednn::engine(), dnnl::algorithm::convolution_direct, any(d.src, d.dt),
          any(d.weights, d.dt), any(d.dst, d.dt), d.strides, d.dil, d.pad_l, d.pad_r, hint,
          user_scratchpad());
      c->prim = dnnl::convolution_backward_data(pd);
      c->scratch = pd.scratchpad_desc();
      c->a0 = input_arg(plain(d.dst, d.dt), pd.diff_dst_desc());
      c->a1 = input_arg(plain(d.weights, d.dt), pd.weights_desc());
      c->a2 = output_arg(plain(d.src, d.dt), pd.diff_src_desc());
    } catch (const dnnl::error& e) {
      unsupported("backward-data convolution", gx, e);
    }
    return c;
  });
  std::vector<Tensor> keep;
  std::unordered_map<int, memory> args;
  args.emplace(DNNL_ARG_DIFF_DST, grad_out_input(p->a0, gy, share, keep));
  args.emplace(DNNL_ARG_WEIGHTS, weight(p->a1, w, cache_weight, key, keep));
  const memory diff_src = output(p->a2, gx.raw_data(), keep);
  args.emplace(DNNL_ARG_DIFF_SRC, diff_src);
  add_scratchpad(*p, args, keep);
  p->prim.execute(onednn::stream(), args);
  finish(p->a2, diff_src, gx.raw_data());
  onednn::stream().wait();
}

void backward_weights(const Tensor& gw, const Tensor& gb, const Tensor& x, const Tensor& gy,
                      const ConvGeometry& g, SharedGradOut* share) {
  if (plain_depthwise(x, gw, g) && gy.is_contiguous() && (!gb.defined() || gb.is_contiguous()))
    return depthwise_backward_weights(gw, gb, x, gy, g);
  const std::string key = conv_key("conv.bwd_weights", x, x.strides(), gw, gy.shape(), gb, g);
  auto p = onednn::cached<ConvPrimitive>(key, [&] {
    const Descs d = descs_of(x.shape(), gw.shape(), gy.shape(), x.dtype(), g);
    auto c = std::make_shared<ConvPrimitive>();
    try {
      if (gb.defined()) c->bias = plain({gw.size(0)}, onednn::data_type(gb.dtype()));
      const auto hint = forward_pd(d, gb.defined() ? &c->bias : nullptr);
      const auto src = any(d.src, d.dt), dwei = any(d.weights, d.dt), ddst = any(d.dst, d.dt);
      const auto pd =
          gb.defined()
              ? dnnl::convolution_backward_weights::primitive_desc(
                    onednn::engine(), dnnl::algorithm::convolution_direct, src, dwei, c->bias, ddst,
                    d.strides, d.dil, d.pad_l, d.pad_r, hint, user_scratchpad())
              : dnnl::convolution_backward_weights::primitive_desc(
                    onednn::engine(), dnnl::algorithm::convolution_direct, src, dwei, ddst,
                    d.strides, d.dil, d.pad_l, d.pad_r, hint, user_scratchpad());
      c->prim = dnnl::convolution_backward_weights(pd);
      c->scratch = pd.scratchpad_desc();
      c->a0 = input_arg(onednn::desc_of(x), pd.src_desc());
      c->a1 = input_arg(plain(d.dst, d.dt), pd.diff_dst_desc());
      c->a2 = output_arg(plain(d.weights, d.dt), pd.diff_weights_desc());
    } catch (const dnnl::error& e) {
      unsupported("backward-weights convolution", x, e);
    }
    return c;
  });
  std::vector<Tensor> keep;
  std::unordered_map<int, memory> args;
  args.emplace(DNNL_ARG_SRC, input(p->a0, x.raw_data(), keep));
  args.emplace(DNNL_ARG_DIFF_DST, grad_out_input(p->a1, gy, share, keep));
  const memory diff_w = output(p->a2, gw.raw_data(), keep);
  args.emplace(DNNL_ARG_DIFF_WEIGHTS, diff_w);
  if (gb.defined())
    args.emplace(DNNL_ARG_DIFF_BIAS, memory(p->bias, onednn::engine(), gb.raw_data()));
  add_scratchpad(*p, args, keep);
  p->prim.execute(onednn::stream(), args);
  finish(p->a2, diff_w, gw.raw_data());
  onednn::stream().wait();
}

}  // namespace

void conv_backward_data(const Tensor& gx, const Tensor& gy, const Tensor& w, const ConvGeometry& g,
                        bool cache_weight) {
  backward_data(gx, gy, w, g, cache_weight, nullptr);
}

void conv_backward_weights(const Tensor& gw, const Tensor& gb, const Tensor& x, const Tensor& gy,
                           const ConvGeometry& g) {
  backward_weights(gw, gb, x, gy, g, nullptr);
}

void conv_backward(const Tensor& gx, const Tensor& gw, const Tensor& gb, const Tensor& x,
                   const Tensor& gy, const Tensor& w, const ConvGeometry& g, bool cache_weight) {
  SharedGradOut share;
  backward_data(gx, gy, w, g, cache_weight, &share);
  backward_weights(gw, gb, x, gy, g, &share);
}

namespace {

// conv_bn_train's primitives: the forward convolution, and (made on the first backward) the two
// backward ones. The BN loops read and write the convolution's destination layout `dst`.
struct ConvBnPrims {
  bool ok = false;
  bool depthwise = false;  // our plain depthwise loops, BN on plain memory (no oneDNN)
  BlockedLayout layout;
  Shape x_shape, out_shape;
  dnnl::primitive fwd;
  memory::desc fwd_scratch, dst;
  Arg src, wei;  // fwd: user x -> src layout; plain weights -> the primitive's
  std::once_flag bwd_once;
  dnnl::primitive data, weights;
  memory::desc data_scratch, weights_scratch;
  Arg data_ddst, data_wei, data_dsrc;  // dst layout -> diff_dst; weights; diff_src -> plain gx
  Arg w_src, w_ddst, w_dwei;           // fwd src layout -> src; dst layout -> diff_dst; gw out
  BlockedLayout src_layout;            // the forward source layout (when the BN loops know it)
  bool gemm_weights = false;           // dL/dw by im2col + one sgemm (gemm_backward_weights)
  std::string key;
};

// The channel block of a [N, C, H, W] f32 descriptor the BN loops can read, or 0.
int64_t block_of(const memory::desc& d, const memory::dims& dims) {
  using tag = memory::format_tag;
  const auto dt = memory::data_type::f32;
  if (d == memory::desc(dims, dt, tag::aBcd16b)) return 16;
  if (d == memory::desc(dims, dt, tag::aBcd8b)) return 8;
  if (d == memory::desc(dims, dt, tag::abcd)) return 1;
  if (d == memory::desc(dims, dt, tag::acdb)) return dims[1];
  return 0;
}

// Whether a primitive descriptor runs one of oneDNN's optimised kernels (not its reference loops).
bool optimised(const dnnl::primitive_desc_base& pd) {
  return std::string(pd.impl_info_str()).rfind("ref", 0) != 0;
}

void make_backward(ConvBnPrims& c, const Descs& d) {
  const auto hint = forward_pd(d, nullptr);
  auto data_pd = [&] {
    return dnnl::convolution_backward_data::primitive_desc(
        onednn::engine(), dnnl::algorithm::convolution_direct, any(d.src, d.dt),
        any(d.weights, d.dt), any(d.dst, d.dt), d.strides, d.dil, d.pad_l, d.pad_r, hint,
        user_scratchpad());
  };
  // Backward-data on small output maps (c.gemm_weights): the first optimised kernel that reads
  // dL/dy in the forward's output layout (the BN pass writes dL/dy there), else oneDNN's first
  // choice. For stride-2 convolutions oneDNN 3.2 on AVX-512 ranks a strided brgemm kernel first
  // that wants dL/dy reordered; on ResNet-18's 4x4 -> 2x2 layer (64x64 input) the direct kernel
  // was 2x faster on the 3x3 conv and 3x on the 1x1 downsample; on larger maps (4x4 outputs and
  // up, and at 224x224 input) oneDNN's first choice was as fast or faster, so its order stands.
  auto pdd = data_pd();
  bool found = !c.gemm_weights;
  while (!found) {
    found = optimised(pdd) && pdd.diff_dst_desc() == c.dst;
    if (!found && !pdd.next_impl()) break;
  }
  if (!found) pdd = data_pd();
  c.data = dnnl::convolution_backward_data(pdd);
  c.data_scratch = pdd.scratchpad_desc();
  c.data_ddst = input_arg(c.dst, pdd.diff_dst_desc());
  c.data_wei = input_arg(plain(d.weights, d.dt), pdd.weights_desc());
  c.data_dsrc = output_arg(plain(d.src, d.dt), pdd.diff_src_desc());
  const dnnl::convolution_backward_weights::primitive_desc pdw(
      onednn::engine(), dnnl::algorithm::convolution_direct, any(d.src, d.dt), any(d.weights, d.dt),
      any(d.dst, d.dt), d.strides, d.dil, d.pad_l, d.pad_r, hint, user_scratchpad());
  c.weights = dnnl::convolution_backward_weights(pdw);
  c.weights_scratch = pdw.scratchpad_desc();
  c.w_src = input_arg(c.src.inner, pdw.src_desc());
  c.w_ddst = input_arg(c.dst, pdw.diff_dst_desc());
  c.w_dwei = output_arg(plain(d.weights, d.dt), pdw.diff_weights_desc());
}

void scratch_arg(const memory::desc& sd, std::unordered_map<int, memory>& args,
                 std::vector<Tensor>& keep) {
  if (sd.get_size() == 0) return;
  keep.push_back(onednn::buffer_for(sd));
  args.emplace(DNNL_ARG_SCRATCHPAD, memory(sd, onednn::engine(), keep.back().raw_data()));
}

// Output maps of at most this many positions take dL/dw from gemm_backward_weights: oneDNN 3.2's
// direct backward-weights kernel walks the whole weight gradient once per image, which on
// ResNet-18's 512-channel 2x2 layer (64x64 input) took 3x its forward's time.
constexpr int64_t kGemmMaxHw = 4;

// dL/dw [O, C kh kw] = dL/dy^T [O, N H' W'] col [N H' W', C kh kw] as one sgemm written straight
// into the plain weight gradient (no reorder back). x and dL/dy are read in the layouts the
// forward left them in (p.src_layout, p.layout). Groups 1, 2-D.
void gemm_backward_weights(const ConvBnPrims& p, const float* x, const float* gy, float* gw,
                           const Shape& w_shape, const ConvGeometry& g) {
  const BlockedLayout& xl = p.src_layout;
  const BlockedLayout& yl = p.layout;
  const int64_t h = p.x_shape[2], wd = p.x_shape[3], oh = p.out_shape[2], ow = p.out_shape[3];
  const int64_t o = w_shape[0], kh = w_shape[2], kw = w_shape[3];
  const int64_t rows = xl.n * oh * ow, cols = xl.c * kh * kw;
  Tensor col_t = empty({rows, cols}, DType::f32), gyt_t = empty({o, rows}, DType::f32);
  float* col = col_t.data<float>();
  float* gyt = gyt_t.data<float>();
#pragma omp parallel for schedule(static) if (rows * cols > kGrain)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t n = r / (oh * ow), y0 = r / ow % oh, x0 = r % ow;
    float* q = col + r * cols;
    for (int64_t c = 0; c < xl.c; ++c)
      for (int64_t i = 0; i < kh; ++i) {
        const int64_t iy = y0 * g.stride[0] - g.pad_begin[0] + i * g.dilation[0];
        for (int64_t j = 0; j < kw; ++j) {
          const int64_t ix = x0 * g.stride[1] - g.pad_begin[1] + j * g.dilation[1];
          const bool in = iy >= 0 && iy < h && ix >= 0 && ix < wd;
          q[(c * kh + i) * kw + j] = in ? x[xl.offset(n, c, iy * wd + ix)] : 0.0f;
        }
      }
  }
#pragma omp parallel for schedule(static) if (o * rows > kGrain)
  for (int64_t c = 0; c < o; ++c)
    for (int64_t r = 0; r < rows; ++r) gyt[c * rows + r] = gy[yl.offset(r / yl.hw, c, r % yl.hw)];
  const dnnl_status_t st =
      dnnl_sgemm('N', 'N', o, cols, rows, 1.0f, gyt, rows, col, cols, 0.0f, gw, cols);
  OAR_CHECK(st == dnnl_success, "conv_bn_train: sgemm for the weight gradient failed (", st, ")");
}

}  // namespace

bool conv_bn_forward(ConvBnSaved& s, const Tensor& out, const Tensor& mean, const Tensor& var,
                     const Tensor& x, const Tensor& w, const Tensor& gamma, const Tensor& beta,
                     const Tensor& residual, ConvActivation act, double eps, const ConvGeometry& g,
                     bool cache_weight) {
  if (x.dim() != 4 || x.dtype() != DType::f32) return false;
  const float* pg = gamma.defined() ? gamma.data<float>() : nullptr;
  const float* pb = beta.defined() ? beta.data<float>() : nullptr;
  const float* pr = residual.defined() ? residual.data<float>() : nullptr;
  if (plain_depthwise(x, w, g)) {  // plain memory throughout: BN reads the plain output
    const std::string key = conv_key("conv_bn.dw", x, x.strides(), w, out.shape(), Tensor(), g);
    auto p = onednn::cached<ConvBnPrims>(key, [&] {
      auto c = std::make_shared<ConvBnPrims>();
      c->depthwise = c->ok = true;
      c->layout = BlockedLayout{out.size(0), out.size(1), out.size(2) * out.size(3), 1};
      c->x_shape = x.shape();
      c->out_shape = out.shape();
      return c;
    });
    s.xb = x;
    s.yb = empty(out.shape(), DType::f32);
    depthwise_forward(s.yb, x, w, Tensor(), g);
    s.prims = p;
    bn_blocked_forward(p->layout, s.yb.data<float>(), mean.data<float>(), var.data<float>(), pg, pb,
                       pr, out.data<float>(), act, eps);
    return true;
  }
  const std::string key = conv_key("conv_bn.fwd", x, x.strides(), w, out.shape(), Tensor(), g);
  auto p = onednn::cached<ConvBnPrims>(key, [&] {
    const Descs d = descs_of(x.shape(), w.shape(), out.shape(), x.dtype(), g);
    auto c = std::make_shared<ConvBnPrims>();
    try {
      const auto pd = forward_pd(d, nullptr);
      c->dst = pd.dst_desc();
      const int64_t block = block_of(c->dst, d.dst);
      if (block == 0) return c;  // not ok: run unfused
      c->fwd = dnnl::convolution_forward(pd);
      c->fwd_scratch = pd.scratchpad_desc();
      c->src = input_arg(onednn::desc_of(x), pd.src_desc());
      c->wei = input_arg(plain(d.weights, d.dt), pd.weights_desc());
      c->layout = BlockedLayout{out.size(0), out.size(1), out.size(2) * out.size(3), block};
      const int64_t src_block = block_of(pd.src_desc(), d.src);
      c->src_layout = BlockedLayout{x.size(0), x.size(1), x.size(2) * x.size(3), src_block};
      c->gemm_weights = g.groups == 1 && src_block > 0 && out.size(2) * out.size(3) <= kGemmMaxHw;
      c->x_shape = x.shape();
      c->out_shape = out.shape();
      c->key = key;
      c->ok = true;
    } catch (const dnnl::error& e) {
      unsupported("forward convolution", x, e);
    }
    return c;
  });
  if (!p->ok) return false;
  std::vector<Tensor> keep;
  std::unordered_map<int, memory> args;
  if (p->src.re) {
    s.xb = onednn::buffer_for(p->src.inner);
    memory user(p->src.user, onednn::engine(), x.raw_data());
    memory in(p->src.inner, onednn::engine(), s.xb.raw_data());
    p->src.re->execute(onednn::stream(), user, in);
    args.emplace(DNNL_ARG_SRC, in);
  } else {
    s.xb = x;
    args.emplace(DNNL_ARG_SRC, memory(p->src.user, onednn::engine(), x.raw_data()));
  }
  args.emplace(DNNL_ARG_WEIGHTS, weight(p->wei, w, cache_weight, key, keep));
  s.yb = onednn::buffer_for(p->dst);
  args.emplace(DNNL_ARG_DST, memory(p->dst, onednn::engine(), s.yb.raw_data()));
  scratch_arg(p->fwd_scratch, args, keep);
  p->fwd.execute(onednn::stream(), args);
  onednn::stream().wait();
  s.prims = p;
  bn_blocked_forward(p->layout, static_cast<const float*>(s.yb.raw_data()), mean.data<float>(),
                     var.data<float>(), pg, pb, pr, out.data<float>(), act, eps);
  return true;
}

void conv_bn_backward(const ConvBnSaved& s, const Tensor& gx, const Tensor& gw,
                      const Tensor& ggamma, const Tensor& gbeta, const Tensor& gres,
                      const Tensor& gout, const Tensor& out, const Tensor& w, const Tensor& mean,
                      const Tensor& var, const Tensor& gamma, const Tensor& beta,
                      ConvActivation act, double eps, const ConvGeometry& g, bool cache_weight) {
  auto* p = static_cast<ConvBnPrims*>(s.prims.get());
  OAR_CHECK(p && p->ok, "conv_bn_train: backward without its forward's state");
  if (p->depthwise) {
    Tensor gyb = empty(p->out_shape, DType::f32);
    bn_blocked_backward(p->layout, s.yb.data<float>(), mean.data<float>(), var.data<float>(),
                        gamma.defined() ? gamma.data<float>() : nullptr,
                        beta.defined() ? beta.data<float>() : nullptr, gout.data<float>(),
                        out.defined() ? out.data<float>() : nullptr, act, eps, gyb.data<float>(),
                        ggamma.defined() ? ggamma.data<float>() : nullptr,
                        gbeta.defined() ? gbeta.data<float>() : nullptr,
                        gres.defined() ? gres.data<float>() : nullptr);
    if (gx.defined()) depthwise_backward_data(gx, gyb, w, g);
    if (gw.defined()) depthwise_backward_weights(gw, Tensor(), s.xb, gyb, g);
    return;
  }
  std::call_once(p->bwd_once, [&] {
    try {
      make_backward(*p, descs_of(p->x_shape, w.shape(), p->out_shape, w.dtype(), g));
    } catch (const dnnl::error& e) {
      OAR_FAIL("conv_bn_train: oneDNN has no backward convolution for input ",
               shape_str(p->x_shape), " (", e.what(), ")");
    }
  });
  Tensor gyb = onednn::buffer_for(p->dst);
  bn_blocked_backward(p->layout, static_cast<const float*>(s.yb.raw_data()), mean.data<float>(),
                      var.data<float>(), gamma.defined() ? gamma.data<float>() : nullptr,
                      beta.defined() ? beta.data<float>() : nullptr, gout.data<float>(),
                      out.defined() ? out.data<float>() : nullptr, act, eps,
                      static_cast<float*>(gyb.raw_data()),
                      ggamma.defined() ? ggamma.data<float>() : nullptr,
                      gbeta.defined() ? gbeta.data<float>() : nullptr,
                      gres.defined() ? gres.data<float>() : nullptr);
  std::vector<Tensor> keep;
  SharedGradOut share;
  auto diff_dst = [&](const Arg& a) {
    if (!a.re) return memory(a.user, onednn::engine(), gyb.raw_data());
    if (share.set && share.inner == a.inner) return share.mem;
    share.mem = input(a, gyb.raw_data(), share.keep);
    share.inner = a.inner;
    share.set = true;
    return share.mem;
  };
  if (gx.defined()) {
    std::unordered_map<int, memory> args;
    args.emplace(DNNL_ARG_DIFF_DST, diff_dst(p->data_ddst));
    args.emplace(DNNL_ARG_WEIGHTS, weight(p->data_wei, w, cache_weight, p->key + "/bwd", keep));
    const memory dsrc = output(p->data_dsrc, gx.raw_data(), keep);
    args.emplace(DNNL_ARG_DIFF_SRC, dsrc);
    scratch_arg(p->data_scratch, args, keep);
    p->data.execute(onednn::stream(), args);
    finish(p->data_dsrc, dsrc, gx.raw_data());
  }
  if (gw.defined() && p->gemm_weights) {
    onednn::stream().wait();
    gemm_backward_weights(*p, static_cast<const float*>(s.xb.raw_data()),
                          static_cast<const float*>(gyb.raw_data()), gw.data<float>(), w.shape(),
                          g);
  } else if (gw.defined()) {
    std::unordered_map<int, memory> args;
    args.emplace(DNNL_ARG_SRC, input(p->w_src, s.xb.raw_data(), keep));
    args.emplace(DNNL_ARG_DIFF_DST, diff_dst(p->w_ddst));
    const memory dw = output(p->w_dwei, gw.raw_data(), keep);
    args.emplace(DNNL_ARG_DIFF_WEIGHTS, dw);
    scratch_arg(p->weights_scratch, args, keep);
    p->weights.execute(onednn::stream(), args);
    finish(p->w_dwei, dw, gw.raw_data());
  }
  onednn::stream().wait();
}

}  // namespace oar::cpu
