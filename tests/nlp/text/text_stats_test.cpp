// `oar text stats`' accumulator and `tokenize`'s core: counts, percentiles, merging across
// workers, TSV columns, and WordPiece lines against the MiniLM vocabulary.
#include <gtest/gtest.h>

#include "engine/core/error.h"
#include "nlp/text/line_tokenizer.h"
#include "nlp/text/text_stats.h"
#include "nlp/text/tsv_columns.h"

namespace oar::nlp::text {
namespace {

const std::string kVocab = std::string(OAR_SOURCE_DIR) + "/tests/nlp/data/minilm_vocab.txt";

TEST(TextStats, CountsAndPercentiles) {
  EXPECT_EQ(count_chars("北京ab"), 4);
  EXPECT_EQ(count_whitespace_tokens("  a b\t c\xE3\x80\x80"
                                    "d "),
            4);  // U+3000 separates
  EXPECT_EQ(count_whitespace_tokens(""), 0);
  TextStats a, b;
  a.add("ab", 1);
  a.add("北京天气", 2);
  b.add("", 0);
  b.add("abcdefgh", 3);
  a.merge(b);
  EXPECT_EQ(a.lines, 4);
  EXPECT_EQ(a.chars, 2 + 4 + 0 + 8);
  EXPECT_EQ(a.bytes, 2 + 12 + 0 + 8);
  EXPECT_EQ(a.tokens, 6);
  // Char lengths {0, 2, 4, 8}: nearest rank.
  EXPECT_EQ(percentile(a.char_lengths, 50), 2);
  EXPECT_EQ(percentile(a.char_lengths, 75), 4);
  EXPECT_EQ(percentile(a.char_lengths, 76), 8);
  EXPECT_EQ(percentile(a.char_lengths, 100), 8);
  EXPECT_EQ(percentile(a.char_lengths, 0), 0);
  EXPECT_EQ(percentile({}, 50), 0);
}

TEST(TsvColumns, ResolveAndFields) {
  EXPECT_EQ(resolve_column("label", "text_a\ttext_b\tlabel", "f:1"), 2u);
  EXPECT_EQ(resolve_column("2", "text_a\ttext_b\tlabel", "f:1"), 1u);
  try {
    resolve_column("lable", "text_a\tlabel", "f.tsv:1");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("f.tsv:1: no column 'lable' in the header (columns: "
                                         "'text_a', 'label')"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(tsv_field("a\tb\tc", 1, "f:2", "x"), "b");
  EXPECT_EQ(tsv_field("a\t\tc", 1, "f:2", "x"), "");
  try {
    tsv_field("a\tb", 2, "f.tsv:7", "label");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("f.tsv:7: has 2 columns, column 'label' is number 3"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(split_tsv("a\t\tb").size(), 3u);
}

TEST(LineTokenizer, WordPieceTokensIdsAndSpecials) {
  LineTokenizerOptions o;
  o.vocab = kVocab;
  std::string out;
  LineTokenizer(o).tokenize("Hello, tokenization!", out);
  EXPECT_EQ(out, "hello , token ##ization !");
  o.ids = true;
  out.clear();
  LineTokenizer(o).tokenize("Hello", out);
  EXPECT_EQ(out, "7592");
  o.ids = false;
  o.special = true;
  out.clear();
  LineTokenizer(o).tokenize("Hello", out);
  EXPECT_EQ(out, "[CLS] hello [SEP]");
  o.special = false;
  o.lowercase = false;
  out.clear();
  LineTokenizer(o).tokenize("Hello", out);
  EXPECT_NE(out, "hello");  // cased: the uncased vocabulary has no "Hello"
  LineTokenizerOptions none;
  EXPECT_THROW(LineTokenizer{none}, Error);
  LineTokenizerOptions both;
  both.vocab = kVocab;
  both.spm = "x.model";
  EXPECT_THROW(LineTokenizer{both}, Error);
}

}  // namespace
}  // namespace oar::nlp::text
