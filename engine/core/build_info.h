#pragma once
// Versions of the libraries this build uses (for `oar version`).
#include <string>

namespace oar {

std::string onednn_version();  // "3.2.0 (hash)"

}  // namespace oar
