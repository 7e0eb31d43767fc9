#include "nlp/text/tsv_columns.h"

#include <charconv>

#include "engine/core/error.h"

namespace oar::nlp::text {

std::vector<std::string_view> split_tsv(std::string_view line) {
  std::vector<std::string_view> out;
  size_t from = 0;
  while (true) {
    const size_t tab = line.find('\t', from);
    out.push_back(
        line.substr(from, tab == std::string_view::npos ? std::string_view::npos : tab - from));
    if (tab == std::string_view::npos) return out;
    from = tab + 1;
  }
}

std::string_view tsv_field(std::string_view line, size_t index, const std::string& where,
                           const std::string& column) {
  size_t from = 0;
  for (size_t k = 0; k < index; ++k) {
    const size_t tab = line.find('\t', from);
    if (tab == std::string_view::npos)
      OAR_FAIL(where, ": has ", k + 1, " column", k ? "s" : "", ", column '", column,
               "' is number ", index + 1);
    from = tab + 1;
  }
  const size_t tab = line.find('\t', from);
  return line.substr(from, tab == std::string_view::npos ? std::string_view::npos : tab - from);
}

size_t resolve_column(const std::string& spec, std::string_view header, const std::string& where) {
  const auto names = split_tsv(header);
  for (size_t k = 0; k < names.size(); ++k)
    if (names[k] == spec) return k;
  size_t number = 0;
  const auto [end, ec] = std::from_chars(spec.data(), spec.data() + spec.size(), number);
  if (ec == std::errc() && end == spec.data() + spec.size() && number >= 1 &&
      number <= names.size())
    return number - 1;
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "'" : ", '") + std::string(n) + "'";
  OAR_FAIL(where, ": no column '", spec, "' in the header (columns: ", list, ")");
}

}  // namespace oar::nlp::text
