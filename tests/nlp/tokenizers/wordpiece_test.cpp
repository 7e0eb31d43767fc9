// WordPiece against Hugging Face `tokenizers` (golden ids from
// scripts/golden/make_wordpiece_golden.py), plus vocab formats, model inputs and error cases.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "engine/core/error.h"
#include "nlp/tokenizers/bert_tokenizer.h"

namespace oar::nlp {
namespace {

const std::string kData = std::string(OAR_SOURCE_DIR) + "/tests/nlp/data/";
const std::string kVocab = kData + "minilm_vocab.txt";

struct GoldenLine {
  std::string text;
  std::vector<int32_t> uncased, cased;
  std::vector<Offset> offsets;
  bool has_offsets = false;
};

// A reader for the golden file's fixed shape:
// {"text":"...","uncased":[..],"cased":[..],"offsets":[[b,e],..]}.
class LineParser {
 public:
  explicit LineParser(const std::string& s) : s_(s) {}
  GoldenLine parse() {
    GoldenLine g;
    expect('{');
    while (true) {
      std::string key = string();
      expect(':');
      if (key == "text") {
        g.text = string();
      } else if (key == "uncased" || key == "cased") {
        (key == "uncased" ? g.uncased : g.cased) = ints();
      } else if (key == "offsets") {
        g.has_offsets = true;
        expect('[');
        if (peek() != ']') {
          do {
            std::vector<int32_t> p = ints();
            if (p.size() != 2) throw Error("offset pair expected");
            g.offsets.push_back({uint32_t(p[0]), uint32_t(p[1])});
          } while (accept(','));
        }
        expect(']');
      } else {
        throw Error("unknown key " + key);
      }
      if (!accept(',')) break;
    }
    expect('}');
    return g;
  }

 private:
  char peek() const { return s_.at(i_); }
  bool accept(char c) {
    if (i_ < s_.size() && s_[i_] == c) return ++i_, true;
    return false;
  }
  void expect(char c) {
    if (!accept(c)) throw Error(std::string("expected ") + c + " at " + std::to_string(i_));
  }
  std::vector<int32_t> ints() {
    std::vector<int32_t> v;
    expect('[');
    if (accept(']')) return v;
    do {
      size_t used = 0;
      v.push_back(int32_t(std::stol(s_.substr(i_, 16), &used)));
      i_ += used;
    } while (accept(','));
    expect(']');
    return v;
  }
  uint32_t hex4() {
    uint32_t v = uint32_t(std::stoul(s_.substr(i_, 4), nullptr, 16));
    i_ += 4;
    return v;
  }
  static void put(std::string& o, uint32_t c) {
    if (c < 0x80) {
      o += char(c);
    } else if (c < 0x800) {
      o += char(0xC0 | (c >> 6));
      o += char(0x80 | (c & 63));
    } else if (c < 0x10000) {
      o += char(0xE0 | (c >> 12));
      o += char(0x80 | ((c >> 6) & 63));
      o += char(0x80 | (c & 63));
    } else {
      o += char(0xF0 | (c >> 18));
      o += char(0x80 | ((c >> 12) & 63));
      o += char(0x80 | ((c >> 6) & 63));
      o += char(0x80 | (c & 63));
    }
  }
  std::string string() {
    expect('"');
    std::string o;
    while (s_.at(i_) != '"') {
      char c = s_[i_++];
      if (c != '\\') {
        o += c;
        continue;
      }
      char e = s_.at(i_++);
      switch (e) {
        case 'n':
          o += '\n';
          break;
        case 't':
          o += '\t';
          break;
        case 'r':
          o += '\r';
          break;
        case 'b':
          o += '\b';
          break;
        case 'f':
          o += '\f';
          break;
        case 'u': {
          uint32_t c1 = hex4();
          if (c1 >= 0xD800 && c1 < 0xDC00) {
            i_ += 2;  // "\u"
            c1 = 0x10000 + ((c1 - 0xD800) << 10) + (hex4() - 0xDC00);
          }
          put(o, c1);
          break;
        }
        default:
          o += e;
      }
    }
    ++i_;
    return o;
  }
  const std::string& s_;
  size_t i_ = 0;
};

std::vector<GoldenLine> read_golden() {
  std::ifstream in(kData + "wordpiece_golden.jsonl", std::ios::binary);
  std::vector<GoldenLine> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(LineParser(line).parse());
  return lines;
}

const BertTokenizer& uncased() {
  static const BertTokenizer t = BertTokenizer::from_file(kVocab);
  return t;
}
const BertTokenizer& cased() {
  static const BertTokenizer t = [] {
    BertTokenizerOptions o;
    o.do_lower_case = false;
    return BertTokenizer::from_file(kVocab, o);
  }();
  return t;
}

std::vector<std::string> tokens(const BertTokenizer& t, std::string_view text) {
  std::vector<std::string> out;
  for (int32_t id : t.encode(text).ids) out.push_back(t.vocab().token(id));
  return out;
}

std::string write_file(const std::string& name, const std::string& content) {
  std::string path = (std::filesystem::temp_directory_path() / name).string();
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

TEST(WordPieceGolden, IdsAndOffsetsMatchHuggingFace) {
  std::vector<GoldenLine> golden = read_golden();
  ASSERT_GE(golden.size(), 1500u);
  size_t checked_offsets = 0, uncased_tokens = 0;
  for (size_t i = 0; i < golden.size(); ++i) {
    const GoldenLine& g = golden[i];
    Encoding u = uncased().encode(g.text);
    Encoding c = cased().encode(g.text);
    ASSERT_EQ(u.ids, g.uncased) << "uncased, golden line " << i + 1;
    ASSERT_EQ(c.ids, g.cased) << "cased, golden line " << i + 1;
    uncased_tokens += u.ids.size();
    if (g.has_offsets) {
      ASSERT_EQ(u.offsets, g.offsets) << "offsets, golden line " << i + 1;
      ++checked_offsets;
    }
    // Every offset is a non-empty range of whole characters of the original text.
    for (const auto* e : {&u, &c}) {
      for (const Offset& o : e->offsets) {
        ASSERT_LT(o.begin, o.end) << "line " << i + 1;
        ASSERT_LE(o.end, g.text.size());
        ASSERT_NE(uint8_t(g.text[o.begin]) & 0xC0, 0x80) << "line " << i + 1;
        ASSERT_TRUE(o.end == g.text.size() || (uint8_t(g.text[o.end]) & 0xC0) != 0x80);
      }
    }
  }
  EXPECT_GE(checked_offsets, golden.size() / 4);
  EXPECT_GT(uncased_tokens, 30000u);
}

TEST(WordPieceGolden, BatchEqualsSerialAcrossThreads) {
  std::vector<GoldenLine> golden = read_golden();
  std::vector<std::string_view> texts;
  for (const auto& g : golden) texts.push_back(g.text);
  std::vector<Encoding> batch = uncased().encode_batch(texts, 2);
  ASSERT_EQ(batch.size(), golden.size());
  for (size_t i = 0; i < golden.size(); ++i) ASSERT_EQ(batch[i].ids, golden[i].uncased) << i;
}

TEST(WordPiece, HandCases) {
  // nlp.md §3.4's cases, with bert-base-uncased's vocabulary (ids checked against Hugging Face).
  using V = std::vector<std::string>;
  EXPECT_EQ(tokens(uncased(), "He was a puppeteer"), (V{"he", "was", "a", "puppet", "##eer"}));
  EXPECT_EQ(tokens(uncased(), "Héllo, WORLD!!"), (V{"hello", ",", "world", "!", "!"}));
  EXPECT_EQ(tokens(uncased(), "a\u200bb\u3000c"), (V{"ab", "c"}));  // ZWSP (Cf) deleted
  EXPECT_EQ(tokens(uncased(), "hello\u00a0world"), (V{"hello", "world"}));
  EXPECT_EQ(tokens(uncased(), "unaffable"), (V{"una", "##ffa", "##ble"}));
  EXPECT_EQ(tokens(uncased(), "我爱中国"), (V{"我", "[UNK]", "中", "国"}));
  EXPECT_EQ(tokens(uncased(), "\ue000x"), (V{"x"}));      // private use (Co) deleted
  EXPECT_EQ(tokens(uncased(), "ﬁne"), (V{"ﬁ", "##ne"}));  // no NFKC
  EXPECT_EQ(tokens(uncased(), "[CLS]你好"), (V{"[", "cl", "##s", "]", "[UNK]", "[UNK]"}));
  EXPECT_EQ(tokens(uncased(), std::string(101, 'x')), (V{"[UNK]"}));
  EXPECT_EQ(tokens(uncased(), std::string(100, 'x')).size(), 50u);  // "xx" + 49 × "##xx"
  EXPECT_EQ(tokens(cased(), "Héllo"), (V{"[UNK]"}));  // cased keeps accents and capitals
  EXPECT_EQ(uncased().encode("He was").offsets, (std::vector<Offset>{{0, 2}, {3, 6}}));
  EXPECT_TRUE(uncased().encode("").ids.empty());
  EXPECT_TRUE(uncased().encode(" \t\n\x01").ids.empty());
}

TEST(WordPiece, InvalidUtf8IsReplacedThenCleaned) {
  // Each ill-formed byte reads as U+FFFD, which BERT's cleaning deletes: "a\xffb" is "ab".
  EXPECT_EQ(uncased()
                .encode("a\xff"
                        "b")
                .ids,
            uncased().encode("ab").ids);
  EXPECT_EQ(uncased().encode("x \xe4\xb8").ids, uncased().encode("x").ids);  // truncated 3-byte
  EXPECT_EQ(uncased()
                .encode("\xc0\xaf"
                        "cat")
                .ids,
            uncased().encode("cat").ids);                                       // overlong '/'
  EXPECT_EQ(uncased().encode("\xed\xa0\x80z").ids, uncased().encode("z").ids);  // surrogate
  Encoding e = uncased().encode(
      "a\xff"
      "b c");
  ASSERT_EQ(e.offsets.size(), 2u);
  EXPECT_EQ(e.offsets[0], (Offset{0, 3}));
  EXPECT_EQ(e.offsets[1], (Offset{4, 5}));
}

TEST(WordPiece, Decode) {
  std::vector<int32_t> ids = {101, 2002, 2001, 1037, 13997, 11510,
                              102, 1012, 100,  2123, 1005,  1056};
  EXPECT_EQ(uncased().decode(ids), "he was a puppeteer. don ' t");
  EXPECT_EQ(uncased().decode(std::vector<int32_t>{2002, 1010, 2088, 999, 999, 16655, 10354}),
            "he, world!! uneaf");
  EXPECT_EQ(uncased().decode(std::vector<int32_t>{101, 2002, 102}, false), "[CLS] he [SEP]");
  EXPECT_THROW(uncased().decode(std::vector<int32_t>{1 << 20}), Error);
}

TEST(WordPiece, PairEncodingMasksAndTypes) {
  ModelInput m =
      uncased().encode_pair("The quick brown fox jumps", "over the lazy dog again and again");
  EXPECT_EQ(m.input_ids, (std::vector<int32_t>{101, 1996, 4248, 2829, 4419, 14523, 102, 2058, 1996,
                                               13971, 3899, 2153, 1998, 2153, 102}));
  EXPECT_EQ(m.token_type_ids, (std::vector<int32_t>{0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1}));
  EXPECT_EQ(m.attention_mask, std::vector<int32_t>(15, 1));
  EXPECT_EQ(m.special_tokens_mask,
            (std::vector<int32_t>{1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}));
  EXPECT_EQ(m.offsets[1], (Offset{0, 3}));
  EXPECT_EQ(m.offsets[7], (Offset{0, 4}));  // into text b
  EXPECT_EQ(m.offsets[6], (Offset{0, 0}));

  EncodeOptions pad;
  pad.max_length = 8;
  pad.pad_to_max_length = true;
  ModelInput p = uncased().encode_single("hello world", pad);
  EXPECT_EQ(p.input_ids, (std::vector<int32_t>{101, 7592, 2088, 102, 0, 0, 0, 0}));
  EXPECT_EQ(p.attention_mask, (std::vector<int32_t>{1, 1, 1, 1, 0, 0, 0, 0}));
  EXPECT_EQ(p.special_tokens_mask, (std::vector<int32_t>{1, 0, 0, 1, 1, 1, 1, 1}));
  EXPECT_EQ(p.token_type_ids, std::vector<int32_t>(8, 0));
}

TEST(WordPiece, TruncationStrategiesMatchHuggingFace) {
  auto toks = [](const ModelInput& m) {
    std::vector<std::string> out;
    for (int32_t id : m.input_ids) out.push_back(uncased().vocab().token(id));
    return out;
  };
  using V = std::vector<std::string>;
  EncodeOptions o;
  o.max_length = 8;
  EXPECT_EQ(toks(uncased().encode_pair("one two three four five", "six seven", o)),
            (V{"[CLS]", "one", "two", "three", "[SEP]", "six", "seven", "[SEP]"}));
  EXPECT_EQ(toks(uncased().encode_pair("one two three four five six", "a b c d e f g", o)),
            (V{"[CLS]", "one", "two", "[SEP]", "a", "b", "c", "[SEP]"}));
  o.truncation = Truncation::only_first;
  EXPECT_EQ(toks(uncased().encode_pair("one two three four five", "six seven", o)),
            (V{"[CLS]", "one", "two", "three", "[SEP]", "six", "seven", "[SEP]"}));
  EXPECT_THROW(uncased().encode_pair("one", "two three four five six seven", o), Error);
  o.truncation = Truncation::only_second;
  EXPECT_EQ(toks(uncased().encode_pair("one", "six seven eight nine ten eleven", o)),
            (V{"[CLS]", "one", "[SEP]", "six", "seven", "eight", "nine", "[SEP]"}));
  EXPECT_THROW(uncased().encode_single("one two three four five six seven eight", o), Error);
  o.truncation = Truncation::longest_first;
  EXPECT_EQ(uncased().encode_single("one two three four five six seven eight", o).input_ids.size(),
            8u);
  o.truncation = Truncation::none;
  EXPECT_EQ(uncased().encode_single("one two three four five six seven eight", o).input_ids.size(),
            10u);
  o.max_length = 2;
  o.truncation = Truncation::longest_first;
  EXPECT_THROW(uncased().encode_pair("a", "b", o), Error);
}

TEST(Vocab, ErnieFormatAndOptions) {
  std::string path =
      write_file("oar_ernie_vocab.txt",
                 "[PAD]\t0\n[CLS]\t1\n[SEP]\t2\n[MASK]\t3\n我\t4\n爱\t5\nhe\t6\n##llo\t7\n"
                 "hello\t8\n,\t9\n[UNK]\t17963\n");
  BertTokenizer t = BertTokenizer::from_file(path);
  EXPECT_EQ(t.vocab().size(), 17964u);
  EXPECT_EQ(t.unk_id(), 17963);
  EXPECT_EQ(t.mask_id(), 3);
  EXPECT_EQ(t.encode_single("我爱你, Hello").input_ids,
            (std::vector<int32_t>{1, 4, 5, 17963, 9, 8, 2}));
  EXPECT_EQ(t.encode("hellohe").ids, (std::vector<int32_t>{17963}));  // no full segmentation
  EXPECT_EQ(t.encode("hello").ids, (std::vector<int32_t>{8}));        // longest match first
  EXPECT_EQ(t.encode("hehe").ids, (std::vector<int32_t>{17963}));
  std::filesystem::remove(path);
}

TEST(Vocab, BertFormatKeepsLastDuplicateOfOrdinaryTokens) {
  std::string path = write_file("oar_bert_vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n$\nx\n$\r\n");
  Vocab v = Vocab::load(path);
  EXPECT_EQ(v.size(), 7u);
  EXPECT_EQ(v.id("$"), 6);  // as Hugging Face's loader: the later line wins
  EXPECT_EQ(v.token(4), "$");
  std::filesystem::remove(path);
}

void expect_error(const std::string& content, const std::string& needle) {
  std::string path = write_file("oar_bad_vocab.txt", content);
  try {
    BertTokenizer::from_file(path);
    ADD_FAILURE() << "no error for " << needle;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
  std::filesystem::remove(path);
}

TEST(Vocab, BadVocabErrorsNameFileAndLine) {
  expect_error("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[UNK]\n",
               "oar_bad_vocab.txt:5: special token '[UNK]' is duplicated (first at line 2)");
  expect_error("[PAD]\n[UNK]\n[CLS]\n", "oar_bad_vocab.txt: special token '[SEP]' is missing");
  expect_error("[PAD]\t0\n[UNK]\t1\n[CLS]\tx\n", "oar_bad_vocab.txt:3: expected 'token<TAB>id'");
  expect_error("[PAD]\t0\n[UNK]\t1\n[CLS]\t1\n",
               "oar_bad_vocab.txt:3: id 1 is already used by '[UNK]' at line 2");
  expect_error("", "is empty");
  EXPECT_THROW(Vocab::load("/nonexistent/vocab.txt"), Error);
  EXPECT_THROW(BertTokenizer(Vocab::from_tokens({"a", "b"})), Error);  // no [UNK]
}

TEST(BasicTokenizer, OptionsFollowHuggingFace) {
  using V = std::vector<std::string>;
  BasicOptions strip_only;
  strip_only.lowercase = false;
  strip_only.strip_accents = true;
  EXPECT_EQ(BasicTokenizer(strip_only).words("Héllo Wörld"), (V{"Hello", "World"}));
  BasicOptions lower_only;
  lower_only.strip_accents = false;
  EXPECT_EQ(BasicTokenizer(lower_only).words("HÉLLO"), (V{"héllo"}));
  BasicOptions no_cjk;
  no_cjk.tokenize_chinese_chars = false;
  EXPECT_EQ(BasicTokenizer(no_cjk).words("我爱x"), (V{"我爱x"}));
  EXPECT_EQ(BasicTokenizer().words("我爱x"), (V{"我", "爱", "x"}));
  // tokenizers' CJK table starts Extension E at U+2B920 (BERT's Python code: U+2B820).
  EXPECT_EQ(BasicTokenizer().words("\U0002B820x\U0002B920y"),
            (V{"\U0002B820x", "\U0002B920", "y"}));
  EXPECT_EQ(BasicTokenizer().words("İ"), (V{"i"}));  // strip (NFD) before lower, as tokenizers
  EXPECT_EQ(BasicTokenizer(lower_only).words("İ"), (V{"i\u0307"}));
  // Characters whose category changed after Unicode 8.0 behave as in tokenizers (probed there).
  BasicOptions keep_case;
  keep_case.lowercase = false;
  EXPECT_EQ(BasicTokenizer().words("a\u1734b"), (V{"ab"}));  // Mn in 8.0, Mc now: stripped
  EXPECT_EQ(BasicTokenizer().words("a\u1885b"), (V{"a\u1885b"}));  // Lo in 8.0, Mn now: kept
  EXPECT_EQ(BasicTokenizer().words("a\U000111C9b"), (V{"a", "\U000111C9", "b"}));  // was Po
  EXPECT_EQ(BasicTokenizer(keep_case).words("a\u166Db"), (V{"a", "\u166D", "b"}));  // was Po
  EXPECT_EQ(BasicTokenizer().words("a\U00011938b"), (V{"a\U00011938b"}));  // NFD added in 13.0
  EXPECT_EQ(BasicTokenizer().words("a\u2E43b"), (V{"a\u2E43b"}));  // Po since 9.0: not split
}

}  // namespace
}  // namespace oar::nlp
