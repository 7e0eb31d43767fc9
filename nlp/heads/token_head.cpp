#include "nlp/heads/token_head.h"

#include "engine/core/error.h"
#include "engine/ops.h"

namespace oar::nlp {

Tensor SoftmaxTokenHead::loss(const Tensor& emissions, const Tensor& tags, const Tensor&) {
  const int64_t n = emissions.size(0), w = emissions.size(1), c = emissions.size(2);
  return cross_entropy(emissions.reshape({n * w, c}), tags.reshape({n * w}), -1);
}

Tensor SoftmaxTokenHead::decode(const Tensor& emissions, const Tensor& mask) {
  return masked_fill(argmax(emissions.detach(), -1), eq(mask, 0.0), -1);
}

const std::vector<std::string>& token_head_kinds() {
  static const std::vector<std::string> kinds{"softmax"};
  return kinds;
}

std::shared_ptr<TokenHead> make_token_head(const TokenHeadOptions& o) {
  if (o.kind == "softmax") return std::make_shared<SoftmaxTokenHead>();
  std::string known;
  for (const auto& k : token_head_kinds()) known += (known.empty() ? "" : ", ") + k;
  OAR_FAIL("token classification: unknown head '", o.kind, "' (heads: ", known, ")");
}

}  // namespace oar::nlp
