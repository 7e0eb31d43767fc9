#include "engine/nn/rnn.h"

#include <cmath>
#include <ostream>

#include "engine/core/error.h"
#include "engine/nn/init.h"

namespace oar::nn {

Recurrent::Recurrent(bool lstm, int64_t in, int64_t hidden, const RnnOptions& opt, Generator* gen)
    : input_size(in), hidden_size(hidden), options(opt), lstm_(lstm) {
  OAR_CHECK(in > 0 && hidden > 0 && opt.num_layers > 0, name(), ": input_size=", in,
            ", hidden_size=", hidden, ", num_layers=", opt.num_layers, " must be positive");
  OAR_CHECK(opt.dropout >= 0 && opt.dropout <= 1, name(), ": dropout must be in [0, 1]");
  Generator& g = gen ? *gen : default_generator();
  const int64_t gates = (lstm ? 4 : 3) * hidden;
  const int64_t dirs = opt.bidirectional ? 2 : 1;
  const double bound = 1.0 / std::sqrt(static_cast<double>(hidden));
  for (int64_t l = 0; l < opt.num_layers; ++l) {
    const int64_t layer_in = l == 0 ? in : hidden * dirs;
    for (int64_t d = 0; d < dirs; ++d) {
      const std::string sfx = "_l" + std::to_string(l) + (d ? "_reverse" : "");
      RnnWeights w;
      w.w_ih = register_parameter("weight_ih" + sfx, empty({gates, layer_in}));
      w.w_hh = register_parameter("weight_hh" + sfx, empty({gates, hidden}));
      if (opt.bias) {
        w.b_ih = register_parameter("bias_ih" + sfx, empty({gates}));
        w.b_hh = register_parameter("bias_hh" + sfx, empty({gates}));
      }
      weights.push_back(w);
    }
  }
  // PyTorch initialises every parameter in registration order.
  for (auto& [n, p] : named_parameters()) init::uniform_(p, g, -bound, bound);
}

RnnOutput Recurrent::run(const Tensor& x, const Tensor& lengths, const Tensor& h0,
                         const Tensor& c0) {
  OAR_CHECK(x.dim() == 3 && x.size(2) == input_size, name(), "(", input_size, ", ", hidden_size,
            "): input must be [", options.batch_first ? "N, T, " : "T, N, ", input_size, "], got ",
            shape_str(x.shape()));
  if (lstm_)
    return lstm(x, weights, options.num_layers, options.bidirectional, options.batch_first, lengths,
                h0, c0, options.dropout, is_training(), generator());
  OAR_CHECK(!c0.defined(), "GRU: takes no c0");
  return gru(x, weights, options.num_layers, options.bidirectional, options.batch_first, lengths,
             h0, options.dropout, is_training(), generator());
}

void Recurrent::describe(std::ostream& os) const {
  os << name() << "(" << input_size << ", " << hidden_size << ", num_layers=" << options.num_layers
     << ", bidirectional=" << options.bidirectional << ", batch_first=" << options.batch_first
     << ")";
}

}  // namespace oar::nn
