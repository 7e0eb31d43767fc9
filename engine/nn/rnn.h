#pragma once
// LSTM and GRU layers with PyTorch's parameter names (weight_ih_l0, weight_hh_l0, bias_ih_l0,
// bias_hh_l0, and *_reverse for the backward direction), gate order and init
// (all U(-1/sqrt(hidden), 1/sqrt(hidden))), running oar::lstm / oar::gru.
#include <vector>

#include "engine/nn/module.h"
#include "engine/ops/rnn.h"

namespace oar::nn {

struct RnnOptions {
  int64_t num_layers = 1;
  bool bias = true;
  bool batch_first = false;
  double dropout = 0.0;  // between layers, in training
  bool bidirectional = false;
};

class Recurrent : public Module {
 public:
  // x [T, N, in] ([N, T, in] when batch_first). lengths: optional i64 [N] (packed semantics).
  RnnOutput run(const Tensor& x, const Tensor& lengths = Tensor(), const Tensor& h0 = Tensor(),
                const Tensor& c0 = Tensor());
  // The output sequence only.
  Tensor forward(const Tensor& x) override { return run(x).output; }
  std::string name() const override { return lstm_ ? "LSTM" : "GRU"; }
  void describe(std::ostream& os) const override;

  int64_t input_size, hidden_size;
  RnnOptions options;
  std::vector<RnnWeights> weights;  // layer-major: l0 fwd, l0 bwd, l1 fwd, ...

 protected:
  Recurrent(bool lstm, int64_t input_size, int64_t hidden_size, const RnnOptions& opt,
            Generator* gen);

 private:
  bool lstm_;
};

class LSTM : public Recurrent {
 public:
  LSTM(int64_t input_size, int64_t hidden_size, const RnnOptions& opt = {},
       Generator* gen = nullptr)
      : Recurrent(true, input_size, hidden_size, opt, gen) {}
};

class GRU : public Recurrent {
 public:
  GRU(int64_t input_size, int64_t hidden_size, const RnnOptions& opt = {}, Generator* gen = nullptr)
      : Recurrent(false, input_size, hidden_size, opt, gen) {}
};

}  // namespace oar::nn
