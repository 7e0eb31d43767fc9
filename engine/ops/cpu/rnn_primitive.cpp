// LSTM / GRU layers on oneDNN's own RNN primitives (lstm_forward / lstm_backward and the
// linear-before-reset GRU, lbr_gru_forward / lbr_gru_backward, which is PyTorch's GRU). One
// primitive runs a whole layer, both directions at once (bidirectional_concat writes the
// [T, N, 2H] layer output directly). Forward training keeps oneDNN's workspace in the state the
// autograd node holds, and backward reads it. Primitives are cached per shape; the weights are
// packed into oneDNN's user layout (ldgoi, which is PyTorch's [G*H, in] per direction, gates
// permuted for the GRU) once per forward and reordered from there into each primitive's layout,
// so a training step reorders them once for forward and once for backward.
// Sequences of different lengths cannot be expressed to these primitives: rnn.cpp (engine/ops)
// sends those to the reference recurrence in rnn.cpp (this folder).
#include <omp.h>
#include <dnnl.hpp>

#include <algorithm>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/core/error.h"
#include "engine/ops/cpu/onednn.h"
#include "engine/ops/rnn.h"

namespace oar {
enum class RnnCell { lstm, gru };

namespace cpu {

namespace {

using dnnl::memory;
using tag = memory::format_tag;

memory::desc md(const memory::dims& d, tag t) {
  return memory::desc(d, memory::data_type::f32, t);
}

// oneDNN's gate k is PyTorch's gate perm[k]: LSTM i, f, g, o in both; GRU u(z), r, o(n) in
// oneDNN against r, z, n in PyTorch.
constexpr int64_t kLstmPerm[4] = {0, 1, 2, 3};
constexpr int64_t kGruPerm[3] = {1, 0, 2};

struct Prims {
  dnnl::primitive fwd, bwd;
  memory::desc wl, wi, ws;          // forward's weight layouts, workspace (training)
  memory::desc bwl, bwi, dwl, dwi;  // backward's weight and weight-gradient layouts
};

struct Dims {
  bool lstm;
  int64_t T, N, I, H, D;
  int64_t G() const { return lstm ? 4 : 3; }
  // Bias slots: the LSTM's four gates; lbr_gru's three plus W_hn h's own bias.
  int64_t Gb() const { return 4; }
  memory::desc src_layer() const { return md({T, N, I}, tag::tnc); }
  memory::desc dst_layer() const { return md({T, N, D * H}, tag::tnc); }
  memory::desc state() const { return md({1, D, N, H}, tag::ldnc); }
  memory::desc wl_any() const { return md({1, D, I, G(), H}, tag::any); }
  memory::desc wi_any() const { return md({1, D, H, G(), H}, tag::any); }
  memory::desc wl_user() const { return md({1, D, I, G(), H}, tag::ldgoi); }
  memory::desc wi_user() const { return md({1, D, H, G(), H}, tag::ldgoi); }
  memory::desc bias() const { return md({1, D, Gb(), H}, tag::ldgo); }
  dnnl::rnn_direction dir() const {
    return D == 2 ? dnnl::rnn_direction::bidirectional_concat
                  : dnnl::rnn_direction::unidirectional_left2right;
  }
};

// oneDNN's RNN kernels fork the OpenMP team several times per time step, with the thread count
// fixed when the primitive is created. Below this much recurrent work per step (N * G*H * H
// multiply-adds per direction) that costs more than it saves, and on a loaded machine far more
// (threads wait at every barrier), so such layers are created and run on one thread, as the
// reference recurrence does.
constexpr int64_t kThreadedWork = int64_t{1} << 20;

// While alive, the calling thread's OpenMP team size is the one a layer of these dims runs
// with (primitive creation and execution both).
class LayerThreads {
 public:
  explicit LayerThreads(const Dims& d)
      : before_(omp_get_max_threads()), one_(d.N * d.G() * d.H * d.H < kThreadedWork) {
    if (one_) omp_set_num_threads(1);
  }
  ~LayerThreads() {
    if (one_) omp_set_num_threads(before_);
  }
  LayerThreads(const LayerThreads&) = delete;
  LayerThreads& operator=(const LayerThreads&) = delete;

 private:
  int before_;
  bool one_;
};

// oneDNN sizes a primitive's per-thread buffers for the thread count at creation, so that count
// is part of the key (a primitive may run on fewer threads, never on more). Call under
// LayerThreads.
std::shared_ptr<Prims> prims_for(const Dims& d, bool training) {
  const std::string key = std::string("rnn.prim:") + (d.lstm ? "lstm" : "gru") + ":" +
                          std::to_string(d.T) + "x" + std::to_string(d.N) + "x" +
                          std::to_string(d.I) + "h" + std::to_string(d.H) + "d" +
                          std::to_string(d.D) + (training ? ":train" : ":infer") + ":t" +
                          std::to_string(omp_get_max_threads());
  return onednn::cached<Prims>(key, [&] {
    auto p = std::make_shared<Prims>();
    const dnnl::engine& eng = onednn::engine();
    const auto prop =
        training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference;
    const memory::desc sl = d.src_layer(), dl = d.dst_layer(), st = d.state(), b = d.bias();
    if (d.lstm) {
      const dnnl::lstm_forward::primitive_desc fpd(eng, prop, d.dir(), sl, st, st, d.wl_any(),
                                                   d.wi_any(), b, dl, st, st);
      p->fwd = dnnl::lstm_forward(fpd);
      p->wl = fpd.weights_layer_desc();
      p->wi = fpd.weights_iter_desc();
      if (training) {
        p->ws = fpd.workspace_desc();
        const dnnl::lstm_backward::primitive_desc bpd(
            eng, dnnl::prop_kind::backward, d.dir(), sl, st, st, d.wl_any(), d.wi_any(), b, dl, st,
            st, sl, st, st, d.wl_any(), d.wi_any(), b, dl, st, st, fpd);
        p->bwd = dnnl::lstm_backward(bpd);
        p->bwl = bpd.weights_layer_desc();
        p->bwi = bpd.weights_iter_desc();
        p->dwl = bpd.diff_weights_layer_desc();
        p->dwi = bpd.diff_weights_iter_desc();
      }
    } else {
      const dnnl::lbr_gru_forward::primitive_desc fpd(eng, prop, d.dir(), sl, st, d.wl_any(),
                                                      d.wi_any(), b, dl, st);
      p->fwd = dnnl::lbr_gru_forward(fpd);
      p->wl = fpd.weights_layer_desc();
      p->wi = fpd.weights_iter_desc();
      if (training) {
        p->ws = fpd.workspace_desc();
        const dnnl::lbr_gru_backward::primitive_desc bpd(
            eng, dnnl::prop_kind::backward, d.dir(), sl, st, d.wl_any(), d.wi_any(), b, dl, st, sl,
            st, d.wl_any(), d.wi_any(), b, dl, st, fpd);
        p->bwd = dnnl::lbr_gru_backward(bpd);
        p->bwl = bpd.weights_layer_desc();
        p->bwi = bpd.weights_iter_desc();
        p->dwl = bpd.diff_weights_layer_desc();
        p->dwi = bpd.diff_weights_iter_desc();
      }
    }
    return p;
  });
}

dnnl::memory mem(const memory::desc& d, const Tensor& t) {
  return dnnl::memory(d, onednn::engine(), t.raw_data());
}

void reorder_into(const Tensor& src, const memory::desc& src_d, const Tensor& dst,
                  const memory::desc& dst_d) {
  dnnl::memory from = mem(src_d, src), to = mem(dst_d, dst);
  dnnl::reorder(from, to).execute(onednn::stream(), from, to);
  onednn::stream().wait();
}

// The user-layout buffer as the primitive wants it: the buffer itself when the layouts agree,
// else a reordered copy.
Tensor into_layout(const Tensor& user, const memory::desc& user_d, const memory::desc& want) {
  if (want == user_d) return user;
  Tensor out = onednn::buffer_for(want);
  reorder_into(user, user_d, out, want);
  return out;
}

// Packs PyTorch weights w[d] ([G*H, in]) into ldgoi [1, D, G, H, in] with oneDNN's gate order.
Tensor pack_weights(const Dims& d, const std::vector<const Tensor*>& w, int64_t in) {
  const int64_t G = d.G(), H = d.H;
  const int64_t* perm = d.lstm ? kLstmPerm : kGruPerm;
  Tensor out = empty({d.D * G * H * in}, DType::f32);
  float* po = out.data<float>();
  for (int64_t dir = 0; dir < d.D; ++dir) {
    const float* src = w[dir]->data<float>();
    for (int64_t g = 0; g < G; ++g)
      std::memcpy(po + (dir * G + g) * H * in, src + perm[g] * H * in,
                  sizeof(float) * static_cast<size_t>(H * in));
  }
  return out;
}

// The inverse: ldgoi [1, D, G, H, in] into PyTorch's [G*H, in] per direction (undefined: skip).
void unpack_weights(const Dims& d, const Tensor& packed, const std::vector<Tensor>& w, int64_t in) {
  const int64_t G = d.G(), H = d.H;
  const int64_t* perm = d.lstm ? kLstmPerm : kGruPerm;
  const float* pp = static_cast<const float*>(packed.raw_data());
  for (int64_t dir = 0; dir < d.D; ++dir) {
    if (!w[dir].defined()) continue;
    float* dst = w[dir].data<float>();
    for (int64_t g = 0; g < G; ++g)
      std::memcpy(dst + perm[g] * H * in, pp + (dir * G + g) * H * in,
                  sizeof(float) * static_cast<size_t>(H * in));
  }
}

}  // namespace

struct RnnPrimitiveState {
  Dims d;
  std::shared_ptr<Prims> prims;
  Tensor x, h0, c0, y, hn, cn;  // what forward read and wrote ([1, D, N, H] states)
  Tensor wl_user, wi_user, bias, ws;
};

std::shared_ptr<RnnPrimitiveState> rnn_primitive_forward(RnnCell cell, const Tensor& x,
                                                         const std::vector<RnnWeights>& w,
                                                         const Tensor& h0, const Tensor& c0,
                                                         const Tensor& y, const Tensor& hn,
                                                         const Tensor& cn, bool training) {
  auto s = std::make_shared<RnnPrimitiveState>();
  Dims& d = s->d;
  d.lstm = cell == RnnCell::lstm;
  d.T = x.size(0), d.N = x.size(1), d.I = x.size(2), d.H = hn.size(2);
  d.D = static_cast<int64_t>(w.size());
  const int64_t G = d.G(), H = d.H;
  const LayerThreads threads(d);
  s->prims = prims_for(d, training);
  std::vector<const Tensor*> wih, whh;
  for (const auto& wd : w) wih.push_back(&wd.w_ih), whh.push_back(&wd.w_hh);
  // One LSTM direction: PyTorch's [4H, in] already is oneDNN's ldgoi, no copy needed.
  const bool direct = d.lstm && d.D == 1;
  s->wl_user = direct ? w[0].w_ih : pack_weights(d, wih, d.I);
  s->wi_user = direct ? w[0].w_hh : pack_weights(d, whh, H);

  // Bias [1, D, Gb, H]: b_ih + b_hh per gate; the GRU keeps W_hn h's bias apart (4th slot).
  s->bias = zeros({d.D * d.Gb() * H}, DType::f32);
  float* pb = s->bias.data<float>();
  for (int64_t dir = 0; dir < d.D; ++dir) {
    const float* bih = w[dir].b_ih.defined() ? w[dir].b_ih.data<float>() : nullptr;
    const float* bhh = w[dir].b_hh.defined() ? w[dir].b_hh.data<float>() : nullptr;
    float* bd = pb + dir * d.Gb() * H;
    const int64_t* perm = d.lstm ? kLstmPerm : kGruPerm;
    for (int64_t g = 0; g < G; ++g) {
      const bool hidden_apart = !d.lstm && g == 2;
      for (int64_t j = 0; j < H; ++j) {
        const int64_t o = perm[g] * H + j;
        bd[g * H + j] = (bih ? bih[o] : 0.0f) + (bhh && !hidden_apart ? bhh[o] : 0.0f);
        if (hidden_apart && bhh) bd[3 * H + j] = bhh[o];
      }
    }
  }

  const Prims& p = *s->prims;
  const Tensor wl = into_layout(s->wl_user, d.wl_user(), p.wl);
  const Tensor wi = into_layout(s->wi_user, d.wi_user(), p.wi);
  const memory::desc st = d.state();
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC_LAYER, mem(d.src_layer(), x)},
                                             {DNNL_ARG_SRC_ITER, mem(st, h0)},
                                             {DNNL_ARG_WEIGHTS_LAYER, mem(p.wl, wl)},
                                             {DNNL_ARG_WEIGHTS_ITER, mem(p.wi, wi)},
                                             {DNNL_ARG_BIAS, mem(d.bias(), s->bias)},
                                             {DNNL_ARG_DST_LAYER, mem(d.dst_layer(), y)},
                                             {DNNL_ARG_DST_ITER, mem(st, hn)}};
  if (d.lstm) {
    args.emplace(DNNL_ARG_SRC_ITER_C, mem(st, c0));
    args.emplace(DNNL_ARG_DST_ITER_C, mem(st, cn));
  }
  if (training) {
    s->ws = onednn::buffer_for(p.ws);
    args.emplace(DNNL_ARG_WORKSPACE, mem(p.ws, s->ws));
  }
  p.fwd.execute(onednn::stream(), args);
  onednn::stream().wait();
  if (!training) return nullptr;
  s->x = x, s->h0 = h0, s->c0 = c0, s->y = y, s->hn = hn, s->cn = cn;
  return s;
}

void rnn_primitive_backward(const RnnPrimitiveState& s, const Tensor& dy, const Tensor& dhn,
                            const Tensor& dcn, const Tensor& dx, const std::vector<RnnWeights>& dw,
                            const Tensor& dh0, const Tensor& dc0) {
  const Dims& d = s.d;
  const Prims& p = *s.prims;
  const LayerThreads threads(d);
  const int64_t G = d.G(), H = d.H;
  const Tensor wl = into_layout(s.wl_user, d.wl_user(), p.bwl);
  const Tensor wi = into_layout(s.wi_user, d.wi_user(), p.bwi);
  // oneDNN adds the weight gradients into what the buffers hold.
  auto zeroed = [](const memory::desc& md_) {
    Tensor t = onednn::buffer_for(md_);
    std::memset(t.raw_data(), 0, md_.get_size());
    return t;
  };
  const Tensor dwl = zeroed(p.dwl), dwi = zeroed(p.dwi);
  const Tensor db = zeros({d.D * d.Gb() * H}, DType::f32);
  const Tensor dsrc = dx.defined() ? dx : empty({d.T, d.N, d.I}, DType::f32);
  const memory::desc st = d.state();
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC_LAYER, mem(d.src_layer(), s.x)},
                                             {DNNL_ARG_SRC_ITER, mem(st, s.h0)},
                                             {DNNL_ARG_WEIGHTS_LAYER, mem(p.bwl, wl)},
                                             {DNNL_ARG_WEIGHTS_ITER, mem(p.bwi, wi)},
                                             {DNNL_ARG_BIAS, mem(d.bias(), s.bias)},
                                             {DNNL_ARG_DST_LAYER, mem(d.dst_layer(), s.y)},
                                             {DNNL_ARG_DST_ITER, mem(st, s.hn)},
                                             {DNNL_ARG_WORKSPACE, mem(p.ws, s.ws)},
                                             {DNNL_ARG_DIFF_SRC_LAYER, mem(d.src_layer(), dsrc)},
                                             {DNNL_ARG_DIFF_SRC_ITER, mem(st, dh0)},
                                             {DNNL_ARG_DIFF_WEIGHTS_LAYER, mem(p.dwl, dwl)},
                                             {DNNL_ARG_DIFF_WEIGHTS_ITER, mem(p.dwi, dwi)},
                                             {DNNL_ARG_DIFF_BIAS, mem(d.bias(), db)},
                                             {DNNL_ARG_DIFF_DST_LAYER, mem(d.dst_layer(), dy)},
                                             {DNNL_ARG_DIFF_DST_ITER, mem(st, dhn)}};
  if (d.lstm) {
    args.emplace(DNNL_ARG_SRC_ITER_C, mem(st, s.c0));
    args.emplace(DNNL_ARG_DST_ITER_C, mem(st, s.cn));
    args.emplace(DNNL_ARG_DIFF_SRC_ITER_C, mem(st, dc0));
    args.emplace(DNNL_ARG_DIFF_DST_ITER_C, mem(st, dcn));
  }
  p.bwd.execute(onednn::stream(), args);
  onednn::stream().wait();

  std::vector<Tensor> dwih, dwhh;
  for (const auto& g : dw) dwih.push_back(g.w_ih), dwhh.push_back(g.w_hh);
  if (d.lstm && d.D == 1) {  // straight into PyTorch's layout, which is ldgoi
    if (dwih[0].defined()) reorder_into(dwl, p.dwl, dwih[0], d.wl_user());
    if (dwhh[0].defined()) reorder_into(dwi, p.dwi, dwhh[0], d.wi_user());
  } else {
    unpack_weights(d, into_layout(dwl, p.dwl, d.wl_user()), dwih, d.I);
    unpack_weights(d, into_layout(dwi, p.dwi, d.wi_user()), dwhh, H);
  }
  // Bias gradients: both biases of a gate get its pre-activation gradient, except the GRU's
  // n gate, whose hidden bias has its own slot.
  const float* pdb = db.data<float>();
  const int64_t* perm = d.lstm ? kLstmPerm : kGruPerm;
  for (int64_t dir = 0; dir < d.D; ++dir) {
    const float* bd = pdb + dir * d.Gb() * H;
    float* gih = dw[dir].b_ih.defined() ? dw[dir].b_ih.data<float>() : nullptr;
    float* ghh = dw[dir].b_hh.defined() ? dw[dir].b_hh.data<float>() : nullptr;
    for (int64_t g = 0; g < G; ++g) {
      const bool hidden_apart = !d.lstm && g == 2;
      for (int64_t j = 0; j < H; ++j) {
        const int64_t o = perm[g] * H + j;
        if (gih) gih[o] = bd[g * H + j];
        if (ghh) ghh[o] = bd[(hidden_apart ? 3 : g) * H + j];
      }
    }
  }
}

}  // namespace cpu
}  // namespace oar
