#include "nlp/masking/masked_text.h"

#include <algorithm>
#include <fstream>

#include "engine/core/error.h"
#include "nlp/models/lac.h"

namespace oar::nlp {

namespace {

// The lines of a text file, or the `column` of a TSV file with a header (blank lines kept, so
// line numbers stay right; a TSV's header becomes a blank line).
std::vector<std::string> read_lines(const std::string& path, const std::string& column) {
  std::ifstream in(path, std::ios::binary);
  OAR_CHECK(in, path, ": cannot read");
  std::vector<std::string> lines;
  std::string line;
  size_t col = 0;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!column.empty()) {
      std::vector<std::string> cols;
      for (size_t start = 0;;) {
        const size_t tab = line.find('\t', start);
        cols.push_back(line.substr(start, tab == std::string::npos ? tab : tab - start));
        if (tab == std::string::npos) break;
        start = tab + 1;
      }
      if (lines.empty()) {
        auto it = std::find(cols.begin(), cols.end(), column);
        OAR_CHECK(it != cols.end(), path, ":1: the header '", line, "' has no column '", column,
                  "'");
        col = static_cast<size_t>(it - cols.begin());
        lines.emplace_back();
        continue;
      }
      if (line.empty()) {
        lines.emplace_back();
        continue;
      }
      OAR_CHECK(col < cols.size(), path, ":", lines.size() + 1, ": ", cols.size(), " columns, no '",
                column, "'");
      line = cols[col];
    }
    lines.push_back(std::move(line));
  }
  return lines;
}

bool blank(const std::string& s) {
  return s.find_first_not_of(" \t\r\n") == std::string::npos;
}

// Byte spans of a segmenter's words of two or more characters, found left to right in `text`.
std::vector<std::pair<uint32_t, uint32_t>> word_spans(const std::string& text,
                                                      const std::vector<LacWord>& words) {
  std::vector<std::pair<uint32_t, uint32_t>> spans;
  size_t cursor = 0;
  for (const LacWord& w : words) {
    if (w.text.empty()) continue;
    const size_t at = text.find(w.text, cursor);
    if (at == std::string::npos) continue;  // a character LAC rewrote: no span for this word
    cursor = at + w.text.size();
    if (LacSegmenter::characters(w.text).size() >= 2)
      spans.emplace_back(static_cast<uint32_t>(at), static_cast<uint32_t>(cursor));
  }
  return spans;
}

}  // namespace

MaskedTextDataset::MaskedTextDataset(const std::string& path,
                                     std::shared_ptr<const BertTokenizer> tokenizer,
                                     MaskedTextOptions options)
    : tok_(std::move(tokenizer)), o_(std::move(options)) {
  build(read_lines(path, o_.tsv_column), path);
}

MaskedTextDataset::MaskedTextDataset(const std::vector<std::string>& lines,
                                     std::shared_ptr<const BertTokenizer> tokenizer,
                                     MaskedTextOptions options, const std::string& origin)
    : tok_(std::move(tokenizer)), o_(std::move(options)) {
  build(lines, origin);
}

void MaskedTextDataset::build(const std::vector<std::string>& lines, const std::string& origin) {
  o_.masking.validate();
  OAR_CHECK(o_.max_seq_len >= 3, origin, ": max_seq_len must be at least 3, got ", o_.max_seq_len);
  OAR_CHECK(o_.unit != MaskingUnit::phrase || o_.segmenter || o_.dictionary, origin,
            ": phrase masking needs a segmenter or a phrase dictionary");
  special_ids_ = {tok_->cls_id(), tok_->sep_id(), tok_->pad_id(), tok_->mask_id()};
  const std::string& prefix = tok_->options().continuing_subword_prefix;

  std::vector<size_t> kept;  // line indices with text
  for (size_t i = 0; i < lines.size(); ++i)
    if (!blank(lines[i])) kept.push_back(i);
  OAR_CHECK(!kept.empty(), origin, ": no text (one document or sentence a line)");

  std::vector<std::vector<LacWord>> words;
  if (o_.unit == MaskingUnit::phrase && o_.segmenter) {
    std::vector<std::string> texts;
    for (size_t i : kept) texts.push_back(lines[i]);
    words = o_.segmenter->segment(texts);
  }

  EncodeOptions eo;
  eo.max_length = o_.max_seq_len;
  eo.truncation = Truncation::longest_first;
  for (size_t k = 0; k < kept.size(); ++k) {
    const std::string& text = lines[kept[k]];
    ModelInput mi;
    try {
      mi = tok_->encode_single(text, eo);
    } catch (const Error& e) {
      OAR_FAIL(origin, ":", kept[k] + 1, ": ", e.what());
    }
    if (mi.input_ids.size() <= 2) continue;  // nothing but [CLS] [SEP] (e.g. only control chars)
    const std::vector<uint8_t> special(mi.special_tokens_mask.begin(),
                                       mi.special_tokens_mask.end());
    Row r;
    r.text = text;
    switch (o_.unit) {
      case MaskingUnit::token:
        r.units = token_units(special);
        break;
      case MaskingUnit::whole_word: {
        std::vector<uint8_t> cont(mi.input_ids.size(), 0);
        for (size_t j = 0; j < cont.size(); ++j)
          cont[j] = !special[j] && tok_->vocab().token(mi.input_ids[j]).rfind(prefix, 0) == 0 &&
                    !prefix.empty();
        r.units = whole_word_units(special, cont);
        break;
      }
      case MaskingUnit::phrase: {
        const auto spans = o_.segmenter ? word_spans(text, words[k]) : o_.dictionary->spans(text);
        r.units = span_units(special, mi.offsets, spans);
        break;
      }
    }
    r.ids = std::move(mi.input_ids);
    rows_.push_back(std::move(r));
  }
  OAR_CHECK(!rows_.empty(), origin, ": no line has a token to mask");
}

readers::Example MaskedTextDataset::get(int64_t index, Generator& rng) const {
  const Row& r = rows_[static_cast<size_t>(index)];
  const MaskedSequence m =
      mask_sequence(r.ids, r.units, o_.masking, tok_->mask_id(),
                    static_cast<int32_t>(tok_->vocab().size()), special_ids_, rng);
  const int64_t len = static_cast<int64_t>(r.ids.size());
  readers::Example ex;
  ex.fields["input_ids"] =
      tensor(std::vector<int64_t>(m.input_ids.begin(), m.input_ids.end()), {len});
  ex.fields["mlm_labels"] = tensor(std::vector<int64_t>(m.labels.begin(), m.labels.end()), {len});
  ex.meta = Json::object();
  ex.meta["text"] = r.text;
  return ex;
}

Batch MaskedTextDataset::collate(std::vector<readers::Example>& examples) const {
  const int64_t n = static_cast<int64_t>(examples.size());
  int64_t len = 0;
  for (const auto& e : examples) len = std::max(len, e.fields.at("input_ids").size(0));
  std::vector<int64_t> ids(static_cast<size_t>(n * len), tok_->pad_id()), mask(ids.size(), 0),
      positions, labels;
  for (int64_t i = 0; i < n; ++i) {
    const Tensor& x = examples[static_cast<size_t>(i)].fields.at("input_ids");
    const Tensor& y = examples[static_cast<size_t>(i)].fields.at("mlm_labels");
    const int64_t* xp = x.data<int64_t>();
    const int64_t* yp = y.data<int64_t>();
    for (int64_t j = 0; j < x.size(0); ++j) {
      const int64_t k = i * len + j;
      ids[static_cast<size_t>(k)] = xp[j];
      mask[static_cast<size_t>(k)] = 1;
      if (yp[j] >= 0) {
        positions.push_back(k);
        labels.push_back(yp[j]);
      }
    }
  }
  Batch b;
  b.size = n;
  b.tensors["input_ids"] = tensor(ids, {n, len});
  b.tensors["token_type_ids"] = tensor(std::vector<int64_t>(ids.size(), 0), {n, len});
  b.tensors["attention_mask"] = tensor(mask, {n, len});
  const int64_t m = static_cast<int64_t>(positions.size());
  b.tensors["mlm_positions"] = tensor(positions, {m});
  b.tensors["mlm_labels"] = tensor(labels, {m});
  for (auto& e : examples) b.meta.push_back(std::move(e.meta));
  return b;
}

}  // namespace oar::nlp
