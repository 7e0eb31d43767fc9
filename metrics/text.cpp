#include "metrics/text.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>

#include "engine/core/error.h"
#include "engine/ops/minmax.h"

namespace oar::metrics {

namespace {

std::vector<int64_t> ids_of(const Tensor& t) {
  return t.detach().to(Device::cpu()).to(DType::i64).contiguous().to_vector<int64_t>();
}

const Tensor& output(const Outputs& outputs, const std::string& key, const char* metric) {
  auto it = outputs.find(key);
  OAR_CHECK(it != outputs.end(), metric, ": model outputs have no '", key, "'");
  return it->second;
}

double f1_of(double p, double r) {
  return p + r > 0 ? 2 * p * r / (p + r) : 0.0;
}

// Splits "B-PER" into ("B", "PER"); "O" into ("O", "").
std::pair<std::string, std::string> split_tag(const std::string& tag) {
  const size_t dash = tag.find('-');
  if (dash == std::string::npos) return {tag, ""};
  return {tag.substr(0, dash), tag.substr(dash + 1)};
}

// seqeval.metrics.sequence_labeling.end_of_chunk / start_of_chunk (conlleval's rules plus S/E).
bool end_of_chunk(const std::string& pt, const std::string& t, const std::string& ptype,
                  const std::string& type) {
  if (pt == "E" || pt == "S") return true;
  if (pt == "B" && (t == "B" || t == "S" || t == "O")) return true;
  if (pt == "I" && (t == "B" || t == "S" || t == "O")) return true;
  return pt != "O" && pt != "." && ptype != type;
}

bool start_of_chunk(const std::string& pt, const std::string& t, const std::string& ptype,
                    const std::string& type) {
  if (t == "B" || t == "S") return true;
  if ((pt == "E" || pt == "S" || pt == "O") && (t == "E" || t == "I")) return true;
  return t != "O" && t != "." && ptype != type;
}

// UTF-8 to code points; an invalid byte becomes one code point of its own value.
std::vector<char32_t> code_points(std::string_view s) {
  std::vector<char32_t> out;
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + static_cast<size_t>(n) > s.size()) {
      out.push_back(c);
      ++i;
      continue;
    }
    char32_t cp = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
    bool ok = true;
    for (int k = 1; k < n; ++k) {
      const unsigned char d = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
      if ((d >> 6) != 2) ok = false;
      cp = (cp << 6) | (d & 0x3F);
    }
    if (!ok) {
      out.push_back(c);
      ++i;
      continue;
    }
    out.push_back(cp);
    i += static_cast<size_t>(n);
  }
  return out;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Python's str.lower for ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic capitals (the
// scripts that answers in SQuAD and CMRC use); other code points are kept.
char32_t lower_cp(char32_t c) {
  if (c >= 'A' && c <= 'Z') return c + 32;
  if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;
  if ((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177)) return c | 1;
  if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return (c & 1) ? c + 1 : c;
  if (c == 0x178) return 0xFF;
  if (c >= 0x391 && c <= 0x3AB && c != 0x3A2) return c + 32;
  if (c >= 0x410 && c <= 0x42F) return c + 32;
  if (c >= 0x400 && c <= 0x40F) return c + 80;
  return c;
}

bool is_space(char32_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::vector<std::string> split_ws(std::string_view s) {
  std::vector<std::string> out;
  std::string cur;
  for (char ch : s) {
    if (is_space(static_cast<unsigned char>(ch))) {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += ch;
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

// The punctuation list of CMRC 2018's cmrc2018_evaluate.py (its "……" entry is two characters
// and so never matches one character; it is left out for the same effect).
bool is_cmrc_punct(char32_t c) {
  static const std::u32string list =
      U"-:_*^/\\~`+=\uFF0C\u3002\uFF1A\uFF1F\uFF01\u201C\u201D\uFF1B\u2019\u300A\u300B\u00B7"
      U"\u3001\u300C\u300D\uFF08\uFF09\uFF0D\uFF5E\u300E\u300F";
  return list.find(c) != std::u32string::npos;
}

// Python's str.lower().strip() (lower_cp's letters, ASCII whitespace).
std::vector<char32_t> cmrc_prepare(std::string_view s) {
  std::vector<char32_t> cps = code_points(s);
  for (auto& c : cps) c = lower_cp(c);
  size_t b = 0, e = cps.size();
  while (b < e && is_space(cps[b])) ++b;
  while (e > b && is_space(cps[e - 1])) --e;
  return {cps.begin() + static_cast<std::ptrdiff_t>(b),
          cps.begin() + static_cast<std::ptrdiff_t>(e)};
}

std::string cmrc_remove_punctuation(std::string_view s) {
  std::string out;
  for (char32_t c : cmrc_prepare(s))
    if (!is_cmrc_punct(c)) append_utf8(out, c);
  return out;
}

// Length of the longest common contiguous run of tokens (cmrc2018_evaluate.find_lcs).
size_t longest_common_run(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  std::vector<size_t> prev(b.size() + 1, 0), cur(b.size() + 1, 0);
  size_t best = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    for (size_t j = 0; j < b.size(); ++j) {
      cur[j + 1] = a[i] == b[j] ? prev[j] + 1 : 0;
      best = std::max(best, cur[j + 1]);
    }
    std::swap(prev, cur);
  }
  return best;
}

std::vector<size_t> ranking_order(const std::vector<double>& scores) {
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  return order;
}

}  // namespace

// ---- chunks ---------------------------------------------------------------------------------

std::vector<Chunk> extract_chunks(const std::vector<std::string>& tags) {
  std::vector<Chunk> out;
  std::string prev_tag = "O", prev_type;
  int64_t begin = 0;
  // A trailing "O" closes the last chunk, as seqeval appends one.
  for (size_t i = 0; i <= tags.size(); ++i) {
    std::string tag = "O", type;
    if (i < tags.size()) {
      std::tie(tag, type) = split_tag(tags[i]);
      OAR_CHECK(tag == "B" || tag == "I" || tag == "E" || tag == "S" || tag == "O", "tag '",
                tags[i], "' at position ", i, " has prefix '", tag,
                "' (chunk tags are B-, I-, E-, S- or O)");
    }
    if (end_of_chunk(prev_tag, tag, prev_type, type))
      out.push_back({prev_type, begin, static_cast<int64_t>(i)});
    if (start_of_chunk(prev_tag, tag, prev_type, type)) begin = static_cast<int64_t>(i);
    prev_tag = tag;
    prev_type = type;
  }
  return out;
}

void check_tag_scheme(const std::vector<std::string>& tags, const std::string& scheme) {
  OAR_CHECK(scheme == "auto" || scheme == "BIO" || scheme == "IOB1" || scheme == "BIOES",
            "chunk F1: scheme '", scheme, "' is not one of auto, BIO, IOB1, BIOES");
  for (const std::string& t : tags) {
    const std::string prefix = split_tag(t).first;
    const bool bio = prefix == "B" || prefix == "I" || prefix == "O";
    const bool bioes = bio || prefix == "E" || prefix == "S";
    OAR_CHECK(scheme == "BIOES" || scheme == "auto" ? bioes : bio, "chunk F1: tag '", t,
              "' does not fit the ", scheme == "auto" ? std::string("BIOES") : scheme,
              " scheme (prefixes ",
              scheme == "BIOES" || scheme == "auto" ? "B, I, E, S, O" : "B, I, O", ")");
  }
}

void ChunkCounts::add(const std::vector<std::string>& gold_tags,
                      const std::vector<std::string>& pred_tags) {
  OAR_CHECK(gold_tags.size() == pred_tags.size(), "chunk F1: ", gold_tags.size(), " gold tags but ",
            pred_tags.size(), " predicted");
  const auto g = extract_chunks(gold_tags), p = extract_chunks(pred_tags);
  gold += static_cast<double>(g.size());
  predicted += static_cast<double>(p.size());
  for (const auto& c : p)
    if (std::find(g.begin(), g.end(), c) != g.end()) correct += 1;
}

double ChunkCounts::f1() const {
  return f1_of(precision(), recall());
}

// ---- ranking --------------------------------------------------------------------------------

double reciprocal_rank(const std::vector<double>& scores, const std::vector<int64_t>& labels) {
  OAR_CHECK(scores.size() == labels.size(), "ranking: ", scores.size(), " scores for ",
            labels.size(), " labels");
  const auto order = ranking_order(scores);
  for (size_t r = 0; r < order.size(); ++r)
    if (labels[order[r]] > 0) return 1.0 / static_cast<double>(r + 1);
  return std::numeric_limits<double>::quiet_NaN();
}

double average_precision(const std::vector<double>& scores, const std::vector<int64_t>& labels) {
  OAR_CHECK(scores.size() == labels.size(), "ranking: ", scores.size(), " scores for ",
            labels.size(), " labels");
  const auto order = ranking_order(scores);
  double hits = 0, sum = 0;
  for (size_t r = 0; r < order.size(); ++r)
    if (labels[order[r]] > 0) {
      hits += 1;
      sum += hits / static_cast<double>(r + 1);
    }
  return hits > 0 ? sum / hits : std::numeric_limits<double>::quiet_NaN();
}

// ---- SQuAD ----------------------------------------------------------------------------------

std::string squad_normalize(std::string_view s) {
  std::string t;
  for (char32_t c : code_points(s)) {
    if (c < 0x80 && std::ispunct(static_cast<int>(c))) continue;  // string.punctuation
    append_utf8(t, lower_cp(c));
  }
  auto word = [&](size_t i) {
    const unsigned char c = static_cast<unsigned char>(t[i]);
    return c >= 0x80 || std::isalnum(c) || c == '_';
  };
  std::string u;
  for (size_t i = 0; i < t.size();) {
    if (i == 0 || !word(i - 1)) {
      size_t len = 0;
      for (std::string_view art : {"a", "an", "the"}) {
        if (t.compare(i, art.size(), art) == 0 &&
            (i + art.size() == t.size() || !word(i + art.size()))) {
          len = art.size();
          break;
        }
      }
      if (len > 0) {
        u += ' ';
        i += len;
        continue;
      }
    }
    u += t[i++];
  }
  std::string out;
  for (const auto& w : split_ws(u)) out += (out.empty() ? "" : " ") + w;
  return out;
}

double squad_exact_match(std::string_view prediction, const std::vector<std::string>& golds) {
  const std::vector<std::string> none{""};
  const std::string p = squad_normalize(prediction);
  double best = 0;
  for (const auto& g : golds.empty() ? none : golds)
    best = std::max(best, squad_normalize(g) == p ? 1.0 : 0.0);
  return best;
}

double squad_f1(std::string_view prediction, const std::vector<std::string>& golds) {
  const std::vector<std::string> none{""};
  const auto pt = split_ws(squad_normalize(prediction));
  double best = 0;
  for (const auto& g : golds.empty() ? none : golds) {
    const auto gt = split_ws(squad_normalize(g));
    double f1 = 0;
    if (pt.empty() || gt.empty()) {
      f1 = pt == gt ? 1.0 : 0.0;  // SQuAD 2.0: no-answer against no-answer
    } else {
      std::map<std::string, int> count;
      for (const auto& w : gt) ++count[w];
      double same = 0;
      for (const auto& w : pt)
        if (count[w]-- > 0) same += 1;
      if (same > 0)
        f1 = f1_of(same / static_cast<double>(pt.size()), same / static_cast<double>(gt.size()));
    }
    best = std::max(best, f1);
  }
  return best;
}

// ---- CMRC 2018 ------------------------------------------------------------------------------

std::vector<std::string> cmrc_segments(std::string_view s) {
  std::vector<std::string> out;
  std::string run;
  auto flush = [&] {
    for (auto& w : split_ws(run)) out.push_back(std::move(w));
    run.clear();
  };
  for (char32_t c : cmrc_prepare(s)) {
    if (is_cmrc_punct(c)) continue;
    if (c >= 0x4E00 && c <= 0x9FA5) {
      flush();
      out.emplace_back();
      append_utf8(out.back(), c);
    } else {
      append_utf8(run, c);
    }
  }
  flush();
  return out;
}

double cmrc_exact_match(std::string_view prediction, const std::vector<std::string>& golds) {
  const std::string p = cmrc_remove_punctuation(prediction);
  for (const auto& g : golds)
    if (cmrc_remove_punctuation(g) == p) return 1.0;
  return 0.0;
}

double cmrc_f1(std::string_view prediction, const std::vector<std::string>& golds) {
  const auto ps = cmrc_segments(prediction);
  double best = 0;
  for (const auto& g : golds) {
    const auto gs = cmrc_segments(g);
    const size_t lcs = longest_common_run(gs, ps);
    if (lcs == 0) continue;
    best = std::max(best, f1_of(static_cast<double>(lcs) / static_cast<double>(ps.size()),
                                static_cast<double>(lcs) / static_cast<double>(gs.size())));
  }
  return best;
}

// ---- PrecisionRecallF1 ----------------------------------------------------------------------

PrecisionRecallF1::PrecisionRecallF1(int64_t num_classes, std::vector<int64_t> exclude,
                                     std::string pred_key, std::string label_key)
    : n_(num_classes),
      excluded_(static_cast<size_t>(num_classes), false),
      pred_key_(std::move(pred_key)),
      label_key_(std::move(label_key)) {
  OAR_CHECK(num_classes >= 1, "prf: num_classes must be positive, got ", num_classes);
  for (int64_t c : exclude) {
    OAR_CHECK(c >= 0 && c < n_, "prf: excluded class ", c, " is outside [0, ", n_, ")");
    excluded_[static_cast<size_t>(c)] = true;
  }
  reset();
}

void PrecisionRecallF1::reset() {
  tp_.assign(static_cast<size_t>(n_), 0.0);
  fp_ = fn_ = tp_;
  correct_ = count_ = 0;
}

void PrecisionRecallF1::add(int64_t label, int64_t pred) {
  if (label < 0) return;
  OAR_CHECK(label < n_ && pred >= 0 && pred < n_, "prf: class ", label, " / prediction ", pred,
            " outside [0, ", n_, ")");
  count_ += 1;
  if (label == pred) {
    correct_ += 1;
    tp_[static_cast<size_t>(label)] += 1;
  } else {
    fp_[static_cast<size_t>(pred)] += 1;
    fn_[static_cast<size_t>(label)] += 1;
  }
}

void PrecisionRecallF1::update(const Outputs& outputs, const Batch& batch) {
  const Tensor& out = output(outputs, pred_key_, "prf");
  const Tensor& lt = batch[label_key_];
  const bool scores = is_floating(out.dtype()) && out.dim() == lt.dim() + 1;
  const auto pred = ids_of(scores ? argmax(out.detach().to(Device::cpu()), -1) : out);
  const auto label = ids_of(lt);
  OAR_CHECK(pred.size() == label.size(), "prf: ", pred.size(), " predictions for ", label.size(),
            " labels");
  for (size_t i = 0; i < pred.size(); ++i) add(label[i], pred[i]);
}

std::vector<std::pair<std::string, double>> PrecisionRecallF1::compute() const {
  double mp = 0, mr = 0, mf = 0, k = 0, tp = 0, fp = 0, fn = 0;
  for (size_t c = 0; c < tp_.size(); ++c) {
    if (excluded_[c]) continue;
    const double p = tp_[c] + fp_[c] > 0 ? tp_[c] / (tp_[c] + fp_[c]) : 0.0;
    const double r = tp_[c] + fn_[c] > 0 ? tp_[c] / (tp_[c] + fn_[c]) : 0.0;
    mp += p;
    mr += r;
    mf += f1_of(p, r);
    k += 1;
    tp += tp_[c];
    fp += fp_[c];
    fn += fn_[c];
  }
  const double up = tp + fp > 0 ? tp / (tp + fp) : 0.0, ur = tp + fn > 0 ? tp / (tp + fn) : 0.0;
  k = std::max(k, 1.0);
  return {{"accuracy", count_ > 0 ? correct_ / count_ : 0.0},
          {"macro_precision", mp / k},
          {"macro_recall", mr / k},
          {"macro_f1", mf / k},
          {"micro_precision", up},
          {"micro_recall", ur},
          {"micro_f1", f1_of(up, ur)}};
}

std::vector<double> PrecisionRecallF1::state() const {
  std::vector<double> s{correct_, count_};
  s.insert(s.end(), tp_.begin(), tp_.end());
  s.insert(s.end(), fp_.begin(), fp_.end());
  s.insert(s.end(), fn_.begin(), fn_.end());
  return s;
}

void PrecisionRecallF1::load_state(const std::vector<double>& s) {
  const size_t n = static_cast<size_t>(n_);
  OAR_CHECK(s.size() == 2 + 3 * n, "prf: state of ", s.size(), " numbers, expected ", 2 + 3 * n);
  correct_ = s[0];
  count_ = s[1];
  tp_.assign(s.begin() + 2, s.begin() + 2 + static_cast<std::ptrdiff_t>(n));
  fp_.assign(s.begin() + 2 + static_cast<std::ptrdiff_t>(n),
             s.begin() + 2 + static_cast<std::ptrdiff_t>(2 * n));
  fn_.assign(s.begin() + 2 + static_cast<std::ptrdiff_t>(2 * n), s.end());
}

// ---- ChunkF1 --------------------------------------------------------------------------------

ChunkF1::ChunkF1(std::vector<std::string> tag_names, std::string pred_key, std::string label_key)
    : names_(std::move(tag_names)),
      pred_key_(std::move(pred_key)),
      label_key_(std::move(label_key)) {
  OAR_CHECK(!names_.empty(), "chunk F1: no tag names");
  extract_chunks(names_);  // validates every prefix once, up front
}

void ChunkF1::update(const Outputs& outputs, const Batch& batch) {
  const Tensor& pt = output(outputs, pred_key_, "chunk F1");
  const Tensor& lt = batch[label_key_];
  OAR_CHECK(pt.dim() == 2 && lt.dim() == 2 && pt.size(0) == lt.size(0) && pt.size(1) == lt.size(1),
            "chunk F1: predictions ", shape_str(pt.shape()), " and labels ", shape_str(lt.shape()),
            " must both be [N, W]");
  const auto pred = ids_of(pt), label = ids_of(lt);
  const int64_t n = lt.size(0), w = lt.size(1), k = static_cast<int64_t>(names_.size());
  std::vector<std::string> g, p;
  for (int64_t i = 0; i < n; ++i) {
    g.clear();
    p.clear();
    for (int64_t j = 0; j < w; ++j) {
      const int64_t y = label[static_cast<size_t>(i * w + j)],
                    q = pred[static_cast<size_t>(i * w + j)];
      if (y < 0) break;
      OAR_CHECK(y < k && q >= 0 && q < k, "chunk F1: tag id ", y, " / prediction ", q,
                " outside [0, ", k, ")");
      g.push_back(names_[static_cast<size_t>(y)]);
      p.push_back(names_[static_cast<size_t>(q)]);
    }
    counts_.add(g, p);
  }
}

std::vector<std::pair<std::string, double>> ChunkF1::compute() const {
  return {{"chunk_precision", counts_.precision()},
          {"chunk_recall", counts_.recall()},
          {"chunk_f1", counts_.f1()}};
}

std::vector<double> ChunkF1::state() const {
  return {counts_.correct, counts_.predicted, counts_.gold};
}

void ChunkF1::load_state(const std::vector<double>& s) {
  OAR_CHECK(s.size() == 3, "chunk F1: state of ", s.size(), " numbers, expected 3");
  counts_.correct = s[0];
  counts_.predicted = s[1];
  counts_.gold = s[2];
}

// ---- RankingMetric --------------------------------------------------------------------------

RankingMetric::RankingMetric(std::string score_key, std::string label_key, std::string group_key)
    : score_key_(std::move(score_key)),
      label_key_(std::move(label_key)),
      group_key_(std::move(group_key)) {}

void RankingMetric::add(const std::vector<double>& scores, const std::vector<int64_t>& labels) {
  const double rr = reciprocal_rank(scores, labels);
  if (std::isnan(rr)) return;
  rr_ += rr;
  ap_ += average_precision(scores, labels);
  queries_ += 1;
}

void RankingMetric::update(const Outputs& outputs, const Batch& batch) {
  const auto scores = output(outputs, score_key_, "ranking")
                          .detach()
                          .to(Device::cpu())
                          .to(DType::f32)
                          .contiguous()
                          .to_vector<float>();
  const auto labels = ids_of(batch[label_key_]), groups = ids_of(batch[group_key_]);
  OAR_CHECK(scores.size() == labels.size() && labels.size() == groups.size(),
            "ranking: ", scores.size(), " scores, ", labels.size(), " labels, ", groups.size(),
            " groups");
  std::map<int64_t, std::pair<std::vector<double>, std::vector<int64_t>>> by_group;
  for (size_t i = 0; i < scores.size(); ++i) {
    by_group[groups[i]].first.push_back(scores[i]);
    by_group[groups[i]].second.push_back(labels[i]);
  }
  for (const auto& [g, sl] : by_group) add(sl.first, sl.second);
}

std::vector<std::pair<std::string, double>> RankingMetric::compute() const {
  return {{"mrr", queries_ > 0 ? rr_ / queries_ : 0.0},
          {"map", queries_ > 0 ? ap_ / queries_ : 0.0},
          {"queries", queries_}};
}

void RankingMetric::load_state(const std::vector<double>& s) {
  OAR_CHECK(s.size() == 3, "ranking: state of ", s.size(), " numbers, expected 3");
  rr_ = s[0];
  ap_ = s[1];
  queries_ = s[2];
}

// ---- AnswerMetric ---------------------------------------------------------------------------

void AnswerMetric::add(std::string_view prediction, const std::vector<std::string>& golds) {
  if (form_ == Form::squad) {
    em_ += squad_exact_match(prediction, golds);
    f1_ += squad_f1(prediction, golds);
  } else {
    em_ += cmrc_exact_match(prediction, golds);
    f1_ += cmrc_f1(prediction, golds);
  }
  count_ += 1;
}

std::vector<std::pair<std::string, double>> AnswerMetric::compute() const {
  return {{"em", count_ > 0 ? em_ / count_ : 0.0}, {"f1", count_ > 0 ? f1_ / count_ : 0.0}};
}

void AnswerMetric::load_state(const std::vector<double>& s) {
  OAR_CHECK(s.size() == 3, "answer metric: state of ", s.size(), " numbers, expected 3");
  em_ = s[0];
  f1_ = s[1];
  count_ = s[2];
}

// ---- MaskedLmMetric -------------------------------------------------------------------------

MaskedLmMetric::MaskedLmMetric(std::string logits_key, std::string label_key)
    : logits_key_(std::move(logits_key)), label_key_(std::move(label_key)) {}

void MaskedLmMetric::add(const float* logits, int64_t vocab, int64_t label) {
  OAR_CHECK(label < vocab, "masked_lm: label ", label, " is outside the vocabulary of ", vocab);
  if (label < 0) return;
  int64_t best = 0;
  for (int64_t j = 1; j < vocab; ++j)
    if (logits[j] > logits[best]) best = j;
  double z = 0;
  for (int64_t j = 0; j < vocab; ++j) z += std::exp(double(logits[j]) - double(logits[best]));
  nll_ += std::log(z) + double(logits[best]) - double(logits[label]);
  correct_ += best == label ? 1 : 0;
  count_ += 1;
}

void MaskedLmMetric::update(const Outputs& outputs, const Batch& batch) {
  const Tensor logits = output(outputs, logits_key_, "masked_lm")
                            .detach()
                            .to(Device::cpu())
                            .to(DType::f32)
                            .contiguous();
  const auto labels = ids_of(batch[label_key_]);
  OAR_CHECK(logits.dim() == 2 && logits.size(0) == static_cast<int64_t>(labels.size()),
            "masked_lm: logits ", shape_str(logits.shape()), " for ", labels.size(),
            " labels (expected [M, V])");
  const float* p = logits.data<float>();
  const int64_t v = logits.size(1);
  for (size_t i = 0; i < labels.size(); ++i) add(p + static_cast<int64_t>(i) * v, v, labels[i]);
}

std::vector<std::pair<std::string, double>> MaskedLmMetric::compute() const {
  const double loss = count_ > 0 ? nll_ / count_ : 0.0;
  return {{"masked_accuracy", count_ > 0 ? correct_ / count_ : 0.0},
          {"perplexity", std::exp(loss)},
          {"mlm_loss", loss},
          {"masked_tokens", count_}};
}

void MaskedLmMetric::load_state(const std::vector<double>& s) {
  OAR_CHECK(s.size() == 3, "masked_lm: state of ", s.size(), " numbers, expected 3");
  nll_ = s[0];
  correct_ = s[1];
  count_ = s[2];
}

}  // namespace oar::metrics
