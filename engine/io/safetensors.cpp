#include "engine/io/safetensors.h"

#include "engine/io/json.h"

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
  OAR_CHECK(v.is_int() && v.as_int() >= 0, where, ": ", what,
            " must be a non-negative integer, got '", v.dump(), "'");
  return static_cast<uint64_t>(v.as_int());
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
  Json root;
  try {
    root = Json::parse(std::string(hp, n), origin);
  } catch (const Error& e) {
    OAR_FAIL(origin, ": malformed header JSON (", e.what(), ")");
  }
  OAR_CHECK(root.is_object(), origin, ": header must be a JSON object");

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
  for (const auto& [name, info] : root.as_object()) {
    const std::string where = origin + ": tensor '" + name + "'";
    if (name == "__metadata__") {
      OAR_CHECK(info.is_object(), origin, ": __metadata__ must be an object of strings");
      for (const auto& [k, v] : info.as_object()) {
        OAR_CHECK(v.is_string(), origin, ": __metadata__ value for '", k, "' must be a string");
        out.metadata[k] = v.as_string();
      }
      continue;
    }
    OAR_CHECK(info.is_object(), where, ": entry must be an object");
    const Json *dtype = info.find("dtype"), *shape = info.find("shape"),
               *offsets = info.find("data_offsets");
    OAR_CHECK(dtype && shape && offsets, where,
              ": entry needs \"dtype\", \"shape\" and \"data_offsets\"");
    OAR_CHECK(dtype->is_string(), where, ": dtype must be a string");
    Entry e{name, dtype->as_string(), {}, 0, 0, nullptr};
    for (const auto& fd : kFileDTypes)
      if (e.fdt == fd.name) e.dt = &fd;
    OAR_CHECK(e.dt, where, ": unsupported dtype '", e.fdt,
              "' (supported: F64 F32 F16 BF16 I64 I32 I16 I8 U64 U32 U16 U8 BOOL)");
    OAR_CHECK(shape->is_array(), where, ": shape must be an array");
    // Element count with overflow checks (a hostile header must not wrap around).
    uint64_t numel = 1;
    for (const Json& d : shape->as_array()) {
      const uint64_t v = as_u64(d, where, "shape entry");
      OAR_CHECK(v <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) &&
                    (v == 0 || numel <= std::numeric_limits<uint64_t>::max() / v),
                where, ": shape is too large");
      numel *= v;
      e.shape.push_back(static_cast<int64_t>(v));
    }
    OAR_CHECK(offsets->is_array() && offsets->size() == 2, where,
              ": data_offsets must be [begin, end]");
    e.begin = as_u64(offsets->as_array()[0], where, "data_offsets begin");
    e.end = as_u64(offsets->as_array()[1], where, "data_offsets end");
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
      header.append(Json(k).dump()).append(":").append(Json(v).dump());
    }
    header.append("}");
  }
  std::map<std::string, const Tensor*> by_name;
  for (const auto& [name, t] : sorted) by_name[name] = &t;
  for (const auto& [name, t] : by_name) {
    sep();
    header.append(Json(name).dump()).append(":{\"dtype\":\"");
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
