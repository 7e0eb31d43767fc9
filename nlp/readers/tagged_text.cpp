#include "nlp/readers/tagged_text.h"

#include <algorithm>
#include <fstream>

#include "engine/core/error.h"

namespace oar::nlp {

namespace {

std::vector<std::string> split_on(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t at = s.find(sep, start);
    out.emplace_back(s.substr(start, at == std::string_view::npos ? at : at - start));
    if (at == std::string_view::npos) break;
    start = at + 1;
  }
  return out;
}

std::vector<std::string> split_columns(std::string_view s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == ' ' || c == '\t') {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

int64_t code_points(std::string_view s) {
  int64_t n = 0;
  for (char c : s)
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  return n;
}

}  // namespace

TaggedTextDataset::TaggedTextDataset(const std::string& path,
                                     std::shared_ptr<const BertTokenizer> tokenizer,
                                     TaggedTextOptions o)
    : tok_(std::move(tokenizer)), o_(std::move(o)) {
  OAR_CHECK(o_.max_seq_len >= 3, path, ": max_seq_len ", o_.max_seq_len, " leaves no room");
  std::ifstream in(path, std::ios::binary);
  OAR_CHECK(in, path, ": cannot read");
  std::string line;
  int tagged = -1;  // unknown until the first sentence
  auto check_tagged = [&](bool t, const std::string& where) {
    if (tagged < 0) tagged = t ? 1 : 0;
    OAR_CHECK((tagged == 1) == t, where, ": ", t ? "tags" : "no tags",
              " where earlier sentences have ", t ? "none" : "tags");
  };
  if (o_.format == TagFormat::msra) {
    for (size_t lineno = 1; std::getline(in, line); ++lineno) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      if (lineno == 1 && line == "text_a\tlabel") continue;  // ERNIE's header
      const std::string where = path + ":" + std::to_string(lineno);
      const auto cols = split_on(line, '\t');
      OAR_CHECK(cols.size() <= 2, where, ": ", cols.size(),
                " tab-separated columns (expected characters, then tags; each joined by \\x02)");
      std::vector<std::string> words = split_on(cols[0], '\x02');
      std::vector<std::string> tags;
      if (cols.size() == 2) tags = split_on(cols[1], '\x02');
      check_tagged(cols.size() == 2, where);
      add(std::move(words), std::move(tags), where);
    }
  } else {
    std::vector<std::string> words, tags;
    size_t first_line = 0;
    auto flush = [&](size_t lineno) {
      if (words.empty()) return;
      const std::string where = path + ":" + std::to_string(first_line);
      check_tagged(!tags.empty(), where);
      add(std::move(words), std::move(tags), where);
      words.clear();
      tags.clear();
      (void)lineno;
    };
    size_t lineno = 1;
    for (; std::getline(in, line); ++lineno) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      const auto cols = split_columns(line);
      if (cols.empty() || cols[0] == "-DOCSTART-") {
        flush(lineno);
        continue;
      }
      if (words.empty()) first_line = lineno;
      const bool has_tag = cols.size() >= 2;
      OAR_CHECK(words.empty() || has_tag == !tags.empty(), path, ":", lineno, ": a token line ",
                has_tag ? "with" : "without",
                " a tag column in a sentence whose other lines differ");
      words.push_back(cols.front());
      if (has_tag) tags.push_back(cols.back());
    }
    flush(lineno);
  }
  has_tags_ = tagged == 1;
  OAR_CHECK(!sentences_.empty(), path, ": no sentences");
}

void TaggedTextDataset::add(std::vector<std::string> words, std::vector<std::string> tags,
                            const std::string& where) {
  OAR_CHECK(tags.empty() || tags.size() == words.size(), where, ": ", words.size(), " words but ",
            tags.size(), " tags");
  Sentence s;
  for (const auto& t : tags) {
    auto it = std::find(o_.labels.begin(), o_.labels.end(), t);
    if (it == o_.labels.end()) {
      std::string known;
      for (const auto& l : o_.labels) known += (known.empty() ? "" : ", ") + l;
      OAR_FAIL(where, ": unknown tag '", t, "' (labels: ", known, ")");
    }
    s.tags.push_back(it - o_.labels.begin());
  }
  const std::string sep = o_.format == TagFormat::conll ? " " : "";
  int64_t cp = 0;
  for (size_t i = 0; i < words.size(); ++i) {
    if (i > 0) {
      s.text += sep;
      cp += code_points(sep);
    }
    const int64_t n = code_points(words[i]);
    s.spans.emplace_back(cp, cp + n);
    s.text += words[i];
    cp += n;
  }
  // [CLS] word tokens [SEP]; a word is covered only when all its sub-tokens fit.
  s.ids.push_back(tok_->cls_id());
  const size_t budget = o_.max_seq_len - 2;
  bool full = false;
  Encoding enc;
  BertTokenizer::Scratch scratch;
  for (const auto& w : words) {
    enc.ids.clear();
    enc.offsets.clear();
    tok_->encode(w, enc, scratch);
    if (full || enc.ids.empty() || s.ids.size() - 1 + enc.ids.size() > budget) {
      if (!enc.ids.empty()) full = true;
      s.first_token.push_back(-1);
      continue;
    }
    s.first_token.push_back(static_cast<int64_t>(s.ids.size()));
    s.ids.insert(s.ids.end(), enc.ids.begin(), enc.ids.end());
  }
  s.ids.push_back(tok_->sep_id());
  s.words = std::move(words);
  sentences_.push_back(std::move(s));
}

readers::Example TaggedTextDataset::get(int64_t index, Generator&) const {
  const Sentence& s = sentences_[static_cast<size_t>(index)];
  readers::Example ex;
  const int64_t len = static_cast<int64_t>(s.ids.size());
  ex.fields["input_ids"] = tensor(std::vector<int64_t>(s.ids.begin(), s.ids.end()), {len});
  std::vector<int64_t> pos, idx;
  for (size_t w = 0; w < s.first_token.size(); ++w)
    if (s.first_token[w] >= 0) {
      pos.push_back(s.first_token[w]);
      idx.push_back(static_cast<int64_t>(w));
    }
  const int64_t wc = static_cast<int64_t>(pos.size());
  ex.fields["word_pos"] = tensor(pos, {wc});
  ex.fields["word_index"] = tensor(idx, {wc});
  if (has_tags_) ex.fields["word_tags"] = tensor(s.tags, {static_cast<int64_t>(s.tags.size())});
  ex.fields["num_words"] = scalar_tensor(static_cast<double>(s.words.size()), DType::i64);
  ex.meta = Json::object();
  ex.meta["text"] = s.text;
  Json spans = Json::array();
  for (const auto& [b, e] : s.spans) spans.push_back(Json(Json::Array{Json(b), Json(e)}));
  ex.meta["spans"] = spans;
  return ex;
}

Batch TaggedTextDataset::collate(std::vector<readers::Example>& examples) const {
  const int64_t n = static_cast<int64_t>(examples.size());
  int64_t len = 0, wc = 1, w = 1;
  for (const auto& e : examples) {
    len = std::max(len, e.fields.at("input_ids").size(0));
    wc = std::max(wc, e.fields.at("word_pos").size(0));
    w = std::max(w, e.fields.at("num_words").item<int64_t>());
  }
  std::vector<int64_t> ids(static_cast<size_t>(n * len), tok_->pad_id()), mask(ids.size(), 0),
      pos(static_cast<size_t>(n * wc), 0), index(pos.size(), -1), wmask(pos.size(), 0),
      tags(pos.size(), -1), word_tags(static_cast<size_t>(n * w), -1), num_words;
  for (int64_t i = 0; i < n; ++i) {
    const auto& f = examples[static_cast<size_t>(i)].fields;
    const auto x = f.at("input_ids").to_vector<int64_t>();
    for (size_t j = 0; j < x.size(); ++j) {
      ids[static_cast<size_t>(i * len) + j] = x[j];
      mask[static_cast<size_t>(i * len) + j] = 1;
    }
    std::vector<int64_t> wt;
    if (has_tags_) {
      wt = f.at("word_tags").to_vector<int64_t>();
      std::copy(wt.begin(), wt.end(), word_tags.begin() + i * w);
    }
    const auto p = f.at("word_pos").to_vector<int64_t>();
    const auto q = f.at("word_index").to_vector<int64_t>();
    for (size_t j = 0; j < p.size(); ++j) {
      const size_t k = static_cast<size_t>(i * wc) + j;
      pos[k] = p[j];
      index[k] = q[j];
      wmask[k] = 1;
      if (has_tags_) tags[k] = wt[static_cast<size_t>(q[j])];
    }
    num_words.push_back(f.at("num_words").item<int64_t>());
  }
  Batch b;
  b.size = n;
  b.tensors["input_ids"] = tensor(ids, {n, len});
  b.tensors["token_type_ids"] = zeros({n, len}, DType::i64);
  b.tensors["attention_mask"] = tensor(mask, {n, len});
  b.tensors["word_pos"] = tensor(pos, {n, wc});
  b.tensors["word_index"] = tensor(index, {n, wc});
  b.tensors["word_mask"] = tensor(wmask, {n, wc});
  b.tensors["num_words"] = tensor(num_words, {n});
  if (has_tags_) {
    b.tensors["tags"] = tensor(tags, {n, wc});
    b.tensors["word_tags"] = tensor(word_tags, {n, w});
  }
  for (auto& e : examples) b.meta.push_back(std::move(e.meta));
  return b;
}

}  // namespace oar::nlp
