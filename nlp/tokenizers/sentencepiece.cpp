#include "nlp/tokenizers/sentencepiece.h"

#include "engine/core/error.h"

#ifdef OAR_HAVE_SENTENCEPIECE
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <filesystem>
#endif

namespace oar::nlp {

#ifdef OAR_HAVE_SENTENCEPIECE

bool sentencepiece_available() {
  return true;
}

struct SentencePiece::Impl {
  sentencepiece::SentencePieceProcessor sp;
  std::string path;
};

SentencePiece::SentencePiece() : impl_(std::make_unique<Impl>()) {}
SentencePiece::~SentencePiece() = default;
SentencePiece::SentencePiece(SentencePiece&&) noexcept = default;
SentencePiece& SentencePiece::operator=(SentencePiece&&) noexcept = default;

SentencePiece SentencePiece::load(const std::string& path) {
  OAR_CHECK(std::filesystem::is_regular_file(path), path, ": no such SentencePiece model");
  SentencePiece s;
  const auto status = s.impl_->sp.Load(path);
  OAR_CHECK(status.ok(), path, ": not a SentencePiece model (", status.ToString(), ")");
  s.impl_->path = path;
  return s;
}

std::vector<std::string> SentencePiece::encode_pieces(std::string_view text) const {
  std::vector<std::string> out;
  const auto status = impl_->sp.Encode(text, &out);
  OAR_CHECK(status.ok(), impl_->path, ": encode failed (", status.ToString(), ")");
  return out;
}

std::vector<int32_t> SentencePiece::encode_ids(std::string_view text) const {
  std::vector<int> ids;
  const auto status = impl_->sp.Encode(text, &ids);
  OAR_CHECK(status.ok(), impl_->path, ": encode failed (", status.ToString(), ")");
  return {ids.begin(), ids.end()};
}

std::string SentencePiece::decode(std::span<const int32_t> ids) const {
  const int n = impl_->sp.GetPieceSize();
  for (const int32_t id : ids)
    OAR_CHECK(id >= 0 && id < n, impl_->path, ": id ", id, " is outside the vocabulary [0, ", n,
              ")");
  std::string out;
  const auto status = impl_->sp.Decode(std::vector<int>(ids.begin(), ids.end()), &out);
  OAR_CHECK(status.ok(), impl_->path, ": decode failed (", status.ToString(), ")");
  return out;
}

size_t SentencePiece::size() const {
  return size_t(impl_->sp.GetPieceSize());
}
int32_t SentencePiece::unk_id() const {
  return impl_->sp.unk_id();
}
const std::string& SentencePiece::piece(int32_t id) const {
  OAR_CHECK(id >= 0 && size_t(id) < size(), impl_->path, ": id ", id, " is outside the vocabulary");
  return impl_->sp.IdToPiece(id);
}

namespace {

// Feeds the trainer from a callback, so that lines come through oar's reader (invalid UTF-8
// policy, several files, stdin) rather than the library's own file reading.
class CallbackIterator : public sentencepiece::SentenceIterator {
 public:
  explicit CallbackIterator(const std::function<bool(std::string&)>& next) : next_(next) { Next(); }
  bool done() const override { return done_; }
  void Next() override {
    try {
      done_ = !next_(value_);
    } catch (const std::exception& e) {
      error_ = e.what();
      done_ = true;
    }
  }
  const std::string& value() const override { return value_; }
  sentencepiece::util::Status status() const override {
    if (error_.empty()) return {};
    return {sentencepiece::util::StatusCode::kInternal, error_};
  }
  const std::string& error() const { return error_; }

 private:
  const std::function<bool(std::string&)>& next_;
  std::string value_, error_;
  bool done_ = false;
};

}  // namespace

void train_sentencepiece(const std::function<bool(std::string&)>& next_line,
                         const std::string& model_prefix, const SentencePieceTrainOptions& o) {
  OAR_CHECK(o.model_type == "unigram" || o.model_type == "bpe" || o.model_type == "char" ||
                o.model_type == "word",
            "SentencePiece model type must be unigram, bpe, char or word, got '", o.model_type,
            "'");
  OAR_CHECK(o.vocab_size > 0, "SentencePiece vocab size must be positive, got ", o.vocab_size);
  OAR_CHECK(o.character_coverage > 0 && o.character_coverage <= 1,
            "character coverage must be in (0, 1], got ", o.character_coverage);
  // TrainerSpec is a protobuf message only forward-declared in the public header, so options go
  // through the library's flag string.
  std::string args = "--model_prefix=" + model_prefix + " --model_type=" + o.model_type +
                     " --vocab_size=" + std::to_string(o.vocab_size) +
                     " --character_coverage=" + std::to_string(o.character_coverage) +
                     " --minloglevel=1";
  if (o.input_sentence_size > 0)
    args += " --input_sentence_size=" + std::to_string(o.input_sentence_size) +
            " --shuffle_input_sentence=true --random_seed=" + std::to_string(o.seed);
  if (!o.user_defined_symbols.empty()) {
    args += " --user_defined_symbols=";
    for (size_t k = 0; k < o.user_defined_symbols.size(); ++k)
      args += (k ? "," : "") + o.user_defined_symbols[k];
  }
  CallbackIterator it(next_line);
  const auto status = sentencepiece::SentencePieceTrainer::Train(args, &it);
  if (!it.error().empty()) throw Error(it.error());
  OAR_CHECK(status.ok(), "SentencePiece training failed: ", status.ToString());
}

#else

bool sentencepiece_available() {
  return false;
}

namespace {
[[noreturn]] void missing() {
  OAR_FAIL(
      "this oar was built without libsentencepiece: install libsentencepiece-dev (scripts/setup "
      "does) and reconfigure");
}
}  // namespace

struct SentencePiece::Impl {};
SentencePiece::SentencePiece() = default;
SentencePiece::~SentencePiece() = default;
SentencePiece::SentencePiece(SentencePiece&&) noexcept = default;
SentencePiece& SentencePiece::operator=(SentencePiece&&) noexcept = default;
SentencePiece SentencePiece::load(const std::string&) {
  missing();
}
std::vector<std::string> SentencePiece::encode_pieces(std::string_view) const {
  missing();
}
std::vector<int32_t> SentencePiece::encode_ids(std::string_view) const {
  missing();
}
std::string SentencePiece::decode(std::span<const int32_t>) const {
  missing();
}
size_t SentencePiece::size() const {
  missing();
}
int32_t SentencePiece::unk_id() const {
  missing();
}
const std::string& SentencePiece::piece(int32_t) const {
  missing();
}
void train_sentencepiece(const std::function<bool(std::string&)>&, const std::string&,
                         const SentencePieceTrainOptions&) {
  missing();
}

#endif

}  // namespace oar::nlp
