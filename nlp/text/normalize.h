#pragma once
// Line normalisation for `oar text normalize`, in this order: full-width ASCII forms (U+FF01 to
// U+FF5E) and the ideographic space (U+3000) to their half-width forms; Unicode NFC or NFKC (ICU);
// control characters (general category Cc) dropped, except TAB, which separates TSV columns;
// optionally, runs of other whitespace collapsed to one space and spaces trimmed around each
// TAB-separated field. Input must be valid UTF-8 (the line pipeline sees to it).
#include <memory>
#include <string>
#include <string_view>

namespace oar::nlp::text {

enum class NormalForm { none, nfc, nfkc };
// "none" | "nfc" | "nfkc"; anything else is an oar::Error.
NormalForm parse_normal_form(const std::string& s);

struct NormalizeOptions {
  NormalForm form = NormalForm::nfc;
  bool full_to_half = true;
  bool drop_control = true;
  bool collapse_whitespace = false;
};

// Thread-safe after construction (ICU's normalizer instances are immutable).
class Normalizer {
 public:
  explicit Normalizer(NormalizeOptions options = {});
  ~Normalizer();
  // The normalised form of `text` into `out` (replaced).
  void normalize(std::string_view text, std::string& out) const;
  std::string normalize(std::string_view text) const {
    std::string out;
    normalize(text, out);
    return out;
  }

 private:
  struct Impl;
  NormalizeOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace oar::nlp::text
