#include "video/tagging/tag_output.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/core/error.h"

namespace fs = std::filesystem;

namespace oar::video {

TagOutput::TagOutput(const std::string& path) : path_(path) {
  if (path == "-") {
    fd_ = STDOUT_FILENO;
    return;
  }
  std::error_code ec;
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) fs::create_directories(parent, ec);
  if (fs::exists(path, ec)) {
    std::string text;
    {
      std::ifstream in(path, std::ios::binary);
      OAR_CHECK(in.good(), path, ": cannot read the output file");
      std::ostringstream ss;
      ss << in.rdbuf();
      text = ss.str();
    }
    const size_t whole = text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1;
    if (whole < text.size()) {
      repaired_ = static_cast<int64_t>(text.size() - whole);
      fs::resize_file(path, whole, ec);
      OAR_CHECK(!ec, path, ": cannot cut off the partial last line (", ec.message(), ")");
      text.resize(whole);
    }
    std::istringstream lines(text);
    int64_t no = 0;
    for (std::string line; std::getline(lines, line);) {
      ++no;
      if (line.empty()) continue;
      const std::string where = path + ":" + std::to_string(no);
      const Json rec = Json::parse(line, where);
      const Json* p = rec.is_object() ? rec.find("path") : nullptr;
      OAR_CHECK(p && p->is_string(), where,
                ": not a video-tag record (a JSON object with a \"path\")");
      (rec.find("error") ? failed_ : tagged_).insert(p->as_string());
    }
    for (const auto& t : tagged_) failed_.erase(t);
  }
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  OAR_CHECK(fd_ >= 0, path, ": cannot open for appending (", std::strerror(errno), ")");
}

TagOutput::~TagOutput() {
  if (fd_ >= 0 && fd_ != STDOUT_FILENO) ::close(fd_);
}

bool TagOutput::done(const std::string& video, bool errors) const {
  return tagged_.count(video) || (errors && failed_.count(video));
}

void TagOutput::write(const Json& record) {
  const std::string line = record.dump() + "\n";
  const ssize_t n = ::write(fd_, line.data(), line.size());
  OAR_CHECK(n == static_cast<ssize_t>(line.size()), path_, ": cannot write a record (",
            n < 0 ? std::strerror(errno) : "short write", ")");
  const Json* p = record.find("path");
  if (p && p->is_string()) (record.find("error") ? failed_ : tagged_).insert(p->as_string());
}

}  // namespace oar::video
