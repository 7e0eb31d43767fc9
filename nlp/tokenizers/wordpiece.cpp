#include "nlp/tokenizers/wordpiece.h"

#include <algorithm>

#include "engine/core/error.h"

namespace oar::nlp {

WordPiece::WordPiece(const Vocab& vocab, WordPieceOptions options) : options_(std::move(options)) {
  unk_id_ = vocab.find(options_.unk_token);
  OAR_CHECK(unk_id_ >= 0, "wordpiece: unknown token '", options_.unk_token, "' is missing from '",
            vocab.source(), "'");
  // Two tries: whole tokens (a word's first piece) and tokens after the continuation prefix.
  std::vector<std::vector<std::pair<uint8_t, uint32_t>>> children(2);
  nodes_.assign(2, Node{0, 0, -1});
  const std::string& prefix = options_.continuing_subword_prefix;
  for (const auto& [token, id] : vocab.entries()) {
    if (token.empty()) continue;
    insert(0, token, id, children);
    if (!prefix.empty() && token.size() > prefix.size() && token.starts_with(prefix))
      insert(cont_root_, std::string_view(token).substr(prefix.size()), id, children);
  }
  // Flatten: children sorted by byte, contiguous per node.
  for (size_t n = 0; n < nodes_.size(); ++n) {
    auto& c = children[n];
    std::sort(c.begin(), c.end());
    nodes_[n].edge_begin = uint32_t(labels_.size());
    nodes_[n].edge_count = uint32_t(c.size());
    for (auto [b, t] : c) {
      labels_.push_back(b);
      targets_.push_back(t);
    }
  }
  root_dense_.assign(256, 0);
  cont_dense_.assign(256, 0);
  for (auto [b, t] : children[0]) root_dense_[b] = t;
  for (auto [b, t] : children[cont_root_]) cont_dense_[b] = t;
}

void WordPiece::insert(uint32_t root, std::string_view bytes, int32_t id,
                       std::vector<std::vector<std::pair<uint8_t, uint32_t>>>& children) {
  uint32_t node = root;
  for (char ch : bytes) {
    uint8_t b = uint8_t(ch);
    uint32_t next = 0;
    for (auto [lb, t] : children[node])
      if (lb == b) next = t;
    if (next == 0) {
      next = uint32_t(nodes_.size());
      nodes_.push_back(Node{0, 0, -1});
      children.emplace_back();
      children[node].emplace_back(b, next);
    }
    node = next;
  }
  nodes_[node].token = id;
}

inline uint32_t WordPiece::child(uint32_t node, uint8_t byte) const {
  const Node& n = nodes_[node];
  const uint8_t* l = labels_.data() + n.edge_begin;
  uint32_t count = n.edge_count;
  if (count <= 8) {
    for (uint32_t k = 0; k < count; ++k)
      if (l[k] == byte) return targets_[n.edge_begin + k];
    return 0;
  }
  const uint8_t* it = std::lower_bound(l, l + count, byte);
  return (it != l + count && *it == byte) ? targets_[n.edge_begin + uint32_t(it - l)] : 0;
}

inline uint32_t WordPiece::longest(uint32_t root, std::string_view word, uint32_t start,
                                   int32_t& id) const {
  const auto* p = reinterpret_cast<const uint8_t*>(word.data());
  const uint32_t n = uint32_t(word.size());
  uint32_t best = start;
  uint32_t node = (root == 0 ? root_dense_ : cont_dense_)[p[start]];
  uint32_t i = start + 1;
  while (node != 0) {
    int32_t t = nodes_[node].token;
    // A match must end on a character boundary (a token could be a partial UTF-8 sequence).
    if (t >= 0 && (i == n || (p[i] & 0xC0) != 0x80)) {
      best = i;
      id = t;
    }
    if (i == n) break;
    node = child(node, p[i]);
    ++i;
  }
  return best;
}

void WordPiece::tokenize(std::string_view word, std::vector<Piece>& out) const {
  const uint32_t n = uint32_t(word.size());
  size_t chars = 0;
  for (char ch : word) chars += (uint8_t(ch) & 0xC0) != 0x80;
  if (chars > options_.max_input_chars_per_word) {
    out.push_back({unk_id_, 0, n});
    return;
  }
  const size_t mark = out.size();
  uint32_t start = 0;
  while (start < n) {
    int32_t id = -1;
    uint32_t end = longest(
        start == 0 || options_.continuing_subword_prefix.empty() ? 0 : cont_root_, word, start, id);
    if (end == start) {
      out.resize(mark);
      out.push_back({unk_id_, 0, n});
      return;
    }
    out.push_back({id, start, end});
    start = end;
  }
}

}  // namespace oar::nlp
