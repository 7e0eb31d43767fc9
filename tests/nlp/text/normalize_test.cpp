// `oar text normalize`'s core: full-width forms, NFC/NFKC, control characters, whitespace.
#include <gtest/gtest.h>

#include "engine/core/error.h"
#include "nlp/text/normalize.h"

namespace oar::nlp::text {
namespace {

NormalizeOptions opts(NormalForm form, bool half, bool control, bool collapse) {
  NormalizeOptions o;
  o.form = form;
  o.full_to_half = half;
  o.drop_control = control;
  o.collapse_whitespace = collapse;
  return o;
}

TEST(Normalize, FullWidthToHalfWidth) {
  const Normalizer n(opts(NormalForm::none, true, false, false));
  EXPECT_EQ(n.normalize("ＡＢＣ１２３！　ｚ"), "ABC123! z");
  EXPECT_EQ(n.normalize("中文，句号。"), "中文,句号。");  // U+FF0C is full-width; 。 is not
  const Normalizer keep(opts(NormalForm::none, false, false, false));
  EXPECT_EQ(keep.normalize("ＡＢＣ"), "ＡＢＣ");
}

TEST(Normalize, NfcAndNfkc) {
  const std::string decomposed = "e\xCC\x81";  // e + COMBINING ACUTE
  EXPECT_EQ(Normalizer(opts(NormalForm::nfc, false, false, false)).normalize(decomposed), "é");
  EXPECT_EQ(Normalizer(opts(NormalForm::none, false, false, false)).normalize(decomposed),
            decomposed);
  // NFKC folds compatibility forms that NFC keeps: the ligature ﬁ, superscript two, ①.
  EXPECT_EQ(Normalizer(opts(NormalForm::nfc, false, false, false)).normalize("ﬁ²①"), "ﬁ²①");
  EXPECT_EQ(Normalizer(opts(NormalForm::nfkc, false, false, false)).normalize("ﬁ²①"), "fi21");
  EXPECT_EQ(parse_normal_form("nfkc"), NormalForm::nfkc);
  EXPECT_THROW(parse_normal_form("nfd"), Error);
}

TEST(Normalize, ControlCharactersDroppedTabKept) {
  const Normalizer n(opts(NormalForm::nfc, true, true, false));
  EXPECT_EQ(n.normalize(std::string("a\x01"
                                    "b\tc\x7f"
                                    "d\r",
                                    9)),
            "ab\tcd");
  EXPECT_EQ(n.normalize("x\xC2\x85y"), "xy");  // U+0085 (NEL) is Cc
  const Normalizer keep(opts(NormalForm::nfc, true, false, false));
  EXPECT_EQ(keep.normalize("a\x01"
                           "b"),
            "a\x01"
            "b");
}

TEST(Normalize, CollapseWhitespaceKeepsTabsAndTrimsFields) {
  const Normalizer n(opts(NormalForm::nfc, true, true, true));
  EXPECT_EQ(n.normalize("  a   b \xE2\x80\x83 c  "), "a b c");  // U+2003 EM SPACE
  EXPECT_EQ(n.normalize(" a  b \t  c d \t"), "a b\tc d\t");
  EXPECT_EQ(n.normalize("a\r\x0b"
                        "b"),
            "a b");                           // control whitespace still separates
  EXPECT_EQ(n.normalize("ａ　　ｂ"), "a b");  // ideographic spaces become one space
}

}  // namespace
}  // namespace oar::nlp::text
