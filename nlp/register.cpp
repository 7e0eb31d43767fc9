#include "nlp/register.h"

#include <filesystem>

#include "engine/train/components.h"
#include "metrics/registry.h"
#include "nlp/heads/token_head.h"
#include "nlp/masking/masked_text.h"
#include "nlp/models/bert_pretrained.h"
#include "nlp/models/lac.h"
#include "nlp/readers/query_groups.h"
#include "nlp/readers/squad.h"
#include "nlp/readers/tagged_text.h"
#include "nlp/readers/tsv.h"
#include "nlp/tasks/masked_lm.h"
#include "nlp/tasks/span_extraction.h"
#include "nlp/tasks/text_classification.h"
#include "nlp/tasks/text_matching.h"
#include "nlp/tasks/token_classification.h"
#include "readers/registry.h"

namespace oar::nlp {

namespace {

// `task.metrics`: metric sections from the metric registry ([{name: ...}, ...] or one section)
// that replace a task's default metrics. The task itself is unchanged; this wrapper forwards
// everything else to it.
class NamedMetricsTask : public Task {
 public:
  NamedMetricsTask(std::shared_ptr<Task> task, Config metrics, size_t count)
      : task_(std::move(task)), metrics_(std::move(metrics)), count_(count) {}
  nn::Module& model() override { return task_->model(); }
  Outputs forward(const Batch& batch) override { return task_->forward(batch); }
  Tensor loss(const Outputs& outputs, const Batch& batch) override {
    return task_->loss(outputs, batch);
  }
  std::vector<std::unique_ptr<Metric>> metrics() const override {
    Config c = metrics_;  // make_metric fills defaults in place
    std::vector<std::unique_ptr<Metric>> m;
    for (size_t i = 0; i < count_; ++i)
      m.push_back(metrics::make_metric(c, "metrics[" + std::to_string(i) + "]"));
    return m;
  }
  std::vector<Json> predict(const Outputs& outputs, const Batch& batch) const override {
    return task_->predict(outputs, batch);
  }

 private:
  std::shared_ptr<Task> task_;
  Config metrics_;
  size_t count_;
};

Schema& add_metrics_key(Schema& s, const std::string& defaults) {
  return s.any("metrics",
               "metric sections [{name: ..., ...}] from the metric registry that "
               "replace the defaults (" +
                   defaults + ")");
}

// `task` as is without `task.metrics`, else wrapped so that its metrics come from the config.
// Every section is built once here, so a bad one fails at start-up naming its line; a chunk_f1
// section without labels gets `labels` (the task's tag names) when given.
std::shared_ptr<Task> with_named_metrics(const Config& c, const std::string& k,
                                         std::shared_ptr<Task> task,
                                         const std::vector<std::string>& labels = {}) {
  if (!c.has(k + ".metrics")) return task;
  Config m = c;
  const YAML::Node given = YAML::Clone(m.node(k + ".metrics"));
  // (A fresh node, not assignment: yaml-cpp's operator= writes through to the node it refers to.)
  YAML::Node list(YAML::NodeType::Sequence);
  if (given.IsMap()) list.push_back(given);
  if (given.IsSequence())
    for (const YAML::Node& item : given) list.push_back(item);
  if (list.size() == 0)
    throw c.error(k + ".metrics", "not a metric section or a list of them",
                  "e.g. [{name: chunk_f1, scheme: BIO}]");
  m.set(k + ".metrics", list, c.origin(k + ".metrics"));
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string at = k + ".metrics[" + std::to_string(i) + "]";
    if (!labels.empty() && m.get<std::string>(at + ".name", "") == "chunk_f1" &&
        !m.has(at + ".labels")) {
      YAML::Node names(YAML::NodeType::Sequence);
      for (const std::string& l : labels) names.push_back(l);
      m.set(at + ".labels", names, c.origin(k + ".metrics"));
    }
    metrics::make_metric(m, at);
  }
  Config own = Config::from_string("{}", c.file());
  own.set("metrics", YAML::Clone(m.node(k + ".metrics")), c.origin(k + ".metrics"));
  return std::make_shared<NamedMetricsTask>(std::move(task), std::move(own), list.size());
}

// Architecture keys of `model: {name: bert}`, as Hugging Face's config.json spells them.
const char* const kIntKeys[] = {
    "vocab_size",          "hidden_size",       "num_hidden_layers",
    "num_attention_heads", "intermediate_size", "max_position_embeddings",
    "type_vocab_size",     "pad_token_id",      "task_type_vocab_size"};

const char* const kPretrainedExpected =
    "a Hugging Face BERT directory (config.json + model.safetensors) or an oar checkpoint of a "
    "BERT run (model.safetensors + config.yaml, e.g. a masked_lm run's best/)";

// The architecture keys of `<k>` (a model section without `pretrained`); defaults: bert-base.
BertConfig bert_config_from_keys(const Config& c, const std::string& k) {
  BertConfig bc;
  bc.vocab_size = c.get<int64_t>(k + ".vocab_size", bc.vocab_size);
  bc.hidden_size = c.get<int64_t>(k + ".hidden_size", bc.hidden_size);
  bc.num_hidden_layers = c.get<int64_t>(k + ".num_hidden_layers", bc.num_hidden_layers);
  bc.num_attention_heads = c.get<int64_t>(k + ".num_attention_heads", bc.num_attention_heads);
  bc.intermediate_size = c.get<int64_t>(k + ".intermediate_size", 4 * bc.hidden_size);
  bc.hidden_act = c.get<std::string>(k + ".hidden_act", bc.hidden_act);
  bc.hidden_dropout_prob = c.get<double>(k + ".hidden_dropout_prob", bc.hidden_dropout_prob);
  bc.attention_probs_dropout_prob =
      c.get<double>(k + ".attention_probs_dropout_prob", bc.attention_probs_dropout_prob);
  bc.max_position_embeddings =
      c.get<int64_t>(k + ".max_position_embeddings", bc.max_position_embeddings);
  bc.type_vocab_size = c.get<int64_t>(k + ".type_vocab_size", bc.type_vocab_size);
  bc.layer_norm_eps = c.get<double>(k + ".layer_norm_eps", bc.layer_norm_eps);
  bc.pad_token_id = c.get<int64_t>(k + ".pad_token_id", bc.pad_token_id);
  bc.use_task_id = c.get<bool>(k + ".use_task_id", bc.use_task_id);
  bc.task_type_vocab_size = c.get<int64_t>(k + ".task_type_vocab_size", bc.task_type_vocab_size);
  try {
    bc.validate();
  } catch (const Error& e) {
    throw c.error(k, e.what(), "consistent BERT sizes");
  }
  return bc;
}

// The architecture of a `pretrained:` directory: a Hugging Face directory's config.json, or for
// an oar checkpoint (best/ or ckpt/step-N/ of a run whose model was `bert`) the model section of
// the config.yaml saved beside its weights, followed through that run's own `pretrained`.
BertConfig pretrained_bert_config(const std::string& dir, int depth = 0) {
  namespace fs = std::filesystem;
  const fs::path d(dir);
  if (fs::exists(d / "config.json")) return BertConfig::from_file((d / "config.json").string());
  OAR_CHECK(fs::exists(d / "config.yaml"), dir,
            ": neither config.json (Hugging Face) nor config.yaml (an oar checkpoint) is there");
  OAR_CHECK(depth < 8, dir, ": `pretrained` directories refer to each other in a loop");
  Config run = Config::load(d / "config.yaml");
  const std::string name = run.get<std::string>("model.name", "");
  OAR_CHECK(name == "bert", (d / "config.yaml").string(), ": model.name is '", name, "', not bert");
  std::string inner = run.get<std::string>("model.pretrained", "");
  if (!inner.empty() && fs::path(inner).is_relative() && !fs::exists(inner))
    inner = (d / inner).string();  // saved configs hold absolute paths; a hand-written one may not
  BertConfig bc = inner.empty() ? bert_config_from_keys(run, "model")
                                : pretrained_bert_config(inner, depth + 1);
  bc.hidden_dropout_prob = run.get<double>("model.hidden_dropout_prob", bc.hidden_dropout_prob);
  bc.attention_probs_dropout_prob =
      run.get<double>("model.attention_probs_dropout_prob", bc.attention_probs_dropout_prob);
  return bc;
}

void register_bert() {
  Schema s("model", "bert",
           "BERT / ERNIE encoder (post-LN Transformer; Hugging Face BertModel names). Either "
           "`pretrained: DIR` (config.json + model.safetensors + vocab.txt) or the architecture "
           "keys (defaults: bert-base)");
  s.path("pretrained", "",
         "a Hugging Face BERT directory to load (its config.json decides the "
         "architecture; only the dropout keys may override it), or an oar checkpoint of a BERT "
         "run (best/ or ckpt/step-N/ with config.yaml, e.g. after masked_lm further training)")
      .optional<int64_t>("vocab_size", "tokens (default 30522; ERNIE 1.0: 18000)")
      .optional<int64_t>("hidden_size", "width H (default 768)")
      .optional<int64_t>("num_hidden_layers", "layers (default 12)")
      .optional<int64_t>("num_attention_heads", "heads; H must be a multiple (default 12)")
      .optional<int64_t>("intermediate_size", "feed-forward width (default 4H)")
      .optional<std::string>("hidden_act", "gelu (erf), gelu_new (tanh) or relu (ERNIE 1.0)")
      .choices({"gelu", "gelu_new", "gelu_pytorch_tanh", "relu"})
      .optional<double>("hidden_dropout_prob", "dropout after embeddings and sublayers (0.1)")
      .range(0, 0.99)
      .optional<double>("attention_probs_dropout_prob", "dropout on attention weights (0.1)")
      .range(0, 0.99)
      .optional<int64_t>("max_position_embeddings", "positions (default 512; ERNIE 1.0: 513)")
      .optional<int64_t>("type_vocab_size", "token types (default 2)")
      .optional<double>("layer_norm_eps", "LayerNorm epsilon (default 1e-12; ERNIE: 1e-5)")
      .optional<int64_t>("pad_token_id", "padding token id (default 0)")
      .optional<bool>("use_task_id", "ERNIE 2.0/3.0 task-type embedding (default false)")
      .optional<int64_t>("task_type_vocab_size", "task types when use_task_id (default 3)");
  models().add(s, [](const Config& c, const std::string& k, ModelContext ctx) {
    const std::string dir = c.get<std::string>(k + ".pretrained", "");
    if (!dir.empty()) {
      for (const char* key : kIntKeys)
        if (c.has(k + "." + key))
          throw c.error(k + "." + key, "set by " + dir + "'s configuration",
                        "remove it, or drop `pretrained` to build a fresh model");
      for (const char* key : {"hidden_act", "layer_norm_eps", "use_task_id"})
        if (c.has(k + "." + key))
          throw c.error(k + "." + key, "set by " + dir + "'s configuration",
                        "remove it, or drop `pretrained` to build a fresh model");
      BertConfig bc;
      try {
        bc = pretrained_bert_config(dir);
      } catch (const Error& e) {
        throw c.error(k + ".pretrained", e.what(), kPretrainedExpected);
      }
      bc.hidden_dropout_prob = c.get<double>(k + ".hidden_dropout_prob", bc.hidden_dropout_prob);
      bc.attention_probs_dropout_prob =
          c.get<double>(k + ".attention_probs_dropout_prob", bc.attention_probs_dropout_prob);
      auto model = std::make_shared<BertModel>(bc, ctx.init_generator);
      try {
        load_hf_bert_weights(*model, dir + "/model.safetensors");
      } catch (const Error& e) {
        throw c.error(k + ".pretrained", e.what(), kPretrainedExpected);
      }
      return model;
    }
    return std::make_shared<BertModel>(bert_config_from_keys(c, k), ctx.init_generator);
  });
}

void register_text_classification() {
  Schema s("task", "text_classification",
           "pooled [CLS] -> dropout -> linear; cross entropy against batch[\"label\"]; accuracy");
  s.key<int64_t>("num_classes", 2, "classes")
      .range(2, 1000000)
      .key<double>("dropout", 0.1, "dropout before the classifier")
      .range(0, 0.99)
      .optional<std::vector<std::string>>("class_names", "names of the classes, in label order");
  add_metrics_key(s, "accuracy top-1; e.g. {name: prf, num_classes: 2}");
  tasks().add(
      s,
      [](const Config& c, const std::string& k,
         std::shared_ptr<nn::Module> model) -> std::shared_ptr<Task> {
        TextClassificationOptions o;
        o.num_classes = c.get<int64_t>(k + ".num_classes");
        o.dropout = c.get<double>(k + ".dropout");
        o.class_names = c.get<std::vector<std::string>>(k + ".class_names", {});
        if (!o.class_names.empty() && static_cast<int64_t>(o.class_names.size()) != o.num_classes)
          throw c.error(k + ".class_names",
                        std::to_string(o.class_names.size()) + " class names for " +
                            std::to_string(o.num_classes) + " classes",
                        "one name per class");
        std::shared_ptr<Task> task;
        try {
          task = std::make_shared<TextClassificationTask>(std::move(model), o);
        } catch (const Error& e) {
          throw c.error("model.name", e.what(), "a text encoder such as bert");
        }
        return with_named_metrics(c, k, std::move(task));
      });
}

// The tokenizer of a text reader: `vocab` (a vocab.txt or a Hugging Face model directory) and
// `do_lower_case`.
std::shared_ptr<BertTokenizer> load_tokenizer(const Config& c, const std::string& k) {
  const std::string vocab = c.get<std::string>(k + ".vocab");
  try {
    if (std::filesystem::is_directory(vocab)) {
      BertTokenizerOptions o = hf_tokenizer_options(vocab);
      o.do_lower_case = c.get<bool>(k + ".do_lower_case", o.do_lower_case);
      return std::make_shared<BertTokenizer>(BertTokenizer::from_file(vocab + "/vocab.txt", o));
    }
    BertTokenizerOptions o;
    o.do_lower_case = c.get<bool>(k + ".do_lower_case", true);
    return std::make_shared<BertTokenizer>(BertTokenizer::from_file(vocab, o));
  } catch (const Error& e) {
    throw c.error(k + ".vocab", e.what(), "a BERT vocab.txt or model directory");
  }
}

Schema& add_tokenizer_keys(Schema& s) {
  return s
      .required_path("vocab",
                     "vocab.txt, or a Hugging Face model directory (vocab.txt and "
                     "tokenizer_config.json)")
      .optional<bool>("do_lower_case",
                      "lower-case and strip accents (default: the directory's "
                      "tokenizer_config.json, else true)");
}

void register_tsv() {
  Schema s("reader", "tsv",
           "tab-separated text with a header (text_a, optional text_b, label), tokenized by "
           "BERT's WordPiece; batches padded to their longest example");
  s.required_path("file", "the .tsv file")
      .required_path("vocab",
                     "vocab.txt, or a Hugging Face model directory (vocab.txt and "
                     "tokenizer_config.json)")
      .optional<bool>("do_lower_case",
                      "lower-case and strip accents (default: the directory's "
                      "tokenizer_config.json, else true)")
      .key<int64_t>("max_seq_len", 128, "tokens per example including [CLS] and [SEP]")
      .range(3, 100000)
      .optional<std::vector<std::string>>("labels",
                                          "label names in class order (the label column holds "
                                          "names); absent: it holds class indices");
  readers::add_loader_keys(s);
  readers::set_input_key("tsv", "file");
  readers::datasets().add(s, [](const Config& c, const std::string& k, readers::DataContext) {
    auto tok = load_tokenizer(c, k);
    TsvOptions o;
    o.max_seq_len = static_cast<size_t>(c.get<int64_t>(k + ".max_seq_len"));
    o.labels = c.get<std::vector<std::string>>(k + ".labels", {});
    try {
      return std::make_shared<TsvTextDataset>(c.get<std::string>(k + ".file"), tok, o);
    } catch (const Error& e) {
      throw c.error(k + ".file", e.what(), "a TSV file with a text_a column");
    }
  });
}

void register_token_classification() {
  Schema s("task", "token_classification",
           "token classification (NER): sequence output -> dropout -> linear emissions at each "
           "word's first sub-token; head softmax (cross entropy, argmax); chunk F1 (conlleval "
           "rules) and word-level P/R/F1");
  s.required<std::vector<std::string>>("labels", "tag names in id order (B-X/I-X[/E-X/S-X] and O)")
      .key<std::string>("head", "softmax", "the tagging head")
      .choices(token_head_kinds())
      .key<double>("dropout", 0.1, "dropout before the classifier")
      .range(0, 0.99);
  add_metrics_key(s, "chunk_f1 and prf without O; chunk_f1 gets task.labels");
  tasks().add(s,
              [](const Config& c, const std::string& k,
                 std::shared_ptr<nn::Module> model) -> std::shared_ptr<Task> {
                TokenClassificationOptions o;
                o.labels = c.get<std::vector<std::string>>(k + ".labels");
                o.head = c.get<std::string>(k + ".head");
                o.dropout = c.get<double>(k + ".dropout");
                std::shared_ptr<Task> task;
                try {
                  task = std::make_shared<TokenClassificationTask>(std::move(model), o);
                } catch (const Error& e) {
                  throw c.error(k, e.what(), "a text encoder model and chunk tags including O");
                }
                return with_named_metrics(c, k, std::move(task), o.labels);
              });
}

void register_span_extraction() {
  Schema s("task", "span_extraction",
           "extractive QA: linear start/end logits; mean of start and end cross entropy; n-best "
           "answers across doc-stride windows; EM and F1");
  s.key<int64_t>("n_best", 20, "start and end candidates per window (and answers kept)")
      .range(1, 1000)
      .key<int64_t>("max_answer_length", 30, "longest answer in tokens")
      .range(1, 100000)
      .key<bool>("allow_impossible", false,
                 "SQuAD 2.0: answer nothing when the [CLS] score beats the best span")
      .key<double>("null_score_diff_threshold", 0.0,
                   "with allow_impossible: answer nothing when null - best > this")
      .key<std::string>("metric", "squad",
                        "squad (English normalisation) or cmrc (CMRC 2018 Chinese form)")
      .choices({"squad", "cmrc"});
  tasks().add(s, [](const Config& c, const std::string& k, std::shared_ptr<nn::Module> model) {
    SpanExtractionOptions o;
    o.decode.n_best = c.get<int64_t>(k + ".n_best");
    o.decode.max_answer_length = c.get<int64_t>(k + ".max_answer_length");
    o.decode.allow_impossible = c.get<bool>(k + ".allow_impossible");
    o.decode.null_score_diff_threshold = c.get<double>(k + ".null_score_diff_threshold");
    o.form = c.get<std::string>(k + ".metric") == "cmrc" ? metrics::AnswerMetric::Form::cmrc
                                                         : metrics::AnswerMetric::Form::squad;
    try {
      return std::make_shared<SpanExtractionTask>(std::move(model), o);
    } catch (const Error& e) {
      throw c.error("model.name", e.what(), "a text encoder such as bert");
    }
  });
}

void register_text_matching() {
  Schema s("task", "text_matching",
           "text matching on query groups: sigmoid(linear(pooled [CLS])) scores each (query, "
           "candidate) pair; pairwise hinge loss with a margin over (relevant, irrelevant) pairs, "
           "or pointwise binary cross entropy; MRR and MAP per query");
  s.key<std::string>("mode", "pairwise", "pairwise (hinge) or pointwise (cross entropy)")
      .choices({"pairwise", "pointwise"})
      .key<double>("margin", 0.1, "pairwise: hinge margin on score(positive) - score(negative)")
      .range(1e-6, 1)
      .key<double>("dropout", 0.1, "dropout before the scorer")
      .range(0, 0.99);
  add_metrics_key(s, "ranking: mrr, map");
  tasks().add(s,
              [](const Config& c, const std::string& k,
                 std::shared_ptr<nn::Module> model) -> std::shared_ptr<Task> {
                TextMatchingOptions o;
                o.mode = c.get<std::string>(k + ".mode") == "pointwise"
                             ? TextMatchingOptions::Mode::pointwise
                             : TextMatchingOptions::Mode::pairwise;
                o.margin = c.get<double>(k + ".margin");
                o.dropout = c.get<double>(k + ".dropout");
                std::shared_ptr<Task> task;
                try {
                  task = std::make_shared<TextMatchingTask>(std::move(model), o);
                } catch (const Error& e) {
                  throw c.error("model.name", e.what(), "a text encoder such as bert");
                }
                return with_named_metrics(c, k, std::move(task));
              });
}

void register_tagged_text(const std::string& name, TagFormat format, const std::string& doc) {
  Schema s("reader", name, doc);
  s.required_path("file", "the data file");
  add_tokenizer_keys(s)
      .key<int64_t>("max_seq_len", 128,
                    "tokens per sentence including [CLS] and [SEP]; words past it are tagged O")
      .range(3, 100000)
      .optional<std::vector<std::string>>("labels", "tag names in id order (default: task.labels)");
  readers::add_loader_keys(s);
  readers::set_input_key(name, "file");
  readers::datasets().add(s, [format](const Config& c, const std::string& k, readers::DataContext) {
    auto tok = load_tokenizer(c, k);
    TaggedTextOptions o;
    o.format = format;
    o.max_seq_len = static_cast<size_t>(c.get<int64_t>(k + ".max_seq_len"));
    const std::string labels_key = c.has(k + ".labels") ? k + ".labels" : "task.labels";
    if (!c.has(labels_key))
      throw c.error(k + ".labels", "no tag names here or in task.labels",
                    "labels: [B-PER, I-PER, ..., O]");
    o.labels = c.get<std::vector<std::string>>(labels_key);
    try {
      return std::make_shared<TaggedTextDataset>(c.get<std::string>(k + ".file"), tok, o);
    } catch (const Error& e) {
      throw c.error(k + ".file", e.what(),
                    format == TagFormat::msra
                        ? "characters and tags joined by \\x02, a tab between"
                        : "CoNLL columns: word ... tag, blank line between sentences");
    }
  });
}

void register_squad() {
  Schema s("reader", "squad",
           "SQuAD v1.1/v2.0 or CMRC 2018 JSON; one example per question with doc-stride "
           "windows over the context");
  s.required_path("file", "the .json file");
  add_tokenizer_keys(s)
      .key<int64_t>("max_seq_len", 384, "tokens per window including [CLS] and two [SEP]")
      .range(8, 100000)
      .key<int64_t>("doc_stride", 128, "tokens between the starts of consecutive windows")
      .range(1, 100000)
      .key<int64_t>("max_query_len", 64, "question tokens kept")
      .range(1, 100000);
  readers::add_loader_keys(s);
  readers::set_input_key("squad", "file");
  readers::datasets().add(s, [](const Config& c, const std::string& k, readers::DataContext) {
    auto tok = load_tokenizer(c, k);
    SquadOptions o;
    o.max_seq_len = static_cast<size_t>(c.get<int64_t>(k + ".max_seq_len"));
    o.doc_stride = static_cast<size_t>(c.get<int64_t>(k + ".doc_stride"));
    o.max_query_len = static_cast<size_t>(c.get<int64_t>(k + ".max_query_len"));
    try {
      return std::make_shared<SquadDataset>(c.get<std::string>(k + ".file"), tok, o);
    } catch (const Error& e) {
      throw c.error(k + ".file", e.what(), "SQuAD-format JSON");
    }
  });
}

void register_query_groups() {
  Schema s("reader", "query_groups",
           "TSV of (qid, text_a, text_b, label) rows grouped by query, or (text_a, text_pos, "
           "text_neg) triplets; one example per query");
  s.required_path("file", "the .tsv file");
  add_tokenizer_keys(s)
      .key<int64_t>("max_seq_len", 128, "tokens per pair including [CLS] and two [SEP]")
      .range(3, 100000);
  readers::add_loader_keys(s);
  readers::set_input_key("query_groups", "file");
  readers::datasets().add(s, [](const Config& c, const std::string& k, readers::DataContext) {
    auto tok = load_tokenizer(c, k);
    QueryGroupOptions o;
    o.max_seq_len = static_cast<size_t>(c.get<int64_t>(k + ".max_seq_len"));
    try {
      return std::make_shared<QueryGroupDataset>(c.get<std::string>(k + ".file"), tok, o);
    } catch (const Error& e) {
      throw c.error(k + ".file", e.what(), "a TSV file with a text_a column");
    }
  });
}

void register_masked_lm() {
  Schema s("task", "masked_lm",
           "masked-LM pre-training / further training: hidden states at the masked positions -> "
           "cls.predictions (transform, logits tied to the word embeddings) -> cross entropy; "
           "masked-token accuracy and perplexity. With model.pretrained, a checkpoint's "
           "cls.predictions.* tensors are loaded when it has them");
  s.key<int64_t>("top_k", 5, "predictions per masked token written by predict")
      .range(1, 1000)
      .key<int64_t>("init_seed", 0, "seed of the head's N(0, 0.02) initialisation")
      .range(0, INT64_MAX);
  add_metrics_key(s, "masked_lm: masked_accuracy, perplexity");
  tasks().add(
      s,
      [](const Config& c, const std::string& k,
         std::shared_ptr<nn::Module> model) -> std::shared_ptr<Task> {
        MaskedLmOptions o;
        o.top_k = c.get<int64_t>(k + ".top_k");
        o.init_seed = static_cast<uint64_t>(c.get<int64_t>(k + ".init_seed"));
        std::shared_ptr<MaskedLmTask> task;
        try {
          task = std::make_shared<MaskedLmTask>(std::move(model), o);
        } catch (const Error& e) {
          throw c.error("model.name", e.what(), "a BERT/ERNIE encoder (model: {name: bert})");
        }
        const std::string dir = c.get<std::string>("model.pretrained", "");
        if (!dir.empty()) {
          try {
            load_hf_mlm_head(task->head(), dir + "/model.safetensors");
          } catch (const Error& e) {
            throw c.error("model.pretrained", e.what(), "a checkpoint whose cls.predictions fit");
          }
        }
        return with_named_metrics(c, k, std::move(task));
      });
}

void register_masked_text() {
  Schema s("reader", "masked_text",
           "plain text for masked-LM training, one document or sentence a line; tokenized by "
           "BERT's WordPiece and masked per draw from the loader's seeded generator (BERT's "
           "mask_prob with 80/10/10 [MASK]/random/keep; token, whole-word or phrase units)");
  s.required_path("file", "the text file");
  add_tokenizer_keys(s)
      .key<int64_t>("max_seq_len", 128, "tokens per line including [CLS] and [SEP]")
      .range(3, 100000)
      .key<std::string>("tsv_column", "",
                        "read this column of a TSV file with a header instead of plain lines")
      .key<std::string>("masking", "token",
                        "token (each WordPiece), whole_word (a word's pieces together) or phrase "
                        "(spans from `segmenter` or `phrase_dictionary` together)")
      .choices({"token", "whole_word", "phrase"})
      .key<double>("mask_prob", 0.15, "chance that a unit is masked")
      .range(0.001, 1)
      .key<double>("replace_mask", 0.8, "of masked tokens: share replaced by [MASK]")
      .range(0, 1)
      .key<double>("replace_random", 0.1, "of masked tokens: share replaced by a random token")
      .range(0, 1)
      .path("segmenter", "",
            "phrase masking: a Baidu LAC directory (jieba's lac_small); its words and entities "
            "of two or more characters are the phrases")
      .path("phrase_dictionary", "",
            "phrase masking: a phrase list, the first field of each line (jieba's dict.txt), "
            "matched longest-first");
  readers::add_loader_keys(s);
  readers::set_input_key("masked_text", "file");
  readers::datasets().add(s, [](const Config& c, const std::string& k, readers::DataContext) {
    auto tok = load_tokenizer(c, k);
    MaskedTextOptions o;
    o.max_seq_len = static_cast<size_t>(c.get<int64_t>(k + ".max_seq_len"));
    o.tsv_column = c.get<std::string>(k + ".tsv_column");
    const std::string unit = c.get<std::string>(k + ".masking");
    o.unit = unit == "whole_word" ? MaskingUnit::whole_word
             : unit == "phrase"   ? MaskingUnit::phrase
                                  : MaskingUnit::token;
    o.masking.mask_prob = c.get<double>(k + ".mask_prob");
    o.masking.replace_mask = c.get<double>(k + ".replace_mask");
    o.masking.replace_random = c.get<double>(k + ".replace_random");
    if (o.masking.replace_mask + o.masking.replace_random > 1)
      throw c.error(k + ".replace_random", "replace_mask + replace_random exceeds 1",
                    "shares that sum to at most 1 (the rest keeps the token)");
    const std::string seg = c.get<std::string>(k + ".segmenter", "");
    const std::string dict = c.get<std::string>(k + ".phrase_dictionary", "");
    if (o.unit == MaskingUnit::phrase) {
      if (seg.empty() == dict.empty())
        throw c.error(k + ".masking", "phrase masking needs exactly one phrase source",
                      "segmenter: LAC_DIR or phrase_dictionary: FILE");
      try {
        if (!seg.empty()) o.segmenter = std::make_shared<LacSegmenter>(LacSegmenter::load(seg));
      } catch (const Error& e) {
        throw c.error(k + ".segmenter", e.what(),
                      "a LAC directory (word.dic, tag.dic, "
                      "model_baseline/)");
      }
      try {
        if (!dict.empty())
          o.dictionary = std::make_shared<PhraseDictionary>(PhraseDictionary::load(dict));
      } catch (const Error& e) {
        throw c.error(k + ".phrase_dictionary", e.what(), "one phrase a line");
      }
    } else if (!seg.empty() || !dict.empty()) {
      throw c.error(k + (seg.empty() ? ".phrase_dictionary" : ".segmenter"),
                    "a phrase source is only used by masking: phrase", "masking: phrase");
    }
    try {
      return std::make_shared<MaskedTextDataset>(c.get<std::string>(k + ".file"), tok, o);
    } catch (const Error& e) {
      throw c.error(k + ".file", e.what(), "plain text, one document or sentence a line");
    }
  });
}

}  // namespace

void register_components() {
  static bool done = false;
  if (done) return;
  done = true;
  readers::register_components();
  register_bert();
  register_text_classification();
  register_tsv();
  register_token_classification();
  register_span_extraction();
  register_text_matching();
  register_tagged_text(
      "msra_ner", TagFormat::msra,
      "ERNIE/PaddleNLP MSRA-NER lines: characters joined by \\x02, a tab, the tags "
      "joined by \\x02 (optional text_a/label header)");
  register_tagged_text("conll", TagFormat::conll,
                       "CoNLL column files: a token per line (word first, tag last), blank lines "
                       "between sentences, -DOCSTART- skipped");
  register_squad();
  register_query_groups();
  register_lac_model();
  register_masked_lm();
  register_masked_text();
}

}  // namespace oar::nlp
