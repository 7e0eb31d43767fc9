#include "nlp/readers/query_groups.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <map>

#include "engine/core/error.h"
#include "nlp/readers/tsv.h"

namespace oar::nlp {

QueryGroupDataset::QueryGroupDataset(const std::string& path,
                                     std::shared_ptr<const BertTokenizer> tokenizer,
                                     QueryGroupOptions o)
    : tok_(std::move(tokenizer)) {
  std::ifstream in(path, std::ios::binary);
  OAR_CHECK(in, path, ": cannot read");
  std::string line;
  OAR_CHECK(std::getline(in, line), path,
            ": empty file (expected a header: qid, text_a, text_b, label or text_a, text_pos, "
            "text_neg)");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  std::map<std::string, int> col;
  const auto header = split_tabs(line);
  for (size_t i = 0; i < header.size(); ++i) col[std::string(header[i])] = static_cast<int>(i);
  auto at = [&](const char* name) { return col.count(name) ? col[name] : -1; };
  const bool triplets = at("text_pos") >= 0 && at("text_neg") >= 0;
  const int ca = at("text_a"), cb = at("text_b"), cl = at("label"), cq = at("qid"),
            cp = at("text_pos"), cn = at("text_neg");
  OAR_CHECK(ca >= 0 && (triplets || cb >= 0), path, ":1: the header '", line,
            "' names neither text_a/text_b (with label and qid) nor text_a/text_pos/text_neg");
  const int needed = std::max({ca, cb, cl, cq, cp, cn}) + 1;
  EncodeOptions eo;
  eo.max_length = o.max_seq_len;
  std::map<std::string, size_t> by_key;
  auto encode = [&](Candidate& c, std::string_view a, const std::string& where) {
    try {
      ModelInput mi = tok_->encode_pair(a, c.text_b, eo);
      c.ids = std::move(mi.input_ids);
      c.types = std::move(mi.token_type_ids);
    } catch (const Error& e) {
      OAR_FAIL(where, ": ", e.what());
    }
  };
  for (size_t lineno = 2; std::getline(in, line); ++lineno) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    const std::string where = path + ":" + std::to_string(lineno);
    const auto cols = split_tabs(line);
    OAR_CHECK(static_cast<int>(cols.size()) >= needed, where, ": ", cols.size(),
              " columns, the header names ", header.size());
    const std::string text_a(cols[static_cast<size_t>(ca)]);
    if (triplets) {
      Group g;
      g.qid = std::to_string(groups_.size());
      g.text_a = text_a;
      for (int k : {cp, cn}) {
        Candidate c;
        c.text_b = std::string(cols[static_cast<size_t>(k)]);
        c.label = k == cp ? 1 : 0;
        encode(c, text_a, where);
        g.candidates.push_back(std::move(c));
      }
      groups_.push_back(std::move(g));
      continue;
    }
    Candidate c;
    c.text_b = std::string(cols[static_cast<size_t>(cb)]);
    if (cl >= 0) {  // absent for prediction
      const std::string_view v = cols[static_cast<size_t>(cl)];
      auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), c.label);
      OAR_CHECK(ec == std::errc() && p == v.data() + v.size() && c.label >= 0, where, ": label '",
                v, "' is not an integer >= 0 (1: relevant, 0: not)");
    }
    encode(c, text_a, where);
    const std::string key = cq >= 0 ? std::string(cols[static_cast<size_t>(cq)]) : text_a;
    auto [it, fresh] = by_key.emplace(key, groups_.size());
    if (fresh) {
      Group g;
      g.qid = key;
      g.text_a = text_a;
      groups_.push_back(std::move(g));
    }
    groups_[it->second].candidates.push_back(std::move(c));
  }
  OAR_CHECK(!groups_.empty(), path, ": no rows after the header");
}

int64_t QueryGroupDataset::length(int64_t index) const {
  int64_t len = 0;
  for (const Candidate& c : groups_[static_cast<size_t>(index)].candidates)
    len = std::max(len, static_cast<int64_t>(c.ids.size()));
  return len;
}

readers::Example QueryGroupDataset::get(int64_t index, Generator&) const {
  const Group& g = groups_[static_cast<size_t>(index)];
  readers::Example ex;
  ex.fields["index"] = scalar_tensor(static_cast<double>(index), DType::i64);
  ex.meta = Json::object();
  ex.meta["qid"] = g.qid;
  ex.meta["text_a"] = g.text_a;
  Json cands = Json::array();
  for (const auto& c : g.candidates) cands.push_back(c.text_b);
  ex.meta["candidates"] = cands;
  return ex;
}

Batch QueryGroupDataset::collate(std::vector<readers::Example>& examples) const {
  const int64_t n = static_cast<int64_t>(examples.size());
  std::vector<const Candidate*> cands;
  std::vector<int64_t> owner;
  int64_t len = 0;
  for (int64_t i = 0; i < n; ++i) {
    const Group& g = groups_[static_cast<size_t>(
        examples[static_cast<size_t>(i)].fields.at("index").item<int64_t>())];
    for (const auto& c : g.candidates) {
      cands.push_back(&c);
      owner.push_back(i);
      len = std::max(len, static_cast<int64_t>(c.ids.size()));
    }
  }
  const int64_t m = static_cast<int64_t>(cands.size());
  std::vector<int64_t> ids(static_cast<size_t>(m * len), tok_->pad_id()), types(ids.size(), 0),
      mask(ids.size(), 0), labels;
  for (int64_t k = 0; k < m; ++k) {
    const Candidate& c = *cands[static_cast<size_t>(k)];
    for (size_t j = 0; j < c.ids.size(); ++j) {
      ids[static_cast<size_t>(k * len) + j] = c.ids[j];
      types[static_cast<size_t>(k * len) + j] = c.types[j];
      mask[static_cast<size_t>(k * len) + j] = 1;
    }
    labels.push_back(c.label);
  }
  Batch b;
  b.size = n;
  b.tensors["input_ids"] = tensor(ids, {m, len});
  b.tensors["token_type_ids"] = tensor(types, {m, len});
  b.tensors["attention_mask"] = tensor(mask, {m, len});
  b.tensors["label"] = tensor(labels, {m});
  b.tensors["group"] = tensor(owner, {m});
  for (auto& e : examples) b.meta.push_back(std::move(e.meta));
  return b;
}

}  // namespace oar::nlp
