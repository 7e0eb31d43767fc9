#include "engine/ops/rnn.h"

#include <algorithm>
#include <memory>
#include <string>

#include "engine/autograd/grad_mode.h"
#include "engine/autograd/node.h"
#include "engine/core/error.h"
#include "engine/ops/binary.h"
#include "engine/ops/dispatch.h"

namespace oar {

enum class RnnCell { lstm, gru };

namespace cpu {
// One layer in one direction, time-major, f32. x [T, N, I] contiguous; y [T, N, H] strided (a
// column block of the layer's output); lengths i64 [N] or undefined (all T); h0/c0, hn/cn
// [N, H] contiguous. saved[0] ([T, N, G*H]) is always written; the other saved buffers
// (rnn_saved) only when defined, for backward.
void rnn_layer_forward(RnnCell cell, bool reverse, const Tensor& x, const RnnWeights& w,
                       const Tensor& lengths, const Tensor& h0, const Tensor& c0, const Tensor& y,
                       const Tensor& hn, const Tensor& cn, const std::vector<Tensor>& saved);
// Backpropagation through time for one layer and direction. Adds into dx (when defined); writes
// dw (entries may be undefined: not computed), dh0, dc0.
void rnn_layer_backward(RnnCell cell, bool reverse, const Tensor& x, const RnnWeights& w,
                        const Tensor& lengths, const std::vector<Tensor>& saved, const Tensor& dy,
                        const Tensor& dhn, const Tensor& dcn, const Tensor& dx,
                        const RnnWeights& dw, const Tensor& dh0, const Tensor& dc0);
// mask[i] = 1/(1-p) where uniform(seed, base + i) >= p, else 0.
void rnn_dropout_mask(const Tensor& mask, double p, uint64_t seed, uint64_t base);
// One whole layer (all of its w.size() directions) on oneDNN's RNN primitives
// (rnn_primitive.cpp); all sequences full length. x [T, N, I], y [T, N, D*H] contiguous; h0/c0,
// hn/cn [D, N, H] contiguous. With training, returns what backward needs (oneDNN's workspace
// included), else null.
struct RnnPrimitiveState;
std::shared_ptr<RnnPrimitiveState> rnn_primitive_forward(RnnCell cell, const Tensor& x,
                                                         const std::vector<RnnWeights>& w,
                                                         const Tensor& h0, const Tensor& c0,
                                                         const Tensor& y, const Tensor& hn,
                                                         const Tensor& cn, bool training);
// Writes dx (when defined), dw (entries may be undefined: not wanted), dh0, dc0 ([D, N, H]).
void rnn_primitive_backward(const RnnPrimitiveState& s, const Tensor& dy, const Tensor& dhn,
                            const Tensor& dcn, const Tensor& dx, const std::vector<RnnWeights>& dw,
                            const Tensor& dh0, const Tensor& dc0);
}  // namespace cpu
#ifdef OAR_WITH_CUDA
namespace cuda {
void rnn_layer_forward(RnnCell cell, bool reverse, const Tensor& x, const RnnWeights& w,
                       const Tensor& lengths, const Tensor& h0, const Tensor& c0, const Tensor& y,
                       const Tensor& hn, const Tensor& cn, const std::vector<Tensor>& saved);
void rnn_layer_backward(RnnCell cell, bool reverse, const Tensor& x, const RnnWeights& w,
                        const Tensor& lengths, const std::vector<Tensor>& saved, const Tensor& dy,
                        const Tensor& dhn, const Tensor& dcn, const Tensor& dx,
                        const RnnWeights& dw, const Tensor& dh0, const Tensor& dc0);
void rnn_dropout_mask(const Tensor& mask, double p, uint64_t seed, uint64_t base);
}  // namespace cuda
#endif

namespace {

thread_local RnnCpuPath t_cpu_path = RnnCpuPath::automatic;

struct LayerState {
  Tensor x;     // the layer's input [T, N, I] (after dropout)
  Tensor mask;  // dropout mask applied to the previous layer's output, or undefined
  std::vector<std::vector<Tensor>> saved;        // per direction (reference recurrence)
  std::shared_ptr<cpu::RnnPrimitiveState> prim;  // oneDNN's RNN primitive (CPU), or null
};

// Buffers backward needs, per layer and direction (LSTM: gates, c, h_prev, c_prev;
// GRU: gates, W_hn h + b_hn, h_prev). The kernels write every valid step; with variable
// lengths the padded steps stay zero (backward's weight GEMMs read them, times zero).
std::vector<Tensor> rnn_saved(RnnCell cell, int64_t T, int64_t N, int64_t H, Device dev,
                              bool for_backward, bool padded) {
  const int64_t G = cell == RnnCell::lstm ? 4 : 3;
  std::vector<Tensor> s{empty({T, N, G * H}, DType::f32, dev)};
  if (!for_backward) return s;
  const int64_t extra = cell == RnnCell::lstm ? 3 : 2;
  for (int64_t i = 0; i < extra; ++i)
    s.push_back(padded ? zeros({T, N, H}, DType::f32, dev) : empty({T, N, H}, DType::f32, dev));
  return s;
}

RnnOutput run(RnnCell cell, const Tensor& x, const std::vector<RnnWeights>& weights,
              int64_t num_layers, bool bidirectional, bool batch_first, const Tensor& lengths,
              const Tensor& h0, const Tensor& c0, double dropout, bool training, Generator* gen) {
  const bool is_lstm = cell == RnnCell::lstm;
  const char* op = is_lstm ? "lstm" : "gru";
  const int64_t G = is_lstm ? 4 : 3;
  const int64_t D = bidirectional ? 2 : 1;
  OAR_CHECK(x.defined() && x.dim() == 3, op, ": input must be 3-D ([T, N, in], or [N, T, in] ",
            "with batch_first), got ", x.defined() ? shape_str(x.shape()) : "undefined");
  OAR_CHECK(num_layers >= 1, op, ": num_layers must be >= 1, got ", num_layers);
  OAR_CHECK(static_cast<int64_t>(weights.size()) == num_layers * D, op, ": expected ",
            num_layers * D, " weight sets (layers * directions, layer-major), got ",
            weights.size());
  OAR_CHECK(dropout >= 0.0 && dropout < 1.0, op, ": dropout must be in [0, 1), got ", dropout);
  OAR_CHECK(!(!is_lstm && c0.defined()), op, ": c0 given to a GRU");
  const int64_t T = batch_first ? x.size(1) : x.size(0);
  const int64_t N = batch_first ? x.size(0) : x.size(1);
  const int64_t I = x.size(2);
  OAR_CHECK(T >= 1 && N >= 1 && I >= 1, op, ": empty input ", shape_str(x.shape()));
  OAR_CHECK(weights[0].w_hh.defined() && weights[0].w_hh.dim() == 2, op,
            ": weights[0].w_hh must be 2-D [", G, "*H, H]");
  const int64_t H = weights[0].w_hh.size(1);
  OAR_CHECK(H >= 1, op, ": hidden size must be >= 1");

  // dtype: kernels run in f32; other floating types go through autograd-aware casts.
  bool all_f32 = x.dtype() == DType::f32;
  for (const auto& w : weights)
    for (const Tensor* t : {&w.w_ih, &w.w_hh, &w.b_ih, &w.b_hh})
      if (t->defined() && t->dtype() != DType::f32) all_f32 = false;
  if ((h0.defined() && h0.dtype() != DType::f32) || (c0.defined() && c0.dtype() != DType::f32))
    all_f32 = false;
  if (!all_f32) {
    auto f32 = [op](const Tensor& t) {
      if (!t.defined() || t.dtype() == DType::f32) return t;
      OAR_CHECK(is_floating(t.dtype()), op, ": dtype ", dtype_name(t.dtype()),
                " not supported (floating types only)");
      return t.to(DType::f32);
    };
    std::vector<RnnWeights> w32;
    for (const auto& w : weights)
      w32.push_back({f32(w.w_ih), f32(w.w_hh), f32(w.b_ih), f32(w.b_hh)});
    RnnOutput r = run(cell, f32(x), w32, num_layers, bidirectional, batch_first, lengths, f32(h0),
                      f32(c0), dropout, training, gen);
    const DType dt = is_floating(x.dtype()) ? x.dtype() : DType::f32;
    return {r.output.to(dt), r.h_n.to(dt), r.c_n.defined() ? r.c_n.to(dt) : Tensor()};
  }

  for (int64_t l = 0; l < num_layers; ++l) {
    for (int64_t d = 0; d < D; ++d) {
      const RnnWeights& w = weights[l * D + d];
      const int64_t in = l == 0 ? I : D * H;
      const std::string where =
          std::string(op) + ": layer " + std::to_string(l) + (d ? " (reverse)" : "");
      auto check = [&](const Tensor& t, const Shape& want, const char* name, bool optional) {
        if (optional && !t.defined()) return;
        OAR_CHECK(t.defined(), where, ": ", name, " is undefined, expected ", shape_str(want));
        OAR_CHECK(t.shape() == want, where, ": ", name, " has shape ", shape_str(t.shape()),
                  ", expected ", shape_str(want), " (gates ", is_lstm ? "i,f,g,o" : "r,z,n",
                  ", hidden ", H, ", input ", in, ")");
        OAR_CHECK_SAME_DEVICE(op, x, t);
      };
      check(w.w_ih, {G * H, in}, "w_ih", false);
      check(w.w_hh, {G * H, H}, "w_hh", false);
      check(w.b_ih, {G * H}, "b_ih", true);
      check(w.b_hh, {G * H}, "b_hh", true);
    }
  }
  const Shape state_shape{num_layers * D, N, H};
  if (h0.defined()) {
    OAR_CHECK(h0.shape() == state_shape, op, ": h0 has shape ", shape_str(h0.shape()),
              ", expected ", shape_str(state_shape), " [layers*directions, N, H]");
    OAR_CHECK_SAME_DEVICE(op, x, h0);
  }
  if (c0.defined()) {
    OAR_CHECK(c0.shape() == state_shape, op, ": c0 has shape ", shape_str(c0.shape()),
              ", expected ", shape_str(state_shape), " [layers*directions, N, H]");
    OAR_CHECK_SAME_DEVICE(op, x, c0);
  }
  Tensor lens;
  if (lengths.defined()) {
    OAR_CHECK(lengths.dim() == 1 && lengths.size(0) == N && !is_floating(lengths.dtype()) &&
                  lengths.dtype() != DType::boolean,
              op, ": lengths must be an integer tensor of shape [", N, "], got ",
              dtype_name(lengths.dtype()), " ", shape_str(lengths.shape()));
    lens = lengths.to(Device::cpu()).to(DType::i64).contiguous();
    const int64_t* pl = lens.data<int64_t>();
    for (int64_t n = 0; n < N; ++n)
      OAR_CHECK(pl[n] >= 0 && pl[n] <= T, op, ": lengths[", n, "] = ", pl[n], " is outside [0, ", T,
                "] (T = ", T, ")");
    // All full length: the same as no lengths, which the fused CPU path can take.
    if (std::all_of(pl, pl + N, [T](int64_t v) { return v == T; }))
      lens = Tensor();
    else if (!x.device().is_cpu())
      lens = lens.to(x.device());
  }
  // A CPU LSTM without variable lengths runs each layer as one oneDNN RNN primitive; oneDNN
  // cannot express per-sequence lengths, so those take oar's recurrence, as GRUs do unless
  // RnnCpuPathGuard asks for the primitive (see rnn.h).
  const bool use_prim =
      x.device().is_cpu() && !lens.defined() &&
      (t_cpu_path == RnnCpuPath::primitive || (t_cpu_path == RnnCpuPath::automatic && is_lstm));

  const Device dev = x.device();
  std::vector<Tensor> inputs{x, h0, c0};
  for (const auto& w : weights) {
    inputs.push_back(w.w_ih);
    inputs.push_back(w.w_hh);
    inputs.push_back(w.b_ih);
    inputs.push_back(w.b_hh);
  }
  const bool grad = autograd::needs_grad(inputs);
  std::vector<RnnWeights> wd;
  for (const auto& w : weights) {
    auto det = [](const Tensor& t) { return t.defined() ? t.detach().contiguous() : Tensor(); };
    wd.push_back({det(w.w_ih), det(w.w_hh), det(w.b_ih), det(w.b_hh)});
  }

  RnnOutput res;
  std::vector<LayerState> layers(num_layers);
  {
    NoGradGuard no_grad;
    const Tensor h0c =
        h0.defined() ? h0.detach().contiguous() : zeros(state_shape, DType::f32, dev);
    const Tensor c0c = !is_lstm       ? Tensor()
                       : c0.defined() ? c0.detach().contiguous()
                                      : zeros(state_shape, DType::f32, dev);
    res.h_n = empty(state_shape, DType::f32, dev);
    if (is_lstm) res.c_n = empty(state_shape, DType::f32, dev);
    Tensor layer_in = (batch_first ? x.detach().transpose(0, 1) : x.detach()).contiguous();
    Tensor y;
    Generator& g = gen ? *gen : default_generator();
    for (int64_t l = 0; l < num_layers; ++l) {
      LayerState& st = layers[l];
      if (l > 0) {
        layer_in = y;
        if (training && dropout > 0.0) {
          st.mask = empty(y.shape(), DType::f32, dev);
          const uint64_t base = g.reserve(static_cast<uint64_t>(y.numel()));
          OAR_DISPATCH_GPU(dev, rnn_dropout_mask, st.mask, dropout, g.seed(), base);
          layer_in = mul(y, st.mask);
        }
      }
      st.x = layer_in;
      y = empty({T, N, D * H}, DType::f32, dev);
      if (use_prim) {
        const std::vector<RnnWeights> wl(wd.begin() + l * D, wd.begin() + (l + 1) * D);
        st.prim = cpu::rnn_primitive_forward(
            cell, st.x, wl, h0c.narrow(0, l * D, D), is_lstm ? c0c.narrow(0, l * D, D) : Tensor(),
            y, res.h_n.narrow(0, l * D, D), is_lstm ? res.c_n.narrow(0, l * D, D) : Tensor(), grad);
        continue;
      }
      for (int64_t d = 0; d < D; ++d) {
        const int64_t k = l * D + d;
        st.saved.push_back(rnn_saved(cell, T, N, H, dev, grad, lens.defined()));
        OAR_DISPATCH_GPU(dev, rnn_layer_forward, cell, d == 1, st.x, wd[k], lens, h0c.select(0, k),
                         is_lstm ? c0c.select(0, k) : Tensor(), y.narrow(2, d * H, H),
                         res.h_n.select(0, k), is_lstm ? res.c_n.select(0, k) : Tensor(),
                         st.saved.back());
      }
    }
    res.output = batch_first ? y.transpose(0, 1).contiguous() : y;
  }
  if (!grad) return res;

  std::vector<Tensor*> outs{&res.output, &res.h_n};
  if (is_lstm) outs.push_back(&res.c_n);
  autograd::record(op, outs, inputs,
                   [cell, is_lstm, num_layers, D, H, batch_first, wd, lens,
                    layers = std::move(layers), state_shape](const autograd::Grads& g) {
                     NoGradGuard no_grad;
                     const Device dev = layers[0].x.device();
                     Tensor dy = g.grad_or_zeros(0);
                     dy = (batch_first ? dy.transpose(0, 1) : dy).contiguous();
                     const Tensor dhn = g.grad_or_zeros(1).contiguous();
                     const Tensor dcn = is_lstm ? g.grad_or_zeros(2).contiguous() : Tensor();
                     const Tensor dh0 = empty(state_shape, DType::f32, dev);
                     const Tensor dc0 = is_lstm ? empty(state_shape, DType::f32, dev) : Tensor();
                     autograd::TensorList grads(3 + 4 * wd.size());
                     for (int64_t l = num_layers - 1; l >= 0; --l) {
                       const LayerState& st = layers[l];
                       const bool need_dx = l > 0 || g.needs(0);
                       const Tensor dx = !need_dx  ? Tensor()
                                         : st.prim ? empty(st.x.shape(), DType::f32, dev)
                                                   : zeros(st.x.shape(), DType::f32, dev);
                       std::vector<RnnWeights> dws(D);
                       for (int64_t d = 0; d < D; ++d) {
                         const int64_t k = l * D + d;
                         RnnWeights dw;
                         auto slot = [&](int64_t j, const Tensor& like) {
                           if (!g.needs(3 + 4 * k + j)) return Tensor();
                           grads[3 + 4 * k + j] = empty(like.shape(), DType::f32, dev);
                           return grads[3 + 4 * k + j];
                         };
                         dw.w_ih = slot(0, wd[k].w_ih);
                         dw.w_hh = slot(1, wd[k].w_hh);
                         dw.b_ih = wd[k].b_ih.defined() ? slot(2, wd[k].b_ih) : Tensor();
                         dw.b_hh = wd[k].b_hh.defined() ? slot(3, wd[k].b_hh) : Tensor();
                         if (st.prim) {
                           dws[d] = dw;
                           continue;
                         }
                         OAR_DISPATCH_GPU(dev, rnn_layer_backward, cell, d == 1, st.x, wd[k], lens,
                                          st.saved[d], dy.narrow(2, d * H, H), dhn.select(0, k),
                                          is_lstm ? dcn.select(0, k) : Tensor(), dx, dw,
                                          dh0.select(0, k), is_lstm ? dc0.select(0, k) : Tensor());
                       }
                       if (st.prim)
                         cpu::rnn_primitive_backward(
                             *st.prim, dy.contiguous(), dhn.narrow(0, l * D, D),
                             is_lstm ? dcn.narrow(0, l * D, D) : Tensor(), dx, dws,
                             dh0.narrow(0, l * D, D), is_lstm ? dc0.narrow(0, l * D, D) : Tensor());
                       dy = l > 0 && st.mask.defined() ? mul(dx, st.mask) : dx;
                     }
                     if (g.needs(0)) grads[0] = batch_first ? dy.transpose(0, 1).contiguous() : dy;
                     if (g.needs(1)) grads[1] = dh0;
                     if (g.needs(2)) grads[2] = dc0;
                     return grads;
                   });
  return res;
}

}  // namespace

RnnCpuPathGuard::RnnCpuPathGuard(RnnCpuPath path) : prev_(t_cpu_path) {
  t_cpu_path = path;
}
RnnCpuPathGuard::~RnnCpuPathGuard() {
  t_cpu_path = prev_;
}

RnnOutput lstm(const Tensor& x, const std::vector<RnnWeights>& weights, int64_t num_layers,
               bool bidirectional, bool batch_first, const Tensor& lengths, const Tensor& h0,
               const Tensor& c0, double dropout, bool training, Generator* gen) {
  return run(RnnCell::lstm, x, weights, num_layers, bidirectional, batch_first, lengths, h0, c0,
             dropout, training, gen);
}

RnnOutput gru(const Tensor& x, const std::vector<RnnWeights>& weights, int64_t num_layers,
              bool bidirectional, bool batch_first, const Tensor& lengths, const Tensor& h0,
              double dropout, bool training, Generator* gen) {
  return run(RnnCell::gru, x, weights, num_layers, bidirectional, batch_first, lengths, h0,
             Tensor(), dropout, training, gen);
}

}  // namespace oar
