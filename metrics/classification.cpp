#include "metrics/classification.h"

#include "engine/core/error.h"
#include "engine/io/atomic_file.h"
#include "engine/io/json.h"

namespace oar::metrics {

namespace {
struct Rows {
  Tensor logits;  // f32 contiguous [N, C]
  std::vector<int64_t> labels;
};

Rows fetch(const Outputs& outputs, const Batch& batch, const std::string& lk,
           const std::string& yk) {
  auto it = outputs.find(lk);
  OAR_CHECK(it != outputs.end(), "metric: model outputs have no '", lk, "'");
  Rows r;
  r.logits = it->second.detach().to(Device::cpu()).to(DType::f32).contiguous();
  OAR_CHECK(r.logits.dim() == 2, "metric: '", lk, "' must be [N, C], got ",
            shape_str(r.logits.shape()));
  r.labels = batch[yk].to_vector<int64_t>();
  OAR_CHECK(static_cast<int64_t>(r.labels.size()) == r.logits.size(0), "metric: ", r.labels.size(),
            " labels for ", r.logits.size(0), " rows of logits");
  return r;
}
}  // namespace

TopKAccuracy::TopKAccuracy(std::vector<int64_t> ks, std::string lk, std::string yk)
    : ks_(std::move(ks)), logits_key_(std::move(lk)), label_key_(std::move(yk)) {
  reset();
}

void TopKAccuracy::reset() {
  correct_.assign(ks_.size(), 0.0);
  count_ = 0;
}

void TopKAccuracy::update(const Outputs& outputs, const Batch& batch) {
  Rows r = fetch(outputs, batch, logits_key_, label_key_);
  const int64_t n = r.logits.size(0), c = r.logits.size(1);
  const float* p = r.logits.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t y = r.labels[i];
    if (y < 0 || y >= c) continue;  // ignored targets
    const float* row = p + i * c;
    // rank of the true class: classes scoring higher, ties broken toward lower indices
    int64_t rank = 0;
    for (int64_t j = 0; j < c; ++j)
      if (row[j] > row[y] || (row[j] == row[y] && j < y)) ++rank;
    for (size_t k = 0; k < ks_.size(); ++k)
      if (rank < ks_[k]) correct_[k] += 1;
    count_ += 1;
  }
}

std::vector<std::pair<std::string, double>> TopKAccuracy::compute() const {
  std::vector<std::pair<std::string, double>> out;
  for (size_t k = 0; k < ks_.size(); ++k)
    out.emplace_back("top" + std::to_string(ks_[k]), count_ > 0 ? correct_[k] / count_ : 0.0);
  return out;
}

std::vector<double> TopKAccuracy::state() const {
  std::vector<double> s = correct_;
  s.push_back(count_);
  return s;
}

void TopKAccuracy::load_state(const std::vector<double>& s) {
  OAR_CHECK(s.size() == ks_.size() + 1, "accuracy: state of wrong size");
  correct_.assign(s.begin(), s.end() - 1);
  count_ = s.back();
}

ConfusionMatrix::ConfusionMatrix(int64_t n, std::vector<std::string> names, std::string lk,
                                 std::string yk)
    : n_(n), names_(std::move(names)), logits_key_(std::move(lk)), label_key_(std::move(yk)) {
  OAR_CHECK(n_ >= 1, "confusion matrix: num_classes must be at least 1");
  reset();
}

void ConfusionMatrix::reset() {
  counts_.assign(static_cast<size_t>(n_ * n_), 0.0);
}

void ConfusionMatrix::update(const Outputs& outputs, const Batch& batch) {
  Rows r = fetch(outputs, batch, logits_key_, label_key_);
  const int64_t n = r.logits.size(0), c = r.logits.size(1);
  OAR_CHECK(c == n_, "confusion matrix: logits have ", c, " classes, expected ", n_);
  const float* p = r.logits.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t y = r.labels[i];
    if (y < 0 || y >= c) continue;
    const float* row = p + i * c;
    int64_t best = 0;
    for (int64_t j = 1; j < c; ++j)
      if (row[j] > row[best]) best = j;
    counts_[y * n_ + best] += 1;
  }
}

std::vector<std::pair<std::string, double>> ConfusionMatrix::compute() const {
  double p_sum = 0, r_sum = 0, f_sum = 0;
  for (int64_t k = 0; k < n_; ++k) {
    double tp = count(k, k), pred = 0, truth = 0;
    for (int64_t j = 0; j < n_; ++j) {
      pred += count(j, k);
      truth += count(k, j);
    }
    const double p = pred > 0 ? tp / pred : 0.0, r = truth > 0 ? tp / truth : 0.0;
    p_sum += p;
    r_sum += r;
    f_sum += (p + r) > 0 ? 2 * p * r / (p + r) : 0.0;
  }
  const double n = static_cast<double>(n_);
  return {{"macro_precision", p_sum / n}, {"macro_recall", r_sum / n}, {"macro_f1", f_sum / n}};
}

void ConfusionMatrix::load_state(const std::vector<double>& s) {
  OAR_CHECK(s.size() == counts_.size(), "confusion matrix: state of wrong size");
  counts_ = s;
}

void ConfusionMatrix::write_artifacts(const std::string& dir) const {
  Json j = Json::object();
  Json names = Json::array();
  for (int64_t k = 0; k < n_; ++k)
    names.push_back(k < static_cast<int64_t>(names_.size()) ? Json(names_[k])
                                                            : Json(std::to_string(k)));
  j["classes"] = names;
  Json rows = Json::array();
  Json per_class = Json::array();
  for (int64_t k = 0; k < n_; ++k) {
    Json row = Json::array();
    double tp = count(k, k), pred = 0, truth = 0;
    for (int64_t c = 0; c < n_; ++c) {
      row.push_back(static_cast<int64_t>(count(k, c)));
      pred += count(c, k);
      truth += count(k, c);
    }
    rows.push_back(row);
    const double p = pred > 0 ? tp / pred : 0.0, r = truth > 0 ? tp / truth : 0.0;
    Json pc = Json::object();
    pc["class"] = names.as_array()[static_cast<size_t>(k)];
    pc["precision"] = p;
    pc["recall"] = r;
    pc["f1"] = (p + r) > 0 ? 2 * p * r / (p + r) : 0.0;
    pc["support"] = static_cast<int64_t>(truth);
    per_class.push_back(pc);
  }
  j["matrix"] = rows;  // rows: true class, columns: predicted class
  j["per_class"] = per_class;
  io::write_file_atomic(dir + "/confusion_matrix.json", j.dump(1) + "\n");
}

}  // namespace oar::metrics
