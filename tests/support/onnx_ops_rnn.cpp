// ONNX LSTM and GRU on engine/ops/rnn.h. ONNX stacks gates as LSTM i,o,f,c and GRU z,r,h; the
// engine follows PyTorch (i,f,g,o and r,z,n), so the weight blocks are reordered here.
#include "engine/ops/join.h"
#include "engine/ops/rnn.h"
#include "tests/support/onnx_ops.h"

namespace oar::onnx {

namespace {
using Tensors = std::vector<Tensor>;

// Reorders the gate blocks of w (stacked along dim 0): out block i = w block order[i].
Tensor reorder_gates(const Tensor& w, const std::vector<int64_t>& order) {
  const int64_t h = w.size(0) / static_cast<int64_t>(order.size());
  Tensors parts;
  for (int64_t g : order) parts.push_back(w.narrow(0, g * h, h));
  return concat(parts, 0);
}

struct RnnInputs {
  std::vector<RnnWeights> weights;
  bool bidirectional = false, batch_first = false;
  Tensor lengths, h0;
};

RnnInputs rnn_inputs(const Node& n, const Tensors& in, int64_t gates,
                     const std::vector<int64_t>& order) {
  const std::string direction = n.get_string("direction", "forward");
  if (direction == "reverse") skip(n, "direction='reverse'");
  if (n.has("activations")) skip(n, "custom activations");
  if (n.has("clip")) skip(n, "clip");
  RnnInputs ri;
  ri.bidirectional = direction == "bidirectional";
  ri.batch_first = n.get_int("layout", 0) == 1;
  const Tensor& w = required(n, in, 1);   // [D, G*H, I]
  const Tensor& rw = required(n, in, 2);  // [D, G*H, H]
  const Tensor b = input_or_none(in, 3);  // [D, 2*G*H]
  const int64_t hidden = rw.size(2);
  OAR_CHECK(n.get_int("hidden_size", hidden) == hidden, "onnx: ", n.op_type, ": hidden_size ",
            n.get_int("hidden_size", hidden), " but R has ", hidden);
  for (int64_t d = 0; d < w.size(0); ++d) {
    RnnWeights rwts;
    rwts.w_ih = reorder_gates(w.select(0, d), order);
    rwts.w_hh = reorder_gates(rw.select(0, d), order);
    if (b.defined()) {
      rwts.b_ih = reorder_gates(b.select(0, d).narrow(0, 0, gates * hidden), order);
      rwts.b_hh = reorder_gates(b.select(0, d).narrow(0, gates * hidden, gates * hidden), order);
    } else {
      rwts.b_ih = zeros({gates * hidden}, w.dtype());
      rwts.b_hh = zeros({gates * hidden}, w.dtype());
    }
    ri.weights.push_back(rwts);
  }
  if (Tensor l = input_or_none(in, 4); l.defined()) ri.lengths = l.to(DType::i64);
  ri.h0 = input_or_none(in, 5);
  if (ri.batch_first && ri.h0.defined()) ri.h0 = ri.h0.permute({1, 0, 2}).contiguous();
  return ri;
}

// [T, N, D*H] (or [N, T, D*H]) -> ONNX Y [T, D, N, H] (or [N, T, D, H]); states [D, N, H]
// (or [N, D, H]).
Tensors onnx_outputs(const RnnOutput& o, const RnnInputs& ri, const Tensor& c) {
  const int64_t d = ri.bidirectional ? 2 : 1;
  const Tensor& y = o.output;
  const int64_t h = y.size(2) / d;
  Tensor yo = y.reshape({y.size(0), y.size(1), d, h});
  if (!ri.batch_first) yo = yo.permute({0, 2, 1, 3});
  auto state = [&](const Tensor& s) {
    return s.defined() && ri.batch_first ? s.permute({1, 0, 2}) : s;
  };
  return {yo, state(o.h_n), state(c)};
}
}  // namespace

void register_rnn_onnx_ops(OpRegistry& r) {
  r.add("LSTM", [](const Node& n, const Tensors& in, int64_t) -> Tensors {
    if (input_or_none(in, 7).defined()) skip(n, "peephole weights P");
    if (n.get_int("input_forget", 0) != 0) skip(n, "input_forget=1");
    const RnnInputs ri = rnn_inputs(n, in, 4, {0, 2, 3, 1});  // i,o,f,c -> i,f,c,o
    Tensor c0 = input_or_none(in, 6);
    if (ri.batch_first && c0.defined()) c0 = c0.permute({1, 0, 2}).contiguous();
    const RnnOutput o = lstm(required(n, in, 0), ri.weights, 1, ri.bidirectional, ri.batch_first,
                             ri.lengths, ri.h0, c0);
    return onnx_outputs(o, ri, o.c_n);
  });
  r.add("GRU", [](const Node& n, const Tensors& in, int64_t) -> Tensors {
    if (n.get_int("linear_before_reset", 0) == 0)
      skip(n,
           "linear_before_reset=0 (the engine's GRU applies the reset gate after the linear map)");
    const RnnInputs ri = rnn_inputs(n, in, 3, {1, 0, 2});  // z,r,h -> r,z,n
    const RnnOutput o =
        gru(required(n, in, 0), ri.weights, 1, ri.bidirectional, ri.batch_first, ri.lengths, ri.h0);
    Tensors out = onnx_outputs(o, ri, Tensor());
    out.pop_back();
    return out;
  });
}

}  // namespace oar::onnx
