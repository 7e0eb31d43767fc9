#include "metrics/multi_view.h"

#include <algorithm>
#include <cmath>

#include "engine/core/error.h"

namespace oar::metrics {

MultiViewAccuracy::MultiViewAccuracy(std::vector<int64_t> ks, std::string id_key, std::string lk,
                                     std::string yk)
    : ks_(std::move(ks)),
      id_key_(std::move(id_key)),
      logits_key_(std::move(lk)),
      label_key_(std::move(yk)) {
  OAR_CHECK(!ks_.empty(), "multi_view_accuracy: no k given");
  for (int64_t k : ks_) OAR_CHECK(k >= 1, "multi_view_accuracy: k must be >= 1, got ", k);
}

void MultiViewAccuracy::reset() {
  videos_.clear();
}

void MultiViewAccuracy::add_view(const std::string& video, const float* probs, int64_t c,
                                 int64_t label) {
  Video& v = videos_[video];
  if (v.views == 0) {
    v.sum.assign(static_cast<size_t>(c), 0.0);
    v.label = label;
  }
  OAR_CHECK(static_cast<int64_t>(v.sum.size()) == c, "multi_view_accuracy: video '", video,
            "' has views with ", v.sum.size(), " and ", c, " classes");
  OAR_CHECK(v.label == label, "multi_view_accuracy: views of video '", video,
            "' disagree on its label (", v.label, " and ", label, ")");
  for (int64_t j = 0; j < c; ++j) v.sum[static_cast<size_t>(j)] += probs[j];
  v.views += 1;
}

void MultiViewAccuracy::update(const Outputs& outputs, const Batch& batch) {
  auto it = outputs.find(logits_key_);
  OAR_CHECK(it != outputs.end(), "multi_view_accuracy: model outputs have no '", logits_key_, "'");
  Tensor logits = it->second.detach().to(Device::cpu()).to(DType::f32).contiguous();
  OAR_CHECK(logits.dim() == 2, "multi_view_accuracy: '", logits_key_, "' must be [N, C], got ",
            shape_str(logits.shape()));
  const std::vector<int64_t> labels = batch[label_key_].to_vector<int64_t>();
  const int64_t n = logits.size(0), c = logits.size(1);
  OAR_CHECK(static_cast<int64_t>(labels.size()) == n, "multi_view_accuracy: ", labels.size(),
            " labels for ", n, " rows of logits");
  OAR_CHECK(static_cast<int64_t>(batch.meta.size()) == n, "multi_view_accuracy: the batch has ",
            batch.meta.size(), " meta records for ", n, " rows (each view needs its video id)");
  const float* p = logits.data<float>();
  std::vector<float> prob(static_cast<size_t>(c));
  for (int64_t i = 0; i < n; ++i) {
    const Json& meta = batch.meta[static_cast<size_t>(i)];
    const Json* id = meta.is_object() ? meta.find(id_key_) : nullptr;
    if (!id && meta.is_object()) id = meta.find("path");
    OAR_CHECK(id && !id->is_null(), "multi_view_accuracy: sample ", i, " has no '", id_key_,
              "' (or 'path') in its meta record");
    const std::string key = id->is_string() ? id->as_string() : id->dump();
    const float* row = p + i * c;
    const float mx = *std::max_element(row, row + c);
    double z = 0;
    for (int64_t j = 0; j < c; ++j) z += std::exp(static_cast<double>(row[j] - mx));
    for (int64_t j = 0; j < c; ++j)
      prob[static_cast<size_t>(j)] =
          static_cast<float>(std::exp(static_cast<double>(row[j] - mx)) / z);
    add_view(key, prob.data(), c, labels[static_cast<size_t>(i)]);
  }
}

std::vector<std::pair<std::string, double>> MultiViewAccuracy::compute() const {
  std::vector<double> correct(ks_.size(), 0.0);
  double count = 0;
  for (const auto& [id, v] : videos_) {
    const int64_t c = static_cast<int64_t>(v.sum.size());
    if (v.label < 0 || v.label >= c) continue;  // ignored targets
    const double y = v.sum[static_cast<size_t>(v.label)];
    // rank of the true class: classes scoring higher, ties toward lower indices (as accuracy)
    int64_t rank = 0;
    for (int64_t j = 0; j < c; ++j) {
      const double s = v.sum[static_cast<size_t>(j)];
      if (s > y || (s == y && j < v.label)) ++rank;
    }
    for (size_t k = 0; k < ks_.size(); ++k)
      if (rank < ks_[k]) correct[k] += 1;
    count += 1;
  }
  std::vector<std::pair<std::string, double>> out;
  for (size_t k = 0; k < ks_.size(); ++k)
    out.emplace_back("top" + std::to_string(ks_[k]), count > 0 ? correct[k] / count : 0.0);
  out.emplace_back("num_videos", count);
  return out;
}

std::vector<double> MultiViewAccuracy::state() const {
  OAR_FAIL(
      "multi_view_accuracy cannot be summed across ranks (each rank holds different videos' "
      "views); evaluate it in one process");
}

void MultiViewAccuracy::load_state(const std::vector<double>&) {
  OAR_FAIL("multi_view_accuracy cannot be merged across ranks; evaluate it in one process");
}

}  // namespace oar::metrics
