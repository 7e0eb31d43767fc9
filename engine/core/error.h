#pragma once
// oar's one exception type. Messages say what was wrong, where, and what is allowed.
#include <sstream>
#include <stdexcept>
#include <string>

namespace oar {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

}  // namespace oar

// OAR_CHECK(cond, parts...): throws oar::Error with the parts streamed together.
#define OAR_CHECK(cond, ...)                                             \
  do {                                                                   \
    if (!(cond)) throw ::oar::Error(::oar::detail::concat(__VA_ARGS__)); \
  } while (0)
#define OAR_FAIL(...) throw ::oar::Error(::oar::detail::concat(__VA_ARGS__))
