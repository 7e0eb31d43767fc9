#include "tests/support/onnx.h"

#include <cstring>
#include <fstream>
#include <sstream>
#include <string_view>

namespace oar::onnx {

namespace {

enum Wire : int { varint = 0, fixed64 = 1, bytes = 2, fixed32 = 5 };

// Protobuf wire-format cursor over one message's bytes.
class Reader {
 public:
  Reader(std::string_view buf, const std::string& where, size_t base = 0)
      : buf_(buf), where_(where), base_(base) {}

  bool done() const { return pos_ >= buf_.size(); }

  [[noreturn]] void fail(const std::string& what) const {
    OAR_FAIL("onnx: ", where_, ": malformed protobuf at byte ", base_ + pos_, ": ", what);
  }

  uint64_t read_varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= buf_.size()) fail("truncated varint");
      const uint8_t b = static_cast<uint8_t>(buf_[pos_++]);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    fail("varint longer than 10 bytes");
  }

  // Reads a field key; returns false at the end of the message.
  bool next(uint32_t& field, int& wire) {
    if (done()) return false;
    const uint64_t key = read_varint();
    field = static_cast<uint32_t>(key >> 3);
    wire = static_cast<int>(key & 7);
    if (field == 0) fail("field number 0");
    return true;
  }

  std::string_view read_bytes() {
    const uint64_t n = read_varint();
    if (n > buf_.size() - pos_) fail("length " + std::to_string(n) + " runs past the end");
    std::string_view s = buf_.substr(pos_, n);
    pos_ += n;
    return s;
  }

  Reader sub() {
    const size_t start = pos_;
    std::string_view s = read_bytes();
    return Reader(s, where_, base_ + start + (pos_ - start - s.size()));
  }

  template <typename T>
  T read_fixed() {
    if (buf_.size() - pos_ < sizeof(T)) fail("truncated fixed-width value");
    T v;
    std::memcpy(&v, buf_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  void skip(int wire) {
    switch (wire) {
      case varint:
        read_varint();
        break;
      case fixed64:
        read_fixed<uint64_t>();
        break;
      case bytes:
        read_bytes();
        break;
      case fixed32:
        read_fixed<uint32_t>();
        break;
      default:
        fail("unsupported wire type " + std::to_string(wire));
    }
  }

  void expect(int wire, int want, const char* field) {
    if (wire != want)
      fail(std::string("field ") + field + " has wire type " + std::to_string(wire) +
           ", expected " + std::to_string(want));
  }

  std::string read_string(int wire, const char* field) {
    expect(wire, bytes, field);
    return std::string(read_bytes());
  }

  int64_t read_int(int wire, const char* field) {
    expect(wire, varint, field);
    return static_cast<int64_t>(read_varint());
  }

  // Repeated varint field, packed or not.
  void read_ints(int wire, std::vector<int64_t>& out, const char* field) {
    if (wire == varint) {
      out.push_back(static_cast<int64_t>(read_varint()));
      return;
    }
    expect(wire, bytes, field);
    Reader r = sub();
    while (!r.done()) out.push_back(static_cast<int64_t>(r.read_varint()));
  }

  // Repeated fixed-width field (float, double, fixed64), packed or not.
  template <typename T>
  void read_fixeds(int wire, std::vector<T>& out, const char* field) {
    constexpr int w = sizeof(T) == 4 ? fixed32 : fixed64;
    if (wire == w) {
      out.push_back(read_fixed<T>());
      return;
    }
    expect(wire, bytes, field);
    Reader r = sub();
    if (r.buf_.size() % sizeof(T) != 0)
      fail(std::string("packed ") + field + " length is not a multiple of the element size");
    while (!r.done()) out.push_back(r.read_fixed<T>());
  }

  const std::string& where() const { return where_; }

 private:
  std::string_view buf_;
  const std::string& where_;
  size_t base_;
  size_t pos_ = 0;
};

size_t onnx_elem_size(int t) {
  switch (static_cast<DataType>(t)) {
    case DataType::float32:
    case DataType::int32:
    case DataType::uint32:
      return 4;
    case DataType::uint8:
    case DataType::int8:
    case DataType::boolean:
      return 1;
    case DataType::uint16:
    case DataType::int16:
    case DataType::float16:
    case DataType::bfloat16:
      return 2;
    case DataType::int64:
    case DataType::uint64:
    case DataType::float64:
      return 8;
    default:
      return 0;
  }
}

struct RawTensor {
  std::string name;
  Shape dims;
  int data_type = 0;
  std::string raw;
  bool has_raw = false;
  bool external = false;
  std::vector<float> floats;
  std::vector<double> doubles;
  std::vector<int64_t> int32s, int64s, uint64s;
  int64_t segments = 0;
};

RawTensor read_tensor_fields(Reader r) {
  RawTensor t;
  uint32_t f;
  int w;
  while (r.next(f, w)) {
    switch (f) {
      case 1:
        r.read_ints(w, t.dims, "TensorProto.dims");
        break;
      case 2:
        t.data_type = static_cast<int>(r.read_int(w, "TensorProto.data_type"));
        break;
      case 3:
        r.skip(w);
        ++t.segments;
        break;
      case 4:
        r.read_fixeds<float>(w, t.floats, "TensorProto.float_data");
        break;
      case 5:
        r.read_ints(w, t.int32s, "TensorProto.int32_data");
        break;
      case 7:
        r.read_ints(w, t.int64s, "TensorProto.int64_data");
        break;
      case 8:
        t.name = r.read_string(w, "TensorProto.name");
        break;
      case 9:
        t.raw = r.read_string(w, "TensorProto.raw_data");
        t.has_raw = true;
        break;
      case 10:
        r.read_fixeds<double>(w, t.doubles, "TensorProto.double_data");
        break;
      case 11:
        r.read_ints(w, t.uint64s, "TensorProto.uint64_data");
        break;
      case 14:
        t.external = r.read_int(w, "TensorProto.data_location") == 1;
        break;
      default:
        r.skip(w);
    }
  }
  return t;
}

// Converts element k of the source (raw little-endian bytes or a typed field) to double.
template <typename T>
void fill_typed(const Tensor& out, int64_t n, const std::function<double(int64_t)>& get) {
  T* p = out.data<T>();
  for (int64_t k = 0; k < n; ++k) p[k] = from_double<T>(get(k));
}

double raw_element(const std::string& raw, int t, int64_t k) {
  const char* p = raw.data() + k * static_cast<int64_t>(onnx_elem_size(t));
  auto rd = [p](auto v) {
    std::memcpy(&v, p, sizeof(v));
    return v;
  };
  switch (static_cast<DataType>(t)) {
    case DataType::float32:
      return rd(float{});
    case DataType::float64:
      return rd(double{});
    case DataType::uint8:
      return rd(uint8_t{});
    case DataType::boolean:
      return rd(uint8_t{}) != 0;
    case DataType::int32:
      return rd(int32_t{});
    case DataType::int64:
      return static_cast<double>(rd(int64_t{}));
    case DataType::float16:
      return f16_to_float(rd(uint16_t{}));
    case DataType::bfloat16:
      return bf16_to_float(rd(uint16_t{}));
    default:
      return 0;
  }
}

Tensor to_tensor(const RawTensor& t, const std::string& where) {
  const std::string what = where + (t.name.empty() ? "" : " tensor '" + t.name + "'");
  if (t.external) throw Skip("onnx: " + what + ": external data is not supported");
  if (t.segments) throw Skip("onnx: " + what + ": segmented tensors are not supported");
  const DType dt = dtype_for(t.data_type, what);
  for (int64_t d : t.dims) OAR_CHECK(d >= 0, "onnx: ", what, ": negative dimension ", d);
  const int64_t n = shape_numel(t.dims);
  Tensor out = empty(t.dims, dt);
  const int et = t.data_type;
  std::function<double(int64_t)> get;
  auto need = [&](size_t have, const char* field) {
    OAR_CHECK(static_cast<int64_t>(have) == n, "onnx: ", what, ": ", field, " holds ", have,
              " values for shape ", shape_str(t.dims), " (", n, " elements)");
  };
  if (t.has_raw) {
    const size_t want = static_cast<size_t>(n) * onnx_elem_size(et);
    OAR_CHECK(t.raw.size() == want, "onnx: ", what, ": raw_data has ", t.raw.size(),
              " bytes, expected ", want, " for ", shape_str(t.dims), " of ", data_type_name(et));
    get = [&](int64_t k) { return raw_element(t.raw, et, k); };
  } else {
    switch (static_cast<DataType>(et)) {
      case DataType::float32:
        need(t.floats.size(), "float_data");
        get = [&](int64_t k) { return static_cast<double>(t.floats[k]); };
        break;
      case DataType::float64:
        need(t.doubles.size(), "double_data");
        get = [&](int64_t k) { return t.doubles[k]; };
        break;
      case DataType::int64:
        need(t.int64s.size(), "int64_data");
        get = [&](int64_t k) { return static_cast<double>(t.int64s[k]); };
        break;
      case DataType::float16:  // int32_data holds the 16-bit patterns
        need(t.int32s.size(), "int32_data");
        get = [&](int64_t k) { return f16_to_float(static_cast<uint16_t>(t.int32s[k])); };
        break;
      case DataType::bfloat16:
        need(t.int32s.size(), "int32_data");
        get = [&](int64_t k) { return bf16_to_float(static_cast<uint16_t>(t.int32s[k])); };
        break;
      default:  // int32, uint8, bool
        need(t.int32s.size(), "int32_data");
        get = [&](int64_t k) { return static_cast<double>(t.int32s[k]); };
    }
  }
  if (dt == DType::i64 && !t.has_raw) {  // exact for values beyond 2^53
    int64_t* p = out.data<int64_t>();
    for (int64_t k = 0; k < n; ++k) p[k] = t.int64s[k];
    return out;
  }
  if (dt == DType::i64) {
    int64_t* p = out.data<int64_t>();
    for (int64_t k = 0; k < n; ++k) std::memcpy(&p[k], t.raw.data() + 8 * k, 8);
    return out;
  }
  OAR_DTYPE_SWITCH(dt, fill_typed<T>(out, n, get));
  return out;
}

Tensor read_tensor(Reader r) {
  return to_tensor(read_tensor_fields(r), r.where());
}

Attribute read_attribute(Reader r) {
  Attribute a;
  uint32_t f;
  int w;
  int64_t graphs = 0;
  while (r.next(f, w)) {
    switch (f) {
      case 1:
        a.name = r.read_string(w, "AttributeProto.name");
        break;
      case 20:
        a.type = static_cast<int>(r.read_int(w, "AttributeProto.type"));
        break;
      case 2: {
        r.expect(w, fixed32, "AttributeProto.f");
        a.f = r.read_fixed<float>();
        break;
      }
      case 3:
        a.i = r.read_int(w, "AttributeProto.i");
        break;
      case 4:
        a.s = r.read_string(w, "AttributeProto.s");
        break;
      case 5: {
        r.expect(w, bytes, "AttributeProto.t");
        RawTensor raw = read_tensor_fields(r.sub());
        try {
          a.t = to_tensor(raw, r.where());
        } catch (const Skip&) {
          // kept undefined: a handler that needs it skips
        }
        break;
      }
      case 6:
      case 11:
        r.skip(w);
        ++graphs;
        break;
      case 7:
        r.read_fixeds<float>(w, a.fs, "AttributeProto.floats");
        break;
      case 8:
        r.read_ints(w, a.is, "AttributeProto.ints");
        break;
      case 9:
        a.ss.push_back(r.read_string(w, "AttributeProto.strings"));
        break;
      default:
        r.skip(w);
    }
  }
  if (a.type == Attribute::undefined) {  // IR < 2: infer from the field in use
    if (!a.fs.empty())
      a.type = Attribute::floats;
    else if (!a.is.empty())
      a.type = Attribute::ints;
    else if (!a.ss.empty())
      a.type = Attribute::strings;
    else if (a.t.defined())
      a.type = Attribute::tensor;
    else if (!a.s.empty())
      a.type = Attribute::string;
    else if (graphs)
      a.type = Attribute::graph;
  }
  return a;
}

Node read_node(Reader r) {
  Node n;
  uint32_t f;
  int w;
  while (r.next(f, w)) {
    switch (f) {
      case 1:
        n.inputs.push_back(r.read_string(w, "NodeProto.input"));
        break;
      case 2:
        n.outputs.push_back(r.read_string(w, "NodeProto.output"));
        break;
      case 3:
        n.name = r.read_string(w, "NodeProto.name");
        break;
      case 4:
        n.op_type = r.read_string(w, "NodeProto.op_type");
        break;
      case 5:
        r.expect(w, bytes, "NodeProto.attribute");
        n.attributes.push_back(read_attribute(r.sub()));
        break;
      case 7:
        n.domain = r.read_string(w, "NodeProto.domain");
        break;
      default:
        r.skip(w);
    }
  }
  if (n.op_type.empty()) r.fail("NodeProto without op_type");
  return n;
}

ValueInfo read_value_info(Reader r) {
  ValueInfo v;
  uint32_t f;
  int w;
  while (r.next(f, w)) {
    if (f == 1) {
      v.name = r.read_string(w, "ValueInfoProto.name");
    } else if (f == 2) {  // TypeProto: tensor_type = 1 { elem_type = 1 }
      r.expect(w, bytes, "ValueInfoProto.type");
      Reader tr = r.sub();
      uint32_t tf;
      int tw;
      while (tr.next(tf, tw)) {
        if (tf == 1) {
          tr.expect(tw, bytes, "TypeProto.tensor_type");
          v.is_tensor = true;
          Reader er = tr.sub();
          uint32_t ef;
          int ew;
          while (er.next(ef, ew)) {
            if (ef == 1)
              v.elem_type = static_cast<int>(er.read_int(ew, "TypeProto.Tensor.elem_type"));
            else
              er.skip(ew);
          }
        } else {
          tr.skip(tw);
        }
      }
    } else {
      r.skip(w);
    }
  }
  return v;
}

Graph read_graph(Reader r) {
  Graph g;
  uint32_t f;
  int w;
  while (r.next(f, w)) {
    switch (f) {
      case 1:
        r.expect(w, bytes, "GraphProto.node");
        g.nodes.push_back(read_node(r.sub()));
        break;
      case 2:
        g.name = r.read_string(w, "GraphProto.name");
        break;
      case 5: {
        r.expect(w, bytes, "GraphProto.initializer");
        RawTensor raw = read_tensor_fields(r.sub());
        g.initializers[raw.name] = to_tensor(raw, r.where());
        break;
      }
      case 11:
        r.expect(w, bytes, "GraphProto.input");
        g.inputs.push_back(read_value_info(r.sub()));
        break;
      case 12:
        r.expect(w, bytes, "GraphProto.output");
        g.outputs.push_back(read_value_info(r.sub()));
        break;
      default:
        r.skip(w);
    }
  }
  return g;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  OAR_CHECK(in.good(), "onnx: cannot open ", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

const char* data_type_name(int t) {
  static const char* names[] = {"UNDEFINED",  "FLOAT",   "UINT8",  "INT8",   "UINT16",
                                "INT16",      "INT32",   "INT64",  "STRING", "BOOL",
                                "FLOAT16",    "DOUBLE",  "UINT32", "UINT64", "COMPLEX64",
                                "COMPLEX128", "BFLOAT16"};
  return t >= 0 && t <= 16 ? names[t] : "UNKNOWN";
}

DType dtype_for(int t, const std::string& where) {
  switch (static_cast<DataType>(t)) {
    case DataType::float32:
    case DataType::float64:
      return DType::f32;
    case DataType::float16:
      return DType::f16;
    case DataType::bfloat16:
      return DType::bf16;
    case DataType::int64:
      return DType::i64;
    case DataType::int32:
      return DType::i32;
    case DataType::uint8:
      return DType::u8;
    case DataType::boolean:
      return DType::boolean;
    default:
      throw Skip(detail::concat("onnx: ", where, ": element type ", data_type_name(t), " (", t,
                                ") has no oar dtype"));
  }
}

const Attribute* Node::find(const std::string& attr) const {
  for (const Attribute& a : attributes)
    if (a.name == attr) return &a;
  return nullptr;
}

namespace {
const Attribute* typed(const Node& n, const std::string& attr, int type) {
  const Attribute* a = n.find(attr);
  if (a && a->type != type)
    OAR_FAIL("onnx: ", n.op_type, " attribute '", attr, "' has type ", a->type, ", expected ",
             type);
  return a;
}
}  // namespace

int64_t Node::get_int(const std::string& attr, int64_t def) const {
  const Attribute* a = typed(*this, attr, Attribute::int_);
  return a ? a->i : def;
}
float Node::get_float(const std::string& attr, float def) const {
  const Attribute* a = typed(*this, attr, Attribute::float_);
  return a ? a->f : def;
}
std::string Node::get_string(const std::string& attr, const std::string& def) const {
  const Attribute* a = typed(*this, attr, Attribute::string);
  return a ? a->s : def;
}
std::vector<int64_t> Node::get_ints(const std::string& attr,
                                    const std::vector<int64_t>& def) const {
  const Attribute* a = typed(*this, attr, Attribute::ints);
  return a ? a->is : def;
}
std::vector<float> Node::get_floats(const std::string& attr, const std::vector<float>& def) const {
  const Attribute* a = typed(*this, attr, Attribute::floats);
  return a ? a->fs : def;
}
Tensor Node::get_tensor(const std::string& attr) const {
  const Attribute* a = typed(*this, attr, Attribute::tensor);
  if (a && !a->t.defined())
    throw Skip("onnx: " + op_type + " attribute '" + attr + "' holds a tensor oar cannot read");
  return a ? a->t : Tensor();
}

int64_t Model::opset(const std::string& domain) const {
  const std::string d = domain == "ai.onnx" ? "" : domain;
  auto it = opsets.find(d);
  OAR_CHECK(it != opsets.end(), "onnx: model imports no opset for domain '", d, "'");
  return it->second;
}

Model parse_model(const std::string& buf, const std::string& where) {
  Reader r(buf, where);
  Model m;
  bool has_graph = false;
  uint32_t f;
  int w;
  while (r.next(f, w)) {
    switch (f) {
      case 1:
        m.ir_version = r.read_int(w, "ModelProto.ir_version");
        break;
      case 7:
        r.expect(w, bytes, "ModelProto.graph");
        m.graph = read_graph(r.sub());
        has_graph = true;
        break;
      case 8: {
        r.expect(w, bytes, "ModelProto.opset_import");
        Reader o = r.sub();
        std::string domain;
        int64_t version = 0;
        uint32_t of;
        int ow;
        while (o.next(of, ow)) {
          if (of == 1)
            domain = o.read_string(ow, "OperatorSetIdProto.domain");
          else if (of == 2)
            version = o.read_int(ow, "OperatorSetIdProto.version");
          else
            o.skip(ow);
        }
        m.opsets[domain == "ai.onnx" ? "" : domain] = version;
        break;
      }
      default:
        r.skip(w);
    }
  }
  OAR_CHECK(has_graph, "onnx: ", where, ": ModelProto has no graph");
  return m;
}

Tensor parse_tensor(const std::string& buf, const std::string& where) {
  return read_tensor(Reader(buf, where));
}

Model load_model(const std::string& path) {
  return parse_model(read_file(path), path);
}
Tensor load_tensor(const std::string& path) {
  return parse_tensor(read_file(path), path);
}

int tensor_data_type(const std::string& path) {
  const std::string buf = read_file(path);
  return read_tensor_fields(Reader(buf, path)).data_type;
}

}  // namespace oar::onnx
