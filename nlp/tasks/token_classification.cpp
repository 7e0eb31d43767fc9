#include "nlp/tasks/token_classification.h"

#include <algorithm>

#include "engine/ops.h"
#include "metrics/text.h"

namespace oar::nlp {

namespace {

// The substring of code points [b, e) of UTF-8 `s`.
std::string code_point_substr(const std::string& s, int64_t b, int64_t e) {
  int64_t cp = -1;
  size_t from = s.size(), to = s.size();
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) continue;
    ++cp;
    if (cp == b) from = i;
    if (cp == e) {
      to = i;
      break;
    }
  }
  return from < to ? s.substr(from, to - from) : std::string();
}

}  // namespace

std::vector<EntitySpan> entity_spans(const std::vector<std::string>& word_tags,
                                     const std::vector<std::pair<int64_t, int64_t>>& spans,
                                     const std::string& text) {
  OAR_CHECK(word_tags.size() == spans.size(), "entity spans: ", word_tags.size(), " tags for ",
            spans.size(), " words");
  std::vector<EntitySpan> out;
  for (const auto& c : metrics::extract_chunks(word_tags)) {
    EntitySpan e;
    e.type = c.type;
    e.start = spans[static_cast<size_t>(c.begin)].first;
    e.end = spans[static_cast<size_t>(c.end - 1)].second;
    e.text = code_point_substr(text, e.start, e.end);
    out.push_back(std::move(e));
  }
  return out;
}

TokenClassificationTask::TokenClassificationTask(std::shared_ptr<nn::Module> model,
                                                 TokenClassificationOptions o)
    : encoder_(std::dynamic_pointer_cast<TextEncoder>(model)), o_(std::move(o)) {
  OAR_CHECK(encoder_, "token_classification: the model '", model ? model->name() : "null",
            "' is not a text encoder (use model: {name: bert, ...})");
  OAR_CHECK(o_.labels.size() >= 2, "token_classification: at least two labels are needed, got ",
            o_.labels.size());
  auto o_it = std::find(o_.labels.begin(), o_.labels.end(), "O");
  OAR_CHECK(o_it != o_.labels.end(), "token_classification: the labels have no 'O' tag");
  o_id_ = o_it - o_.labels.begin();
  try {
    metrics::extract_chunks(o_.labels);
  } catch (const Error& e) {
    OAR_FAIL("token_classification: labels: ", e.what());
  }
  Generator gen(o_.init_seed);
  const int64_t c = static_cast<int64_t>(o_.labels.size());
  dropout_ = encoder_->register_module("dropout", std::make_shared<nn::Dropout>(o_.dropout));
  classifier_ = encoder_->register_module(
      "classifier", std::make_shared<nn::Linear>(encoder_->hidden_size(), c, true, &gen));
  nn::init::normal_(classifier_->weight, gen, 0.0, 0.02);
  nn::init::zeros_(classifier_->bias);
  head_ = encoder_->register_module("head", make_token_head({o_.head, o_.labels, o_.init_seed}));
}

Outputs TokenClassificationTask::forward(const Batch& batch) {
  BertOutput enc =
      encoder_->encode(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"]);
  Tensor logits = classifier_->forward(dropout_->forward(enc.last_hidden_state));  // [N, L, C]
  const int64_t n = logits.size(0), l = logits.size(1), c = logits.size(2);
  const Tensor& pos = batch["word_pos"];  // [N, Wc]
  const int64_t wc = pos.size(1);
  // flat token index of each packed word: i * L + word_pos[i, j]
  std::vector<int64_t> flat = pos.to(Device::cpu()).contiguous().to_vector<int64_t>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < wc; ++j) flat[static_cast<size_t>(i * wc + j)] += i * l;
  const Tensor index = tensor(flat, {n * wc}).to(logits.device());
  Outputs out;
  out["emissions"] = index_select(logits.reshape({n * l, c}), 0, index).reshape({n, wc, c});
  // word-level predictions for every word: O where a word has no token
  const Tensor packed = head_->decode(out["emissions"], batch["word_mask"]).to(Device::cpu());
  const auto pk = packed.contiguous().to_vector<int64_t>();
  const auto widx = batch["word_index"].to(Device::cpu()).contiguous().to_vector<int64_t>();
  const auto nw = batch["num_words"].to(Device::cpu()).contiguous().to_vector<int64_t>();
  const int64_t w = std::max<int64_t>(1, *std::max_element(nw.begin(), nw.end()));
  std::vector<int64_t> pred(static_cast<size_t>(n * w), -1);
  for (int64_t i = 0; i < n; ++i) {
    std::fill_n(pred.begin() + i * w, nw[static_cast<size_t>(i)], o_id_);
    for (int64_t j = 0; j < wc; ++j) {
      const int64_t word = widx[static_cast<size_t>(i * wc + j)];
      if (word >= 0) pred[static_cast<size_t>(i * w + word)] = pk[static_cast<size_t>(i * wc + j)];
    }
  }
  out["word_pred"] = tensor(pred, {n, w});
  return out;
}

Tensor TokenClassificationTask::loss(const Outputs& outputs, const Batch& batch) {
  return head_->loss(outputs.at("emissions"), batch["tags"], batch["word_mask"]);
}

std::vector<std::unique_ptr<Metric>> TokenClassificationTask::metrics() const {
  std::vector<std::unique_ptr<Metric>> m;
  m.push_back(std::make_unique<metrics::ChunkF1>(o_.labels, "word_pred", "word_tags"));
  m.push_back(std::make_unique<metrics::PrecisionRecallF1>(static_cast<int64_t>(o_.labels.size()),
                                                           std::vector<int64_t>{o_id_}, "word_pred",
                                                           "word_tags"));
  return m;
}

std::vector<Json> TokenClassificationTask::predict(const Outputs& outputs,
                                                   const Batch& batch) const {
  const Tensor& wp = outputs.at("word_pred");
  const int64_t n = wp.size(0), w = wp.size(1);
  const auto pred = wp.to(Device::cpu()).contiguous().to_vector<int64_t>();
  std::vector<int64_t> gold;
  int64_t gw = 0;
  if (batch.has("word_tags")) {
    gold = batch["word_tags"].to(Device::cpu()).contiguous().to_vector<int64_t>();
    gw = batch["word_tags"].size(1);
  }
  auto to_json = [](const std::vector<EntitySpan>& es) {
    Json a = Json::array();
    for (const auto& e : es) {
      Json j = Json::object();
      j["type"] = e.type;
      j["start"] = e.start;
      j["end"] = e.end;
      j["text"] = e.text;
      a.push_back(j);
    }
    return a;
  };
  std::vector<Json> recs;
  for (int64_t i = 0; i < n; ++i) {
    const Json& meta = batch.meta.at(static_cast<size_t>(i));
    const std::string text = meta.at("text").as_string();
    std::vector<std::pair<int64_t, int64_t>> spans;
    for (const Json& s : meta.at("spans").as_array())
      spans.emplace_back(s.as_array().at(0).as_int(), s.as_array().at(1).as_int());
    std::vector<std::string> tags, truth;
    Json tj = Json::array();
    for (size_t j = 0; j < spans.size(); ++j) {
      tags.push_back(o_.labels[static_cast<size_t>(pred[static_cast<size_t>(i * w) + j])]);
      tj.push_back(tags.back());
      if (!gold.empty())
        truth.push_back(o_.labels[static_cast<size_t>(gold[static_cast<size_t>(i * gw) + j])]);
    }
    Json rec = Json::object();
    rec["text"] = text;
    rec["tags"] = tj;
    rec["entities"] = to_json(entity_spans(tags, spans, text));
    if (!truth.empty()) rec["gold_entities"] = to_json(entity_spans(truth, spans, text));
    recs.push_back(rec);
  }
  return recs;
}

}  // namespace oar::nlp
