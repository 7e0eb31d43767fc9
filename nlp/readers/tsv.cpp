#include "nlp/readers/tsv.h"

#include <algorithm>
#include <charconv>
#include <fstream>

#include "engine/core/error.h"

namespace oar::nlp {

std::vector<std::string_view> split_tabs(std::string_view line) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    const size_t tab = line.find('\t', start);
    out.push_back(line.substr(start, tab == std::string_view::npos ? tab : tab - start));
    if (tab == std::string_view::npos) break;
    start = tab + 1;
  }
  return out;
}

TsvTextDataset::TsvTextDataset(const std::string& path,
                               std::shared_ptr<const BertTokenizer> tokenizer, TsvOptions o)
    : pad_id_(tokenizer->pad_id()) {
  std::ifstream in(path, std::ios::binary);
  OAR_CHECK(in, path, ": cannot read");
  std::string line;
  OAR_CHECK(std::getline(in, line), path, ": empty file (expected a header naming text_a, ",
            "text_b, label)");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  int col_a = -1, col_b = -1, col_label = -1;
  const auto header = split_tabs(line);
  for (size_t i = 0; i < header.size(); ++i) {
    if (header[i] == "text_a") col_a = static_cast<int>(i);
    if (header[i] == "text_b") col_b = static_cast<int>(i);
    if (header[i] == "label") col_label = static_cast<int>(i);
  }
  OAR_CHECK(col_a >= 0, path, ":1: the header '", line,
            "' has no text_a column (tab-separated names: text_a, optional text_b, label)");
  has_label_ = col_label >= 0;
  has_text_b_ = col_b >= 0;
  const int needed = std::max({col_a, col_b, col_label}) + 1;
  EncodeOptions eo;
  eo.max_length = o.max_seq_len;
  for (size_t lineno = 2; std::getline(in, line); ++lineno) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    const auto cols = split_tabs(line);
    OAR_CHECK(static_cast<int>(cols.size()) >= needed, path, ":", lineno, ": ", cols.size(),
              " columns, the header names ", header.size());
    Row r;
    r.text_a = std::string(cols[static_cast<size_t>(col_a)]);
    if (has_text_b_) r.text_b = std::string(cols[static_cast<size_t>(col_b)]);
    ModelInput mi;
    try {
      mi = has_text_b_ ? tokenizer->encode_pair(r.text_a, r.text_b, eo)
                       : tokenizer->encode_single(r.text_a, eo);
    } catch (const Error& e) {
      OAR_FAIL(path, ":", lineno, ": ", e.what());
    }
    r.ids = std::move(mi.input_ids);
    r.types = std::move(mi.token_type_ids);
    if (has_label_) {
      const std::string_view v = cols[static_cast<size_t>(col_label)];
      if (o.labels.empty()) {
        int64_t x = -1;
        auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
        OAR_CHECK(ec == std::errc() && p == v.data() + v.size() && x >= 0, path, ":", lineno,
                  ": label '", v,
                  "' is not a class index >= 0 (or set the reader's labels: "
                  "[names...])");
        r.label = x;
      } else {
        auto it = std::find(o.labels.begin(), o.labels.end(), v);
        if (it == o.labels.end()) {
          std::string known;
          for (const auto& l : o.labels) known += (known.empty() ? "" : ", ") + l;
          OAR_FAIL(path, ":", lineno, ": unknown label '", v, "' (labels: ", known, ")");
        }
        r.label = it - o.labels.begin();
      }
    }
    rows_.push_back(std::move(r));
  }
}

readers::Example TsvTextDataset::get(int64_t index, Generator&) const {
  const Row& r = rows_[static_cast<size_t>(index)];
  readers::Example ex;
  const int64_t len = static_cast<int64_t>(r.ids.size());
  ex.fields["input_ids"] = tensor(std::vector<int64_t>(r.ids.begin(), r.ids.end()), {len});
  ex.fields["token_type_ids"] = tensor(std::vector<int64_t>(r.types.begin(), r.types.end()), {len});
  if (has_label_) ex.fields["label"] = scalar_tensor(static_cast<double>(r.label), DType::i64);
  ex.meta = Json::object();
  ex.meta["text_a"] = r.text_a;
  if (has_text_b_) ex.meta["text_b"] = r.text_b;
  return ex;
}

Batch TsvTextDataset::collate(std::vector<readers::Example>& examples) const {
  const int64_t n = static_cast<int64_t>(examples.size());
  int64_t len = 0;
  for (const auto& e : examples) len = std::max(len, e.fields.at("input_ids").size(0));
  std::vector<int64_t> ids(static_cast<size_t>(n * len), pad_id_), types(ids.size(), 0),
      mask(ids.size(), 0), labels;
  for (int64_t i = 0; i < n; ++i) {
    const Tensor& x = examples[static_cast<size_t>(i)].fields.at("input_ids");
    const Tensor& t = examples[static_cast<size_t>(i)].fields.at("token_type_ids");
    const int64_t* xp = x.data<int64_t>();
    const int64_t* tp = t.data<int64_t>();
    for (int64_t j = 0; j < x.size(0); ++j) {
      const size_t k = static_cast<size_t>(i * len + j);
      ids[k] = xp[j];
      types[k] = tp[j];
      mask[k] = 1;
    }
    if (has_label_)
      labels.push_back(examples[static_cast<size_t>(i)].fields.at("label").item<int64_t>());
  }
  Batch b;
  b.size = n;
  b.tensors["input_ids"] = tensor(ids, {n, len});
  b.tensors["token_type_ids"] = tensor(types, {n, len});
  b.tensors["attention_mask"] = tensor(mask, {n, len});
  if (has_label_) b.tensors["label"] = tensor(labels, {n});
  for (auto& e : examples) b.meta.push_back(std::move(e.meta));
  return b;
}

}  // namespace oar::nlp
