#include "nlp/register.h"

#include <filesystem>

#include "engine/train/components.h"
#include "nlp/models/bert_pretrained.h"
#include "nlp/models/lac.h"
#include "nlp/readers/tsv.h"
#include "nlp/tasks/text_classification.h"
#include "readers/registry.h"

namespace oar::nlp {

namespace {

// Architecture keys of `model: {name: bert}`, as Hugging Face's config.json spells them.
const char* const kIntKeys[] = {
    "vocab_size",          "hidden_size",       "num_hidden_layers",
    "num_attention_heads", "intermediate_size", "max_position_embeddings",
    "type_vocab_size",     "pad_token_id",      "task_type_vocab_size"};

void register_bert() {
  Schema s("model", "bert",
           "BERT / ERNIE encoder (post-LN Transformer; Hugging Face BertModel names). Either "
           "`pretrained: DIR` (config.json + model.safetensors + vocab.txt) or the architecture "
           "keys (defaults: bert-base)");
  s.path("pretrained", "",
         "a Hugging Face BERT directory to load (its config.json decides the "
         "architecture; only the dropout keys may override it)")
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
          throw c.error(k + "." + key, "set by " + dir + "/config.json",
                        "remove it, or drop `pretrained` to build a fresh model");
      for (const char* key : {"hidden_act", "layer_norm_eps", "use_task_id"})
        if (c.has(k + "." + key))
          throw c.error(k + "." + key, "set by " + dir + "/config.json",
                        "remove it, or drop `pretrained` to build a fresh model");
      BertConfig bc;
      try {
        bc = BertConfig::from_file(dir + "/config.json");
      } catch (const Error& e) {
        throw c.error(k + ".pretrained", e.what(), "a Hugging Face BERT directory");
      }
      bc.hidden_dropout_prob = c.get<double>(k + ".hidden_dropout_prob", bc.hidden_dropout_prob);
      bc.attention_probs_dropout_prob =
          c.get<double>(k + ".attention_probs_dropout_prob", bc.attention_probs_dropout_prob);
      auto model = std::make_shared<BertModel>(bc, ctx.init_generator);
      try {
        load_hf_bert_weights(*model, dir + "/model.safetensors");
      } catch (const Error& e) {
        throw c.error(k + ".pretrained", e.what(), "a Hugging Face BERT directory");
      }
      return model;
    }
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
    return std::make_shared<BertModel>(bc, ctx.init_generator);
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
  tasks().add(s, [](const Config& c, const std::string& k, std::shared_ptr<nn::Module> model) {
    TextClassificationOptions o;
    o.num_classes = c.get<int64_t>(k + ".num_classes");
    o.dropout = c.get<double>(k + ".dropout");
    o.class_names = c.get<std::vector<std::string>>(k + ".class_names", {});
    if (!o.class_names.empty() && static_cast<int64_t>(o.class_names.size()) != o.num_classes)
      throw c.error(k + ".class_names",
                    std::to_string(o.class_names.size()) + " class names for " +
                        std::to_string(o.num_classes) + " classes",
                    "one name per class");
    try {
      return std::make_shared<TextClassificationTask>(std::move(model), o);
    } catch (const Error& e) {
      throw c.error("model.name", e.what(), "a text encoder such as bert");
    }
  });
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
    const std::string vocab = c.get<std::string>(k + ".vocab");
    std::shared_ptr<BertTokenizer> tok;
    try {
      if (std::filesystem::is_directory(vocab)) {
        BertTokenizerOptions o = hf_tokenizer_options(vocab);
        o.do_lower_case = c.get<bool>(k + ".do_lower_case", o.do_lower_case);
        tok = std::make_shared<BertTokenizer>(BertTokenizer::from_file(vocab + "/vocab.txt", o));
      } else {
        BertTokenizerOptions o;
        o.do_lower_case = c.get<bool>(k + ".do_lower_case", true);
        tok = std::make_shared<BertTokenizer>(BertTokenizer::from_file(vocab, o));
      }
    } catch (const Error& e) {
      throw c.error(k + ".vocab", e.what(), "a BERT vocab.txt or model directory");
    }
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

}  // namespace

void register_components() {
  static bool done = false;
  if (done) return;
  done = true;
  readers::register_components();
  register_bert();
  register_text_classification();
  register_tsv();
  register_lac_model();
}

}  // namespace oar::nlp
