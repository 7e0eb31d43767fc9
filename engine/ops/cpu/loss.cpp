#include <cmath>

#include "engine/core/error.h"
#include "engine/ops/cpu/loops.h"

namespace oar::cpu {

namespace {

// One position's classes: x[c * stride], c < classes.
struct ClassRow {
  const char* base;
  int64_t stride;  // bytes between classes
};

template <typename T>
struct CrossEntropy {
  const Tensor& logits;
  const int64_t* target;
  const float* weight;  // null: all ones
  int64_t n, c, s, ignore_index;
  double eps, nll_scale, smooth_scale;

  ClassRow row(int64_t p) const {
    const int64_t ni = p / s, si = p % s;
    return {static_cast<const char*>(logits.raw_data()) + ((ni * c) * s + si) * sizeof(T),
            s * static_cast<int64_t>(sizeof(T))};
  }
  double w(int64_t k) const { return weight ? weight[k] : 1.0; }
  double weight_total() const {
    double t = 0;
    for (int64_t k = 0; k < c; ++k) t += w(k);
    return t;
  }
  double lse(const ClassRow& r) const {
    double m = -INFINITY;
    for (int64_t k = 0; k < c; ++k) m = std::fmax(m, load<T>(r.base + k * r.stride));
    if (std::isinf(m)) return m;
    double acc = 0;
    for (int64_t k = 0; k < c; ++k) acc += std::exp(load<T>(r.base + k * r.stride) - m);
    return m + std::log(acc);
  }
  // The scaled loss of position p given its log-sum-exp.
  double loss(int64_t p, const ClassRow& r, double l, double wsum) const {
    const int64_t t = target[p];
    if (t == ignore_index) return 0.0;
    double out = (1.0 - eps) * nll_scale * w(t) * (l - load<T>(r.base + t * r.stride));
    if (eps > 0) {
      double wx = 0;
      for (int64_t k = 0; k < c; ++k) wx += w(k) * load<T>(r.base + k * r.stride);
      out += eps / static_cast<double>(c) * smooth_scale * (l * wsum - wx);
    }
    return out;
  }
};

template <typename T>
void cross_entropy_typed(const Tensor& out, const Tensor& lse, const CrossEntropy<T>& ce,
                         bool total) {
  const int64_t positions = ce.n * ce.s;
  const double wsum = ce.weight_total();
  float* lp = lse.data<float>();
  char* op = static_cast<char*>(out.raw_data());
  double acc = 0;
#pragma omp parallel for reduction(+ : acc) if (positions * ce.c > kGrain)
  for (int64_t p = 0; p < positions; ++p) {
    const ClassRow r = ce.row(p);
    const double l = ce.lse(r);
    lp[p] = static_cast<float>(l);
    const double v = ce.loss(p, r, l, wsum);
    if (total)
      acc += v;
    else
      store<T>(op + p * static_cast<int64_t>(sizeof(T)), v);
  }
  if (total) store<T>(op, acc);
}

template <typename T>
void cross_entropy_backward_typed(const Tensor& gx, const Tensor& g, const Tensor& lse,
                                  const CrossEntropy<T>& ce, bool total) {
  const int64_t positions = ce.n * ce.s;
  const double wsum = ce.weight_total();
  const float* lp = lse.data<float>();
  const char* gp = static_cast<const char*>(g.raw_data());
  char* dst = static_cast<char*>(gx.raw_data());
  const int64_t es = sizeof(T);
  const double smooth = ce.eps / static_cast<double>(ce.c) * ce.smooth_scale;
#pragma omp parallel for if (positions * ce.c > kGrain)
  for (int64_t p = 0; p < positions; ++p) {
    const ClassRow r = ce.row(p);
    char* drow = dst + (r.base - static_cast<const char*>(ce.logits.raw_data()));
    const int64_t t = ce.target[p];
    if (t == ce.ignore_index) {
      for (int64_t k = 0; k < ce.c; ++k) store<T>(drow + k * r.stride, 0.0);
      continue;
    }
    const double gv = load<T>(gp + (total ? 0 : p) * es);
    const double nll = (1.0 - ce.eps) * ce.nll_scale * ce.w(t);
    for (int64_t k = 0; k < ce.c; ++k) {
      const double prob = std::exp(load<T>(r.base + k * r.stride) - lp[p]);
      double d = nll * (prob - (k == t ? 1.0 : 0.0));
      if (ce.eps > 0) d += smooth * (wsum * prob - ce.w(k));
      store<T>(drow + k * r.stride, gv * d);
    }
  }
}

template <typename T>
void nll_typed(const Tensor& out, const Tensor& x, const int64_t* target, const float* weight,
               int64_t c, int64_t s, int64_t positions, int64_t ignore_index, double scale,
               bool total) {
  const char* xp = static_cast<const char*>(x.raw_data());
  char* op = static_cast<char*>(out.raw_data());
  const int64_t es = sizeof(T);
  double acc = 0;
#pragma omp parallel for reduction(+ : acc) if (positions > kGrain)
  for (int64_t p = 0; p < positions; ++p) {
    const int64_t t = target[p];
    double v = 0;
    if (t != ignore_index) {
      const int64_t ni = p / s, si = p % s;
      v = -scale * (weight ? weight[t] : 1.0) * load<T>(xp + ((ni * c + t) * s + si) * es);
    }
    if (total)
      acc += v;
    else
      store<T>(op + p * es, v);
  }
  if (total) store<T>(op, acc);
}

template <typename T>
void nll_backward_typed(const Tensor& gx, const Tensor& g, const int64_t* target,
                        const float* weight, int64_t c, int64_t s, int64_t positions,
                        int64_t ignore_index, double scale, bool total) {
  Tensor z = gx;
  z.zero_();
  char* dst = static_cast<char*>(gx.raw_data());
  const char* gp = static_cast<const char*>(g.raw_data());
  const int64_t es = sizeof(T);
#pragma omp parallel for if (positions > kGrain)
  for (int64_t p = 0; p < positions; ++p) {
    const int64_t t = target[p];
    if (t == ignore_index) continue;
    const int64_t ni = p / s, si = p % s;
    const double gv = load<T>(gp + (total ? 0 : p) * es);
    store<T>(dst + ((ni * c + t) * s + si) * es, -scale * (weight ? weight[t] : 1.0) * gv);
  }
}

const float* weight_ptr(const Tensor& w) {
  return w.defined() ? w.data<float>() : nullptr;
}

}  // namespace

double class_target_weight(const Tensor& target, const Tensor& weight, int64_t classes,
                           int64_t ignore_index, const char* op) {
  const int64_t* t = target.data<int64_t>();
  const float* w = weight_ptr(weight);
  double acc = 0;
  for (int64_t i = 0; i < target.numel(); ++i) {
    if (t[i] == ignore_index) continue;
    OAR_CHECK(t[i] >= 0 && t[i] < classes, op, ": target ", t[i], " at position ", i,
              " is outside [0, ", classes, ") (ignore_index is ", ignore_index, ")");
    acc += w ? w[t[i]] : 1.0;
  }
  return acc;
}

void cross_entropy(const Tensor& out, const Tensor& lse, const Tensor& logits, const Tensor& target,
                   const Tensor& weight, int64_t ignore_index, double eps, double nll_scale,
                   double smooth_scale, bool total) {
  const int64_t n = logits.dim() == 1 ? 1 : logits.size(0);
  const int64_t c = logits.dim() == 1 ? logits.size(0) : logits.size(1);
  const int64_t s = (n * c != 0) ? logits.numel() / (n * c) : 1;
  OAR_FLOAT_SWITCH(logits.dtype(), "cross_entropy", {
    const CrossEntropy<T> ce{logits,
                             target.data<int64_t>(),
                             weight_ptr(weight),
                             n,
                             c,
                             s,
                             ignore_index,
                             eps,
                             nll_scale,
                             smooth_scale};
    cross_entropy_typed<T>(out, lse, ce, total);
  });
}

void cross_entropy_backward(const Tensor& gx, const Tensor& g, const Tensor& lse,
                            const Tensor& logits, const Tensor& target, const Tensor& weight,
                            int64_t ignore_index, double eps, double nll_scale, double smooth_scale,
                            bool total) {
  const int64_t n = logits.dim() == 1 ? 1 : logits.size(0);
  const int64_t c = logits.dim() == 1 ? logits.size(0) : logits.size(1);
  const int64_t s = (n * c != 0) ? logits.numel() / (n * c) : 1;
  const Tensor gt = g.to(logits.dtype()).contiguous();
  OAR_FLOAT_SWITCH(logits.dtype(), "cross_entropy", {
    const CrossEntropy<T> ce{logits,
                             target.data<int64_t>(),
                             weight_ptr(weight),
                             n,
                             c,
                             s,
                             ignore_index,
                             eps,
                             nll_scale,
                             smooth_scale};
    cross_entropy_backward_typed<T>(gx, gt, lse, ce, total);
  });
}

void nll_loss(const Tensor& out, const Tensor& log_probs, const Tensor& target,
              const Tensor& weight, int64_t ignore_index, double scale, bool total) {
  const int64_t n = log_probs.dim() == 1 ? 1 : log_probs.size(0);
  const int64_t c = log_probs.dim() == 1 ? log_probs.size(0) : log_probs.size(1);
  const int64_t s = (n * c != 0) ? log_probs.numel() / (n * c) : 1;
  OAR_FLOAT_SWITCH(log_probs.dtype(), "nll_loss",
                   nll_typed<T>(out, log_probs, target.data<int64_t>(), weight_ptr(weight), c, s,
                                n * s, ignore_index, scale, total));
}

void nll_loss_backward(const Tensor& gx, const Tensor& g, const Tensor& target,
                       const Tensor& weight, int64_t ignore_index, double scale, bool total) {
  const int64_t n = gx.dim() == 1 ? 1 : gx.size(0);
  const int64_t c = gx.dim() == 1 ? gx.size(0) : gx.size(1);
  const int64_t s = (n * c != 0) ? gx.numel() / (n * c) : 1;
  const Tensor gt = g.to(gx.dtype()).contiguous();
  OAR_FLOAT_SWITCH(gx.dtype(), "nll_loss",
                   nll_backward_typed<T>(gx, gt, target.data<int64_t>(), weight_ptr(weight), c, s,
                                         n * s, ignore_index, scale, total));
}

void smooth_l1(const Tensor& out, const Tensor& input, const Tensor& target, double beta) {
  const float b = static_cast<float>(beta);
  OAR_FLOAT_SWITCH(input.dtype(), "smooth_l1_loss",
                   map2<T, T, T>(out, input, target, [b](float x, float y) {
                     const float d = std::fabs(x - y);
                     return d < b ? 0.5f * d * d / b : d - 0.5f * b;
                   }));
}

void smooth_l1_backward(const Tensor& out, const Tensor& g, const Tensor& input,
                        const Tensor& target, double beta) {
  const float b = static_cast<float>(beta);
  const Tensor gt = g.to(input.dtype());
  OAR_FLOAT_SWITCH(input.dtype(), "smooth_l1_loss",
                   map3<T, T, T, T>(out, gt, input, target, [b](float gv, float x, float y) {
                     const float d = x - y;
                     if (std::fabs(d) < b) return gv * d / b;
                     return d > 0.f ? gv : (d < 0.f ? -gv : 0.f);
                   }));
}

}  // namespace oar::cpu
