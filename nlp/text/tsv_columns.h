#pragma once
// Columns of TSV lines for the text tools: a header line names them; a column is chosen by name
// or by 1-based number. Fields are split on TAB only (no quoting, as ERNIE's and GLUE's TSVs).
#include <string>
#include <string_view>
#include <vector>

namespace oar::nlp::text {

// The fields of `line`, views into it.
std::vector<std::string_view> split_tsv(std::string_view line);
// Field `index` (0-based) of `line`; throws oar::Error naming `where`, the column and the count
// of fields when the line has too few.
std::string_view tsv_field(std::string_view line, size_t index, const std::string& where,
                           const std::string& column);

// 0-based index of column `spec` (a header name, else a 1-based number) in `header`; throws
// oar::Error naming `where` and listing the header's columns when there is no such column.
size_t resolve_column(const std::string& spec, std::string_view header, const std::string& where);

}  // namespace oar::nlp::text
