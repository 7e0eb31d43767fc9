#include "nlp/tokenizers/bert_tokenizer.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>

#include "engine/core/error.h"

namespace oar::nlp {
namespace {

BasicOptions basic_options(const BertTokenizerOptions& o) {
  BasicOptions b;
  b.lowercase = o.do_lower_case;
  b.strip_accents = o.strip_accents;
  b.tokenize_chinese_chars = o.tokenize_chinese_chars;
  return b;
}

WordPieceOptions wordpiece_options(const BertTokenizerOptions& o) {
  WordPieceOptions w;
  w.unk_token = o.unk_token;
  w.continuing_subword_prefix = o.continuing_subword_prefix;
  w.max_input_chars_per_word = o.max_input_chars_per_word;
  return w;
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
    s.replace(pos, from.size(), to);
}

}  // namespace

BertTokenizer::BertTokenizer(Vocab vocab, BertTokenizerOptions options)
    : vocab_(std::move(vocab)),
      options_(std::move(options)),
      basic_(basic_options(options_)),
      wordpiece_(vocab_, wordpiece_options(options_)) {
  unk_id_ = vocab_.id(options_.unk_token);
  cls_id_ = vocab_.id(options_.cls_token);
  sep_id_ = vocab_.id(options_.sep_token);
  pad_id_ = vocab_.id(options_.pad_token);
  mask_id_ = vocab_.find(options_.mask_token);  // only pre-training needs it
}

BertTokenizer BertTokenizer::from_file(const std::string& vocab_path,
                                       BertTokenizerOptions options) {
  std::vector<std::string> specials = {options.unk_token, options.cls_token, options.sep_token,
                                       options.pad_token};
  return BertTokenizer(Vocab::load(vocab_path, Vocab::Format::automatic, specials),
                       std::move(options));
}

void BertTokenizer::encode(std::string_view text, Encoding& out, Scratch& s) const {
  basic_.split(text, s.basic);
  const std::string& norm = s.basic.normalized;
  const uint32_t* ob = s.basic.orig_begin.data();
  const uint32_t* oe = s.basic.orig_end.data();
  for (const Word& w : s.basic.words) {
    s.pieces.clear();
    wordpiece_.tokenize(std::string_view(norm).substr(w.begin, w.end - w.begin), s.pieces);
    for (const Piece& p : s.pieces) {
      out.ids.push_back(p.id);
      out.offsets.push_back({ob[w.begin + p.begin], oe[w.begin + p.end - 1]});
    }
  }
}

Encoding BertTokenizer::encode(std::string_view text) const {
  Encoding e;
  Scratch s;
  encode(text, e, s);
  return e;
}

ModelInput BertTokenizer::encode_pair(std::string_view a, const std::string_view* b,
                                      const EncodeOptions& opt) const {
  Scratch s;
  Encoding ea, eb;
  encode(a, ea, s);
  if (b) encode(*b, eb, s);
  const size_t specials = b ? 3 : 2;
  size_t na = ea.ids.size(), nb = eb.ids.size();
  if (opt.truncation != Truncation::none && na + nb + specials > opt.max_length) {
    OAR_CHECK(opt.max_length >= specials, "encode: max_length ", opt.max_length,
              " cannot hold the ", specials, " special tokens");
    const size_t budget = opt.max_length - specials;
    const size_t to_remove = na + nb - budget;
    switch (opt.truncation) {
      case Truncation::longest_first:
        if (!b) {
          na = budget;
        } else {
          // Hugging Face's rule: the shorter keeps its length when it can; otherwise both get
          // half, the longer (the second on a tie) the odd token.
          size_t n1 = std::min(na, nb), n2 = std::max(na, nb);
          n2 = n1 > budget ? n1 : std::max(n1, budget - n1);
          if (n1 + n2 > budget) {
            n1 = budget / 2;
            n2 = n1 + budget % 2;
          }
          if (na > nb) std::swap(n1, n2);
          na = std::min(na, n1);
          nb = std::min(nb, n2);
        }
        break;
      case Truncation::only_first:
        OAR_CHECK(na > to_remove, "encode: only_first truncation cannot fit max_length ",
                  opt.max_length, ": the first text has ", na, " tokens, ", to_remove, " must go");
        na -= to_remove;
        break;
      case Truncation::only_second:
        OAR_CHECK(b, "encode: only_second truncation needs a second text");
        OAR_CHECK(nb > to_remove, "encode: only_second truncation cannot fit max_length ",
                  opt.max_length, ": the second text has ", nb, " tokens, ", to_remove, " must go");
        nb -= to_remove;
        break;
      case Truncation::none:
        break;
    }
  }
  ModelInput m;
  const size_t len = na + nb + specials;
  const size_t total = opt.pad_to_max_length ? std::max(len, opt.max_length) : len;
  m.input_ids.reserve(total);
  m.token_type_ids.reserve(total);
  m.attention_mask.reserve(total);
  m.special_tokens_mask.reserve(total);
  m.offsets.reserve(total);
  auto push = [&](int32_t id, int32_t type, int32_t mask, int32_t special, Offset off) {
    m.input_ids.push_back(id);
    m.token_type_ids.push_back(type);
    m.attention_mask.push_back(mask);
    m.special_tokens_mask.push_back(special);
    m.offsets.push_back(off);
  };
  push(cls_id_, 0, 1, 1, {0, 0});
  for (size_t i = 0; i < na; ++i) push(ea.ids[i], 0, 1, 0, ea.offsets[i]);
  push(sep_id_, 0, 1, 1, {0, 0});
  if (b) {
    for (size_t i = 0; i < nb; ++i) push(eb.ids[i], 1, 1, 0, eb.offsets[i]);
    push(sep_id_, 1, 1, 1, {0, 0});
  }
  while (m.input_ids.size() < total) push(pad_id_, 0, 0, 1, {0, 0});
  return m;
}

std::vector<Encoding> BertTokenizer::encode_batch(std::span<const std::string_view> texts,
                                                  size_t threads) const {
  std::vector<Encoding> out(texts.size());
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  constexpr size_t kChunk = 64;
  threads = std::min(threads, (texts.size() + kChunk - 1) / kChunk);
  std::atomic<size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto work = [&] {
    Scratch s;
    try {
      for (size_t begin; (begin = next.fetch_add(kChunk)) < texts.size();) {
        size_t end = std::min(texts.size(), begin + kChunk);
        for (size_t i = begin; i < end; ++i) encode(texts[i], out[i], s);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
    }
  };
  if (threads <= 1) {
    work();
  } else {
    std::vector<std::thread> pool;
    for (size_t t = 0; t < threads; ++t) pool.emplace_back(work);
    for (auto& t : pool) t.join();
  }
  if (error) std::rethrow_exception(error);
  return out;
}

bool BertTokenizer::is_special(int32_t id) const {
  return id == unk_id_ || id == cls_id_ || id == sep_id_ || id == pad_id_ || id == mask_id_;
}

std::string BertTokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::string out, token;
  const std::string& prefix = options_.continuing_subword_prefix;
  bool first = true;
  for (int32_t id : ids) {
    if (skip_special_tokens && is_special(id)) continue;
    const std::string& t = vocab_.token(id);
    if (first) {
      token = t;
    } else if (!prefix.empty() && t.starts_with(prefix)) {
      token = t.substr(prefix.size());
    } else {
      token = " " + t;
    }
    first = false;
    // Hugging Face's WordPiece decoder cleans each token (with its leading space) this way.
    static constexpr std::string_view kCleanup[][2] = {
        {" .", "."},   {" ?", "?"},     {" !", "!"},    {" ,", ","},
        {" ' ", "'"},  {" n't", "n't"}, {" 'm", "'m"},  {" do not", " don't"},
        {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
    for (const auto& r : kCleanup) replace_all(token, r[0], r[1]);
    out += token;
  }
  return out;
}

}  // namespace oar::nlp
