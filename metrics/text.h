#pragma once
// Text metrics: precision/recall/F1 over class ids (macro and micro), chunk-level F1 with
// conlleval's chunk rules, per-query ranking (MRR, MAP) and answer EM/F1 in SQuAD's English and
// CMRC 2018's Chinese forms. The scoring functions are plain functions (tested against reference
// implementations); the Metric classes accumulate them over batches for the trainer.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/train/metric.h"

namespace oar::metrics {

// ---- scoring functions ----------------------------------------------------------------------

// A chunk of a tag sequence: tokens [begin, end) of one type.
struct Chunk {
  std::string type;
  int64_t begin = 0, end = 0;
  bool operator==(const Chunk&) const = default;
};

// Chunks of a tag sequence ("B-PER", "I-PER", "E-PER", "S-PER", "O"; a tag without a '-' is its
// own prefix with an empty type), by conlleval's start/end rules as seqeval extends them to S-/E-:
// a chunk ends before B/S/O, after E/S, or where the type changes; it starts at B/S, at an I/E
// that follows O, E or S, or where the type changes (so "O I-X" starts a chunk, as conlleval
// does). Works for BIO, IOB1 and BIOES. Throws oar::Error on a prefix other than B, I, E, S, O.
std::vector<Chunk> extract_chunks(const std::vector<std::string>& tags);

// Throws oar::Error naming the first tag that `scheme` does not allow: "BIO" (and "IOB1") allow
// the prefixes B, I and O; "BIOES" also E and S; "auto" allows all of them.
void check_tag_scheme(const std::vector<std::string>& tags, const std::string& scheme);

struct ChunkCounts {
  double correct = 0, predicted = 0, gold = 0;
  void add(const std::vector<std::string>& gold_tags, const std::vector<std::string>& pred_tags);
  double precision() const { return predicted > 0 ? correct / predicted : 0.0; }
  double recall() const { return gold > 0 ? correct / gold : 0.0; }
  double f1() const;
};

// Ranking of one query's candidates by descending score (ties keep input order); labels > 0
// are relevant. Return NaN for a query without a relevant candidate (callers skip it).
double reciprocal_rank(const std::vector<double>& scores, const std::vector<int64_t>& labels);
double average_precision(const std::vector<double>& scores, const std::vector<int64_t>& labels);

// SQuAD's normalisation: lower-case, drop ASCII punctuation (string.punctuation), drop the
// articles a/an/the, collapse whitespace. Lower-casing covers ASCII, Latin-1, Latin Extended-A,
// Greek and Cyrillic; bytes >= 0x80 count as word characters for the article boundaries
// (Python's \b differs only on non-ASCII punctuation right next to an article).
std::string squad_normalize(std::string_view s);
// Max over `golds` (an empty list means "unanswerable": gold is "" as in SQuAD 2.0's script).
double squad_exact_match(std::string_view prediction, const std::vector<std::string>& golds);
double squad_f1(std::string_view prediction, const std::vector<std::string>& golds);

// CMRC 2018's evaluate script: lower-case and strip, remove its punctuation list, then EM on the
// remaining strings; F1 on "mixed segmentation" (each CJK ideograph U+4E00..U+9FA5 one token,
// runs of other characters split on whitespace — the script uses nltk.word_tokenize there) with
// the longest common contiguous token run as the overlap. Max over golds; no gold scores 0.
std::vector<std::string> cmrc_segments(std::string_view s);
double cmrc_exact_match(std::string_view prediction, const std::vector<std::string>& golds);
double cmrc_f1(std::string_view prediction, const std::vector<std::string>& golds);

// ---- metric objects -------------------------------------------------------------------------

// Accuracy and macro/micro precision, recall and F1 of predicted class ids outputs[pred_key]
// (i64, any shape) against batch[label_key] (same shape; labels < 0 are ignored). Floating-point
// outputs with one more dimension than the labels are scores: their argmax is the prediction.
// Classes in `exclude` (e.g. the O tag) are left out of the averages: micro counts their false
// positives and negatives against the other classes, as scikit-learn's `labels=` does.
class PrecisionRecallF1 : public Metric {
 public:
  PrecisionRecallF1(int64_t num_classes, std::vector<int64_t> exclude = {},
                    std::string pred_key = "pred", std::string label_key = "label");
  std::string name() const override { return "prf"; }
  void reset() override;
  void update(const Outputs& outputs, const Batch& batch) override;
  // accuracy, macro_precision, macro_recall, macro_f1, micro_precision, micro_recall, micro_f1
  std::vector<std::pair<std::string, double>> compute() const override;
  std::vector<double> state() const override;
  void load_state(const std::vector<double>& s) override;
  void add(int64_t label, int64_t pred);

 private:
  int64_t n_;
  std::vector<bool> excluded_;
  std::string pred_key_, label_key_;
  std::vector<double> tp_, fp_, fn_;
  double correct_ = 0, count_ = 0;
};

// Chunk precision/recall/F1 (micro over types) of predicted tag ids outputs[pred_key] [N, W]
// against batch[label_key] [N, W]; -1 in the labels marks padding (the row ends there).
class ChunkF1 : public Metric {
 public:
  explicit ChunkF1(std::vector<std::string> tag_names, std::string pred_key = "word_pred",
                   std::string label_key = "word_tags");
  std::string name() const override { return "chunk"; }
  void reset() override { counts_ = {}; }
  void update(const Outputs& outputs, const Batch& batch) override;
  // chunk_precision, chunk_recall, chunk_f1
  std::vector<std::pair<std::string, double>> compute() const override;
  std::vector<double> state() const override;
  void load_state(const std::vector<double>& s) override;

 private:
  std::vector<std::string> names_;
  std::string pred_key_, label_key_;
  ChunkCounts counts_;
};

// Mean reciprocal rank and mean average precision per query: outputs[score_key] [C] scores the
// candidates of a batch, batch[group_key] [C] (i64) says which query each belongs to (a query's
// candidates are all in one batch) and batch[label_key] [C] which are relevant. Queries without
// a relevant candidate are skipped.
class RankingMetric : public Metric {
 public:
  explicit RankingMetric(std::string score_key = "score", std::string label_key = "label",
                         std::string group_key = "group");
  std::string name() const override { return "ranking"; }
  void reset() override { rr_ = ap_ = queries_ = 0; }
  void update(const Outputs& outputs, const Batch& batch) override;
  // mrr, map, queries
  std::vector<std::pair<std::string, double>> compute() const override;
  std::vector<double> state() const override { return {rr_, ap_, queries_}; }
  void load_state(const std::vector<double>& s) override;
  void add(const std::vector<double>& scores, const std::vector<int64_t>& labels);

 private:
  std::string score_key_, label_key_, group_key_;
  double rr_ = 0, ap_ = 0, queries_ = 0;
};

// Sums of EM and F1 over answered examples; the owner (a span-extraction task) decodes answers
// and calls add(). Values em and f1 are fractions in [0, 1] (the official scripts print x100).
class AnswerMetric : public Metric {
 public:
  enum class Form { squad, cmrc };
  explicit AnswerMetric(Form form) : form_(form) {}
  std::string name() const override { return "answer"; }
  void reset() override { em_ = f1_ = count_ = 0; }
  void update(const Outputs&, const Batch&) override {}
  std::vector<std::pair<std::string, double>> compute() const override;
  std::vector<double> state() const override { return {em_, f1_, count_}; }
  void load_state(const std::vector<double>& s) override;
  void add(std::string_view prediction, const std::vector<std::string>& golds);

 private:
  Form form_;
  double em_ = 0, f1_ = 0, count_ = 0;
};

// Masked-LM accuracy and perplexity: outputs[logits_key] [M, V] scores the masked tokens,
// batch[label_key] [M] holds their true ids (labels < 0 are skipped). Perplexity is exp of the
// mean cross entropy over the masked tokens.
class MaskedLmMetric : public Metric {
 public:
  explicit MaskedLmMetric(std::string logits_key = "mlm_logits",
                          std::string label_key = "mlm_labels");
  std::string name() const override { return "masked_lm"; }
  void reset() override { nll_ = correct_ = count_ = 0; }
  void update(const Outputs& outputs, const Batch& batch) override;
  // masked_accuracy, perplexity, mlm_loss (the mean cross entropy), masked_tokens
  std::vector<std::pair<std::string, double>> compute() const override;
  std::vector<double> state() const override { return {nll_, correct_, count_}; }
  void load_state(const std::vector<double>& s) override;
  // One masked token: its scores over the vocabulary and its true id.
  void add(const float* logits, int64_t vocab, int64_t label);

 private:
  std::string logits_key_, label_key_;
  double nll_ = 0, correct_ = 0, count_ = 0;
};

}  // namespace oar::metrics
