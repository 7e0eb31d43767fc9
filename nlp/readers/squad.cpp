#include "nlp/readers/squad.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "engine/core/error.h"

namespace oar::nlp {

namespace {

const Json& need(const Json& j, const std::string& key, const std::string& where) {
  const Json* v = j.is_object() ? j.find(key) : nullptr;
  OAR_CHECK(v, where, ": no '", key, "' (SQuAD JSON: data[].paragraphs[].{context, qas[]})");
  return *v;
}

const std::string& need_string(const Json& j, const std::string& key, const std::string& where) {
  const Json& v = need(j, key, where);
  OAR_CHECK(v.is_string(), where, ".", key, ": not a string");
  return v.as_string();
}

const Json::Array& need_array(const Json& j, const std::string& key, const std::string& where) {
  const Json& v = need(j, key, where);
  OAR_CHECK(v.is_array(), where, ".", key, ": not an array");
  return v.as_array();
}

// Byte offset of every code point of s, plus s.size() at the end.
std::vector<size_t> code_point_bytes(const std::string& s) {
  std::vector<size_t> out;
  for (size_t i = 0; i < s.size(); ++i)
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) out.push_back(i);
  out.push_back(s.size());
  return out;
}

}  // namespace

SquadDataset::SquadDataset(const std::string& path, std::shared_ptr<const BertTokenizer> tokenizer,
                           SquadOptions o)
    : tok_(std::move(tokenizer)), o_(o) {
  OAR_CHECK(o_.doc_stride >= 1, path, ": doc_stride must be at least 1");
  std::ifstream in(path, std::ios::binary);
  OAR_CHECK(in, path, ": cannot read");
  std::stringstream ss;
  ss << in.rdbuf();
  const Json root = Json::parse(ss.str(), path);
  const auto& data = need_array(root, "data", path);
  for (size_t di = 0; di < data.size(); ++di) {
    const auto& paras =
        need_array(data[di], "paragraphs", path + ": data[" + std::to_string(di) + "]");
    for (size_t pi = 0; pi < paras.size(); ++pi) {
      const std::string pw =
          path + ": data[" + std::to_string(di) + "].paragraphs[" + std::to_string(pi) + "]";
      const std::string& context = need_string(paras[pi], "context", pw);
      const std::vector<size_t> cp = code_point_bytes(context);
      const Encoding doc = tok_->encode(context);
      const auto& qas = need_array(paras[pi], "qas", pw);
      for (size_t qi = 0; qi < qas.size(); ++qi) {
        const std::string qw = pw + ".qas[" + std::to_string(qi) + "]";
        const Json& qa = qas[qi];
        Item it;
        const Json& id = need(qa, "id", qw);
        it.id = id.is_string() ? id.as_string() : id.dump();
        it.question = need_string(qa, "question", qw);
        it.context = context;
        if (const Json* imp = qa.find("is_impossible"))
          it.impossible = imp->is_bool() && imp->as_bool();
        int64_t ans_begin = -1, ans_end = -1;  // bytes of the first answer
        if (const Json* answers = qa.find("answers")) {
          OAR_CHECK(answers->is_array(), qw, ".answers: not an array");
          for (size_t ai = 0; ai < answers->as_array().size(); ++ai) {
            const std::string aw = qw + ".answers[" + std::to_string(ai) + "]";
            const Json& a = answers->as_array()[ai];
            const std::string& text = need_string(a, "text", aw);
            it.answers.push_back(text);
            if (ans_begin >= 0) continue;
            const Json& st = need(a, "answer_start", aw);
            OAR_CHECK(st.is_int(), aw, ".answer_start: not an integer");
            const int64_t start = st.as_int();
            OAR_CHECK(start >= 0 && start < static_cast<int64_t>(cp.size()), aw, ".answer_start ",
                      start, " is outside the context (", cp.size() - 1, " characters)");
            size_t b = cp[static_cast<size_t>(start)];
            // Some CMRC/DRCD starts are off by a few characters: take the nearest occurrence.
            if (context.compare(b, text.size(), text) != 0) {
              const size_t before = context.rfind(text, b), after = context.find(text, b);
              OAR_CHECK(before != std::string::npos || after != std::string::npos, aw,
                        ": the answer '", text, "' does not occur in the context");
              b = before == std::string::npos                             ? after
                  : after == std::string::npos || b - before <= after - b ? before
                                                                          : after;
            }
            ans_begin = static_cast<int64_t>(b);
            ans_end = static_cast<int64_t>(b + text.size());
          }
        }
        if (it.impossible) ans_begin = ans_end = -1;
        // answer tokens in the whole context
        int64_t tok_s = -1, tok_e = -1;
        for (size_t t = 0; ans_begin >= 0 && t < doc.ids.size(); ++t) {
          if (tok_s < 0 && static_cast<int64_t>(doc.offsets[t].end) > ans_begin)
            tok_s = static_cast<int64_t>(t);
          if (static_cast<int64_t>(doc.offsets[t].begin) < ans_end) tok_e = static_cast<int64_t>(t);
        }
        if (tok_s > tok_e) tok_s = tok_e = -1;
        Encoding q = tok_->encode(it.question);
        if (q.ids.size() > o_.max_query_len) q.ids.resize(o_.max_query_len);
        OAR_CHECK(o_.max_seq_len > q.ids.size() + 3, qw, ": max_seq_len ", o_.max_seq_len,
                  " leaves no room for the context after a ", q.ids.size(), "-token question");
        const size_t max_doc = o_.max_seq_len - q.ids.size() - 3;
        for (size_t start = 0;;) {
          const size_t len = std::min(max_doc, doc.ids.size() - start);
          Window w;
          w.ids.push_back(tok_->cls_id());
          w.ids.insert(w.ids.end(), q.ids.begin(), q.ids.end());
          w.ids.push_back(tok_->sep_id());
          w.types.assign(w.ids.size(), 0);
          w.begin.assign(w.ids.size(), -1);
          w.end.assign(w.ids.size(), -1);
          const int64_t first = static_cast<int64_t>(w.ids.size());
          for (size_t t = start; t < start + len; ++t) {
            w.ids.push_back(doc.ids[t]);
            w.types.push_back(1);
            w.begin.push_back(doc.offsets[t].begin);
            w.end.push_back(doc.offsets[t].end);
          }
          w.ids.push_back(tok_->sep_id());
          w.types.push_back(1);
          w.begin.push_back(-1);
          w.end.push_back(-1);
          const int64_t s0 = static_cast<int64_t>(start), s1 = static_cast<int64_t>(start + len);
          if (tok_s >= s0 && tok_e < s1) {
            w.start = first + tok_s - s0;
            w.stop = first + tok_e - s0;
          }
          it.windows.push_back(std::move(w));
          if (start + len >= doc.ids.size()) break;
          start += std::min(len, o_.doc_stride);
        }
        items_.push_back(std::move(it));
      }
    }
  }
  OAR_CHECK(!items_.empty(), path, ": no questions");
}

int64_t SquadDataset::length(int64_t index) const {
  int64_t len = 0;
  for (const Window& w : items_[static_cast<size_t>(index)].windows)
    len = std::max(len, static_cast<int64_t>(w.ids.size()));
  return len;
}

readers::Example SquadDataset::get(int64_t index, Generator&) const {
  const Item& it = items_[static_cast<size_t>(index)];
  readers::Example ex;
  ex.fields["index"] = scalar_tensor(static_cast<double>(index), DType::i64);
  ex.meta = Json::object();
  ex.meta["id"] = it.id;
  ex.meta["question"] = it.question;
  ex.meta["context"] = it.context;
  Json answers = Json::array();
  for (const auto& a : it.answers) answers.push_back(a);
  ex.meta["answers"] = answers;
  ex.meta["is_impossible"] = it.impossible;
  return ex;
}

Batch SquadDataset::collate(std::vector<readers::Example>& examples) const {
  const int64_t n = static_cast<int64_t>(examples.size());
  std::vector<const Window*> wins;
  std::vector<int64_t> owner;
  int64_t len = 0;
  for (int64_t i = 0; i < n; ++i) {
    const Item& it = items_[static_cast<size_t>(
        examples[static_cast<size_t>(i)].fields.at("index").item<int64_t>())];
    for (const auto& w : it.windows) {
      wins.push_back(&w);
      owner.push_back(i);
      len = std::max(len, static_cast<int64_t>(w.ids.size()));
    }
  }
  const int64_t t = static_cast<int64_t>(wins.size());
  const size_t cells = static_cast<size_t>(t * len);
  std::vector<int64_t> ids(cells, tok_->pad_id()), types(cells, 0), mask(cells, 0),
      begin(cells, -1), end(cells, -1), starts, stops;
  for (int64_t k = 0; k < t; ++k) {
    const Window& w = *wins[static_cast<size_t>(k)];
    for (size_t j = 0; j < w.ids.size(); ++j) {
      const size_t c = static_cast<size_t>(k * len) + j;
      ids[c] = w.ids[j];
      types[c] = w.types[j];
      mask[c] = 1;
      begin[c] = w.begin[j];
      end[c] = w.end[j];
    }
    starts.push_back(w.start);
    stops.push_back(w.stop);
  }
  Batch b;
  b.size = n;
  b.tensors["input_ids"] = tensor(ids, {t, len});
  b.tensors["token_type_ids"] = tensor(types, {t, len});
  b.tensors["attention_mask"] = tensor(mask, {t, len});
  b.tensors["offset_begin"] = tensor(begin, {t, len});
  b.tensors["offset_end"] = tensor(end, {t, len});
  b.tensors["start_positions"] = tensor(starts, {t});
  b.tensors["end_positions"] = tensor(stops, {t});
  b.tensors["window_example"] = tensor(owner, {t});
  for (auto& e : examples) b.meta.push_back(std::move(e.meta));
  return b;
}

}  // namespace oar::nlp
