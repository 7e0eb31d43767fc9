#include "engine/io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <memory>

#include "engine/core/error.h"

namespace oar::io {

namespace {

constexpr uint64_t kMaxHeader = 100'000'000;

// ---- a small JSON reader: just enough for safetensors headers, strict about syntax ----
struct Json {
  enum Kind { null, boolean, number, string, array, object } kind = null;
  bool b = false;
  std::string text;  // number literal or decoded string
  std::vector<Json> items;
  std::vector<std::pair<std::string, Json>> members;  // object, file order
};

class JsonParser {
 public:
  JsonParser(const char* p, size_t n, const std::string& where) : p_(p), n_(n), where_(where) {}

  Json parse_document() {
    Json v = value(0);
    skip_ws();
    if (i_ != n_) fail("unexpected trailing characters");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    OAR_FAIL(where_, ": malformed header JSON at byte ", i_, ": ", what);
  }
  void skip_ws() {
    while (i_ < n_ && (p_[i_] == ' ' || p_[i_] == '\t' || p_[i_] == '\n' || p_[i_] == '\r')) ++i_;
  }
  char peek() {
    skip_ws();
    if (i_ >= n_) fail("unexpected end");
    return p_[i_];
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++i_;
  }
  bool literal(const char* word) {
    const size_t len = std::strlen(word);
    if (n_ - i_ >= len && std::memcmp(p_ + i_, word, len) == 0) {
      i_ += len;
      return true;
    }
    return false;
  }

  Json value(int depth) {
    if (depth > 64) fail("nesting too deep");
    Json v;
    const char c = peek();
    if (c == '{') {
      v.kind = Json::object;
      ++i_;
      if (peek() == '}') {
        ++i_;
        return v;
      }
      while (true) {
        if (peek() != '"') fail("expected a string key");
        std::string key = str();
        expect(':');
        for (const auto& m : v.members)
          if (m.first == key) fail("duplicate key \"" + key + "\"");
        v.members.emplace_back(std::move(key), value(depth + 1));
        const char d = peek();
        ++i_;
        if (d == '}') break;
        if (d != ',') fail("expected ',' or '}' in object");
      }
    } else if (c == '[') {
      v.kind = Json::array;
      ++i_;
      if (peek() == ']') {
        ++i_;
        return v;
      }
      while (true) {
        v.items.push_back(value(depth + 1));
        const char d = peek();
        ++i_;
        if (d == ']') break;
        if (d != ',') fail("expected ',' or ']' in array");
      }
    } else if (c == '"') {
      v.kind = Json::string;
      v.text = str();
    } else if (literal("true")) {
      v.kind = Json::boolean;
      v.b = true;
    } else if (literal("false")) {
      v.kind = Json::boolean;
    } else if (literal("null")) {
      v.kind = Json::null;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      v.kind = Json::number;
      v.text = number();
    } else {
      fail(std::string("unexpected character '") + c + "'");
    }
    return v;
  }

  std::string number() {
    const size_t start = i_;
    auto digits = [&] {
      const size_t s = i_;
      while (i_ < n_ && p_[i_] >= '0' && p_[i_] <= '9') ++i_;
      if (i_ == s) fail("malformed number");
    };
    if (p_[i_] == '-') ++i_;
    if (i_ < n_ && p_[i_] == '0')
      ++i_;
    else
      digits();
    if (i_ < n_ && p_[i_] == '.') {
      ++i_;
      digits();
    }
    if (i_ < n_ && (p_[i_] == 'e' || p_[i_] == 'E')) {
      ++i_;
      if (i_ < n_ && (p_[i_] == '+' || p_[i_] == '-')) ++i_;
      digits();
    }
    return std::string(p_ + start, i_ - start);
  }

  unsigned hex4() {
    if (n_ - i_ < 4) fail("truncated \\u escape");
    unsigned v = 0;
    for (int k = 0; k < 4; ++k) {
      const char h = p_[i_++];
      v <<= 4;
      if (h >= '0' && h <= '9')
        v |= static_cast<unsigned>(h - '0');
      else if (h >= 'a' && h <= 'f')
        v |= static_cast<unsigned>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F')
        v |= static_cast<unsigned>(h - 'A' + 10);
      else
        fail("bad hex digit in \\u escape");
    }
    return v;
  }

  static void put_utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  std::string str() {
    ++i_;  // opening quote
    std::string out;
    while (true) {
      if (i_ >= n_) fail("unterminated string");
      const char c = p_[i_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= n_) fail("unterminated escape");
      const char e = p_[i_++];
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          unsigned cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00) {
            if (!(literal("\\u"))) fail("lone high surrogate");
            const unsigned lo = hex4();
            if (lo < 0xDC00 || lo > 0xDFFF) fail("bad low surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp < 0xE000) {
            fail("lone low surrogate");
          }
          put_utf8(out, cp);
          break;
        }
        default:
          fail(std::string("bad escape '\\") + e + "'");
      }
    }
  }

  const char* p_;
  size_t n_;
  size_t i_ = 0;
  const std::string& where_;
};

// ---- dtypes ----
struct FileDType {
  const char* name;
  size_t size;  // bytes per element in the file
  DType to;     // what we load it as
};
const FileDType kFileDTypes[] = {
    {"F32", 4, DType::f32},      {"BF16", 2, DType::bf16}, {"F16", 2, DType::f16},
    {"I64", 8, DType::i64},      {"I32", 4, DType::i32},   {"U8", 1, DType::u8},
    {"BOOL", 1, DType::boolean}, {"F64", 8, DType::f32},   {"I16", 2, DType::i32},
    {"I8", 1, DType::i32},       {"U16", 2, DType::i32},   {"U32", 4, DType::i64},
    {"U64", 8, DType::i64},
};

const char* file_dtype_name(DType t) {
  switch (t) {
    case DType::f32:
      return "F32";
    case DType::bf16:
      return "BF16";
    case DType::f16:
      return "F16";
    case DType::i64:
      return "I64";
    case DType::i32:
      return "I32";
    case DType::u8:
      return "U8";
    case DType::boolean:
      return "BOOL";
  }
  return "?";
}

uint64_t read_le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int k = 7; k >= 0; --k) v = (v << 8) | p[k];
  return v;
}

uint64_t as_u64(const Json& v, const std::string& where, const std::string& what) {
  OAR_CHECK(v.kind == Json::number && !v.text.empty() && v.text[0] != '-' &&
                v.text.find_first_of(".eE") == std::string::npos,
            where, ": ", what, " must be a non-negative integer, got '", v.text, "'");
  errno = 0;
  char* end = nullptr;
  const unsigned long long x = std::strtoull(v.text.c_str(), &end, 10);
  OAR_CHECK(errno == 0 && *end == '\0', where, ": ", what, " '", v.text, "' is out of range");
  return x;
}

// Converts n elements of a file dtype that we widen into the destination tensor's memory.
void widen(const std::string& fdt, const uint8_t* src, size_t n, void* dst,
           const std::string& where) {
  auto load = [&](auto tag, size_t i) {
    using S = decltype(tag);
    S v;
    std::memcpy(&v, src + i * sizeof(S), sizeof(S));
    return v;
  };
  if (fdt == "F64") {
    float* d = static_cast<float*>(dst);
    for (size_t i = 0; i < n; ++i) d[i] = static_cast<float>(load(double{}, i));
  } else if (fdt == "I16") {
    int32_t* d = static_cast<int32_t*>(dst);
    for (size_t i = 0; i < n; ++i) d[i] = load(int16_t{}, i);
  } else if (fdt == "I8") {
    int32_t* d = static_cast<int32_t*>(dst);
    for (size_t i = 0; i < n; ++i) d[i] = load(int8_t{}, i);
  } else if (fdt == "U16") {
    int32_t* d = static_cast<int32_t*>(dst);
    for (size_t i = 0; i < n; ++i) d[i] = load(uint16_t{}, i);
  } else if (fdt == "U32") {
    int64_t* d = static_cast<int64_t*>(dst);
    for (size_t i = 0; i < n; ++i) d[i] = load(uint32_t{}, i);
  } else if (fdt == "U64") {
    int64_t* d = static_cast<int64_t*>(dst);
    for (size_t i = 0; i < n; ++i) {
      const uint64_t v = load(uint64_t{}, i);
      OAR_CHECK(v <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()), where,
                ": U64 value ", v, " does not fit in i64");
      d[i] = static_cast<int64_t>(v);
    }
  }
}

std::string json_escape(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out.append("\"");
  return out;
}

}  // namespace

Tensor SafetensorsFile::get(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return t;
  return Tensor();
}

std::map<std::string, Tensor> SafetensorsFile::as_map() const {
  return std::map<std::string, Tensor>(tensors.begin(), tensors.end());
}

SafetensorsFile parse_safetensors(const uint8_t* data, size_t size, const std::string& origin) {
  OAR_CHECK(size >= 8, origin, ": truncated safetensors file (", size,
            " bytes; at least 8 needed for the header length)");
  const uint64_t n = read_le64(data);
  OAR_CHECK(n <= kMaxHeader, origin, ": header length ", n, " exceeds the limit of ", kMaxHeader,
            " bytes (not a safetensors file?)");
  OAR_CHECK(n <= size - 8, origin, ": truncated: header length ", n, " but only ", size - 8,
            " bytes follow");
  OAR_CHECK(n >= 2 && data[8] == '{', origin, ": header must be a JSON object starting with '{'");
  const char* hp = reinterpret_cast<const char*>(data + 8);
  const Json root = JsonParser(hp, n, origin).parse_document();
  OAR_CHECK(root.kind == Json::object, origin, ": header must be a JSON object");

  const uint8_t* buffer = data + 8 + n;
  const uint64_t buffer_size = size - 8 - n;
  SafetensorsFile out;
  struct Entry {
    std::string name;
    std::string fdt;
    Shape shape;
    uint64_t begin, end;
    const FileDType* dt;
  };
  std::vector<Entry> entries;
  for (const auto& [name, info] : root.members) {
    const std::string where = origin + ": tensor '" + name + "'";
    if (name == "__metadata__") {
      OAR_CHECK(info.kind == Json::object, origin, ": __metadata__ must be an object of strings");
      for (const auto& [k, v] : info.members) {
        OAR_CHECK(v.kind == Json::string, origin, ": __metadata__ value for '", k,
                  "' must be a string");
        out.metadata[k] = v.text;
      }
      continue;
    }
    OAR_CHECK(info.kind == Json::object, where, ": entry must be an object");
    const Json *dtype = nullptr, *shape = nullptr, *offsets = nullptr;
    for (const auto& [k, v] : info.members) {
      if (k == "dtype")
        dtype = &v;
      else if (k == "shape")
        shape = &v;
      else if (k == "data_offsets")
        offsets = &v;
    }
    OAR_CHECK(dtype && shape && offsets, where,
              ": entry needs \"dtype\", \"shape\" and \"data_offsets\"");
    OAR_CHECK(dtype->kind == Json::string, where, ": dtype must be a string");
    Entry e{name, dtype->text, {}, 0, 0, nullptr};
    for (const auto& fd : kFileDTypes)
      if (e.fdt == fd.name) e.dt = &fd;
    OAR_CHECK(e.dt, where, ": unsupported dtype '", e.fdt,
              "' (supported: F64 F32 F16 BF16 I64 I32 I16 I8 U64 U32 U16 U8 BOOL)");
    OAR_CHECK(shape->kind == Json::array, where, ": shape must be an array");
    // Element count with overflow checks (a hostile header must not wrap around).
    uint64_t numel = 1;
    for (const Json& d : shape->items) {
      const uint64_t v = as_u64(d, where, "shape entry");
      OAR_CHECK(v <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) &&
                    (v == 0 || numel <= std::numeric_limits<uint64_t>::max() / v),
                where, ": shape is too large");
      numel *= v;
      e.shape.push_back(static_cast<int64_t>(v));
    }
    OAR_CHECK(offsets->kind == Json::array && offsets->items.size() == 2, where,
              ": data_offsets must be [begin, end]");
    e.begin = as_u64(offsets->items[0], where, "data_offsets begin");
    e.end = as_u64(offsets->items[1], where, "data_offsets end");
    OAR_CHECK(e.begin <= e.end, where, ": data_offsets begin ", e.begin, " > end ", e.end);
    OAR_CHECK(e.end <= buffer_size, where, ": data_offsets [", e.begin, ", ", e.end,
              "] out of range (data section is ", buffer_size, " bytes; file truncated?)");
    OAR_CHECK(numel <= std::numeric_limits<uint64_t>::max() / e.dt->size &&
                  numel * e.dt->size == e.end - e.begin,
              where, ": shape ", shape_str(e.shape), " of ", e.fdt, " needs ", numel * e.dt->size,
              " bytes but data_offsets span ", e.end - e.begin);
    entries.push_back(std::move(e));
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t pos = 0;
  for (const Entry& e : entries) {
    OAR_CHECK(e.begin >= pos, origin, ": tensor '", e.name, "' data [", e.begin, ", ", e.end,
              ") overlaps the previous tensor (which ends at ", pos, ")");
    OAR_CHECK(e.begin == pos, origin, ": hole in the data section: bytes [", pos, ", ", e.begin,
              ") before tensor '", e.name, "' belong to no tensor");
    pos = e.end;
  }
  OAR_CHECK(pos == buffer_size, origin, ": data section is ", buffer_size,
            " bytes but the tensors cover ", pos, " (trailing bytes or wrong lengths)");

  for (const Entry& e : entries) {
    Tensor t = empty(e.shape, e.dt->to);
    const size_t count = static_cast<size_t>(shape_numel(e.shape));
    if (e.fdt == file_dtype_name(e.dt->to)) {
      if (count) std::memcpy(t.raw_data(), buffer + e.begin, e.end - e.begin);
      if (e.dt->to == DType::boolean) {
        uint8_t* b = static_cast<uint8_t*>(t.raw_data());
        for (size_t i = 0; i < count; ++i) b[i] = b[i] != 0;  // only 0/1 are valid bools
      }
    } else {
      widen(e.fdt, buffer + e.begin, count, t.raw_data(), origin + ": tensor '" + e.name + "'");
    }
    out.tensors.emplace_back(e.name, t);
  }
  return out;
}

SafetensorsFile read_safetensors(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  OAR_CHECK(fd >= 0, path, ": cannot open: ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    OAR_FAIL(path, ": cannot stat: ", std::strerror(err));
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size == 0) {
    ::close(fd);
    OAR_FAIL(path, ": empty file (not a safetensors file)");
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int err = errno;
  ::close(fd);
  OAR_CHECK(map != MAP_FAILED, path, ": cannot map: ", std::strerror(err));
  std::unique_ptr<void, std::function<void(void*)>> unmap(map,
                                                          [size](void* p) { ::munmap(p, size); });
  return parse_safetensors(static_cast<const uint8_t*>(map), size, path);
}

std::vector<uint8_t> serialize_safetensors(
    const std::vector<std::pair<std::string, Tensor>>& tensors,
    const std::map<std::string, std::string>& metadata) {
  std::vector<std::pair<std::string, Tensor>> sorted;
  for (const auto& [name, t] : tensors) {
    OAR_CHECK(t.defined(), "safetensors: tensor '", name, "' is undefined");
    OAR_CHECK(name != "__metadata__", "safetensors: '__metadata__' is not a valid tensor name");
    sorted.emplace_back(name, t.to(Device::cpu()).contiguous());
  }
  // Data order: descending element size (keeps every tensor aligned), then name.
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    const size_t sa = dtype_size(a.second.dtype()), sb = dtype_size(b.second.dtype());
    return sa != sb ? sa > sb : a.first < b.first;
  });
  for (size_t i = 1; i < sorted.size(); ++i)
    OAR_CHECK(sorted[i].first != sorted[i - 1].first, "safetensors: duplicate tensor name '",
              sorted[i].first, "'");
  std::map<std::string, std::pair<uint64_t, uint64_t>> offsets;
  uint64_t pos = 0;
  for (const auto& [name, t] : sorted) {
    offsets[name] = {pos, pos + t.nbytes()};
    pos += t.nbytes();
  }
  // Built with append only: GCC 12 misreports -Wrestrict on chained std::string operator+.
  std::string header = "{";
  bool first = true;
  auto sep = [&] {
    if (!first) header.append(",");
    first = false;
  };
  if (!metadata.empty()) {
    sep();
    header.append("\"__metadata__\":{");
    bool first_kv = true;
    for (const auto& [k, v] : metadata) {
      if (!first_kv) header.append(",");
      first_kv = false;
      header.append(json_escape(k)).append(":").append(json_escape(v));
    }
    header.append("}");
  }
  std::map<std::string, const Tensor*> by_name;
  for (const auto& [name, t] : sorted) by_name[name] = &t;
  for (const auto& [name, t] : by_name) {
    sep();
    header.append(json_escape(name)).append(":{\"dtype\":\"");
    header.append(file_dtype_name(t->dtype())).append("\",\"shape\":[");
    for (int64_t d = 0; d < t->dim(); ++d) {
      if (d) header.append(",");
      header.append(std::to_string(t->size(d)));
    }
    const auto [b, e] = offsets[name];
    header.append("],\"data_offsets\":[").append(std::to_string(b)).append(",");
    header.append(std::to_string(e)).append("]}");
  }
  header += "}";
  while (header.size() % 8 != 0) header += ' ';
  std::vector<uint8_t> out(8 + header.size() + pos);
  uint64_t n = header.size();
  for (int k = 0; k < 8; ++k) out[static_cast<size_t>(k)] = static_cast<uint8_t>(n >> (8 * k));
  std::memcpy(out.data() + 8, header.data(), header.size());
  uint8_t* data = out.data() + 8 + header.size();
  for (const auto& [name, t] : sorted)
    if (t.nbytes()) std::memcpy(data + offsets[name].first, t.raw_data(), t.nbytes());
  return out;
}

void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  const std::vector<uint8_t> bytes = serialize_safetensors(tensors, metadata);
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  OAR_CHECK(fd >= 0, path, ": cannot create temporary file ", tmp, ": ", std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      OAR_FAIL(path, ": write failed: ", std::strerror(err));
    }
    done += static_cast<size_t>(w);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    OAR_FAIL(path, ": fsync/close failed: ", std::strerror(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    OAR_FAIL(path, ": cannot rename ", tmp, " into place: ", std::strerror(err));
  }
  // Make the rename durable.
  const size_t slash = path.rfind('/');
  const std::string dir =
      slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace oar::io
