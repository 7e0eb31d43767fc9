#pragma once
// `oar config set FILE key=value ...`: edits a YAML file in place the way a person would. Only
// the text of the changed values moves; comments, blank lines, key order, quoting and flow/block
// style elsewhere stay as they were. The result is re-read and checked to mean exactly the old
// document plus the assignments, then validated, then written atomically.
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace oar {

// Each assignment is `a.b.c=value` or `a.list[1].k=value`, the value written as YAML
// (`lr=0.1`, `dims=[1, 2]`, `name=foo`). An existing value is replaced in place (a block map or
// list replaced by a scalar included); a new key is added at the end of its parent map, creating
// parent maps as needed. List elements must exist. Throws ConfigError; then nothing is written.
// `validate` (optional) sees the new text before it is written and throws to refuse it.
void set_in_file(const std::filesystem::path& path, const std::vector<std::string>& assignments,
                 const std::function<void(const std::string& new_text)>& validate = {});

// The same edit on text; `file` names it in messages. Returns the new text.
std::string set_in_text(const std::string& text, const std::string& file,
                        const std::vector<std::string>& assignments);

}  // namespace oar
