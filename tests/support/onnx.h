#pragma once
// A reader for the parts of ONNX's protobuf files that the conformance tests need: ModelProto,
// GraphProto, NodeProto, AttributeProto and TensorProto (field numbers from onnx/onnx.proto).
// Our own wire-format decoder, so the tests need no libprotobuf. Malformed bytes throw
// oar::Error naming the file; valid content oar cannot hold (string tensors, int8, external
// data, ...) throws onnx::Skip.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/core/error.h"
#include "engine/tensor/tensor.h"

namespace oar::onnx {

// A missing feature, not a malformed file: the caller reports the test as skipped.
class Skip : public Error {
 public:
  using Error::Error;
};

// TensorProto.DataType values.
enum class DataType : int {
  undefined = 0,
  float32 = 1,
  uint8 = 2,
  int8 = 3,
  uint16 = 4,
  int16 = 5,
  int32 = 6,
  int64 = 7,
  string = 8,
  boolean = 9,
  float16 = 10,
  float64 = 11,
  uint32 = 12,
  uint64 = 13,
  complex64 = 14,
  complex128 = 15,
  bfloat16 = 16
};
const char* data_type_name(int t);
// The oar dtype that holds an ONNX element type (float64 is read as f32); throws Skip otherwise.
DType dtype_for(int onnx_type, const std::string& where);

struct Attribute {
  // AttributeProto.AttributeType values.
  enum Type : int {
    undefined = 0,
    float_ = 1,
    int_ = 2,
    string = 3,
    tensor = 4,
    graph = 5,
    floats = 6,
    ints = 7,
    strings = 8,
    tensors = 9,
    graphs = 10,
    sparse_tensor = 11,
    sparse_tensors = 12
  };
  std::string name;
  int type = undefined;
  float f = 0;
  int64_t i = 0;
  std::string s;
  Tensor t;
  std::vector<float> fs;
  std::vector<int64_t> is;
  std::vector<std::string> ss;
};

struct Node {
  std::string name, op_type, domain;
  std::vector<std::string> inputs, outputs;  // "" marks an omitted optional input/output
  std::vector<Attribute> attributes;

  const Attribute* find(const std::string& attr) const;
  bool has(const std::string& attr) const { return find(attr) != nullptr; }
  // Typed getters: the default when absent; throw when present with another type.
  int64_t get_int(const std::string& attr, int64_t def) const;
  float get_float(const std::string& attr, float def) const;
  std::string get_string(const std::string& attr, const std::string& def) const;
  std::vector<int64_t> get_ints(const std::string& attr,
                                const std::vector<int64_t>& def = {}) const;
  std::vector<float> get_floats(const std::string& attr, const std::vector<float>& def = {}) const;
  Tensor get_tensor(const std::string& attr) const;  // undefined when absent
};

// A graph input or output: its name and, for tensors, the element type (0 when not a tensor:
// sequences, maps, optionals).
struct ValueInfo {
  std::string name;
  bool is_tensor = false;
  int elem_type = 0;
};

struct Graph {
  std::string name;
  std::vector<Node> nodes;
  std::map<std::string, Tensor> initializers;
  std::vector<ValueInfo> inputs, outputs;
};

struct Model {
  int64_t ir_version = 0;
  std::map<std::string, int64_t> opsets;  // domain ("" = ai.onnx) -> version
  Graph graph;
  // The opset of `domain` ("" and "ai.onnx" are the same); throws when the model imports none.
  int64_t opset(const std::string& domain = "") const;
};

// Decoders over bytes; `where` names the source in errors.
Model parse_model(const std::string& bytes, const std::string& where);
Tensor parse_tensor(const std::string& bytes, const std::string& where);
// The same, reading a file; a missing file is an Error naming it.
Model load_model(const std::string& path);
Tensor load_tensor(const std::string& path);
// The element type a serialized TensorProto declares (to check an output's dtype).
int tensor_data_type(const std::string& path);

}  // namespace oar::onnx
