#pragma once
// A linear-chain CRF over T tags with Paddle's parameter layout (linear_chain_crf /
// crf_decoding): transitions [T + 2, T], row 0 = start weights (score of the first tag),
// row 1 = stop weights (score of the last tag), rows 2.. = from-tag i (row i + 2) to tag j.
//
// Score of tags y over a sequence of length L with emissions e [L, T]:
//   start[y0] + sum_t e[t, y_t] + sum_{t>=1} trans[y_{t-1}, y_t] + stop[y_{L-1}]
// The negative log-likelihood is logZ - score (logZ by the forward algorithm), composed of engine
// ops so gradients reach emissions and transitions on any device. Viterbi decoding matches
// Paddle's crf_decoding exactly, ties included (the lowest tag index wins).
//
// Constraints (BIO / BIOES) mark transitions as disallowed: they score -inf in both the
// likelihood and decoding, whatever the learned weights are.
#include <string>
#include <vector>

#include "engine/nn/module.h"

namespace oar::nlp {

enum class TagScheme { bio, bioes };

// Which transitions a scheme allows, for tag names "B-PER" / "I-PER" / "O" or LAC's suffix form
// "PER-B" / "PER-I" (BIOES adds E- and S-). Throws oar::Error naming a tag that fits neither.
struct CrfConstraints {
  int64_t num_tags = 0;
  std::vector<uint8_t> start, stop;  // [T]: may the sequence start / end with this tag
  std::vector<uint8_t> allowed;      // [T * T]: from i (row) to j (column)
  // A bool [T + 2, T] mask in the transition layout (true = allowed).
  Tensor mask() const;
};
CrfConstraints crf_constraints(const std::vector<std::string>& tags, TagScheme scheme);

// transitions [T + 2, T] f32; emissions [N, L, T]; lengths integer [N], each in [1, L];
// tags integer [N, L] (values past a length are ignored). Constraint mask: bool [T + 2, T] or
// undefined. Returns f32 [N].
Tensor crf_log_partition(const Tensor& emissions, const Tensor& transitions, const Tensor& lengths,
                         const Tensor& mask = Tensor());
Tensor crf_path_score(const Tensor& emissions, const Tensor& transitions, const Tensor& tags,
                      const Tensor& lengths, const Tensor& mask = Tensor());
// log Z - score: the per-sequence negative log-likelihood (>= 0 up to rounding).
Tensor crf_nll(const Tensor& emissions, const Tensor& transitions, const Tensor& tags,
               const Tensor& lengths, const Tensor& mask = Tensor());
// The best path: i64 [N, L], -1 past each length. Not differentiable.
Tensor crf_viterbi(const Tensor& emissions, const Tensor& transitions, const Tensor& lengths,
                   const Tensor& mask = Tensor());

class LinearChainCrf : public nn::Module {
 public:
  // transitions ~ U(-0.1, 0.1) (LAC's init); gen null: the default generator.
  explicit LinearChainCrf(int64_t num_tags, Generator* gen = nullptr);
  void set_constraints(const CrfConstraints& c);
  // emissions [N, L, T], tags [N, L], lengths [N] -> mean NLL over the batch (a scalar).
  Tensor loss(const Tensor& emissions, const Tensor& tags, const Tensor& lengths) const;
  Tensor decode(const Tensor& emissions, const Tensor& lengths) const;
  // [N, L, T] emissions, full length -> decoded tags [N, L].
  Tensor forward(const Tensor& emissions) override;
  std::string name() const override { return "LinearChainCrf"; }
  void describe(std::ostream& os) const override;

  int64_t num_tags;
  Tensor transitions;      // [T + 2, T], state name "transitions"
  Tensor constraint_mask;  // bool [T + 2, T] or undefined
};

}  // namespace oar::nlp
