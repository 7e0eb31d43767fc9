// SentencePiece through libsentencepiece: train unigram and BPE models on a generated corpus,
// encode to pieces and ids, decode back, and the error cases. Skipped in a build without the
// library (then every call must say so).
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/core/error.h"
#include "nlp/tokenizers/sentencepiece.h"

namespace oar::nlp {
namespace {

std::vector<std::string> corpus() {
  const std::vector<std::string> words = {"the",  "quick", "brown", "fox",  "jumps", "over",
                                          "lazy", "dog",   "北京",  "天气", "不错",  "tokenizer"};
  std::vector<std::string> lines;
  uint32_t x = 12345;
  for (int i = 0; i < 400; ++i) {
    std::string l;
    for (int k = 0; k < 8; ++k) {
      x = x * 1103515245u + 12345u;
      l += (k ? " " : "") + words[(x >> 16) % words.size()];
    }
    lines.push_back(l);
  }
  return lines;
}

std::string train(const std::string& type, int vocab_size) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("oar_spm_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string prefix = (dir / type).string();
  const auto lines = corpus();
  size_t k = 0;
  SentencePieceTrainOptions o;
  o.model_type = type;
  o.vocab_size = vocab_size;
  o.character_coverage = 1.0;
  train_sentencepiece(
      [&](std::string& s) {
        if (k == lines.size()) return false;
        s = lines[k++];
        return true;
      },
      prefix, o);
  EXPECT_EQ(k, lines.size());
  return prefix + ".model";
}

TEST(SentencePiece, UnavailableBuildSaysSo) {
  if (sentencepiece_available()) GTEST_SKIP() << "built with libsentencepiece";
  try {
    SentencePiece::load("x.model");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("without libsentencepiece"), std::string::npos);
  }
}

TEST(SentencePiece, TrainEncodeDecodeRoundTrip) {
  if (!sentencepiece_available()) GTEST_SKIP() << "no libsentencepiece in this build";
  // The unigram trainer's seed pieces of this small corpus cap it below 48 pieces.
  for (const auto& [type, size] : {std::pair<std::string, int>{"unigram", 44}, {"bpe", 60}}) {
    const auto sp = SentencePiece::load(train(type, size));
    EXPECT_EQ(sp.size(), size_t(size)) << type;
    for (const std::string text : {"the quick brown fox", "北京天气不错", "lazy tokenizer dog"}) {
      const auto pieces = sp.encode_pieces(text);
      const auto ids = sp.encode_ids(text);
      ASSERT_EQ(pieces.size(), ids.size());
      ASSERT_FALSE(ids.empty());
      for (size_t i = 0; i < ids.size(); ++i) {
        EXPECT_EQ(sp.piece(ids[i]), pieces[i]);
        EXPECT_NE(ids[i], sp.unk_id()) << type << ": " << pieces[i];
      }
      EXPECT_EQ(sp.decode(ids), text) << type;
    }
    // A character the corpus never had is the unknown piece.
    const auto ids = sp.encode_ids("Ω");
    EXPECT_NE(std::find(ids.begin(), ids.end(), sp.unk_id()), ids.end()) << type;
    const std::vector<int32_t> bad = {0, 1000};
    EXPECT_THROW(sp.decode(bad), Error);
  }
}

TEST(SentencePiece, Errors) {
  if (!sentencepiece_available()) GTEST_SKIP() << "no libsentencepiece in this build";
  EXPECT_THROW(SentencePiece::load("/nonexistent/x.model"), Error);
  const auto dir =
      std::filesystem::temp_directory_path() / ("oar_spm_bad_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto bad = (dir / "bad.model").string();
  FILE* f = std::fopen(bad.c_str(), "wb");
  std::fputs("not a model", f);
  std::fclose(f);
  try {
    SentencePiece::load(bad);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.model: not a SentencePiece model"), std::string::npos)
        << e.what();
  }
  SentencePieceTrainOptions o;
  o.model_type = "wordpiece";
  EXPECT_THROW(train_sentencepiece([](std::string&) { return false; }, (dir / "m").string(), o),
               Error);
  // A failing line source surfaces as its own error.
  o.model_type = "unigram";
  try {
    train_sentencepiece([](std::string&) -> bool { throw Error("corpus.txt:3: boom"); },
                        (dir / "m").string(), o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("corpus.txt:3: boom"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace oar::nlp
