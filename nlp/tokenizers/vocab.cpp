#include "nlp/tokenizers/vocab.h"

#include <algorithm>
#include <charconv>
#include <fstream>

#include "engine/core/error.h"

namespace oar::nlp {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

std::string_view trim_end(std::string_view s) {
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}
std::string_view trim(std::string_view s) {
  s = trim_end(s);
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  return s;
}

// "token<TAB>id" with a non-negative integer id; returns false when `line` is not of that form.
bool split_ernie(std::string_view line, std::string_view& token, int64_t& id) {
  size_t tab = line.find('\t');
  if (tab == std::string_view::npos) return false;
  std::string_view num = trim(line.substr(tab + 1));
  if (num.empty()) return false;
  auto [ptr, ec] = std::from_chars(num.data(), num.data() + num.size(), id);
  if (ec != std::errc() || ptr != num.data() + num.size() || id < 0) return false;
  token = trim(line.substr(0, tab));
  return true;
}

}  // namespace

Vocab Vocab::load(const std::string& path, Format format,
                  const std::vector<std::string>& special_tokens) {
  std::ifstream in(path, std::ios::binary);
  OAR_CHECK(in, "vocab: cannot open '", path, "'");
  Vocab v;
  v.source_ = path;
  std::unordered_map<std::string, size_t, Hash, std::equal_to<>> first_line;  // special tokens only
  std::vector<size_t> id_line;
  std::string line;
  size_t line_no = 0;
  auto is_special = [&](std::string_view t) {
    return std::find(special_tokens.begin(), special_tokens.end(), t) != special_tokens.end();
  };
  while (std::getline(in, line)) {
    ++line_no;
    std::string_view text = line;
    if (line_no == 1 && text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);  // UTF-8 BOM
    std::string_view token;
    int64_t id = 0;
    if (format == Format::automatic) {
      format = split_ernie(trim_end(text), token, id) ? Format::ernie : Format::bert;
    }
    if (format == Format::ernie) {
      if (trim(text).empty()) continue;
      OAR_CHECK(
          split_ernie(trim_end(text), token, id), path, ":", line_no,
          ": expected 'token<TAB>id' with a non-negative integer id (ERNIE vocab format), got '",
          text, "'");
      OAR_CHECK(id < (int64_t(1) << 30), path, ":", line_no, ": id ", id, " is too large");
    } else {
      token = trim_end(text);
      id = int64_t(line_no - 1);
    }
    size_t uid = size_t(id);
    if (uid >= v.tokens_.size()) {
      v.tokens_.resize(uid + 1);
      v.has_token_.resize(uid + 1, false);
      id_line.resize(uid + 1, 0);
    }
    OAR_CHECK(!v.has_token_[uid], path, ":", line_no, ": id ", id, " is already used by '",
              v.tokens_[uid], "' at line ", id_line[uid]);
    v.tokens_[uid] = std::string(token);
    v.has_token_[uid] = true;
    id_line[uid] = line_no;
    if (is_special(token)) {
      auto [it, fresh] = first_line.emplace(std::string(token), line_no);
      OAR_CHECK(fresh, path, ":", line_no, ": special token '", token,
                "' is duplicated (first at line ", it->second, ")");
    }
    // A duplicated ordinary token keeps its last id, as Hugging Face's loader does.
    v.ids_.insert_or_assign(std::string(token), int32_t(id));
  }
  OAR_CHECK(line_no > 0, "vocab: '", path, "' is empty");
  for (const std::string& s : special_tokens) {
    OAR_CHECK(first_line.count(s), path, ": special token '", s,
              "' is missing from the vocabulary");
  }
  return v;
}

Vocab Vocab::from_tokens(const std::vector<std::string>& tokens) {
  Vocab v;
  v.source_ = "<memory>";
  v.tokens_ = tokens;
  v.has_token_.assign(tokens.size(), true);
  for (size_t i = 0; i < tokens.size(); ++i) v.ids_.insert_or_assign(tokens[i], int32_t(i));
  return v;
}

int32_t Vocab::id(std::string_view token) const {
  int32_t i = find(token);
  OAR_CHECK(i >= 0, "vocab '", source_, "': token '", token, "' is missing");
  return i;
}

const std::string& Vocab::token(int32_t id) const {
  OAR_CHECK(has_id(id), "vocab '", source_, "': id ", id, " has no token (size ", size(), ")");
  return tokens_[size_t(id)];
}

}  // namespace oar::nlp
