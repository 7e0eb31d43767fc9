// `oar text normalize | tokenize | build-vocab | split | stats`: each streams its input through
// the shared line pipeline (nlp/text/line_pipeline.h) and writes its output atomically.
#include "apps/oar/text_cmd.h"

#ifdef OAR_HAVE_NLP

#include <unistd.h>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>
#include <unordered_map>

#include "engine/core/error.h"
#include "engine/io/atomic_file.h"
#include "engine/io/json.h"
#include "nlp/text/line_pipeline.h"
#include "nlp/text/line_tokenizer.h"
#include "nlp/text/normalize.h"
#include "nlp/text/split.h"
#include "nlp/text/text_stats.h"
#include "nlp/text/tsv_columns.h"
#include "nlp/text/wordpiece_trainer.h"
#include "nlp/tokenizers/basic.h"
#include "nlp/tokenizers/bert_tokenizer.h"
#include "nlp/tokenizers/sentencepiece.h"

namespace oar::app {

namespace {

namespace tx = nlp::text;

// Options every line tool shares.
struct StreamOptions {
  std::vector<std::string> inputs;
  std::string output;
  std::string invalid_utf8 = "replace";
  int threads = 1;
  int batch_size = 256;
  tx::PipelineOptions pipeline() const {
    OAR_CHECK(batch_size >= 1, "--batch-size must be at least 1, got ", batch_size);
    return {tx::resolve_threads(threads), static_cast<size_t>(batch_size)};
  }
};

void add_stream_options(CLI::App* c, StreamOptions& o, bool output = true) {
  c->add_option("inputs", o.inputs, "input files (default: stdin; '-' is stdin)");
  if (output)
    c->add_option("-o,--output", o.output, "output file, written atomically (default: stdout)");
  c->add_option("--invalid-utf8", o.invalid_utf8,
                "replace (U+FFFD), skip (drop the line) or error; reported with file:line")
      ->check(CLI::IsMember({"replace", "skip", "error"}))
      ->default_val("replace");
  c->add_option("--threads", o.threads, "worker threads over lines (0: all cores)")->default_val(1);
  c->add_option("--batch-size", o.batch_size, "lines per worker per block")->default_val(256);
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) out.push_back(item);
  return out;
}

// ---- normalize ----

struct NormalizeCmd {
  StreamOptions io;
  std::string form = "nfc";
  bool keep_full_width = false, keep_control = false, collapse = false;
};

int run_normalize(const NormalizeCmd& o) {
  tx::NormalizeOptions no;
  no.form = tx::parse_normal_form(o.form);
  no.full_to_half = !o.keep_full_width;
  no.drop_control = !o.keep_control;
  no.collapse_whitespace = o.collapse;
  const tx::Normalizer normalizer(no);
  tx::LineReader reader(o.io.inputs, tx::parse_invalid_utf8(o.io.invalid_utf8));
  tx::Output out(o.io.output);
  tx::run_pipeline_to(
      reader, o.io.pipeline(),
      [&](int, const tx::Line& line, std::string& s) {
        normalizer.normalize(line.text, s);
        s += '\n';
      },
      out);
  return 0;
}

// ---- tokenize ----

struct TokenizeCmd {
  StreamOptions io;
  tx::LineTokenizerOptions tok;
  bool cased = false;
  std::string columns;
};

int run_tokenize(TokenizeCmd o) {
  o.tok.lowercase = !o.cased;
  const tx::LineTokenizer tokenizer(o.tok);
  tx::LineReader reader(o.io.inputs, tx::parse_invalid_utf8(o.io.invalid_utf8));
  // With --columns, the first line of every input is a header naming the columns; the output
  // keeps one header (the chosen names) and then the tokens of those columns, TAB-separated.
  std::vector<std::string> specs = split_list(o.columns);
  std::vector<size_t> cols;
  std::string header;
  const std::string* first_file = nullptr;  // identifies the first input even if named twice
  if (!specs.empty()) {
    const tx::Line* h = reader.peek();
    OAR_CHECK(h, "--columns needs a header line, but the input is empty");
    header = h->text;
    first_file = h->file;
    for (const auto& spec : specs) cols.push_back(tx::resolve_column(spec, header, h->where()));
  }
  tx::Output out(o.io.output);
  tx::run_pipeline_to(
      reader, o.io.pipeline(),
      [&](int, const tx::Line& line, std::string& s) {
        if (cols.empty()) {
          tokenizer.tokenize(line.text, s);
          s += '\n';
          return;
        }
        if (line.number == 1) {
          if (line.file != first_file) {
            OAR_CHECK(line.text == header, line.where(), ": header differs from ", *first_file,
                      "'s");
            return;
          }
          for (size_t k = 0; k < cols.size(); ++k)
            (s += k ? "\t" : "") += tx::tsv_field(line.text, cols[k], line.where(), specs[k]);
          s += '\n';
          return;
        }
        for (size_t k = 0; k < cols.size(); ++k) {
          if (k) s += '\t';
          tokenizer.tokenize(tx::tsv_field(line.text, cols[k], line.where(), specs[k]), s);
        }
        s += '\n';
      },
      out);
  return 0;
}

// ---- build-vocab ----

struct BuildVocabCmd {
  StreamOptions io;
  size_t vocab_size = 30000;
  int64_t min_frequency = 0;
  size_t limit_alphabet = 0;
  std::string special = "[PAD],[UNK],[CLS],[SEP],[MASK]";
  bool cased = false;
  bool spm = false;
  std::string spm_type = "unigram";
  double character_coverage = 0.9995;
  int64_t input_sentence_size = 0;
  uint64_t seed = 0;
};

int run_build_vocab(const BuildVocabCmd& o) {
  OAR_CHECK(!o.io.output.empty(),
            "build-vocab needs -o (the vocab file, or with --spm the model "
            "prefix: PREFIX.model and PREFIX.vocab)");
  tx::LineReader reader(o.io.inputs, tx::parse_invalid_utf8(o.io.invalid_utf8));
  if (o.spm) {
    OAR_CHECK(nlp::sentencepiece_available(),
              "this oar was built without libsentencepiece: install libsentencepiece-dev "
              "(scripts/setup does) and reconfigure");
    nlp::SentencePieceTrainOptions so;
    so.model_type = o.spm_type;
    so.vocab_size = static_cast<int>(o.vocab_size);
    so.character_coverage = o.character_coverage;
    so.input_sentence_size = o.input_sentence_size;
    so.seed = o.seed;
    // Trained under a temporary prefix beside the target, then both files renamed: a failed run
    // leaves no half-written model.
    const std::filesystem::path prefix(o.io.output);
    const std::string tmp = o.io.output + ".tmp-" + std::to_string(::getpid());
    try {
      tx::Line line;
      nlp::train_sentencepiece(
          [&](std::string& s) {
            if (!reader.next(line)) return false;
            s = std::move(line.text);
            return true;
          },
          tmp, so);
      reader.report_remaining();
      std::filesystem::rename(tmp + ".vocab", o.io.output + ".vocab");
      std::filesystem::rename(tmp + ".model", o.io.output + ".model");
    } catch (...) {
      std::error_code ec;
      std::filesystem::remove(tmp + ".model", ec);
      std::filesystem::remove(tmp + ".vocab", ec);
      throw;
    }
    return 0;
  }
  nlp::BasicOptions bo;
  bo.lowercase = !o.cased;
  const nlp::BasicTokenizer basic(bo);
  const tx::PipelineOptions po = o.io.pipeline();
  std::vector<std::unordered_map<std::string, int64_t>> counts(static_cast<size_t>(po.threads));
  std::vector<nlp::BasicScratch> scratch(static_cast<size_t>(po.threads));
  tx::run_pipeline(
      reader, po,
      [&](int w, const tx::Line& line, std::string&) {
        auto& sc = scratch[size_t(w)];
        basic.split(line.text, sc);
        for (const nlp::Word& word : sc.words)
          ++counts[size_t(w)][sc.normalized.substr(word.begin, word.end - word.begin)];
      },
      [](std::string_view) {});
  for (size_t w = 1; w < counts.size(); ++w) {
    for (auto& [k, v] : counts[w]) counts[0][k] += v;
    counts[w].clear();
  }
  tx::WordPieceTrainerOptions to;
  to.vocab_size = o.vocab_size;
  to.min_frequency = o.min_frequency;
  to.limit_alphabet = o.limit_alphabet;
  to.special_tokens = split_list(o.special);
  const auto vocab = tx::train_wordpiece(counts[0], to);
  std::string text;
  for (const auto& t : vocab) (text += t) += '\n';
  io::write_file_atomic(o.io.output, text);
  std::fprintf(stderr, "build-vocab: %zu tokens from %zu distinct words\n", vocab.size(),
               counts[0].size());
  return 0;
}

// ---- split ----

struct SplitCmd {
  std::vector<std::string> inputs;
  std::string out_dir;
  std::string ratios = "0.8,0.1,0.1";
  std::string names = "train,dev,test";
  uint64_t seed = 0;
  bool header = false;
  std::string stratify;
  std::string invalid_utf8 = "replace";
};

int run_split(const SplitCmd& o) {
  OAR_CHECK(!o.out_dir.empty(), "split needs --out-dir");
  std::vector<double> ratios;
  for (const auto& r : split_list(o.ratios)) {
    try {
      size_t used = 0;
      ratios.push_back(std::stod(r, &used));
      OAR_CHECK(used == r.size(), "");
    } catch (const std::exception&) {
      OAR_FAIL("--ratios must be comma-separated numbers, got '", o.ratios, "'");
    }
  }
  const auto names = split_list(o.names);
  OAR_CHECK(ratios.size() >= 2 && names.size() == ratios.size(), "--ratios (", ratios.size(),
            " values) and --names (", names.size(), ") must have the same length, at least 2");
  OAR_CHECK(o.stratify.empty() || o.header,
            "--stratify names a column of the header: give --header too");
  tx::LineReader reader(o.inputs, tx::parse_invalid_utf8(o.invalid_utf8));
  // Two passes: count lines per label, then assign each line to a part.
  std::string header, first_file, ext = ".txt";
  size_t label_col = 0;
  const tx::Line* h = reader.peek();
  if (h) {
    first_file = *h->file;
    const auto e = std::filesystem::path(first_file).extension().string();
    if (!e.empty()) ext = e;
    if (o.header) {
      header = h->text;
      if (!o.stratify.empty()) label_col = tx::resolve_column(o.stratify, header, h->where());
    }
  }
  const auto stratum = [&](const tx::Line& line) -> std::string {
    if (o.stratify.empty()) return {};
    return std::string(tx::tsv_field(line.text, label_col, line.where(), o.stratify));
  };
  std::unordered_map<std::string, int64_t> counts;
  tx::Line line;
  while (reader.next(line)) {
    if (o.header && line.number == 1) {
      OAR_CHECK(line.text == header, line.where(), ": header differs from ", first_file, "'s");
      continue;
    }
    ++counts[stratum(line)];
  }
  reader.report_remaining();
  reader.rewind();
  reader.set_quiet(true);
  tx::SplitAssigner assigner(counts, ratios, o.seed);
  std::filesystem::create_directories(o.out_dir);
  std::vector<std::unique_ptr<io::AtomicWriter>> outs;
  for (const auto& n : names) {
    outs.push_back(
        std::make_unique<io::AtomicWriter>(std::filesystem::path(o.out_dir) / (n + ext)));
    if (o.header) outs.back()->write(header + "\n");
  }
  std::vector<int64_t> written(names.size());
  while (reader.next(line)) {
    if (o.header && line.number == 1) continue;
    const size_t part = assigner.assign(stratum(line));
    outs[part]->write(line.text);
    outs[part]->write("\n");
    ++written[part];
  }
  for (auto& w : outs) w->commit();
  for (size_t k = 0; k < names.size(); ++k)
    std::fprintf(stderr, "split: %s%s %lld lines\n", names[k].c_str(), ext.c_str(),
                 static_cast<long long>(written[k]));
  return 0;
}

// ---- stats ----

struct StatsCmd {
  StreamOptions io;
  std::string vocab;
  bool cased = false;
  bool header = false;
  std::string text_column, label_column;
};

Json histogram_summary(const std::map<int64_t, int64_t>& h, int64_t total, int64_t lines) {
  Json j = Json::object();
  j["mean"] = lines ? double(total) / double(lines) : 0.0;
  j["min"] = h.empty() ? int64_t(0) : h.begin()->first;
  for (const int p : {50, 90, 95, 99}) j["p" + std::to_string(p)] = tx::percentile(h, p);
  j["max"] = h.empty() ? int64_t(0) : h.rbegin()->first;
  return j;
}

int run_stats(const StatsCmd& o) {
  OAR_CHECK(o.header || (o.text_column.empty() && o.label_column.empty()),
            "--text-column and --label-column name columns of the header: give --header too");
  std::optional<nlp::BertTokenizer> tok;
  if (!o.vocab.empty()) {
    nlp::BertTokenizerOptions bo;
    bo.do_lower_case = !o.cased;
    tok.emplace(nlp::BertTokenizer::from_file(o.vocab, bo));
  }
  tx::LineReader reader(o.io.inputs, tx::parse_invalid_utf8(o.io.invalid_utf8));
  std::string header, first_file;
  std::optional<size_t> text_col, label_col;
  if (o.header) {
    if (const tx::Line* h = reader.peek()) {
      header = h->text;
      first_file = *h->file;
      if (!o.text_column.empty()) text_col = tx::resolve_column(o.text_column, header, h->where());
      if (!o.label_column.empty())
        label_col = tx::resolve_column(o.label_column, header, h->where());
    }
  }
  const tx::PipelineOptions po = o.io.pipeline();
  std::vector<tx::TextStats> stats(static_cast<size_t>(po.threads));
  std::vector<nlp::BertTokenizer::Scratch> scratch(static_cast<size_t>(po.threads));
  std::vector<nlp::Encoding> encs(static_cast<size_t>(po.threads));
  tx::run_pipeline(
      reader, po,
      [&](int w, const tx::Line& line, std::string&) {
        if (o.header && line.number == 1) {
          OAR_CHECK(line.text == header, line.where(), ": header differs from ", first_file, "'s");
          return;
        }
        tx::TextStats& st = stats[size_t(w)];
        const std::string_view text =
            text_col ? tx::tsv_field(line.text, *text_col, line.where(), o.text_column)
                     : std::string_view(line.text);
        if (label_col)
          ++st.labels[std::string(
              tx::tsv_field(line.text, *label_col, line.where(), o.label_column))];
        if (!tok) {
          st.add(text, tx::count_whitespace_tokens(text));
          return;
        }
        auto& sc = scratch[size_t(w)];
        auto& e = encs[size_t(w)];
        e.ids.clear();
        e.offsets.clear();
        tok->encode(text, e, sc);
        st.add(text, static_cast<int64_t>(e.ids.size()));
        st.words += static_cast<int64_t>(sc.basic.words.size());
        for (const nlp::Word& word : sc.basic.words)
          st.oov_words +=
              tok->vocab().find(
                  std::string_view(sc.basic.normalized).substr(word.begin, word.end - word.begin)) <
              0;
        st.pieces += static_cast<int64_t>(e.ids.size());
        for (const int32_t id : e.ids) st.unk_pieces += id == tok->unk_id();
      },
      [](std::string_view) {});
  for (size_t w = 1; w < stats.size(); ++w) stats[0].merge(stats[w]);
  const tx::TextStats& s = stats[0];
  Json j = Json::object();
  j["lines"] = s.lines;
  j["bytes"] = s.bytes;
  j["chars"] = s.chars;
  j["tokens"] = s.tokens;
  j["token_kind"] = std::string(tok ? "wordpiece" : "whitespace");
  j["invalid_utf8_lines"] = reader.invalid_lines();
  j["chars_per_line"] = histogram_summary(s.char_lengths, s.chars, s.lines);
  j["tokens_per_line"] = histogram_summary(s.token_lengths, s.tokens, s.lines);
  if (label_col) {
    std::vector<std::pair<std::string, int64_t>> labels(s.labels.begin(), s.labels.end());
    std::sort(labels.begin(), labels.end());
    Json l = Json::object();
    for (const auto& [k, v] : labels) l[k] = v;
    j["labels"] = std::move(l);
  }
  if (tok) {
    Json v = Json::object();
    v["vocab"] = o.vocab;
    v["words"] = s.words;
    v["oov_words"] = s.oov_words;
    v["oov_word_rate"] = s.words ? double(s.oov_words) / double(s.words) : 0.0;
    v["pieces"] = s.pieces;
    v["unk_pieces"] = s.unk_pieces;
    v["unk_rate"] = s.pieces ? double(s.unk_pieces) / double(s.pieces) : 0.0;
    j["vocab"] = std::move(v);
  }
  tx::Output out(o.io.output);
  out.write(j.dump(2) + "\n");
  out.commit();
  return 0;
}

}  // namespace

void add_text_tool_commands(CLI::App& text, std::function<int()>& action) {
  {
    auto o = std::make_shared<NormalizeCmd>();
    auto* c = text.add_subcommand(
        "normalize",
        "Unicode NFC/NFKC, full-width to half-width, control characters dropped, optional "
        "whitespace collapsing; one output line per input line, in order");
    add_stream_options(c, o->io);
    c->add_option("--form", o->form, "nfc, nfkc or none")
        ->check(CLI::IsMember({"nfc", "nfkc", "none"}))
        ->default_val("nfc");
    c->add_flag("--keep-full-width", o->keep_full_width,
                "keep full-width ASCII forms (U+FF01-FF5E) and U+3000");
    c->add_flag("--keep-control", o->keep_control, "keep control characters (Cc)");
    c->add_flag("--collapse-whitespace", o->collapse,
                "runs of whitespace (TAB excepted) to one space; fields trimmed");
    c->callback([o, &action] { action = [o] { return run_normalize(*o); }; });
  }
  {
    auto o = std::make_shared<TokenizeCmd>();
    auto* c = text.add_subcommand(
        "tokenize",
        "WordPiece (--vocab) or SentencePiece (--spm) tokens or ids, space-separated, one line per "
        "input line (or per TSV row with --columns), in order");
    add_stream_options(c, o->io);
    c->add_option("--vocab", o->tok.vocab, "WordPiece vocabulary: vocab.txt or ERNIE token<TAB>id");
    c->add_option(
        "--spm", o->tok.spm,
        std::string("SentencePiece .model") +
            (nlp::sentencepiece_available() ? "" : " (this build has no libsentencepiece)"));
    c->add_flag("--cased", o->cased, "WordPiece: keep case and accents (default: lower-case)");
    c->add_flag("--ids", o->tok.ids, "ids instead of tokens");
    c->add_flag("--special", o->tok.special, "WordPiece: [CLS] ... [SEP] around each text");
    c->add_option("--columns", o->columns,
                  "TSV with a header: tokenize these columns (names or 1-based numbers, "
                  "comma-separated, e.g. text_a,text_b); output columns are TAB-separated");
    c->callback([o, &action] { action = [o] { return run_tokenize(*o); }; });
  }
  {
    auto o = std::make_shared<BuildVocabCmd>();
    auto* c = text.add_subcommand(
        "build-vocab",
        "WordPiece vocabulary from a corpus (BERT basic tokenizer, then Hugging Face's WordPiece "
        "trainer), or a SentencePiece model with --spm");
    add_stream_options(c, o->io);
    c->add_option("--vocab-size", o->vocab_size, "tokens in the vocabulary")->default_val(30000);
    c->add_option("--min-frequency", o->min_frequency, "WordPiece: least count of a merged pair")
        ->default_val(0);
    c->add_option("--limit-alphabet", o->limit_alphabet,
                  "WordPiece: keep the N most frequent characters (0: all)")
        ->default_val(0);
    c->add_option("--special-tokens", o->special, "WordPiece: comma-separated, ids 0, 1, ...")
        ->default_val("[PAD],[UNK],[CLS],[SEP],[MASK]");
    c->add_flag("--cased", o->cased, "WordPiece: keep case and accents");
    c->add_flag(
        "--spm", o->spm,
        std::string("train SentencePiece instead: -o PREFIX writes PREFIX.model and "
                    "PREFIX.vocab") +
            (nlp::sentencepiece_available() ? "" : " (this build has no libsentencepiece)"));
    c->add_option("--spm-type", o->spm_type, "unigram or bpe")
        ->check(CLI::IsMember({"unigram", "bpe", "char", "word"}))
        ->default_val("unigram");
    c->add_option("--character-coverage", o->character_coverage,
                  "SentencePiece: share of characters covered (1.0 for small alphabets)")
        ->default_val(0.9995);
    c->add_option("--input-sentence-size", o->input_sentence_size,
                  "SentencePiece: train on a sample of this many lines (0: all)")
        ->default_val(0);
    c->add_option("--seed", o->seed, "SentencePiece: seed of that sample")->default_val(0);
    c->callback([o, &action] { action = [o] { return run_build_vocab(*o); }; });
  }
  {
    auto o = std::make_shared<SplitCmd>();
    auto* c = text.add_subcommand(
        "split",
        "train/dev/test by ratios, seeded, optionally stratified by a label column; two streaming "
        "passes over files (not stdin), exact part sizes");
    c->add_option("inputs", o->inputs, "input files")->required();
    c->add_option("--out-dir", o->out_dir, "directory for NAME.EXT files (EXT of the first input)")
        ->required();
    c->add_option("--ratios", o->ratios, "comma-separated, e.g. 0.8,0.1,0.1")
        ->default_val("0.8,0.1,0.1");
    c->add_option("--names", o->names, "comma-separated part names")->default_val("train,dev,test");
    c->add_option("--seed", o->seed, "random seed")->default_val(0);
    c->add_flag("--header", o->header,
                "the first line of each input is a header, copied to each part");
    c->add_option("--stratify", o->stratify,
                  "label column (name or 1-based number) to stratify by");
    c->add_option("--invalid-utf8", o->invalid_utf8, "replace, skip or error")
        ->check(CLI::IsMember({"replace", "skip", "error"}))
        ->default_val("replace");
    c->callback([o, &action] { action = [o] { return run_split(*o); }; });
  }
  {
    auto o = std::make_shared<StatsCmd>();
    auto* c = text.add_subcommand(
        "stats",
        "line/byte/char/token counts, length percentiles, label distribution, OOV rate against a "
        "vocabulary; JSON");
    add_stream_options(c, o->io);
    c->add_option("--vocab", o->vocab, "WordPiece vocabulary: count WordPiece tokens and OOV");
    c->add_flag("--cased", o->cased, "WordPiece: keep case and accents");
    c->add_flag("--header", o->header, "the first line of each input is a TSV header");
    c->add_option("--text-column", o->text_column,
                  "TSV column holding the text (default: the line)");
    c->add_option("--label-column", o->label_column, "TSV column holding the label");
    c->callback([o, &action] { action = [o] { return run_stats(*o); }; });
  }
}

}  // namespace oar::app

#else

#include <CLI/CLI.hpp>
namespace oar::app {
void add_text_tool_commands(CLI::App&, std::function<int()>&) {}
}  // namespace oar::app

#endif
