#pragma once
// ConfigError: one line per problem, `error: FILE:LINE: KEY: what is wrong (what is allowed)`.
#include <string>
#include <vector>

#include "engine/core/error.h"

namespace oar {

// Where a config value came from. source is "file", "env" (a file value with ${VAR} expanded),
// "override" (-o on the command line) or "default" (filled in from a schema). line/column are
// 1-based; 0 when unknown.
struct Origin {
  std::string file;
  int line = 0;
  int column = 0;
  std::string source = "file";
};

struct ConfigProblem {
  std::string file;  // empty when unknown
  int line = 0;      // 0 when unknown
  int column = 0;    // printed only when set (malformed YAML)
  std::string key;   // dotted key, or the override text
  std::string message;
  std::string allowed;  // printed in parentheses when not empty

  // `error: FILE:LINE: KEY: message (allowed)`; the parts that are unknown are left out.
  std::string format() const;
};

// Thrown for any bad config input. what() holds one formatted line per problem, sorted
// by file, line and key so that the output is deterministic.
class ConfigError : public Error {
 public:
  explicit ConfigError(ConfigProblem problem);
  explicit ConfigError(std::vector<ConfigProblem> problems);
  ConfigError(const std::string& file, int line, const std::string& key, const std::string& message,
              const std::string& allowed = "");
  ConfigError(const Origin& at, const std::string& key, const std::string& message,
              const std::string& allowed = "");

  const std::vector<ConfigProblem>& problems() const { return problems_; }
  const std::string& file() const { return problems_.front().file; }
  int line() const { return problems_.front().line; }
  const std::string& key() const { return problems_.front().key; }

 private:
  std::vector<ConfigProblem> problems_;
};

// Levenshtein distance and the closest candidate for "did you mean" hints.
size_t edit_distance(const std::string& a, const std::string& b);
// The closest candidate when it is near enough to be a plausible typo, else "".
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);
// "did you mean 'x'? known: a, b, c" / "known: a, b, c" (or "none registered").
std::string suggestion_text(const std::string& word, const std::vector<std::string>& candidates,
                            const std::string& known_label = "known");

}  // namespace oar
