#include "nlp/io/paddle_tensor.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "engine/core/error.h"

namespace oar::nlp {

namespace {

// VarType.Type values of paddle/fluid/framework/framework.proto.
enum PaddleType : int32_t {
  kBool = 0,
  kInt16 = 1,
  kInt32 = 2,
  kInt64 = 3,
  kFp16 = 4,
  kFp32 = 5,
  kFp64 = 6,
  kSizeT = 19,
  kUint8 = 20,
  kInt8 = 21,
  kBf16 = 22,
  kComplex64 = 23,
  kComplex128 = 24,
};

constexpr size_t kMaxDesc = 1 << 16;  // a TensorDesc is a type and a few dims
constexpr uint64_t kMaxLodLevels = 64;
constexpr size_t kMaxDims = 32;

std::vector<uint8_t> read_all(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    OAR_FAIL(path, ": no such Paddle parameter file");
  std::ifstream f(path, std::ios::binary);
  OAR_CHECK(f, path, ": cannot open for reading");
  f.seekg(0, std::ios::end);
  const auto n = static_cast<size_t>(f.tellg());
  f.seekg(0);
  std::vector<uint8_t> bytes(n);
  if (n) f.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(n));
  OAR_CHECK(f, path, ": read error");
  return bytes;
}

class Cursor {
 public:
  Cursor(const uint8_t* d, size_t n, size_t pos, const std::string& origin)
      : d_(d), n_(n), i_(pos), origin_(origin) {}
  template <typename T>
  T get(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, d_ + i_, sizeof(T));  // little-endian hosts only (x86-64, aarch64)
    i_ += sizeof(T);
    return v;
  }
  void need(uint64_t bytes, const char* what) const {
    if (bytes > n_ - i_)
      OAR_FAIL(origin_, ": truncated at byte ", i_, ": ", what, " needs ", bytes, " bytes, ",
               n_ - i_, " left");
  }
  const uint8_t* here() const { return d_ + i_; }
  void skip(size_t k) { i_ += k; }
  size_t pos() const { return i_; }
  [[noreturn]] void fail(const std::string& what, size_t at) const {
    OAR_FAIL(origin_, ": byte ", at, ": ", what);
  }

 private:
  const uint8_t* d_;
  size_t n_;
  size_t i_;
  const std::string& origin_;
};

// The few protobuf wire-format pieces a TensorDesc uses.
struct ProtoReader {
  const uint8_t* p;
  size_t n;
  size_t i = 0;
  const Cursor& cur;
  size_t base;  // file offset of p, for messages

  [[noreturn]] void fail(const std::string& what) const {
    cur.fail("TensorDesc protobuf: " + what, base + i);
  }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (i >= n) fail("truncated varint");
      const uint8_t b = p[i++];
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    fail("varint longer than 10 bytes");
  }
  void skip_field(uint32_t wire) {
    switch (wire) {
      case 0:
        varint();
        return;
      case 1:
        if (n - i < 8) fail("truncated fixed64");
        i += 8;
        return;
      case 2: {
        const uint64_t len = varint();
        if (len > n - i) fail("length-delimited field runs past the message");
        i += len;
        return;
      }
      case 5:
        if (n - i < 4) fail("truncated fixed32");
        i += 4;
        return;
      default:
        fail("unsupported wire type " + std::to_string(wire));
    }
  }
};

struct Desc {
  int32_t type = -1;
  std::vector<int64_t> dims;
};

Desc parse_desc(const uint8_t* p, size_t n, const Cursor& cur) {
  ProtoReader r{p, n, 0, cur, cur.pos()};
  Desc d;
  bool have_type = false;
  while (r.i < n) {
    const uint64_t key = r.varint();
    const auto field = key >> 3;
    const auto wire = static_cast<uint32_t>(key & 7);
    if (field == 1 && wire == 0) {
      const auto v = static_cast<int64_t>(r.varint());
      if (v < 0 || v > std::numeric_limits<int32_t>::max())
        r.fail("data_type " + std::to_string(v) + " out of range");
      d.type = static_cast<int32_t>(v);
      have_type = true;
    } else if (field == 2 && wire == 0) {
      d.dims.push_back(static_cast<int64_t>(r.varint()));
    } else if (field == 2 && wire == 2) {  // packed repeated int64
      const uint64_t len = r.varint();
      if (len > n - r.i) r.fail("packed dims run past the message");
      const size_t end = r.i + len;
      ProtoReader sub{p, end, r.i, cur, cur.pos()};
      while (sub.i < end) d.dims.push_back(static_cast<int64_t>(sub.varint()));
      r.i = end;
    } else if (field == 1 || field == 2) {
      r.fail("field " + std::to_string(field) + " has wire type " + std::to_string(wire));
    } else {
      r.skip_field(wire);  // unknown fields are legal protobuf
    }
    if (d.dims.size() > kMaxDims) r.fail("more than " + std::to_string(kMaxDims) + " dims");
  }
  if (!have_type) r.fail("no data_type (field 1)");
  return d;
}

struct TypeInfo {
  size_t file_size;
  DType to;
};

bool type_info(int32_t t, TypeInfo& out) {
  switch (t) {
    case kFp32:
      out = {4, DType::f32};
      return true;
    case kFp16:
      out = {2, DType::f16};
      return true;
    case kBf16:
      out = {2, DType::bf16};
      return true;
    case kFp64:
      out = {8, DType::f32};
      return true;
    case kInt64:
      out = {8, DType::i64};
      return true;
    case kInt32:
      out = {4, DType::i32};
      return true;
    case kInt16:
      out = {2, DType::i32};
      return true;
    case kInt8:
      out = {1, DType::i32};
      return true;
    case kUint8:
      out = {1, DType::u8};
      return true;
    case kBool:
      out = {1, DType::boolean};
      return true;
    default:
      return false;
  }
}

int32_t paddle_type_of(DType t) {
  switch (t) {
    case DType::f32:
      return kFp32;
    case DType::f16:
      return kFp16;
    case DType::bf16:
      return kBf16;
    case DType::i64:
      return kInt64;
    case DType::i32:
      return kInt32;
    case DType::u8:
      return kUint8;
    case DType::boolean:
      return kBool;
  }
  return kFp32;
}

template <typename From, typename To>
void convert(const uint8_t* src, To* dst, size_t n) {
  for (size_t k = 0; k < n; ++k) {
    From v;
    std::memcpy(&v, src + k * sizeof(From), sizeof(From));
    dst[k] = static_cast<To>(v);
  }
}

void put_varint(std::vector<uint8_t>& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<uint8_t>(v));
}

template <typename T>
void put(std::vector<uint8_t>& out, T v) {
  const auto* b = reinterpret_cast<const uint8_t*>(&v);
  out.insert(out.end(), b, b + sizeof(T));
}

bool skipped_in_dir(const std::string& name) {
  if (name.empty() || name[0] == '.') return true;
  if (name == "__model__" || name == "__params__") return true;
  for (const char* ext :
       {".pdmodel", ".pdiparams", ".pdparams", ".pdopt", ".info", ".json", ".txt", ".yaml", ".md"})
    if (name.size() > std::strlen(ext) &&
        name.compare(name.size() - std::strlen(ext), std::string::npos, ext) == 0)
      return true;
  return false;
}

}  // namespace

std::string paddle_dtype_name(int32_t type) {
  switch (type) {
    case kBool:
      return "BOOL";
    case kInt16:
      return "INT16";
    case kInt32:
      return "INT32";
    case kInt64:
      return "INT64";
    case kFp16:
      return "FP16";
    case kFp32:
      return "FP32";
    case kFp64:
      return "FP64";
    case kSizeT:
      return "SIZE_T";
    case kUint8:
      return "UINT8";
    case kInt8:
      return "INT8";
    case kBf16:
      return "BF16";
    case kComplex64:
      return "COMPLEX64";
    case kComplex128:
      return "COMPLEX128";
    default:
      return "type " + std::to_string(type);
  }
}

PaddleTensor parse_paddle_tensor(const uint8_t* data, size_t size, size_t& pos,
                                 const std::string& origin) {
  OAR_CHECK(pos <= size, origin, ": record offset ", pos, " past the end (", size, " bytes)");
  Cursor c(data, size, pos, origin);
  PaddleTensor out;

  const size_t at_version = c.pos();
  const auto version = c.get<uint32_t>("the LoDTensor version");
  if (version != 0)
    c.fail("LoDTensor version " + std::to_string(version) +
               " (only 0 exists; is this a Paddle parameter file?)",
           at_version);
  const size_t at_levels = c.pos();
  const auto levels = c.get<uint64_t>("the LoD level count");
  if (levels > kMaxLodLevels)
    c.fail("LoD level count " + std::to_string(levels) + " (at most " +
               std::to_string(kMaxLodLevels) + ")",
           at_levels);
  for (uint64_t l = 0; l < levels; ++l) {
    const size_t at = c.pos();
    const auto bytes = c.get<uint64_t>("a LoD level size");
    if (bytes % 8 != 0)
      c.fail("LoD level " + std::to_string(l) + " size " + std::to_string(bytes) +
                 " bytes is not a multiple of 8",
             at);
    c.need(bytes, "a LoD level");
    std::vector<uint64_t> offsets(bytes / 8);
    if (bytes) std::memcpy(offsets.data(), c.here(), bytes);
    c.skip(bytes);
    out.lod.push_back(std::move(offsets));
  }

  const size_t at_tversion = c.pos();
  const auto tversion = c.get<uint32_t>("the tensor version");
  if (tversion != 0)
    c.fail("tensor version " + std::to_string(tversion) + " (only 0 exists)", at_tversion);
  const size_t at_desc = c.pos();
  const auto desc_size = c.get<int32_t>("the TensorDesc size");
  if (desc_size <= 0 || static_cast<size_t>(desc_size) > kMaxDesc)
    c.fail("TensorDesc size " + std::to_string(desc_size) + " (expected 1.." +
               std::to_string(kMaxDesc) + ")",
           at_desc);
  c.need(static_cast<uint64_t>(desc_size), "the TensorDesc");
  const Desc desc = parse_desc(c.here(), static_cast<size_t>(desc_size), c);
  c.skip(static_cast<size_t>(desc_size));

  TypeInfo ti;
  if (!type_info(desc.type, ti))
    c.fail("data type " + paddle_dtype_name(desc.type) +
               " is not supported (FP32, FP16, BF16, FP64, INT64, INT32, INT16, INT8, UINT8, BOOL)",
           at_desc);
  out.file_dtype = desc.type;
  Shape shape;
  uint64_t numel = 1;
  for (const int64_t d : desc.dims) {
    if (d < 0)
      c.fail("dimension " + std::to_string(d) + " in dims " + shape_str(Shape(desc.dims)) +
                 " (a saved tensor has known sizes)",
             at_desc);
    if (d > 0 && numel > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(d))
      c.fail("dims " + shape_str(Shape(desc.dims)) + " overflow", at_desc);
    numel *= static_cast<uint64_t>(d);
    shape.push_back(d);
  }
  if (numel > std::numeric_limits<uint64_t>::max() / ti.file_size)
    c.fail("dims " + shape_str(shape) + " overflow", at_desc);
  const uint64_t nbytes = numel * ti.file_size;
  c.need(nbytes,
         ("the data of a " + paddle_dtype_name(desc.type) + " " + shape_str(shape) + " tensor")
             .c_str());

  // LoD offsets: each level starts at 0, never decreases, ends at the next level's entry count
  // minus one; the last level ends at the tensor's first dimension (Paddle's CheckLoD).
  for (size_t l = 0; l < out.lod.size(); ++l) {
    const auto& lv = out.lod[l];
    const std::string name = "LoD level " + std::to_string(l);
    if (lv.empty()) OAR_FAIL(origin, ": ", name, " is empty (needs at least the offset 0)");
    if (lv[0] != 0) OAR_FAIL(origin, ": ", name, " starts at ", lv[0], ", not 0");
    for (size_t k = 1; k < lv.size(); ++k)
      if (lv[k] < lv[k - 1])
        OAR_FAIL(origin, ": ", name, " offset ", k, " (", lv[k], ") is less than the one before (",
                 lv[k - 1], ")");
    const uint64_t want = l + 1 < out.lod.size()
                              ? static_cast<uint64_t>(out.lod[l + 1].size()) - 1
                              : (shape.empty() ? 1 : static_cast<uint64_t>(shape[0]));
    if (lv.back() != want)
      OAR_FAIL(origin, ": ", name, " ends at ", lv.back(), " but ",
               l + 1 < out.lod.size() ? "the next level has " + std::to_string(want) + " sequences"
                                      : "the tensor has " + std::to_string(want) + " rows");
  }

  Tensor t = empty(shape, ti.to);
  const uint8_t* src = c.here();
  const auto n = static_cast<size_t>(numel);
  switch (desc.type) {
    case kFp64:
      convert<double, float>(src, t.data<float>(), n);
      break;
    case kInt16:
      convert<int16_t, int32_t>(src, t.data<int32_t>(), n);
      break;
    case kInt8:
      convert<int8_t, int32_t>(src, t.data<int32_t>(), n);
      break;
    case kBool:
      for (size_t k = 0; k < n; ++k)
        if (src[k] > 1)
          OAR_FAIL(origin, ": BOOL element ", k, " has byte value ", int(src[k]), " (0 or 1)");
      if (n) std::memcpy(t.raw_data(), src, n);
      break;
    default:
      if (nbytes) std::memcpy(t.raw_data(), src, static_cast<size_t>(nbytes));
  }
  c.skip(static_cast<size_t>(nbytes));
  out.tensor = t;
  pos = c.pos();
  return out;
}

PaddleTensor read_paddle_tensor(const std::string& path) {
  const std::vector<uint8_t> bytes = read_all(path);
  size_t pos = 0;
  PaddleTensor t = parse_paddle_tensor(bytes.data(), bytes.size(), pos, path);
  if (pos != bytes.size())
    OAR_FAIL(path, ": ", bytes.size() - pos, " trailing bytes after the tensor (", pos,
             " bytes); a combined file needs read_paddle_combined and the parameter names");
  return t;
}

std::map<std::string, Tensor> read_paddle_dir(const std::string& dir,
                                              const std::vector<std::string>& names) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    OAR_FAIL(dir, ": not a directory of Paddle parameter files");
  std::map<std::string, Tensor> out;
  if (!names.empty()) {
    for (const auto& n : names) {
      const std::string path = dir + "/" + n;
      if (!std::filesystem::is_regular_file(path, ec))
        OAR_FAIL(dir, ": parameter file '", n, "' is missing");
      out[n] = read_paddle_tensor(path).tensor;
    }
    return out;
  }
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (!e.is_regular_file() || skipped_in_dir(name)) continue;
    out[name] = read_paddle_tensor(e.path().string()).tensor;
  }
  if (out.empty()) OAR_FAIL(dir, ": no Paddle parameter files in the directory");
  return out;
}

std::map<std::string, Tensor> read_paddle_combined(const std::string& path,
                                                   const std::vector<std::string>& names) {
  const std::vector<uint8_t> bytes = read_all(path);
  std::map<std::string, Tensor> out;
  size_t pos = 0;
  for (size_t k = 0; k < names.size(); ++k) {
    if (pos == bytes.size())
      OAR_FAIL(path, ": holds ", k, " tensors but ", names.size(), " names were given (next: '",
               names[k], "')");
    const std::string origin = path + " (record " + std::to_string(k) + ", '" + names[k] + "')";
    OAR_CHECK(!out.count(names[k]), path, ": parameter name '", names[k], "' given twice");
    out[names[k]] = parse_paddle_tensor(bytes.data(), bytes.size(), pos, origin).tensor;
  }
  if (pos != bytes.size())
    OAR_FAIL(path, ": ", bytes.size() - pos, " bytes left after the ", names.size(),
             " named tensors (more records than names?)");
  return out;
}

std::vector<uint8_t> serialize_paddle_tensor(const Tensor& t,
                                             const std::vector<std::vector<uint64_t>>& lod) {
  std::vector<uint8_t> out;
  put<uint32_t>(out, 0);
  put<uint64_t>(out, lod.size());
  for (const auto& lv : lod) {
    put<uint64_t>(out, lv.size() * 8);
    for (const uint64_t o : lv) put<uint64_t>(out, o);
  }
  put<uint32_t>(out, 0);
  std::vector<uint8_t> desc;
  desc.push_back(0x08);
  put_varint(desc, static_cast<uint64_t>(paddle_type_of(t.dtype())));
  for (const int64_t d : t.shape()) {
    desc.push_back(0x10);
    put_varint(desc, static_cast<uint64_t>(d));
  }
  put<int32_t>(out, static_cast<int32_t>(desc.size()));
  out.insert(out.end(), desc.begin(), desc.end());
  const Tensor c = t.to(Device::cpu()).contiguous();
  const auto* b = static_cast<const uint8_t*>(c.raw_data());
  out.insert(out.end(), b, b + c.nbytes());
  return out;
}

}  // namespace oar::nlp
