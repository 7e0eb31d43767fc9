// LSTM / GRU on the CPU, oar's own recurrence: what GRUs and variable lengths run on (a
// full-length LSTM goes to oneDNN's RNN primitive, rnn_primitive.cpp; RnnCpuPathGuard picks
// either). The input projection of all time steps is one GEMM (oneDNN's sgemm),
// the recurrent projection one GEMM per step and thread against that thread's slice of W_hh,
// packed once per call for oneDNN's matmul (brgemm) kernel; gates are fused pointwise loops.
// Variable lengths are handled per row: row n at step s works on time t = s (forward) or len_n - 1
// - s (reverse), so the reverse direction starts at each sequence's last valid step.
#include <dnnl.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/core/error.h"
#include "engine/ops/cpu/fast_exp.h"
#include "engine/ops/cpu/onednn.h"
#include "engine/ops/rnn.h"

namespace oar {
enum class RnnCell { lstm, gru };

namespace cpu {

namespace {

constexpr int64_t kPointwiseGrain = 4096;  // elements per step below which loops stay serial

// Row-major C = alpha * op(A) op(B) + beta * C.
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  const dnnl_status_t st =
      dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  OAR_CHECK(st == dnnl_success, "rnn: oneDNN sgemm failed (status ", static_cast<int>(st), ")");
}

// C [m, n] (row stride ldc) = A [m, k] (row stride lda) B, for a B [k, n] fixed across many
// calls: B is packed once into the layout oneDNN's matmul kernel wants (the recurrent GEMM of
// every step reuses it; sgemm would repack it each time). Each thread of a parallel region
// makes its own (its own stream and scratchpad) and runs it on its own; the primitive itself is
// cached by shape. Falls back to sgemm when oneDNN has no matmul for the shape.
class PackedGemm {
 public:
  // B[kk][nn] = b[kk * b_sk + nn * b_sn].
  PackedGemm(int64_t m, int64_t k, int64_t n, int64_t lda, int64_t ldc, const float* b,
             int64_t b_sk, int64_t b_sn)
      : m_(m), k_(k), n_(n), lda_(lda), ldc_(ldc), b_(b), b_sk_(b_sk), b_sn_(b_sn) {
    using dnnl::memory;
    const std::string key = "rnn.gemm:" + std::to_string(m) + "x" + std::to_string(k) + "x" +
                            std::to_string(n) + ":" + std::to_string(lda) + ":" +
                            std::to_string(ldc);
    prim_ = onednn::cached<Prim>(key, [&] {
      auto p = std::make_shared<Prim>();
      try {
        p->a = memory::desc({m, k}, memory::data_type::f32, memory::dims{lda, 1});
        p->c = memory::desc({m, n}, memory::data_type::f32, memory::dims{ldc, 1});
        const memory::desc b_any({k, n}, memory::data_type::f32, memory::format_tag::any);
        dnnl::primitive_attr attr;
        attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
        const dnnl::matmul::primitive_desc pd(onednn::engine(), p->a, b_any, p->c, attr);
        p->b_packed = pd.weights_desc();
        p->scratch = pd.scratchpad_desc();
        p->prim = dnnl::matmul(pd);
        p->ok = true;
      } catch (const dnnl::error&) {
        p->ok = false;
      }
      return p;
    });
    if (!prim_->ok) return;
    packed_ = onednn::buffer_for(prim_->b_packed);
    if (prim_->scratch.get_size() > 0) scratch_ = onednn::buffer_for(prim_->scratch);
    stream_ = dnnl::stream(onednn::engine());
    const dnnl::memory::desc b_user({k, n}, dnnl::memory::data_type::f32,
                                    dnnl::memory::dims{b_sk, b_sn});
    dnnl::memory from(b_user, onednn::engine(), const_cast<float*>(b));
    b_mem_ = dnnl::memory(prim_->b_packed, onednn::engine(), packed_.raw_data());
    dnnl::reorder(from, b_mem_).execute(stream_, from, b_mem_);
    a_mem_ = dnnl::memory(prim_->a, onednn::engine(), nullptr);
    c_mem_ = dnnl::memory(prim_->c, onednn::engine(), nullptr);
    if (scratch_.defined())
      s_mem_ = dnnl::memory(prim_->scratch, onednn::engine(), scratch_.raw_data());
  }

  void run(const float* a, float* c) {
    if (!prim_->ok) {
      const dnnl_status_t st =
          b_sn_ == 1 ? dnnl_sgemm('N', 'N', m_, n_, k_, 1.0f, a, lda_, b_, b_sk_, 0.0f, c, ldc_)
                     : dnnl_sgemm('N', 'T', m_, n_, k_, 1.0f, a, lda_, b_, b_sn_, 0.0f, c, ldc_);
      OAR_CHECK(st == dnnl_success, "rnn: oneDNN sgemm failed (status ", static_cast<int>(st), ")");
      return;
    }
    a_mem_.set_data_handle(const_cast<float*>(a));
    c_mem_.set_data_handle(c);
    std::unordered_map<int, dnnl::memory> args{
        {DNNL_ARG_SRC, a_mem_}, {DNNL_ARG_WEIGHTS, b_mem_}, {DNNL_ARG_DST, c_mem_}};
    if (scratch_.defined()) args.emplace(DNNL_ARG_SCRATCHPAD, s_mem_);
    prim_->prim.execute(stream_, args);
    stream_.wait();
  }

 private:
  struct Prim {
    bool ok = false;
    dnnl::memory::desc a, c, b_packed, scratch;
    dnnl::matmul prim;
  };
  int64_t m_, k_, n_, lda_, ldc_;
  const float* b_;
  int64_t b_sk_, b_sn_;
  std::shared_ptr<Prim> prim_;
  Tensor packed_, scratch_;
  dnnl::stream stream_;
  dnnl::memory a_mem_, b_mem_, c_mem_, s_mem_;
};

std::vector<int64_t> lengths_of(const Tensor& lengths, int64_t T, int64_t N) {
  if (!lengths.defined()) return std::vector<int64_t>(N, T);
  const int64_t* p = lengths.data<int64_t>();
  return std::vector<int64_t>(p, p + N);
}

// Time index of row n at processing step s, or -1 when the row has no step s.
inline int64_t time_of(bool reverse, int64_t s, int64_t len) {
  if (s >= len) return -1;
  return reverse ? len - 1 - s : s;
}

const float* opt(const Tensor& t) {
  return t.defined() ? t.data<float>() : nullptr;
}
float* opt_mut(const Tensor& t) {
  return t.defined() ? t.data<float>() : nullptr;
}

// The recurrence runs in one parallel region per layer: thread p owns hidden units
// [j0, j1) and computes, for them, the recurrent GEMM columns of every gate and the gate
// pointwise work, so a step needs one barrier instead of a fork/join per GEMM and per loop
// (those dominated on small batches). GEMMs inside the region run on the calling thread.
struct HiddenChunks {
  int threads = 1;
  std::vector<int64_t> begin;  // threads + 1 boundaries over [0, H)

  HiddenChunks(int64_t N, int64_t GH, int64_t H) {
    const int max_threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    // At least 16 hidden units (one AVX-512 vector) and some GEMM work per thread.
    const int64_t by_units = std::max<int64_t>(1, H / 16);
    const int64_t by_work = std::max<int64_t>(1, N * GH * H / (1 << 18));
    threads = static_cast<int>(std::min<int64_t>({max_threads, by_units, by_work}));
    begin.resize(threads + 1);
    for (int p = 0; p <= threads; ++p) begin[p] = (H * p / threads) / 16 * 16;
    begin[threads] = H;
  }
};

}  // namespace

void rnn_layer_forward(RnnCell cell, bool reverse, const Tensor& x, const RnnWeights& w,
                       const Tensor& lengths, const Tensor& h0, const Tensor& c0, const Tensor& y,
                       const Tensor& hn, const Tensor& cn, const std::vector<Tensor>& saved) {
  const bool is_lstm = cell == RnnCell::lstm;
  const int64_t T = x.size(0), N = x.size(1), I = x.size(2), H = hn.size(1);
  const int64_t G = is_lstm ? 4 : 3, GH = G * H;
  const auto len = lengths_of(lengths, T, N);
  float* gates = saved[0].data<float>();
  const bool keep = saved.size() > 1;
  float* s1 = keep ? saved[1].data<float>() : nullptr;  // LSTM: c;       GRU: W_hn h + b_hn
  float* s2 = keep ? saved[2].data<float>() : nullptr;  // h_prev
  float* s3 = keep && is_lstm ? saved[3].data<float>() : nullptr;  // LSTM: c_prev
  float* py = y.data<float>();
  const int64_t ys0 = y.stride(0), ys1 = y.stride(1);
  const float* bih = opt(w.b_ih);
  const float* bhh = opt(w.b_hh);
  const float* whh = w.w_hh.data<float>();

  // gates = x W_ih^T + b_ih (+ b_hh for the LSTM, whose hidden bias needs no separate term).
  gemm(false, true, T * N, GH, I, 1.0f, x.data<float>(), I, w.w_ih.data<float>(), I, 0.0f, gates,
       GH);
  // The LSTM adds its biases in the step loop (saving a pass over all gates); the GRU here.
  std::vector<float> bias(GH, 0.0f);
  for (int64_t j = 0; j < GH; ++j)
    bias[j] = (bih ? bih[j] : 0.0f) + (is_lstm && bhh ? bhh[j] : 0.0f);
  if (!is_lstm && bih) {
#pragma omp parallel for if (T * N * GH > 4 * kPointwiseGrain)
    for (int64_t r = 0; r < T * N; ++r)
      for (int64_t j = 0; j < GH; ++j) gates[r * GH + j] += bias[j];
  }
  // Padded steps output zeros.
  for (int64_t t = 0; t < T; ++t)
    for (int64_t n = 0; n < N; ++n)
      if (t >= len[n])
        for (int64_t j = 0; j < H; ++j) py[t * ys0 + n * ys1 + j] = 0.0f;

  // h is double-buffered: step s reads h[s % 2] (all units, in the GEMM) and writes
  // h[(s + 1) % 2] (its own units), so one barrier per step separates readers and writers.
  std::vector<float> h(2 * N * H);
  std::copy(h0.data<float>(), h0.data<float>() + N * H, h.begin());
  std::vector<float> c;
  if (is_lstm) c.assign(c0.data<float>(), c0.data<float>() + N * H);
  int64_t steps = 0;
  for (int64_t n = 0; n < N; ++n) steps = std::max(steps, len[n]);
  const HiddenChunks chunks(N, GH, H);
  // W_hh rows regrouped by chunk: chunk p holds, gate by gate, the rows of its units, so its
  // recurrent GEMM is one product with a contiguous [G * hc, H] weight.
  const Tensor wp_t = empty({GH * H}, DType::f32);
  float* wp = wp_t.data<float>();
  for (int p = 0; p < chunks.threads; ++p) {
    const int64_t j0 = chunks.begin[p], hc = chunks.begin[p + 1] - j0;
    float* dst = wp + G * j0 * H;
    for (int64_t g = 0; g < G; ++g)
      std::copy(whh + (g * H + j0) * H, whh + (g * H + j0 + hc) * H, dst + g * hc * H);
  }

#pragma omp parallel num_threads(chunks.threads) if (chunks.threads > 1)
  {
    const int p = chunks.threads > 1 ? omp_get_thread_num() : 0;
    const int64_t j0 = chunks.begin[p], hc = chunks.begin[p + 1] - j0, GC = G * hc;
    std::vector<float> hw(N * GC);  // this chunk's W_hh h (+ b_hh for the GRU), gate by gate
    // B [H, GC]: row nn of the chunk's regrouped weight is column nn.
    std::optional<PackedGemm> rec;
    if (hc > 0) rec.emplace(N, H, GC, H, GC, wp + G * j0 * H, 1, H);
    for (int64_t s = 0; s < steps; ++s) {
      const float* hin = h.data() + (s % 2) * N * H;
      float* hout = h.data() + ((s + 1) % 2) * N * H;
      if (hc > 0) rec->run(hin, hw.data());
      for (int64_t n = 0; n < N; ++n) {
        const float* __restrict hi = hin + n * H + j0;
        float* __restrict ho = hout + n * H + j0;
        const int64_t t = time_of(reverse, s, len[n]);
        if (t < 0) {
          std::copy(hi, hi + hc, ho);
          continue;
        }
        float* __restrict g = gates + (t * N + n) * GH + j0;  // gate k of unit j: g[k * H + j]
        float* __restrict r = hw.data() + n * GC;             // gate k of unit j: r[k * hc + j]
        float* __restrict out = py + t * ys0 + n * ys1 + j0;
        const int64_t o = (t * N + n) * H + j0;
        // Separate simple passes so each loop vectorises.
        if (is_lstm) {
          float* __restrict cr = c.data() + n * H + j0;
          if (keep) {
            std::copy(hi, hi + hc, s2 + o);
            std::copy(cr, cr + hc, s3 + o);
          }
          for (int64_t k = 0; k < G; ++k) {
            const float* __restrict bk = bias.data() + k * H + j0;
            for (int64_t j = 0; j < hc; ++j) g[k * H + j] += r[k * hc + j] + bk[j];
          }
          for (int64_t j = 0; j < hc; ++j) g[j] = fast_sigmoid(g[j]);
          for (int64_t j = 0; j < hc; ++j) g[H + j] = fast_sigmoid(g[H + j]);
          for (int64_t j = 0; j < hc; ++j) g[2 * H + j] = fast_tanh(g[2 * H + j]);
          for (int64_t j = 0; j < hc; ++j) g[3 * H + j] = fast_sigmoid(g[3 * H + j]);
          for (int64_t j = 0; j < hc; ++j) cr[j] = g[H + j] * cr[j] + g[j] * g[2 * H + j];
          for (int64_t j = 0; j < hc; ++j) ho[j] = g[3 * H + j] * fast_tanh(cr[j]);
          if (keep) std::copy(cr, cr + hc, s1 + o);
        } else {
          if (keep) std::copy(hi, hi + hc, s2 + o);
          if (bhh)
            for (int64_t k = 0; k < G; ++k)
              for (int64_t j = 0; j < hc; ++j) r[k * hc + j] += bhh[k * H + j0 + j];
          for (int64_t j = 0; j < hc; ++j) g[j] = fast_sigmoid(g[j] + r[j]);
          for (int64_t j = 0; j < hc; ++j) g[H + j] = fast_sigmoid(g[H + j] + r[hc + j]);
          for (int64_t j = 0; j < hc; ++j)
            g[2 * H + j] = fast_tanh(g[2 * H + j] + g[j] * r[2 * hc + j]);
          for (int64_t j = 0; j < hc; ++j)
            ho[j] = (1.0f - g[H + j]) * g[2 * H + j] + g[H + j] * hi[j];
          if (keep) std::copy(r + 2 * hc, r + 3 * hc, s1 + o);
        }
        std::copy(ho, ho + hc, out);
      }
#pragma omp barrier
    }
  }
  const float* hlast = h.data() + (steps % 2) * N * H;
  std::copy(hlast, hlast + N * H, hn.data<float>());
  if (is_lstm) std::copy(c.begin(), c.end(), cn.data<float>());
}

void rnn_layer_backward(RnnCell cell, bool reverse, const Tensor& x, const RnnWeights& w,
                        const Tensor& lengths, const std::vector<Tensor>& saved, const Tensor& dy,
                        const Tensor& dhn, const Tensor& dcn, const Tensor& dx,
                        const RnnWeights& dw, const Tensor& dh0, const Tensor& dc0) {
  const bool is_lstm = cell == RnnCell::lstm;
  const int64_t T = x.size(0), N = x.size(1), I = x.size(2), H = dhn.size(1);
  const int64_t GH = (is_lstm ? 4 : 3) * H;
  const auto len = lengths_of(lengths, T, N);
  const float* gates = saved[0].data<float>();
  const float* s1 = saved[1].data<float>();
  const float* hprev = saved[2].data<float>();
  const float* cprev = is_lstm ? saved[3].data<float>() : nullptr;
  const float* pdy = dy.data<float>();
  const int64_t ds0 = dy.stride(0), ds1 = dy.stride(1);
  const float* whh = w.w_hh.data<float>();

  // dgx: gradient of the gate pre-activations (input side, also b_ih); dgh: the hidden side
  // (W_hh, b_hh), which differs from dgx only for the GRU's n gate (scaled by r). The
  // recurrence below writes every valid step; padded steps are zeroed here.
  const Tensor dgx_t = empty({T * N * GH}, DType::f32);
  const Tensor dgh_t = is_lstm ? dgx_t : empty({T * N * GH}, DType::f32);
  float* dgx = dgx_t.data<float>();
  float* dgh = dgh_t.data<float>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t t = len[n]; t < T; ++t) {
      std::fill(dgx + (t * N + n) * GH, dgx + (t * N + n + 1) * GH, 0.0f);
      std::fill(dgh + (t * N + n) * GH, dgh + (t * N + n + 1) * GH, 0.0f);
    }
  std::vector<float> dh(dhn.data<float>(), dhn.data<float>() + N * H);
  std::vector<float> dc;
  if (is_lstm) dc.assign(dcn.data<float>(), dcn.data<float>() + N * H);
  // step_g is double-buffered: step s writes buffer s % 2 (its own units) and, after the
  // barrier, every thread reads all of it in its GEMM, while faster threads may already write
  // the other buffer for step s - 1.
  std::vector<float> step_g(2 * N * GH);
  int64_t steps = 0;
  for (int64_t n = 0; n < N; ++n) steps = std::max(steps, len[n]);
  // The LSTM's bias gradient (the same for b_ih and b_hh) is summed in the step loop.
  std::vector<float> db_store(is_lstm && (dw.b_ih.defined() || dw.b_hh.defined()) ? GH : 0, 0.0f);
  float* db_lstm = db_store.empty() ? nullptr : db_store.data();
  const HiddenChunks chunks(N, GH, H);

#pragma omp parallel num_threads(chunks.threads) if (chunks.threads > 1)
  {
    const int p = chunks.threads > 1 ? omp_get_thread_num() : 0;
    const int64_t j0 = chunks.begin[p], hc = chunks.begin[p + 1] - j0;
    std::vector<float> step_h(N * hc);  // W_hh^T step_g for this chunk's units
    // B [GH, hc]: W_hh's columns of this chunk's units.
    std::optional<PackedGemm> rec;
    if (hc > 0) rec.emplace(N, GH, hc, GH, hc, whh + j0, H, 1);
    for (int64_t s = steps - 1; s >= 0; --s) {
      float* sgs = step_g.data() + (s % 2) * N * GH;
      for (int64_t n = 0; n < N; ++n) {
        const int64_t t = time_of(reverse, s, len[n]);
        float* sg = sgs + n * GH + j0;  // gate k of unit j: sg[k * H + j]
        if (t < 0) {
          for (int64_t k = 0; k < GH / H; ++k) std::fill(sg + k * H, sg + k * H + hc, 0.0f);
          continue;
        }
        const float* g = gates + (t * N + n) * GH + j0;
        const int64_t o = (t * N + n) * H + j0;
        float* gx = dgx + (t * N + n) * GH + j0;
        float* dhr = dh.data() + n * H + j0;
        const float* dyr = pdy + t * ds0 + n * ds1 + j0;
        if (is_lstm) {
          float* dcr = dc.data() + n * H + j0;
          for (int64_t j = 0; j < hc; ++j) {
            const float ig = g[j], fg = g[H + j], gg = g[2 * H + j], og = g[3 * H + j];
            const float tc = fast_tanh(s1[o + j]);
            const float dht = dhr[j] + dyr[j];
            const float dct = dcr[j] + dht * og * (1.0f - tc * tc);
            gx[j] = dct * gg * ig * (1.0f - ig);
            gx[H + j] = dct * cprev[o + j] * fg * (1.0f - fg);
            gx[2 * H + j] = dct * ig * (1.0f - gg * gg);
            gx[3 * H + j] = dht * tc * og * (1.0f - og);
            dcr[j] = dct * fg;
          }
          for (int64_t k = 0; k < 4; ++k) std::copy(gx + k * H, gx + k * H + hc, sg + k * H);
          if (db_lstm)  // this thread's units only, so no other thread writes them
            for (int64_t k = 0; k < 4; ++k)
              for (int64_t j = 0; j < hc; ++j) db_lstm[k * H + j0 + j] += gx[k * H + j];
        } else {
          float* gh = dgh + (t * N + n) * GH + j0;
          for (int64_t j = 0; j < hc; ++j) {
            const float rg = g[j], zg = g[H + j], ng = g[2 * H + j];
            const float dht = dhr[j] + dyr[j];
            const float dpn = dht * (1.0f - zg) * (1.0f - ng * ng);
            const float dpz = dht * (hprev[o + j] - ng) * zg * (1.0f - zg);
            const float dpr = dpn * s1[o + j] * rg * (1.0f - rg);
            gx[j] = dpr, gx[H + j] = dpz, gx[2 * H + j] = dpn;
            gh[j] = dpr, gh[H + j] = dpz, gh[2 * H + j] = dpn * rg;
            dhr[j] = dht * zg;  // the direct path; the recurrent GEMM adds the rest
          }
          for (int64_t k = 0; k < 3; ++k) std::copy(gh + k * H, gh + k * H + hc, sg + k * H);
        }
      }
#pragma omp barrier
      if (hc > 0) rec->run(sgs, step_h.data());
      for (int64_t n = 0; n < N; ++n) {
        if (time_of(reverse, s, len[n]) < 0) continue;
        float* dhr = dh.data() + n * H + j0;
        const float* sh = step_h.data() + n * hc;
        for (int64_t j = 0; j < hc; ++j) dhr[j] = is_lstm ? sh[j] : dhr[j] + sh[j];
      }
    }
  }
  std::copy(dh.begin(), dh.end(), dh0.data<float>());
  if (is_lstm) std::copy(dc.begin(), dc.end(), dc0.data<float>());

  const int64_t rows = T * N;
  if (dx.defined())
    gemm(false, false, rows, I, GH, 1.0f, dgx, GH, w.w_ih.data<float>(), I, 1.0f, dx.data<float>(),
         I);
  // dW = dG^T A is computed as its transpose A^T dG ([in, GH]: oneDNN's sgemm runs that shape
  // ~1.3x faster than one with few columns) and transposed into place.
  auto weight_grad = [&](const float* a, int64_t in, const float* dg, const Tensor& out) {
    const Tensor tmp = empty({in, GH}, DType::f32);
    float* pt = tmp.data<float>();
    gemm(true, false, in, GH, rows, 1.0f, a, in, dg, GH, 0.0f, pt, GH);
    float* po = out.data<float>();
    constexpr int64_t kB = 32;
#pragma omp parallel for collapse(2) if (in * GH > 4 * kPointwiseGrain)
    for (int64_t r0 = 0; r0 < GH; r0 += kB)
      for (int64_t c0 = 0; c0 < in; c0 += kB)
        for (int64_t r = r0; r < std::min(r0 + kB, GH); ++r)
          for (int64_t c = c0; c < std::min(c0 + kB, in); ++c) po[r * in + c] = pt[c * GH + r];
  };
  if (dw.w_ih.defined()) weight_grad(x.data<float>(), I, dgx, dw.w_ih);
  if (dw.w_hh.defined()) weight_grad(hprev, H, dgh, dw.w_hh);
  if (db_lstm) {
    for (const Tensor* db : {&dw.b_ih, &dw.b_hh})
      if (db->defined()) std::copy(db_store.begin(), db_store.end(), db->data<float>());
  } else if (dw.b_ih.defined() || dw.b_hh.defined()) {
    const std::vector<float> ones(rows, 1.0f);
    if (float* db = opt_mut(dw.b_ih))
      gemm(false, false, 1, GH, rows, 1.0f, ones.data(), rows, dgx, GH, 0.0f, db, GH);
    if (float* db = opt_mut(dw.b_hh))
      gemm(false, false, 1, GH, rows, 1.0f, ones.data(), rows, dgh, GH, 0.0f, db, GH);
  }
}

void rnn_dropout_mask(const Tensor& mask, double p, uint64_t seed, uint64_t base) {
  float* m = mask.data<float>();
  const int64_t n = mask.numel();
  const float scale = static_cast<float>(1.0 / (1.0 - p));
  const float pf = static_cast<float>(p);
#pragma omp parallel for if (n > 4 * kPointwiseGrain)
  for (int64_t i = 0; i < n; ++i)
    m[i] = Generator::to_unit_float(Generator::hash(seed, base + static_cast<uint64_t>(i))) >= pf
               ? scale
               : 0.0f;
}

}  // namespace cpu
}  // namespace oar
