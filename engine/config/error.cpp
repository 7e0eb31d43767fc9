#include "engine/config/error.h"

#include <algorithm>
#include <tuple>

namespace oar {
namespace {

std::string join_lines(std::vector<ConfigProblem>& problems) {
  std::stable_sort(problems.begin(), problems.end(), [](const auto& a, const auto& b) {
    return std::tie(a.file, a.line, a.column, a.key) < std::tie(b.file, b.line, b.column, b.key);
  });
  std::string out;
  for (size_t i = 0; i < problems.size(); ++i) {
    if (i) out += '\n';
    out += problems[i].format();
  }
  return out;
}

}  // namespace

std::string ConfigProblem::format() const {
  std::string out = "error: ";
  if (!file.empty()) {
    out += file;
    // Appended piecewise: `":" + std::to_string()` trips GCC 12's -Wrestrict false positive.
    if (line > 0) out.append(":").append(std::to_string(line));
    if (line > 0 && column > 0) out.append(":").append(std::to_string(column));
    out += ": ";
  }
  if (!key.empty()) out += key + ": ";
  out += message;
  if (!allowed.empty()) out += " (" + allowed + ")";
  return out;
}

ConfigError::ConfigError(ConfigProblem problem) : ConfigError(std::vector{std::move(problem)}) {}

ConfigError::ConfigError(std::vector<ConfigProblem> problems)
    : Error(join_lines(problems)), problems_(std::move(problems)) {
  if (problems_.empty()) problems_.push_back({});
}

ConfigError::ConfigError(const std::string& file, int line, const std::string& key,
                         const std::string& message, const std::string& allowed)
    : ConfigError(ConfigProblem{file, line, 0, key, message, allowed}) {}

ConfigError::ConfigError(const Origin& at, const std::string& key, const std::string& message,
                         const std::string& allowed)
    : ConfigError(ConfigProblem{at.file, at.line, 0, key, message, allowed}) {}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string closest_match(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = std::string::npos;
  for (const auto& c : candidates) {
    size_t d = edit_distance(word, c);
    if (d < best_d || (d == best_d && c < best)) {
      best_d = d;
      best = c;
    }
  }
  size_t limit = std::max<size_t>(2, std::max(word.size(), best.size()) / 3);
  return best_d <= limit ? best : std::string();
}

std::string suggestion_text(const std::string& word, const std::vector<std::string>& candidates,
                            const std::string& known_label) {
  std::vector<std::string> sorted = candidates;
  std::sort(sorted.begin(), sorted.end());
  std::string out;
  std::string best = closest_match(word, sorted);
  if (!best.empty()) out = "did you mean '" + best + "'? ";
  out += known_label + ": ";
  if (sorted.empty()) return out + "none";
  for (size_t i = 0; i < sorted.size(); ++i) out += (i ? ", " : "") + sorted[i];
  return out;
}

}  // namespace oar
