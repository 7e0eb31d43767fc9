#pragma once
// Recurrent layers' functional forms (PyTorch gate order and weight layout:
// LSTM gates i, f, g, o; GRU gates r, z, n; weights w_ih [G*H, in], w_hh [G*H, H], biases [G*H]).
#include <vector>

#include "engine/tensor/tensor.h"

namespace oar {

struct RnnWeights {  // one layer, one direction
  Tensor w_ih, w_hh, b_ih, b_hh;
};

struct RnnOutput {
  Tensor output;  // [T, N, D*H] (or [N, T, D*H] when batch_first)
  Tensor h_n;     // [L*D, N, H]
  Tensor c_n;     // LSTM only
};

// weights: layers * directions entries, ordered layer-major (l0 fwd, l0 bwd, l1 fwd, ...);
// biases may be undefined (zero). x: [T, N, in] ([N, T, in] with batch_first), T, N >= 1.
// lengths: optional integer [N] with values in [0, T]; steps at or past a sequence's length
// produce zeros and do not update its state (packed-sequence semantics): h_n / c_n are the states
// after the last valid step, and the reverse direction starts at each sequence's last valid
// step. h0/c0 optional ([L*D, N, H], zeros when undefined). Dropout (training, dropout > 0)
// multiplies each layer's output but the last by a mask from `gen` (the default generator when
// null): gen->reserve(T*N*D*H) per layer boundary, element i kept (scaled by 1/(1-p)) when
// Generator::to_unit_float(hash(seed, base + i)) >= p. Computes in f32; bf16/f16 inputs are
// cast (with autograd) and the outputs cast back to x's dtype. Gradients reach x, h0, c0 and
// every weight and bias. Throws oar::Error on bad shapes, lengths or dropout.
RnnOutput lstm(const Tensor& x, const std::vector<RnnWeights>& weights, int64_t num_layers,
               bool bidirectional, bool batch_first = false, const Tensor& lengths = Tensor(),
               const Tensor& h0 = Tensor(), const Tensor& c0 = Tensor(), double dropout = 0.0,
               bool training = false, Generator* gen = nullptr);
// linear_before_reset follows PyTorch (true).
RnnOutput gru(const Tensor& x, const std::vector<RnnWeights>& weights, int64_t num_layers,
              bool bidirectional, bool batch_first = false, const Tensor& lengths = Tensor(),
              const Tensor& h0 = Tensor(), double dropout = 0.0, bool training = false,
              Generator* gen = nullptr);

// On the CPU, full-length LSTMs run each layer on oneDNN's RNN primitive; GRUs and variable
// lengths on oar's own recurrence (engine/ops/cpu/rnn.cpp). oneDNN's GRU primitive (lbr_gru)
// measured no faster than the recurrence on one thread and several times slower on a loaded
// machine (it forks the OpenMP team more often per step), so it is opt-in. While an object of
// this class lives, the calling thread's CPU LSTMs and GRUs take the given path (variable
// lengths always take the recurrence); tests and benchmarks compare the two.
enum class RnnCpuPath { automatic, recurrence, primitive };
class RnnCpuPathGuard {
 public:
  explicit RnnCpuPathGuard(RnnCpuPath path);
  ~RnnCpuPathGuard();
  RnnCpuPathGuard(const RnnCpuPathGuard&) = delete;
  RnnCpuPathGuard& operator=(const RnnCpuPathGuard&) = delete;

 private:
  RnnCpuPath prev_;
};

}  // namespace oar
