#include "nlp/heads/token_head.h"

#include "engine/core/error.h"
#include "engine/ops.h"
#include "nlp/layers/crf.h"

namespace oar::nlp {

Tensor SoftmaxTokenHead::loss(const Tensor& emissions, const Tensor& tags, const Tensor&) {
  const int64_t n = emissions.size(0), w = emissions.size(1), c = emissions.size(2);
  return cross_entropy(emissions.reshape({n * w, c}), tags.reshape({n * w}), -1);
}

Tensor SoftmaxTokenHead::decode(const Tensor& emissions, const Tensor& mask) {
  return masked_fill(argmax(emissions.detach(), -1), eq(mask, 0.0), -1);
}

namespace {

// Rows of a [N, W] mask with at least one word, and each row's length.
struct Rows {
  std::vector<int64_t> keep, lengths;
};

Rows nonempty_rows(const Tensor& mask) {
  const Tensor m = mask.to(Device::cpu()).to(DType::i64).contiguous();
  const int64_t n = m.size(0), w = m.size(1);
  const int64_t* p = m.data<int64_t>();
  Rows r;
  for (int64_t i = 0; i < n; ++i) {
    int64_t len = 0;
    for (int64_t j = 0; j < w; ++j) len += p[i * w + j] != 0;
    if (len > 0) {
      r.keep.push_back(i);
      r.lengths.push_back(len);
    }
  }
  return r;
}

}  // namespace

CrfTokenHead::CrfTokenHead(const std::vector<std::string>& tag_names, Generator* gen) {
  bool bioes = false;
  for (const auto& t : tag_names)
    if (t.rfind("E-", 0) == 0 || t.rfind("S-", 0) == 0) bioes = true;
  crf_ = register_module(
      "crf", std::make_shared<LinearChainCrf>(static_cast<int64_t>(tag_names.size()), gen));
  crf_->set_constraints(crf_constraints(tag_names, bioes ? TagScheme::bioes : TagScheme::bio));
}

Tensor CrfTokenHead::loss(const Tensor& emissions, const Tensor& tags, const Tensor& mask) {
  const Rows r = nonempty_rows(mask);
  if (r.keep.empty()) return mul(sum(emissions), 0.0);  // keeps the graph; nothing to score
  const int64_t k = static_cast<int64_t>(r.keep.size());
  const Tensor idx = tensor(r.keep, {k}).to(emissions.device());
  const Tensor t = masked_fill(index_select(tags, 0, idx), lt(index_select(tags, 0, idx), 0.0), 0);
  return crf_->loss(index_select(emissions, 0, idx), t,
                    tensor(r.lengths, {k}).to(emissions.device()));
}

Tensor CrfTokenHead::decode(const Tensor& emissions, const Tensor& mask) {
  const int64_t n = emissions.size(0), w = emissions.size(1);
  std::vector<int64_t> out(static_cast<size_t>(n * w), -1);
  const Rows r = nonempty_rows(mask);
  if (!r.keep.empty()) {
    const int64_t k = static_cast<int64_t>(r.keep.size());
    const Tensor idx = tensor(r.keep, {k}).to(emissions.device());
    const auto best = crf_->decode(index_select(emissions.detach(), 0, idx),
                                   tensor(r.lengths, {k}).to(emissions.device()))
                          .to(Device::cpu())
                          .to(DType::i64)
                          .contiguous()
                          .to_vector<int64_t>();
    for (int64_t i = 0; i < k; ++i)
      std::copy_n(best.begin() + i * w, w, out.begin() + r.keep[static_cast<size_t>(i)] * w);
  }
  return tensor(out, {n, w}).to(emissions.device());
}

const std::vector<std::string>& token_head_kinds() {
  static const std::vector<std::string> kinds{"softmax", "crf"};
  return kinds;
}

std::shared_ptr<TokenHead> make_token_head(const TokenHeadOptions& o) {
  if (o.kind == "softmax") return std::make_shared<SoftmaxTokenHead>();
  if (o.kind == "crf") {
    Generator gen(o.init_seed);
    return std::make_shared<CrfTokenHead>(o.tag_names, &gen);
  }
  std::string known;
  for (const auto& k : token_head_kinds()) known += (known.empty() ? "" : ", ") + k;
  OAR_FAIL("token classification: unknown head '", o.kind, "' (heads: ", known, ")");
}

}  // namespace oar::nlp
