#include "nlp/layers/crf.h"

#include <cmath>
#include <limits>
#include <ostream>

#include "engine/core/error.h"
#include "engine/ops.h"

namespace oar::nlp {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

struct TagParts {
  char prefix = 'O';  // B I E S O
  std::string type;
};

bool parse_tag(const std::string& tag, TagParts& out) {
  if (tag == "O") {
    out = {'O', ""};
    return true;
  }
  if (tag.size() >= 3 && tag[1] == '-') {  // B-PER
    out = {tag[0], tag.substr(2)};
    return true;
  }
  if (tag.size() >= 3 && tag[tag.size() - 2] == '-') {  // PER-B (LAC)
    out = {tag.back(), tag.substr(0, tag.size() - 2)};
    return true;
  }
  return false;
}

// Checks shapes and returns lengths as CPU int64 values, each in [1, L].
std::vector<int64_t> check_inputs(const Tensor& emissions, const Tensor& transitions,
                                  const Tensor& lengths, const Tensor& mask, const char* op) {
  OAR_CHECK(emissions.defined() && emissions.dim() == 3, op, ": emissions must be [N, L, T], got ",
            emissions.defined() ? shape_str(emissions.shape()) : "undefined");
  const int64_t n = emissions.size(0), l = emissions.size(1), t = emissions.size(2);
  OAR_CHECK(n >= 1 && l >= 1 && t >= 1, op, ": empty emissions ", shape_str(emissions.shape()));
  OAR_CHECK(transitions.defined() && transitions.shape() == (Shape{t + 2, t}), op,
            ": transitions must be [T + 2, T] = ", shape_str(Shape{t + 2, t}), " for ", t,
            " tags, got ", transitions.defined() ? shape_str(transitions.shape()) : "undefined");
  if (mask.defined())
    OAR_CHECK(mask.shape() == transitions.shape() && mask.dtype() == DType::boolean, op,
              ": the constraint mask must be bool ", shape_str(transitions.shape()));
  OAR_CHECK(lengths.defined() && lengths.shape() == (Shape{n}), op, ": lengths must be [", n,
            "], got ", lengths.defined() ? shape_str(lengths.shape()) : "undefined");
  OAR_CHECK(lengths.dtype() == DType::i64 || lengths.dtype() == DType::i32, op,
            ": lengths must be integers");
  const auto lens = lengths.to(Device::cpu()).to(DType::i64).to_vector<int64_t>();
  for (int64_t k = 0; k < n; ++k)
    OAR_CHECK(lens[k] >= 1 && lens[k] <= l, op, ": length ", lens[k], " of sequence ", k,
              " is outside [1, ", l, "]");
  return lens;
}

Tensor constrained(const Tensor& transitions, const Tensor& mask) {
  if (!mask.defined()) return transitions;
  return masked_fill(transitions, logical_not(mask.to(transitions.device())), kNegInf);
}

// log(sum(exp(x), dim)) with the maximum taken out (detached: the result does not depend on
// it); an all -inf slice gives -inf.
Tensor logsumexp(const Tensor& x, int64_t dim) {
  Tensor m = amax(x, {dim}, true).detach();
  m = masked_fill(m, eq(m, kNegInf), 0.0);
  return add(m.squeeze(dim), log(sum(exp(sub(x, m)), {dim})));
}

}  // namespace

Tensor CrfConstraints::mask() const {
  const int64_t t = num_tags;
  Tensor m = zeros({t + 2, t}, DType::boolean);
  bool* p = m.data<bool>();
  for (int64_t j = 0; j < t; ++j) {
    p[j] = start[static_cast<size_t>(j)] != 0;
    p[t + j] = stop[static_cast<size_t>(j)] != 0;
  }
  for (int64_t k = 0; k < t * t; ++k) p[2 * t + k] = allowed[static_cast<size_t>(k)] != 0;
  return m;
}

CrfConstraints crf_constraints(const std::vector<std::string>& tags, TagScheme scheme) {
  const auto t = static_cast<int64_t>(tags.size());
  OAR_CHECK(t >= 1, "crf_constraints: no tags");
  std::vector<TagParts> parts(tags.size());
  const std::string allowed_prefixes = scheme == TagScheme::bio ? "BIO" : "BIESO";
  for (size_t k = 0; k < tags.size(); ++k)
    if (!parse_tag(tags[k], parts[k]) ||
        allowed_prefixes.find(parts[k].prefix) == std::string::npos)
      OAR_FAIL("crf_constraints: tag '", tags[k], "' (index ", k, ") is not a ",
               scheme == TagScheme::bio ? "BIO" : "BIOES", " tag (O, B-X / X-B, I-X",
               scheme == TagScheme::bioes ? ", E-X, S-X" : "", ")");
  CrfConstraints c;
  c.num_tags = t;
  c.start.assign(tags.size(), 0);
  c.stop.assign(tags.size(), 0);
  c.allowed.assign(tags.size() * tags.size(), 0);
  for (size_t j = 0; j < tags.size(); ++j) {
    const char pj = parts[j].prefix;
    if (scheme == TagScheme::bio) {
      c.start[j] = pj != 'I';
      c.stop[j] = 1;
    } else {
      c.start[j] = pj == 'B' || pj == 'S' || pj == 'O';
      c.stop[j] = pj == 'E' || pj == 'S' || pj == 'O';
    }
    for (size_t i = 0; i < tags.size(); ++i) {
      const char pi = parts[i].prefix;
      const bool same = parts[i].type == parts[j].type;
      bool ok;
      if (scheme == TagScheme::bio) {
        ok = pj != 'I' || ((pi == 'B' || pi == 'I') && same);
      } else if (pi == 'B' || pi == 'I') {  // inside a chunk: continue or end it
        ok = (pj == 'I' || pj == 'E') && same;
      } else {  // outside (O, after E or S): start a new chunk or stay out
        ok = pj == 'B' || pj == 'S' || pj == 'O';
      }
      c.allowed[i * tags.size() + j] = ok;
    }
  }
  return c;
}

Tensor crf_log_partition(const Tensor& emissions, const Tensor& transitions, const Tensor& lengths,
                         const Tensor& mask) {
  check_inputs(emissions, transitions, lengths, mask, "crf_log_partition");
  const int64_t l = emissions.size(1), t = emissions.size(2);
  const Tensor e = emissions.dtype() == DType::f32 ? emissions : emissions.to(DType::f32);
  const Tensor w = constrained(transitions, mask);
  const Tensor trans = w.slice(0, 2, t + 2).unsqueeze(0);                  // [1, from, to]
  const Tensor lens = lengths.to(e.device()).to(DType::i64).unsqueeze(1);  // [N, 1]
  Tensor alpha = add(e.select(1, 0), w.select(0, 0));                      // [N, T]
  for (int64_t s = 1; s < l; ++s) {
    const Tensor next = add(logsumexp(add(alpha.unsqueeze(2), trans), 1), e.select(1, s));
    alpha = where(gt(lens, static_cast<double>(s)), next, alpha);
  }
  return logsumexp(add(alpha, w.select(0, 1)), 1);
}

Tensor crf_path_score(const Tensor& emissions, const Tensor& transitions, const Tensor& tags,
                      const Tensor& lengths, const Tensor& mask) {
  const auto lens_v = check_inputs(emissions, transitions, lengths, mask, "crf_path_score");
  const int64_t n = emissions.size(0), l = emissions.size(1), t = emissions.size(2);
  OAR_CHECK(tags.defined() && tags.shape() == (Shape{n, l}), "crf_path_score: tags must be [", n,
            ", ", l, "], got ", tags.defined() ? shape_str(tags.shape()) : "undefined");
  OAR_CHECK(tags.dtype() == DType::i64 || tags.dtype() == DType::i32,
            "crf_path_score: tags must be integers");
  const Device dev = emissions.device();
  // Tags past a length are replaced by 0 so that every gather stays in range.
  std::vector<int64_t> y = tags.to(Device::cpu()).to(DType::i64).contiguous().to_vector<int64_t>();
  std::vector<uint8_t> valid(static_cast<size_t>(n * l), 0);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t s = 0; s < l; ++s) {
      const auto k = static_cast<size_t>(b * l + s);
      if (s < lens_v[static_cast<size_t>(b)]) {
        OAR_CHECK(y[k] >= 0 && y[k] < t, "crf_path_score: tag ", y[k], " at [", b, ", ", s,
                  "] is outside [0, ", t, ")");
        valid[k] = 1;
      } else {
        y[k] = 0;
      }
    }
  const Tensor yt = tensor(y, {n, l}).to(dev);
  Tensor valid_t = zeros({n, l}, DType::boolean);
  for (size_t k = 0; k < valid.size(); ++k) valid_t.data<bool>()[k] = valid[k] != 0;
  valid_t = valid_t.to(dev);

  const Tensor e = emissions.dtype() == DType::f32 ? emissions : emissions.to(DType::f32);
  const Tensor w = constrained(transitions, mask);
  const Tensor emit = gather(e, 2, yt.unsqueeze(2)).squeeze(2);  // [N, L]
  Tensor score = sum(where(valid_t, emit, zeros_like(emit)), {1});
  score = add(score, take_along(w.select(0, 0), 0, yt.select(1, 0)));
  const Tensor last =
      gather(yt, 1, sub(lengths.to(dev).to(DType::i64), 1.0).unsqueeze(1)).squeeze(1);
  score = add(score, take_along(w.select(0, 1), 0, last));
  if (l > 1) {
    const Tensor pair = add(mul(yt.slice(1, 0, l - 1), static_cast<double>(t)), yt.slice(1, 1, l));
    const Tensor tr = take_along(w.slice(0, 2, t + 2).reshape({t * t}), 0, pair);  // [N, L-1]
    score = add(score, sum(where(valid_t.slice(1, 1, l), tr, zeros_like(tr)), {1}));
  }
  return score;
}

Tensor crf_nll(const Tensor& emissions, const Tensor& transitions, const Tensor& tags,
               const Tensor& lengths, const Tensor& mask) {
  return sub(crf_log_partition(emissions, transitions, lengths, mask),
             crf_path_score(emissions, transitions, tags, lengths, mask));
}

Tensor crf_viterbi(const Tensor& emissions, const Tensor& transitions, const Tensor& lengths,
                   const Tensor& mask) {
  const auto lens = check_inputs(emissions, transitions, lengths, mask, "crf_viterbi");
  const int64_t n = emissions.size(0), l = emissions.size(1), t = emissions.size(2);
  const Tensor e = emissions.detach().to(Device::cpu()).to(DType::f32).contiguous();
  const Tensor w =
      constrained(transitions.detach(), mask).to(Device::cpu()).to(DType::f32).contiguous();
  const float* x = e.data<float>();
  const float* wp = w.data<float>();
  Tensor out = full({n, l}, -1.0, DType::i64);
  int64_t* path = out.data<int64_t>();
  std::vector<float> alpha(static_cast<size_t>(l * t));
  std::vector<int64_t> track(static_cast<size_t>(l * t));
  // Paddle's crf_decoding (Decode in crf_decoding_op.h), in float, strict '>' for ties.
  for (int64_t b = 0; b < n; ++b) {
    const float* xb = x + b * l * t;
    const int64_t len = lens[static_cast<size_t>(b)];
    for (int64_t i = 0; i < t; ++i) alpha[static_cast<size_t>(i)] = wp[i] + xb[i];
    for (int64_t k = 1; k < len; ++k)
      for (int64_t i = 0; i < t; ++i) {
        float best = -std::numeric_limits<float>::infinity();
        int64_t best_j = 0;
        for (int64_t j = 0; j < t; ++j) {
          const float s = alpha[static_cast<size_t>((k - 1) * t + j)] + wp[(j + 2) * t + i];
          if (s > best) {
            best = s;
            best_j = j;
          }
        }
        alpha[static_cast<size_t>(k * t + i)] = best + xb[k * t + i];
        track[static_cast<size_t>(k * t + i)] = best_j;
      }
    float best = -std::numeric_limits<float>::infinity();
    int64_t best_i = 0;
    for (int64_t i = 0; i < t; ++i) {
      const float s = alpha[static_cast<size_t>((len - 1) * t + i)] + wp[t + i];
      if (s > best) {
        best = s;
        best_i = i;
      }
    }
    int64_t* pb = path + b * l;
    pb[len - 1] = best_i;
    for (int64_t k = len - 1; k >= 1; --k)
      pb[k - 1] = best_i = track[static_cast<size_t>(k * t + best_i)];
  }
  return out;
}

LinearChainCrf::LinearChainCrf(int64_t num_tags_, Generator* gen) : num_tags(num_tags_) {
  OAR_CHECK(num_tags >= 1, "LinearChainCrf: num_tags must be >= 1, got ", num_tags);
  transitions = register_parameter("transitions", rand({num_tags + 2, num_tags}, gen, -0.1, 0.1));
}

void LinearChainCrf::set_constraints(const CrfConstraints& c) {
  OAR_CHECK(c.num_tags == num_tags, "LinearChainCrf: constraints for ", c.num_tags,
            " tags on a CRF over ", num_tags);
  constraint_mask = c.mask();
}

Tensor LinearChainCrf::loss(const Tensor& emissions, const Tensor& tags,
                            const Tensor& lengths) const {
  return mean(crf_nll(emissions, transitions, tags, lengths, constraint_mask));
}

Tensor LinearChainCrf::decode(const Tensor& emissions, const Tensor& lengths) const {
  return crf_viterbi(emissions, transitions, lengths, constraint_mask);
}

Tensor LinearChainCrf::forward(const Tensor& emissions) {
  OAR_CHECK(emissions.dim() == 3, "LinearChainCrf: emissions must be [N, L, T], got ",
            shape_str(emissions.shape()));
  return decode(emissions,
                full({emissions.size(0)}, static_cast<double>(emissions.size(1)), DType::i64));
}

void LinearChainCrf::describe(std::ostream& os) const {
  os << "tags=" << num_tags << (constraint_mask.defined() ? ", constrained" : "");
}

}  // namespace oar::nlp
