#include "nlp/text/line_tokenizer.h"

#include <charconv>
#include <optional>

#include "engine/core/error.h"
#include "nlp/tokenizers/bert_tokenizer.h"
#include "nlp/tokenizers/sentencepiece.h"

namespace oar::nlp::text {

struct LineTokenizer::Impl {
  std::optional<BertTokenizer> bert;
  std::optional<SentencePiece> spm;
};

LineTokenizer::LineTokenizer(const LineTokenizerOptions& options)
    : options_(options), impl_(std::make_unique<Impl>()) {
  OAR_CHECK(options.vocab.empty() != options.spm.empty(),
            "give exactly one of --vocab (WordPiece) and --spm (SentencePiece model)");
  if (!options.vocab.empty()) {
    BertTokenizerOptions bo;
    bo.do_lower_case = options.lowercase;
    impl_->bert.emplace(BertTokenizer::from_file(options.vocab, bo));
  } else {
    OAR_CHECK(!options.special, "--special applies to WordPiece (--vocab) only");
    impl_->spm.emplace(SentencePiece::load(options.spm));
  }
}

LineTokenizer::~LineTokenizer() = default;

void LineTokenizer::tokenize(std::string_view text, std::string& out) const {
  bool first = true;
  const auto put = [&](std::string_view s) {
    if (!first) out += ' ';
    first = false;
    out += s;
  };
  const auto put_number = [&](int32_t id) {
    char buf[16];
    const auto r = std::to_chars(buf, buf + sizeof buf, id);
    put(std::string_view(buf, static_cast<size_t>(r.ptr - buf)));
  };
  if (impl_->bert) {
    const BertTokenizer& tok = *impl_->bert;
    thread_local BertTokenizer::Scratch scratch;
    thread_local Encoding enc;
    enc.ids.clear();
    enc.offsets.clear();
    tok.encode(text, enc, scratch);
    const auto put_id = [&](int32_t id) {
      if (options_.ids)
        put_number(id);
      else
        put(tok.vocab().token(id));
    };
    if (options_.special) put_id(tok.cls_id());
    for (const int32_t id : enc.ids) put_id(id);
    if (options_.special) put_id(tok.sep_id());
    return;
  }
  if (options_.ids) {
    for (const int32_t id : impl_->spm->encode_ids(text)) put_number(id);
  } else {
    for (const auto& p : impl_->spm->encode_pieces(text)) put(p);
  }
}

}  // namespace oar::nlp::text
