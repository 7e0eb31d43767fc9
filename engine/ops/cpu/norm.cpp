#include <cmath>
#include <sstream>
#include <vector>

#include "engine/core/error.h"
#include "engine/ops/cpu/loops.h"
#include "engine/ops/cpu/onednn.h"

namespace oar::cpu {

namespace {

using dnnl::normalization_flags;

normalization_flags flags_of(bool scale, bool shift, bool global_stats) {
  normalization_flags f = normalization_flags::none;
  if (scale) f |= normalization_flags::use_scale;
  if (shift) f |= normalization_flags::use_shift;
  if (global_stats) f |= normalization_flags::use_global_stats;
  return f;
}

std::string key_of(const char* op, const Shape& s, double eps, normalization_flags f,
                   bool training) {
  std::ostringstream os;
  os << op << shape_str(s) << std::hexfloat << static_cast<float>(eps) << "/"
     << static_cast<unsigned>(f) << (training ? "train" : "infer");
  return os.str();
}

dnnl::memory::desc vec_desc(int64_t n) {
  return onednn::plain_desc({n}, DType::f32);
}

void execute(dnnl::primitive& p, const std::unordered_map<int, dnnl::memory>& args) {
  p.execute(onednn::stream(), args);
  onednn::stream().wait();
}

struct BnForward {
  dnnl::batch_normalization_forward::primitive_desc pd;
  dnnl::batch_normalization_forward prim;
};
struct BnBackward {
  dnnl::batch_normalization_backward::primitive_desc pd;
  dnnl::batch_normalization_backward prim;
};

std::shared_ptr<BnForward> bn_forward(const Shape& s, double eps, normalization_flags f,
                                      bool training) {
  return onednn::cached<BnForward>(key_of("bn", s, eps, f, training), [&] {
    const auto md = onednn::plain_desc(s, DType::f32);
    auto pd = dnnl::batch_normalization_forward::primitive_desc(
        onednn::engine(),
        training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference, md, md,
        static_cast<float>(eps), f);
    return std::make_shared<BnForward>(BnForward{pd, dnnl::batch_normalization_forward(pd)});
  });
}

struct LnForward {
  dnnl::layer_normalization_forward::primitive_desc pd;
  dnnl::layer_normalization_forward prim;
};
struct LnBackward {
  dnnl::layer_normalization_backward::primitive_desc pd;
  dnnl::layer_normalization_backward prim;
};

std::shared_ptr<LnForward> ln_forward(const Shape& s, double eps, normalization_flags f,
                                      bool training) {
  return onednn::cached<LnForward>(key_of("ln", s, eps, f, training), [&] {
    const auto md = onednn::plain_desc(s, DType::f32);
    auto pd = dnnl::layer_normalization_forward::primitive_desc(
        onednn::engine(),
        training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference, md, md,
        vec_desc(s[0]), static_cast<float>(eps), f);
    return std::make_shared<LnForward>(LnForward{pd, dnnl::layer_normalization_forward(pd)});
  });
}

}  // namespace

void batch_norm_forward(const Tensor& y, const Tensor& mean, const Tensor& var, const Tensor& x,
                        const Tensor& weight, const Tensor& bias, double eps, bool global_stats,
                        bool training) try {
  const auto f = flags_of(weight.defined(), bias.defined(), global_stats);
  auto p = bn_forward(x.shape(), eps, f, training);
  const int64_t c = x.size(1);
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, onednn::memory_of(x, p->pd.src_desc())},
      {DNNL_ARG_DST, onednn::memory_of(y, p->pd.dst_desc())}};
  if (training || global_stats) {
    args[DNNL_ARG_MEAN] = onednn::memory_of(mean, vec_desc(c));
    args[DNNL_ARG_VARIANCE] = onednn::memory_of(var, vec_desc(c));
  }
  if (weight.defined()) args[DNNL_ARG_SCALE] = onednn::memory_of(weight, vec_desc(c));
  if (bias.defined()) args[DNNL_ARG_SHIFT] = onednn::memory_of(bias, vec_desc(c));
  execute(p->prim, args);
} catch (const dnnl::error& e) {
  OAR_FAIL("batch_norm: oneDNN failed: ", e.what());
}

void batch_norm_backward(const Tensor& gx, const Tensor& gw, const Tensor& gb, const Tensor& gy,
                         const Tensor& x, const Tensor& mean, const Tensor& var,
                         const Tensor& weight, const Tensor& bias, double eps,
                         bool global_stats) try {
  const bool affine = weight.defined() || bias.defined();
  const auto f = flags_of(weight.defined(), bias.defined(), global_stats);
  auto b = onednn::cached<BnBackward>(key_of("bn_bwd", x.shape(), eps, f, true), [&] {
    auto fwd = bn_forward(x.shape(), eps, f, true);
    const auto md = onednn::plain_desc(x.shape(), DType::f32);
    auto pd = dnnl::batch_normalization_backward::primitive_desc(
        onednn::engine(), affine ? dnnl::prop_kind::backward : dnnl::prop_kind::backward_data, md,
        md, md, static_cast<float>(eps), f, fwd->pd);
    return std::make_shared<BnBackward>(BnBackward{pd, dnnl::batch_normalization_backward(pd)});
  });
  const int64_t c = x.size(1);
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, onednn::memory_of(x, b->pd.src_desc())},
      {DNNL_ARG_DIFF_DST, onednn::memory_of(gy, b->pd.diff_dst_desc())},
      {DNNL_ARG_DIFF_SRC, onednn::memory_of(gx, b->pd.diff_src_desc())},
      {DNNL_ARG_MEAN, onednn::memory_of(mean, vec_desc(c))},
      {DNNL_ARG_VARIANCE, onednn::memory_of(var, vec_desc(c))}};
  if (weight.defined()) {
    args[DNNL_ARG_SCALE] = onednn::memory_of(weight, vec_desc(c));
    args[DNNL_ARG_DIFF_SCALE] = onednn::memory_of(gw, vec_desc(c));
  }
  if (bias.defined()) args[DNNL_ARG_DIFF_SHIFT] = onednn::memory_of(gb, vec_desc(c));
  execute(b->prim, args);
} catch (const dnnl::error& e) {
  OAR_FAIL("batch_norm backward: oneDNN failed: ", e.what());
}

void layer_norm_forward(const Tensor& y, const Tensor& mean, const Tensor& var, const Tensor& x,
                        const Tensor& weight, const Tensor& bias, double eps) try {
  const bool training = mean.defined();
  auto p = ln_forward(x.shape(), eps, flags_of(weight.defined(), bias.defined(), false), training);
  const int64_t m = x.size(0), k = x.size(1);
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, onednn::memory_of(x, p->pd.src_desc())},
      {DNNL_ARG_DST, onednn::memory_of(y, p->pd.dst_desc())}};
  if (training) {
    args[DNNL_ARG_MEAN] = onednn::memory_of(mean, vec_desc(m));
    args[DNNL_ARG_VARIANCE] = onednn::memory_of(var, vec_desc(m));
  }
  if (weight.defined()) args[DNNL_ARG_SCALE] = onednn::memory_of(weight, vec_desc(k));
  if (bias.defined()) args[DNNL_ARG_SHIFT] = onednn::memory_of(bias, vec_desc(k));
  execute(p->prim, args);
} catch (const dnnl::error& e) {
  OAR_FAIL("layer_norm: oneDNN failed: ", e.what());
}

void layer_norm_backward(const Tensor& gx, const Tensor& gw, const Tensor& gb, const Tensor& gy,
                         const Tensor& x, const Tensor& mean, const Tensor& var,
                         const Tensor& weight, const Tensor& bias, double eps) try {
  const bool affine = weight.defined() || bias.defined();
  const auto f = flags_of(weight.defined(), bias.defined(), false);
  auto b = onednn::cached<LnBackward>(key_of("ln_bwd", x.shape(), eps, f, true), [&] {
    auto fwd = ln_forward(x.shape(), eps, f, true);
    const auto md = onednn::plain_desc(x.shape(), DType::f32);
    auto pd = dnnl::layer_normalization_backward::primitive_desc(
        onednn::engine(), affine ? dnnl::prop_kind::backward : dnnl::prop_kind::backward_data, md,
        md, md, vec_desc(x.size(0)), static_cast<float>(eps), f, fwd->pd);
    return std::make_shared<LnBackward>(LnBackward{pd, dnnl::layer_normalization_backward(pd)});
  });
  const int64_t m = x.size(0), k = x.size(1);
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, onednn::memory_of(x, b->pd.src_desc())},
      {DNNL_ARG_DIFF_DST, onednn::memory_of(gy, b->pd.diff_dst_desc())},
      {DNNL_ARG_DIFF_SRC, onednn::memory_of(gx, b->pd.diff_src_desc())},
      {DNNL_ARG_MEAN, onednn::memory_of(mean, vec_desc(m))},
      {DNNL_ARG_VARIANCE, onednn::memory_of(var, vec_desc(m))}};
  if (weight.defined()) {
    args[DNNL_ARG_SCALE] = onednn::memory_of(weight, vec_desc(k));
    args[DNNL_ARG_DIFF_SCALE] = onednn::memory_of(gw, vec_desc(k));
  }
  if (bias.defined()) {  // oneDNN's layer norm backward counts the shift among its inputs
    args[DNNL_ARG_SHIFT] = onednn::memory_of(bias, vec_desc(k));
    args[DNNL_ARG_DIFF_SHIFT] = onednn::memory_of(gb, vec_desc(k));
  }
  execute(b->prim, args);
} catch (const dnnl::error& e) {
  OAR_FAIL("layer_norm backward: oneDNN failed: ", e.what());
}

void group_norm_forward(const Tensor& y, const Tensor& mean, const Tensor& rstd, const Tensor& x,
                        const Tensor& weight, const Tensor& bias, int64_t groups, double eps) {
  const int64_t n = x.size(0), c = x.size(1), hw = c > 0 && n > 0 ? x.numel() / (n * c) : 0;
  const int64_t cpg = c / groups, m = cpg * hw;
  const float* px = x.data<float>();
  float* py = y.data<float>();
  float* pm = mean.data<float>();
  float* pr = rstd.data<float>();
  const float* w = weight.defined() ? weight.data<float>() : nullptr;
  const float* b = bias.defined() ? bias.data<float>() : nullptr;
#pragma omp parallel for if (x.numel() > kGrain && n * groups > 1)
  for (int64_t ng = 0; ng < n * groups; ++ng) {
    const int64_t g = ng % groups;
    const float* xg = px + ng * m;  // a group's channels are contiguous
    float* yg = py + ng * m;
    double s = 0;
    for (int64_t i = 0; i < m; ++i) s += xg[i];
    const double mu = m > 0 ? s / static_cast<double>(m) : 0.0;
    double ss = 0;
    for (int64_t i = 0; i < m; ++i) ss += (xg[i] - mu) * (xg[i] - mu);
    const double r = 1.0 / std::sqrt((m > 0 ? ss / static_cast<double>(m) : 0.0) + eps);
    pm[ng] = static_cast<float>(mu);
    pr[ng] = static_cast<float>(r);
    for (int64_t cc = 0; cc < cpg; ++cc) {
      const int64_t ch = g * cpg + cc;
      const float a = static_cast<float>(r) * (w ? w[ch] : 1.0f);
      const float sh = (b ? b[ch] : 0.0f) - static_cast<float>(mu) * a;
      const float* xr = xg + cc * hw;
      float* yr = yg + cc * hw;
      for (int64_t i = 0; i < hw; ++i) yr[i] = xr[i] * a + sh;
    }
  }
}

// With xhat = (x - mean) * rstd and dxhat = gy * w, per group of M elements:
// gx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)). Per-(n, c) sums of gy and
// gy * x make every group and parameter sum one pass over channels.
void group_norm_backward(const Tensor& gx, const Tensor& gw, const Tensor& gb, const Tensor& gy,
                         const Tensor& x, const Tensor& mean, const Tensor& rstd,
                         const Tensor& weight, int64_t groups) {
  const int64_t n = x.size(0), c = x.size(1), hw = c > 0 && n > 0 ? x.numel() / (n * c) : 0;
  const int64_t cpg = c / groups, m = cpg * hw;
  const float* px = x.data<float>();
  const float* pg = gy.data<float>();
  const float* pm = mean.data<float>();
  const float* pr = rstd.data<float>();
  const float* w = weight.defined() ? weight.data<float>() : nullptr;
  std::vector<double> sdy(static_cast<size_t>(n * c)), sdyx(static_cast<size_t>(n * c));
#pragma omp parallel for if (x.numel() > kGrain && n * c > 1)
  for (int64_t nc = 0; nc < n * c; ++nc) {
    const float* xr = px + nc * hw;
    const float* gr = pg + nc * hw;
    double a = 0, bb = 0;
    for (int64_t i = 0; i < hw; ++i) {
      a += gr[i];
      bb += static_cast<double>(gr[i]) * xr[i];
    }
    sdy[nc] = a;
    sdyx[nc] = bb;
  }
  if (gx.defined()) {
    float* out = gx.data<float>();
#pragma omp parallel for if (x.numel() > kGrain && n * groups > 1)
    for (int64_t ng = 0; ng < n * groups; ++ng) {
      const int64_t nn = ng / groups, g = ng % groups;
      const double mu = pm[ng], r = pr[ng];
      double sw = 0, swx = 0;  // sums of dxhat and of dxhat * x over the group
      for (int64_t cc = 0; cc < cpg; ++cc) {
        const int64_t ch = g * cpg + cc;
        const double wc = w ? w[ch] : 1.0;
        sw += wc * sdy[nn * c + ch];
        swx += wc * sdyx[nn * c + ch];
      }
      const double a = sw / static_cast<double>(m);
      const double bcoef = r * (swx - mu * sw) / static_cast<double>(m);
      for (int64_t cc = 0; cc < cpg; ++cc) {
        const int64_t ch = g * cpg + cc;
        const float wc = w ? w[ch] : 1.0f;
        const int64_t base = (nn * c + ch) * hw;
        for (int64_t i = 0; i < hw; ++i) {
          const double xhat = (px[base + i] - mu) * r;
          out[base + i] = static_cast<float>(r * (pg[base + i] * wc - a - xhat * bcoef));
        }
      }
    }
  }
  if (gw.defined() || gb.defined()) {
    float* ow = gw.defined() ? gw.data<float>() : nullptr;
    float* ob = gb.defined() ? gb.data<float>() : nullptr;
    for (int64_t ch = 0; ch < c; ++ch) {
      const int64_t g = ch / cpg;
      double aw = 0, ab = 0;
      for (int64_t nn = 0; nn < n; ++nn) {
        const int64_t ng = nn * groups + g;
        aw += pr[ng] * (sdyx[nn * c + ch] - pm[ng] * sdy[nn * c + ch]);
        ab += sdy[nn * c + ch];
      }
      if (ow) ow[ch] = static_cast<float>(aw);
      if (ob) ob[ch] = static_cast<float>(ab);
    }
  }
}

}  // namespace oar::cpu
