#include "metrics/registry.h"

#include "metrics/classification.h"
#include "metrics/multi_view.h"
#include "metrics/multilabel.h"
#include "metrics/text.h"

namespace oar::metrics {

Registry<Metric>& metrics() {
  static auto* r = new Registry<Metric>("metric");
  return *r;
}

namespace {
// Task::metrics() hands out unique_ptrs; the registry's factories make shared ones.
class OwnedMetric : public Metric {
 public:
  explicit OwnedMetric(std::shared_ptr<Metric> m) : m_(std::move(m)) {}
  std::string name() const override { return m_->name(); }
  void reset() override { m_->reset(); }
  void update(const Outputs& o, const Batch& b) override { m_->update(o, b); }
  std::vector<std::pair<std::string, double>> compute() const override { return m_->compute(); }
  std::vector<double> state() const override { return m_->state(); }
  void load_state(const std::vector<double>& s) override { m_->load_state(s); }
  void write_artifacts(const std::string& dir) const override { m_->write_artifacts(dir); }

 private:
  std::shared_ptr<Metric> m_;
};
}  // namespace

std::unique_ptr<Metric> make_metric(Config& config, const std::string& section) {
  return std::make_unique<OwnedMetric>(metrics().create_from(config, section));
}

void register_components() {
  static bool done = false;
  if (done) return;
  done = true;
  {
    Schema s("metric", "accuracy", "top-k accuracy of logits [N, C] against labels [N]");
    s.key<std::vector<int64_t>>("topk", {1, 5}, "the k of each top-k accuracy")
        .min(1)
        .key<std::string>("logits_key", "logits", "model output holding the scores")
        .key<std::string>("label_key", "label", "batch field holding the labels");
    metrics().add(s, [](const Config& c, const std::string& k) -> std::shared_ptr<Metric> {
      return std::make_shared<TopKAccuracy>(c.get<std::vector<int64_t>>(k + ".topk"),
                                            c.get<std::string>(k + ".logits_key"),
                                            c.get<std::string>(k + ".label_key"));
    });
  }
  {
    Schema s("metric", "confusion",
             "confusion matrix with per-class and macro precision, recall and F1");
    s.required<int64_t>("num_classes", "number of classes")
        .min(1)
        .key<std::vector<std::string>>("class_names", {}, "class names, in label order")
        .key<std::string>("logits_key", "logits", "model output holding the scores")
        .key<std::string>("label_key", "label", "batch field holding the labels");
    metrics().add(s, [](const Config& c, const std::string& k) -> std::shared_ptr<Metric> {
      return std::make_shared<ConfusionMatrix>(
          c.get<int64_t>(k + ".num_classes"), c.get<std::vector<std::string>>(k + ".class_names"),
          c.get<std::string>(k + ".logits_key"), c.get<std::string>(k + ".label_key"));
    });
  }
  {
    Schema s("metric", "multi_view_accuracy",
             "top-k accuracy per video after averaging the softmax scores of its views");
    s.key<std::vector<int64_t>>("topk", {1, 5}, "the k of each top-k accuracy")
        .min(1)
        .key<std::string>("id_key", "video_id", "meta field naming a view's video (else 'path')")
        .key<std::string>("logits_key", "logits", "model output holding the scores")
        .key<std::string>("label_key", "label", "batch field holding the labels");
    metrics().add(s, [](const Config& c, const std::string& k) -> std::shared_ptr<Metric> {
      return std::make_shared<MultiViewAccuracy>(
          c.get<std::vector<int64_t>>(k + ".topk"), c.get<std::string>(k + ".id_key"),
          c.get<std::string>(k + ".logits_key"), c.get<std::string>(k + ".label_key"));
    });
  }
  {
    Schema s("metric", "youtube8m",
             "multi-label Hit@1, PERR, GAP@top_k and mAP, as YouTube-8M's eval_util");
    s.required<int64_t>("num_classes", "number of classes")
        .min(1)
        .key<int64_t>("top_k", 20, "predictions per video pooled for GAP and mAP")
        .min(1)
        .key<bool>("from_logits", true, "apply a sigmoid to the scores first")
        .key<std::string>("scores_key", "logits", "model output holding the scores")
        .key<std::string>("label_key", "label", "batch field holding the multi-hot labels");
    metrics().add(s, [](const Config& c, const std::string& k) -> std::shared_ptr<Metric> {
      return std::make_shared<YouTube8MMetrics>(
          c.get<int64_t>(k + ".num_classes"), c.get<int64_t>(k + ".top_k"),
          c.get<bool>(k + ".from_logits"), c.get<std::string>(k + ".scores_key"),
          c.get<std::string>(k + ".label_key"));
    });
  }
  {
    Schema s("metric", "prf",
             "accuracy and macro/micro precision, recall and F1 of class predictions (or the "
             "argmax of scores)");
    s.required<int64_t>("num_classes", "number of classes")
        .min(1)
        .key<std::vector<int64_t>>("exclude", {}, "classes left out of the averages (e.g. O)")
        .key<std::string>("pred_key", "logits",
                          "model output holding class ids, or scores with a class dimension")
        .key<std::string>("label_key", "label", "batch field holding the labels (< 0: ignored)");
    metrics().add(s, [](const Config& c, const std::string& k) -> std::shared_ptr<Metric> {
      const int64_t n = c.get<int64_t>(k + ".num_classes");
      const auto exclude = c.get<std::vector<int64_t>>(k + ".exclude");
      for (int64_t e : exclude)
        if (e < 0 || e >= n)
          throw c.error(k + ".exclude", "class " + std::to_string(e) + " is outside [0, " +
                                            std::to_string(n) + ")");
      return std::make_shared<PrecisionRecallF1>(n, exclude, c.get<std::string>(k + ".pred_key"),
                                                 c.get<std::string>(k + ".label_key"));
    });
  }
  {
    Schema s("metric", "chunk_f1",
             "chunk precision, recall and F1 with conlleval's chunk rules (BIO, IOB1, BIOES)");
    s.required<std::vector<std::string>>(
         "labels", "tag names in id order (token_classification fills in task.labels)")
        .key<std::string>("scheme", "auto", "tagging scheme the labels must follow")
        .choices({"auto", "BIO", "IOB1", "BIOES"})
        .key<std::string>("pred_key", "word_pred", "model output holding tag ids [N, W]")
        .key<std::string>("label_key", "word_tags", "batch field holding tag ids [N, W] (-1 pads)");
    metrics().add(s, [](const Config& c, const std::string& k) -> std::shared_ptr<Metric> {
      const auto labels = c.get<std::vector<std::string>>(k + ".labels");
      try {
        check_tag_scheme(labels, c.get<std::string>(k + ".scheme"));
      } catch (const Error& e) {
        throw c.error(k + ".labels", e.what());
      }
      return std::make_shared<ChunkF1>(labels, c.get<std::string>(k + ".pred_key"),
                                       c.get<std::string>(k + ".label_key"));
    });
  }
  {
    Schema s("metric", "ranking",
             "mean reciprocal rank and mean average precision per query (queries without a "
             "relevant candidate are skipped)");
    s.key<std::string>("score_key", "score", "model output scoring each candidate [C]")
        .key<std::string>("label_key", "label", "batch field: relevant (> 0) or not [C]")
        .key<std::string>("group_key", "group", "batch field: the query of each candidate [C]");
    metrics().add(s, [](const Config& c, const std::string& k) -> std::shared_ptr<Metric> {
      return std::make_shared<RankingMetric>(c.get<std::string>(k + ".score_key"),
                                             c.get<std::string>(k + ".label_key"),
                                             c.get<std::string>(k + ".group_key"));
    });
  }
  {
    Schema s("metric", "masked_lm", "masked-token accuracy and perplexity of a masked LM");
    s.key<std::string>("logits_key", "mlm_logits", "model output scoring the masked tokens [M, V]")
        .key<std::string>("label_key", "mlm_labels", "batch field holding their ids [M]");
    metrics().add(s, [](const Config& c, const std::string& k) -> std::shared_ptr<Metric> {
      return std::make_shared<MaskedLmMetric>(c.get<std::string>(k + ".logits_key"),
                                              c.get<std::string>(k + ".label_key"));
    });
  }
}

}  // namespace oar::metrics
