#include <cmath>
#include <limits>
#include <sstream>
#include <vector>

#include "engine/core/error.h"
#include "engine/ops/conv_layout.h"
#include "engine/ops/cpu/loops.h"
#include "engine/ops/cpu/onednn.h"

namespace oar {
enum class PoolKind { max, avg_include_pad, avg_exclude_pad };

namespace cpu {

namespace {

struct Forward {
  dnnl::pooling_forward::primitive_desc pd;
  dnnl::pooling_forward prim;
};
struct Backward {
  dnnl::pooling_backward::primitive_desc pd;
  dnnl::pooling_backward prim;
};

dnnl::algorithm algorithm_of(PoolKind k) {
  switch (k) {
    case PoolKind::max:
      return dnnl::algorithm::pooling_max;
    case PoolKind::avg_include_pad:
      return dnnl::algorithm::pooling_avg_include_padding;
    case PoolKind::avg_exclude_pad:
      return dnnl::algorithm::pooling_avg_exclude_padding;
  }
  return dnnl::algorithm::pooling_max;
}

std::string key_of(PoolKind kind, const Shape& in, const Shape& out, DType dt, const Shape& kernel,
                   const Shape& stride, const Shape& dilation, const Shape& pad_l,
                   const Shape& pad_r) {
  std::ostringstream os;
  os << "pool" << static_cast<int>(kind) << dtype_name(dt) << shape_str(in) << shape_str(out)
     << shape_str(kernel) << shape_str(stride) << shape_str(dilation) << shape_str(pad_l)
     << shape_str(pad_r);
  return os.str();
}

// channels_last: src and dst are NHWC (4-D, is_channels_last), else both contiguous.
std::shared_ptr<Forward> forward_prim(PoolKind kind, const Shape& in, const Shape& out, DType dt,
                                      const Shape& kernel, const Shape& stride,
                                      const Shape& dilation, const Shape& pad_l, const Shape& pad_r,
                                      bool training, bool channels_last = false) {
  const std::string key = key_of(kind, in, out, dt, kernel, stride, dilation, pad_l, pad_r) +
                          (training ? "train" : "infer") + (channels_last ? "nhwc" : "");
  auto layout = [&](const Shape& s) {
    return channels_last ? dnnl::memory::desc(onednn::dims(s), onednn::data_type(dt),
                                              dnnl::memory::format_tag::nhwc)
                         : onednn::plain_desc(s, dt);
  };
  return onednn::cached<Forward>(key, [&] {
    auto pd = dnnl::pooling_forward::primitive_desc(
        onednn::engine(),
        training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference,
        algorithm_of(kind), layout(in), layout(out), onednn::dims(stride), onednn::dims(kernel),
        onednn::dims(dilation), onednn::dims(pad_l), onednn::dims(pad_r));
    return std::make_shared<Forward>(Forward{pd, dnnl::pooling_forward(pd)});
  });
}

}  // namespace

Tensor pool_forward(PoolKind kind, const Tensor& out, const Tensor& x, const Shape& kernel,
                    const Shape& stride, const Shape& dilation, const Shape& pad_l,
                    const Shape& pad_r, bool training) try {
  // Channels-last x and out (pool.cpp makes them so only outside autograd) stay so.
  const bool channels_last = is_channels_last(x) && is_channels_last(out);
  auto f = forward_prim(kind, x.shape(), out.shape(), x.dtype(), kernel, stride, dilation, pad_l,
                        pad_r, training, channels_last);
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, onednn::memory_of(x, f->pd.src_desc())},
      {DNNL_ARG_DST, onednn::memory_of(out, f->pd.dst_desc())}};
  Tensor ws;
  if (training && kind == PoolKind::max) {
    ws = onednn::buffer_for(f->pd.workspace_desc());
    args[DNNL_ARG_WORKSPACE] = onednn::memory_of(ws, f->pd.workspace_desc());
  }
  f->prim.execute(onednn::stream(), args);
  onednn::stream().wait();
  return ws;
} catch (const dnnl::error& e) {
  OAR_FAIL("pool: oneDNN failed: ", e.what());
}

void pool_backward(PoolKind kind, const Tensor& gx, const Tensor& gy, const Tensor& workspace,
                   const Shape& kernel, const Shape& stride, const Shape& dilation,
                   const Shape& pad_l, const Shape& pad_r) try {
  const std::string key =
      key_of(kind, gx.shape(), gy.shape(), gx.dtype(), kernel, stride, dilation, pad_l, pad_r) +
      "bwd";
  auto b = onednn::cached<Backward>(key, [&] {
    auto f = forward_prim(kind, gx.shape(), gy.shape(), gx.dtype(), kernel, stride, dilation, pad_l,
                          pad_r, true);
    auto pd = dnnl::pooling_backward::primitive_desc(
        onednn::engine(), algorithm_of(kind), onednn::plain_desc(gx.shape(), gx.dtype()),
        onednn::plain_desc(gy.shape(), gy.dtype()), onednn::dims(stride), onednn::dims(kernel),
        onednn::dims(dilation), onednn::dims(pad_l), onednn::dims(pad_r), f->pd);
    return std::make_shared<Backward>(Backward{pd, dnnl::pooling_backward(pd)});
  });
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_DIFF_DST, onednn::memory_of(gy, b->pd.diff_dst_desc())},
      {DNNL_ARG_DIFF_SRC, onednn::memory_of(gx, b->pd.diff_src_desc())}};
  if (kind == PoolKind::max) {
    OAR_CHECK(workspace.defined(), "max_pool backward: no workspace from the forward pass");
    args[DNNL_ARG_WORKSPACE] = onednn::memory_of(workspace, b->pd.workspace_desc());
  }
  b->prim.execute(onednn::stream(), args);
  onednn::stream().wait();
} catch (const dnnl::error& e) {
  OAR_FAIL("pool backward: oneDNN failed: ", e.what());
}

namespace {

// Spatial sizes padded to three dims (leading 1s), so one loop nest serves 1-D to 3-D.
std::array<int64_t, 3> spatial3(const Shape& s) {
  std::array<int64_t, 3> r{1, 1, 1};
  const size_t nd = s.size() - 2;
  for (size_t i = 0; i < nd; ++i) r[3 - nd + i] = s[2 + i];
  return r;
}

// PyTorch's adaptive window [start, end) of output i.
inline int64_t win_start(int64_t i, int64_t out, int64_t in) {
  return (i * in) / out;
}
inline int64_t win_end(int64_t i, int64_t out, int64_t in) {
  return ((i + 1) * in + out - 1) / out;
}

template <typename T>
void adaptive_forward_typed(bool is_max, const Tensor& out, const Tensor& argmax, const Tensor& x) {
  const auto in = spatial3(x.shape()), on = spatial3(out.shape());
  const int64_t planes = x.size(0) * x.size(1);
  const int64_t isz = in[0] * in[1] * in[2], osz = on[0] * on[1] * on[2];
  const T* src = static_cast<const T*>(x.raw_data());
  T* dst = static_cast<T*>(out.raw_data());
  int64_t* am = is_max ? argmax.data<int64_t>() : nullptr;
#pragma omp parallel for if (planes * isz > kGrain && planes > 1)
  for (int64_t p = 0; p < planes; ++p) {
    const T* xp = src + p * isz;
    int64_t o = p * osz;
    for (int64_t od = 0; od < on[0]; ++od) {
      const int64_t d0 = win_start(od, on[0], in[0]), d1 = win_end(od, on[0], in[0]);
      for (int64_t oh = 0; oh < on[1]; ++oh) {
        const int64_t h0 = win_start(oh, on[1], in[1]), h1 = win_end(oh, on[1], in[1]);
        for (int64_t ow = 0; ow < on[2]; ++ow, ++o) {
          const int64_t w0 = win_start(ow, on[2], in[2]), w1 = win_end(ow, on[2], in[2]);
          if (is_max) {
            float best = -std::numeric_limits<float>::infinity();
            int64_t bi = (d0 * in[1] + h0) * in[2] + w0;
            for (int64_t d = d0; d < d1; ++d)
              for (int64_t h = h0; h < h1; ++h)
                for (int64_t w = w0; w < w1; ++w) {
                  const int64_t i = (d * in[1] + h) * in[2] + w;
                  const float v = load<T>(reinterpret_cast<const char*>(xp + i));
                  if (v > best || std::isnan(v)) {
                    best = v;
                    bi = i;
                  }
                }
            store<T>(reinterpret_cast<char*>(dst + o), best);
            am[o] = bi;
          } else {
            double acc = 0;
            for (int64_t d = d0; d < d1; ++d)
              for (int64_t h = h0; h < h1; ++h)
                for (int64_t w = w0; w < w1; ++w)
                  acc += load<T>(reinterpret_cast<const char*>(xp + (d * in[1] + h) * in[2] + w));
            store<T>(reinterpret_cast<char*>(dst + o), acc / ((d1 - d0) * (h1 - h0) * (w1 - w0)));
          }
        }
      }
    }
  }
}

template <typename T>
void adaptive_backward_typed(bool is_max, const Tensor& gx, const Tensor& gy,
                             const Tensor& argmax) {
  const auto in = spatial3(gx.shape()), on = spatial3(gy.shape());
  const int64_t planes = gx.size(0) * gx.size(1);
  const int64_t isz = in[0] * in[1] * in[2], osz = on[0] * on[1] * on[2];
  const T* src = static_cast<const T*>(gy.raw_data());
  T* dst = static_cast<T*>(gx.raw_data());
  const int64_t* am = is_max ? argmax.data<int64_t>() : nullptr;
#pragma omp parallel for if (planes * isz > kGrain && planes > 1)
  for (int64_t p = 0; p < planes; ++p) {
    std::vector<float> acc(static_cast<size_t>(isz), 0.0f);  // accumulate in f32 for bf16
    int64_t o = p * osz;
    for (int64_t od = 0; od < on[0]; ++od) {
      const int64_t d0 = win_start(od, on[0], in[0]), d1 = win_end(od, on[0], in[0]);
      for (int64_t oh = 0; oh < on[1]; ++oh) {
        const int64_t h0 = win_start(oh, on[1], in[1]), h1 = win_end(oh, on[1], in[1]);
        for (int64_t ow = 0; ow < on[2]; ++ow, ++o) {
          const float g = load<T>(reinterpret_cast<const char*>(src + o));
          if (is_max) {
            acc[static_cast<size_t>(am[o])] += g;
            continue;
          }
          const int64_t w0 = win_start(ow, on[2], in[2]), w1 = win_end(ow, on[2], in[2]);
          const float share = g / static_cast<float>((d1 - d0) * (h1 - h0) * (w1 - w0));
          for (int64_t d = d0; d < d1; ++d)
            for (int64_t h = h0; h < h1; ++h)
              for (int64_t w = w0; w < w1; ++w) acc[(d * in[1] + h) * in[2] + w] += share;
        }
      }
    }
    T* gp = dst + p * isz;
    for (int64_t i = 0; i < isz; ++i) store<T>(reinterpret_cast<char*>(gp + i), acc[i]);
  }
}

}  // namespace

void adaptive_pool_forward(bool is_max, const Tensor& out, const Tensor& argmax, const Tensor& x) {
  OAR_FLOAT_SWITCH(x.dtype(), "adaptive_pool", adaptive_forward_typed<T>(is_max, out, argmax, x));
}

void adaptive_pool_backward(bool is_max, const Tensor& gx, const Tensor& gy, const Tensor& argmax) {
  OAR_FLOAT_SWITCH(gx.dtype(), "adaptive_pool", adaptive_backward_typed<T>(is_max, gx, gy, argmax));
}

}  // namespace cpu
}  // namespace oar
