#include "nlp/text/normalize.h"

#include <algorithm>

#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/utf8.h>

#include "engine/core/error.h"

namespace oar::nlp::text {

NormalForm parse_normal_form(const std::string& s) {
  if (s == "none") return NormalForm::none;
  if (s == "nfc") return NormalForm::nfc;
  if (s == "nfkc") return NormalForm::nfkc;
  OAR_FAIL("--form must be none, nfc or nfkc, got '", s, "'");
}

struct Normalizer::Impl {
  const icu::Normalizer2* normalizer = nullptr;
};

Normalizer::Normalizer(NormalizeOptions options)
    : options_(options), impl_(std::make_unique<Impl>()) {
  UErrorCode status = U_ZERO_ERROR;
  if (options_.form == NormalForm::nfc)
    impl_->normalizer = icu::Normalizer2::getNFCInstance(status);
  if (options_.form == NormalForm::nfkc)
    impl_->normalizer = icu::Normalizer2::getNFKCInstance(status);
  OAR_CHECK(U_SUCCESS(status), "ICU normalizer: ", u_errorName(status));
}

Normalizer::~Normalizer() = default;

namespace {

void append_utf8(std::string& out, UChar32 c) {
  char buf[4];
  int32_t n = 0;
  UBool error = false;
  U8_APPEND(reinterpret_cast<uint8_t*>(buf), n, 4, c, error);
  (void)error;
  out.append(buf, static_cast<size_t>(n));
}

// Code points of `s` (valid UTF-8) through `f`, which appends to `out`.
template <class F>
void for_each_code_point(std::string_view s, F&& f) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const auto n = static_cast<int32_t>(s.size());
  for (int32_t i = 0; i < n;) {
    UChar32 c;
    U8_NEXT(p, i, n, c);
    f(c < 0 ? 0xFFFD : c);
  }
}

bool is_space(UChar32 c) {
  return c != '\t' && u_isUWhiteSpace(c);
}

}  // namespace

void Normalizer::normalize(std::string_view text, std::string& out) const {
  // ASCII is unchanged by the width mapping and by NFC/NFKC: only the last step applies.
  const bool ascii = std::all_of(text.begin(), text.end(),
                                 [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  std::string a;
  std::string_view cur = text;
  if (options_.full_to_half && !ascii) {
    a.reserve(text.size());
    for_each_code_point(text, [&](UChar32 c) {
      if (c >= 0xFF01 && c <= 0xFF5E) c -= 0xFEE0;
      if (c == 0x3000) c = ' ';
      append_utf8(a, c);
    });
    cur = a;
  }
  std::string b;
  if (impl_->normalizer && !ascii) {
    // UTF-8 in and out: no UTF-16 round trip, and text already in the form is copied through.
    UErrorCode status = U_ZERO_ERROR;
    icu::StringByteSink<std::string> sink(&b, static_cast<int32_t>(cur.size()));
    impl_->normalizer->normalizeUTF8(
        0, icu::StringPiece(cur.data(), static_cast<int32_t>(cur.size())), sink, nullptr, status);
    OAR_CHECK(U_SUCCESS(status), "ICU normalize: ", u_errorName(status));
    cur = b;
  }
  out.clear();
  out.reserve(cur.size());
  if (!options_.drop_control && !options_.collapse_whitespace) {
    out.assign(cur);
    return;
  }
  bool pending_space = false;  // a run of whitespace not yet written (collapse mode)
  bool field_start = true;     // at the start of a TAB-separated field (collapse mode)
  for_each_code_point(cur, [&](UChar32 c) {
    if (options_.drop_control && c != '\t' && u_charType(c) == U_CONTROL_CHAR) {
      // A control character that is whitespace (\n, \r, \v, \f, U+0085) still separates words.
      if (options_.collapse_whitespace && is_space(c)) pending_space = !field_start;
      return;
    }
    if (options_.collapse_whitespace) {
      if (is_space(c)) {
        pending_space = !field_start;
        return;
      }
      if (c == '\t') {
        out += '\t';
        pending_space = false;
        field_start = true;
        return;
      }
      if (pending_space) out += ' ';
      pending_space = false;
      field_start = false;
    }
    append_utf8(out, c);
  });
}

}  // namespace oar::nlp::text
