#include "nlp/tasks/span_extraction.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "engine/ops.h"

namespace oar::nlp {

namespace {

// Indices of the k largest values (ties: lower index first).
std::vector<int64_t> top_k(const float* x, int64_t n, int64_t k) {
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), int64_t{0});
  k = std::min(k, n);
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                    [&](int64_t a, int64_t b) { return x[a] > x[b] || (x[a] == x[b] && a < b); });
  idx.resize(static_cast<size_t>(k));
  return idx;
}

// Metric that decodes each batch's answers with the task's post-processing.
class SpanAnswerMetric : public metrics::AnswerMetric {
 public:
  explicit SpanAnswerMetric(const SpanExtractionTask& task, Form form)
      : AnswerMetric(form), task_(task) {}
  void update(const Outputs& outputs, const Batch& batch) override {
    const auto dec = task_.decode(outputs, batch);
    for (size_t i = 0; i < dec.size(); ++i) {
      std::vector<std::string> golds;
      for (const Json& a : batch.meta.at(i).at("answers").as_array())
        golds.push_back(a.as_string());
      if (batch.meta.at(i).at("is_impossible").as_bool()) golds.clear();
      add(dec[i].answer.text, golds);
    }
  }

 private:
  const SpanExtractionTask& task_;
};

}  // namespace

SpanDecoding decode_spans(const std::vector<WindowLogits>& windows, const std::string& context,
                          const SpanDecodeOptions& o) {
  SpanDecoding d;
  d.null_score = std::numeric_limits<double>::infinity();
  std::vector<SpanAnswer> all;
  for (const WindowLogits& w : windows) {
    d.null_score = std::min(d.null_score, static_cast<double>(w.start[0]) + w.end[0]);
    const auto starts = top_k(w.start, w.length, o.n_best), ends = top_k(w.end, w.length, o.n_best);
    for (int64_t s : starts) {
      if (w.offset_begin[s] < 0) continue;
      for (int64_t e : ends) {
        if (w.offset_begin[e] < 0 || e < s || e - s + 1 > o.max_answer_length) continue;
        SpanAnswer a;
        a.begin = w.offset_begin[s];
        a.end = w.offset_end[e];
        a.score = static_cast<double>(w.start[s]) + w.end[e];
        all.push_back(a);
      }
    }
  }
  if (windows.empty()) d.null_score = 0;
  std::stable_sort(all.begin(), all.end(),
                   [](const SpanAnswer& a, const SpanAnswer& b) { return a.score > b.score; });
  for (auto& a : all) {
    if (static_cast<int64_t>(d.nbest.size()) >= o.n_best) break;
    const bool seen = std::any_of(d.nbest.begin(), d.nbest.end(), [&](const SpanAnswer& b) {
      return b.begin == a.begin && b.end == a.end;
    });
    if (seen) continue;
    a.text = context.substr(static_cast<size_t>(a.begin), static_cast<size_t>(a.end - a.begin));
    d.nbest.push_back(std::move(a));
  }
  const bool none = d.nbest.empty() || (o.allow_impossible && d.null_score - d.nbest[0].score >
                                                                  o.null_score_diff_threshold);
  if (!none)
    d.answer = d.nbest[0];
  else if (o.allow_impossible)
    d.answer.score = d.null_score;
  return d;
}

SpanExtractionTask::SpanExtractionTask(std::shared_ptr<nn::Module> model, SpanExtractionOptions o)
    : encoder_(std::dynamic_pointer_cast<TextEncoder>(model)), o_(o) {
  OAR_CHECK(encoder_, "span_extraction: the model '", model ? model->name() : "null",
            "' is not a text encoder (use model: {name: bert, ...})");
  OAR_CHECK(o_.decode.n_best >= 1 && o_.decode.max_answer_length >= 1,
            "span_extraction: n_best and max_answer_length must be at least 1");
  Generator gen(o_.init_seed);
  qa_outputs_ = encoder_->register_module(
      "qa_outputs", std::make_shared<nn::Linear>(encoder_->hidden_size(), 2, true, &gen));
  nn::init::normal_(qa_outputs_->weight, gen, 0.0, 0.02);
  nn::init::zeros_(qa_outputs_->bias);
}

Outputs SpanExtractionTask::forward(const Batch& batch) {
  BertOutput enc =
      encoder_->encode(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"]);
  const Tensor logits = qa_outputs_->forward(enc.last_hidden_state);  // [T, L, 2]
  Outputs out;
  out["start_logits"] = logits.select(2, 0);
  out["end_logits"] = logits.select(2, 1);
  return out;
}

Tensor SpanExtractionTask::loss(const Outputs& outputs, const Batch& batch) {
  const Tensor s = cross_entropy(outputs.at("start_logits"), batch["start_positions"]);
  const Tensor e = cross_entropy(outputs.at("end_logits"), batch["end_positions"]);
  return mul(add(s, e), 0.5);
}

std::vector<std::unique_ptr<Metric>> SpanExtractionTask::metrics() const {
  std::vector<std::unique_ptr<Metric>> m;
  m.push_back(std::make_unique<SpanAnswerMetric>(*this, o_.form));
  return m;
}

std::vector<SpanDecoding> SpanExtractionTask::decode(const Outputs& outputs,
                                                     const Batch& batch) const {
  const Tensor s =
      outputs.at("start_logits").detach().to(Device::cpu()).to(DType::f32).contiguous();
  const Tensor e = outputs.at("end_logits").detach().to(Device::cpu()).to(DType::f32).contiguous();
  const Tensor ob = batch["offset_begin"].to(Device::cpu()).contiguous();
  const Tensor oe = batch["offset_end"].to(Device::cpu()).contiguous();
  const auto owner = batch["window_example"].to(Device::cpu()).contiguous().to_vector<int64_t>();
  const int64_t t = s.size(0), l = s.size(1);
  std::vector<std::vector<WindowLogits>> per(static_cast<size_t>(batch.size));
  for (int64_t k = 0; k < t; ++k) {
    WindowLogits w;
    w.start = s.data<float>() + k * l;
    w.end = e.data<float>() + k * l;
    w.offset_begin = ob.data<int64_t>() + k * l;
    w.offset_end = oe.data<int64_t>() + k * l;
    w.length = l;
    per.at(static_cast<size_t>(owner[static_cast<size_t>(k)])).push_back(w);
  }
  std::vector<SpanDecoding> out;
  for (int64_t i = 0; i < batch.size; ++i)
    out.push_back(decode_spans(per[static_cast<size_t>(i)],
                               batch.meta.at(static_cast<size_t>(i)).at("context").as_string(),
                               o_.decode));
  return out;
}

std::vector<Json> SpanExtractionTask::predict(const Outputs& outputs, const Batch& batch) const {
  const auto dec = decode(outputs, batch);
  std::vector<Json> recs;
  for (size_t i = 0; i < dec.size(); ++i) {
    const Json& meta = batch.meta.at(i);
    const std::string& context = meta.at("context").as_string();
    auto chars_before = [&](int64_t byte) {
      int64_t n = 0;
      for (int64_t b = 0; b < byte; ++b)
        if ((static_cast<unsigned char>(context[static_cast<size_t>(b)]) & 0xC0) != 0x80) ++n;
      return n;
    };
    Json rec = Json::object();
    rec["id"] = meta.at("id");
    rec["question"] = meta.at("question");
    rec["answer"] = dec[i].answer.text;
    rec["start"] = dec[i].answer.begin < 0 ? int64_t{-1} : chars_before(dec[i].answer.begin);
    rec["score"] = dec[i].answer.score;
    // probabilities over the n-best list (softmax of the scores), as run_squad writes them
    double mx = dec[i].nbest.empty() ? 0.0 : dec[i].nbest[0].score, z = 0;
    for (const auto& a : dec[i].nbest) z += std::exp(a.score - mx);
    Json nb = Json::array();
    for (const auto& a : dec[i].nbest) {
      Json j = Json::object();
      j["text"] = a.text;
      j["score"] = a.score;
      j["probability"] = std::exp(a.score - mx) / z;
      nb.push_back(j);
    }
    rec["nbest"] = nb;
    if (!meta.at("answers").as_array().empty()) rec["gold"] = meta.at("answers");
    recs.push_back(rec);
  }
  return recs;
}

}  // namespace oar::nlp
