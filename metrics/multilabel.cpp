#include "metrics/multilabel.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "engine/core/error.h"
#include "engine/io/atomic_file.h"
#include "engine/io/json.h"

namespace oar::metrics {

namespace {

// The indices of the k highest scores of a row, highest first; ties: lower index first.
std::vector<int64_t> top_indices(const float* row, int64_t c, int64_t k) {
  std::vector<int64_t> idx(static_cast<size_t>(c));
  std::iota(idx.begin(), idx.end(), 0);
  k = std::min(k, c);
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [row](int64_t a, int64_t b) {
    return row[a] > row[b] || (row[a] == row[b] && a < b);
  });
  idx.resize(static_cast<size_t>(k));
  return idx;
}

double row_perr(const float* s, const float* y, int64_t c) {
  int64_t positives = 0;
  for (int64_t j = 0; j < c; ++j) positives += y[j] > 0 ? 1 : 0;
  if (positives == 0) return 0.0;  // YT-8M: no positive among all classes -> 0
  double hits = 0;
  for (int64_t j : top_indices(s, c, positives))
    if (s[j] > 0) hits += y[j];
  return hits / static_cast<double>(positives);
}

}  // namespace

double hit_at_one(const float* scores, const float* labels, int64_t n, int64_t c) {
  if (n == 0) return 0.0;
  double hits = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float* row = scores + i * c;
    const int64_t top = std::max_element(row, row + c) - row;  // first maximum, as argmax
    hits += labels[i * c + top];
  }
  return hits / static_cast<double>(n);
}

double precision_at_equal_recall_rate(const float* scores, const float* labels, int64_t n,
                                      int64_t c) {
  if (n == 0) return 0.0;
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += row_perr(scores + i * c, labels + i * c, c);
  return sum / static_cast<double>(n);
}

double average_precision(std::vector<std::pair<float, bool>> pairs, double total_positives) {
  if (total_positives <= 0 || pairs.empty()) return 0.0;
  std::stable_sort(pairs.begin(), pairs.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  double ap = 0, seen = 0;
  for (size_t i = 0; i < pairs.size(); ++i) {
    if (!pairs[i].second) continue;
    seen += 1;
    ap += seen / static_cast<double>(i + 1);
  }
  return ap / total_positives;
}

double global_average_precision(const float* scores, const float* labels, int64_t n, int64_t c,
                                int64_t top_k) {
  YouTube8MMetrics m(c, top_k, false);
  m.add(scores, labels, n);
  for (const auto& [k, v] : m.compute())
    if (k == "gap") return v;
  return 0.0;
}

YouTube8MMetrics::YouTube8MMetrics(int64_t num_classes, int64_t top_k, bool from_logits,
                                   std::string scores_key, std::string label_key)
    : c_(num_classes),
      top_k_(top_k),
      from_logits_(from_logits),
      scores_key_(std::move(scores_key)),
      label_key_(std::move(label_key)) {
  OAR_CHECK(c_ >= 1, "youtube8m metrics: num_classes must be at least 1, got ", c_);
  OAR_CHECK(top_k_ >= 1, "youtube8m metrics: top_k must be at least 1, got ", top_k_);
  reset();
}

void YouTube8MMetrics::reset() {
  hit_sum_ = perr_sum_ = count_ = 0;
  global_.clear();
  class_.assign(static_cast<size_t>(c_), {});
  class_positives_.assign(static_cast<size_t>(c_), 0.0);
}

void YouTube8MMetrics::add(const float* scores, const float* labels, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float* s = scores + i * c_;
    const float* y = labels + i * c_;
    hit_sum_ += hit_at_one(s, y, 1, c_);
    perr_sum_ += row_perr(s, y, c_);
    count_ += 1;
    for (int64_t j = 0; j < c_; ++j) class_positives_[static_cast<size_t>(j)] += y[j] > 0 ? 1 : 0;
    for (int64_t j : top_indices(s, c_, top_k_)) {
      global_.emplace_back(s[j], y[j] > 0);
      class_[static_cast<size_t>(j)].emplace_back(s[j], y[j] > 0);
    }
  }
}

void YouTube8MMetrics::update(const Outputs& outputs, const Batch& batch) {
  auto it = outputs.find(scores_key_);
  OAR_CHECK(it != outputs.end(), "youtube8m metrics: model outputs have no '", scores_key_, "'");
  Tensor s = it->second.detach().to(Device::cpu()).to(DType::f32).contiguous();
  Tensor y = batch[label_key_].detach().to(Device::cpu()).to(DType::f32).contiguous();
  OAR_CHECK(s.dim() == 2 && s.size(1) == c_, "youtube8m metrics: '", scores_key_, "' must be [N, ",
            c_, "], got ", shape_str(s.shape()));
  OAR_CHECK(y.shape() == s.shape(), "youtube8m metrics: '", label_key_, "' must be multi-hot ",
            shape_str(s.shape()), ", got ", shape_str(y.shape()));
  std::vector<float> scores = s.to_vector<float>();
  if (from_logits_)
    for (float& v : scores) v = 1.0f / (1.0f + std::exp(-v));
  add(scores.data(), y.data<float>(), s.size(0));
}

std::vector<double> YouTube8MMetrics::class_average_precisions() const {
  std::vector<double> aps(static_cast<size_t>(c_));
  for (size_t j = 0; j < aps.size(); ++j)
    aps[j] = average_precision(class_[j], class_positives_[j]);
  return aps;
}

std::vector<std::pair<std::string, double>> YouTube8MMetrics::compute() const {
  const double total = std::accumulate(class_positives_.begin(), class_positives_.end(), 0.0);
  const std::vector<double> aps = class_average_precisions();
  const double map = std::accumulate(aps.begin(), aps.end(), 0.0) / static_cast<double>(c_);
  return {{"hit_at_one", count_ > 0 ? hit_sum_ / count_ : 0.0},
          {"perr", count_ > 0 ? perr_sum_ / count_ : 0.0},
          {"gap", average_precision(global_, total)},
          {"map", map}};
}

std::vector<double> YouTube8MMetrics::state() const {
  OAR_FAIL(
      "youtube8m metrics (GAP, mAP) need every pooled prediction and cannot be summed across "
      "ranks; evaluate them in one process (drop the distributed launch for eval)");
}

void YouTube8MMetrics::load_state(const std::vector<double>&) {
  OAR_FAIL("youtube8m metrics cannot be merged across ranks; evaluate them in one process");
}

void YouTube8MMetrics::write_artifacts(const std::string& dir) const {
  Json j = Json::object();
  Json aps = Json::array();
  for (double v : class_average_precisions()) aps.push_back(v);
  j["aps"] = aps;
  for (const auto& [k, v] : compute()) j[k] = v;
  io::write_file_atomic(dir + "/youtube8m_aps.json", j.dump(1) + "\n");
}

}  // namespace oar::metrics
