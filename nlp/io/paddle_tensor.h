#pragma once
// PaddlePaddle's parameter files (Fluid `save`/`save_vars`/`save_persistables`, the format of the
// original ERNIE 1.0 checkpoints and of Baidu's LAC model_baseline/). One LoDTensor record is:
//   uint32 version (0)
//   uint64 lod_level, then per level: uint64 byte size (a multiple of 8), that many bytes of
//          uint64 offsets
//   uint32 tensor version (0)
//   int32  desc size, then a VarType.TensorDesc protobuf: data_type (field 1, enum),
//          dims (field 2, repeated int64, packed or not)
//   raw little-endian data, prod(dims) * sizeof(dtype) bytes, row-major
// A per-parameter checkpoint is a directory holding one record per file, named by the parameter
// (`fc_0.w_0`, `word_emb`); a combined file (`save_combine`: `__params__`, `.pdiparams`) is the
// records back to back with no names, in an order the program defines.
//
// dtypes: FP32 BF16 FP16 INT64 INT32 UINT8 BOOL load as themselves; FP64 loads as f32, INT16 and
// INT8 as i32. Others (complex, SIZE_T, ...) are errors. Every size, offset and enum is checked;
// errors name the file (and the byte offset) and what was wrong. Paddle `fc` weights are stored
// [in, out]; nothing is transposed here.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/tensor/tensor.h"

namespace oar::nlp {

struct PaddleTensor {
  Tensor tensor;                           // on the CPU, contiguous
  std::vector<std::vector<uint64_t>> lod;  // levels of offsets; empty for parameters
  int32_t file_dtype = 5;                  // the VarType.Type in the file (5 = FP32)
};

// Parses one record starting at data[pos]; advances pos past it. `origin` names the bytes.
PaddleTensor parse_paddle_tensor(const uint8_t* data, size_t size, size_t& pos,
                                 const std::string& origin);

// One record filling the whole file (trailing bytes are an error).
PaddleTensor read_paddle_tensor(const std::string& path);

// A per-parameter directory: every regular file except `__model__`, `__params__`, `*.pdmodel`,
// `*.pdiparams`, `*.pdparams`, `*.pdopt`, `*.info`, `*.json`, `*.txt`, `*.yaml`, `*.md` and hidden
// files, keyed by file name. With `names`, exactly those files (a
// missing one is an error naming it).
std::map<std::string, Tensor> read_paddle_dir(const std::string& dir,
                                              const std::vector<std::string>& names = {});

// A combined file: records in the order of `names` (one record per name, no bytes left over).
std::map<std::string, Tensor> read_paddle_combined(const std::string& path,
                                                   const std::vector<std::string>& names);

// The bytes of one record as Paddle writes it (dims unpacked, as proto2 repeated int64). Any
// engine dtype; for tests and export.
std::vector<uint8_t> serialize_paddle_tensor(const Tensor& t,
                                             const std::vector<std::vector<uint64_t>>& lod = {});

// Paddle's name of a VarType.Type value ("FP32"), or "type N" for an unknown one.
std::string paddle_dtype_name(int32_t type);

}  // namespace oar::nlp
