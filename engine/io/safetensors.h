#pragma once
// Hugging Face safetensors files: an 8-byte little-endian header length N, N bytes of JSON
// ({"name": {"dtype", "shape", "data_offsets"}, "__metadata__": {str: str}}), then the data.
//
// Reading maps the file read-only and COPIES every tensor into the engine's allocator, so the
// tensors outlive the mapping and the file may change afterwards. The header is validated like
// the reference implementation (length <= 100 MB, well-formed JSON, known dtypes, byte lengths
// matching shapes, offsets in range, tiling the data section without overlap or holes, no
// duplicate names); every error names the file and the problem.
//
// dtypes: F32 BF16 F16 I64 I32 U8 BOOL load as themselves; F64 loads as f32, I8/I16/U16 as i32,
// U32/U64 as i64 (U64 values above 2^63-1 are an error); F8/F4/F6/C64 are errors.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor/tensor.h"

namespace oar::io {

struct SafetensorsFile {
  std::vector<std::pair<std::string, Tensor>> tensors;  // in data-offset order
  std::map<std::string, std::string> metadata;          // "__metadata__"
  // Looks a tensor up by name; undefined when absent.
  Tensor get(const std::string& name) const;
  std::map<std::string, Tensor> as_map() const;
};

SafetensorsFile read_safetensors(const std::string& path);
// The same from bytes in memory; `origin` names them in errors.
SafetensorsFile parse_safetensors(const uint8_t* data, size_t size, const std::string& origin);

// Writes atomically (temp file in the same directory, fsync, rename). Header keys sorted, data
// ordered by descending dtype size then name (as the reference writer), header padded with
// spaces to a multiple of 8 bytes. Any dtype and layout is accepted (written contiguous, LE).
void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});
// The bytes write_safetensors would write.
std::vector<uint8_t> serialize_safetensors(
    const std::vector<std::pair<std::string, Tensor>>& tensors,
    const std::map<std::string, std::string>& metadata = {});

}  // namespace oar::io
