#include "engine/ops/cpu/onednn.h"

#include <mutex>
#include <sstream>
#include <unordered_map>

#include "engine/core/error.h"

namespace oar::cpu::onednn {

dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

dnnl::stream& stream() {
  thread_local dnnl::stream s(engine());
  return s;
}

dnnl::memory::data_type data_type(DType t) {
  using dt = dnnl::memory::data_type;
  switch (t) {
    case DType::f32: return dt::f32;
    case DType::bf16: return dt::bf16;
    case DType::f16: return dt::f16;
    case DType::i32: return dt::s32;
    case DType::u8: return dt::u8;
    default: OAR_FAIL("oneDNN has no data type for ", dtype_name(t));
  }
}

dnnl::memory::dims dims(const Shape& s) { return dnnl::memory::dims(s.begin(), s.end()); }

dnnl::memory::desc desc_of(const Tensor& t) {
  if (t.dim() == 0) return dnnl::memory::desc({1}, data_type(t.dtype()), dnnl::memory::dims{1});
  return dnnl::memory::desc(dims(t.shape()), data_type(t.dtype()), dims(t.strides()));
}

dnnl::memory::desc plain_desc(const Shape& s, DType t) {
  return dnnl::memory::desc(dims(s), data_type(t), dims(contiguous_strides(s)));
}

dnnl::memory memory_of(const Tensor& t, const dnnl::memory::desc& d) {
  return dnnl::memory(d, engine(), t.raw_data());
}

namespace {
std::mutex g_mu;
std::unordered_map<std::string, std::shared_ptr<void>>& table() {
  static auto* m = new std::unordered_map<std::string, std::shared_ptr<void>>();
  return *m;
}
}  // namespace

std::shared_ptr<void> cache_get(const std::string& key) {
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = table().find(key);
  return it == table().end() ? nullptr : it->second;
}

void cache_put(const std::string& key, std::shared_ptr<void> value) {
  std::lock_guard<std::mutex> lock(g_mu);
  table()[key] = std::move(value);
}

std::string key_of(const Tensor& t) {
  std::ostringstream os;
  os << dtype_name(t.dtype()) << shape_str(t.shape()) << shape_str(t.strides());
  return os.str();
}

dnnl::memory reorder(const dnnl::memory& from, const dnnl::memory::desc& to_desc) {
  dnnl::memory to(to_desc, engine());
  dnnl::reorder(from, to).execute(stream(), const_cast<dnnl::memory&>(from), to);
  stream().wait();
  return to;
}

Tensor buffer_for(const dnnl::memory::desc& d) {
  const int64_t n = static_cast<int64_t>(d.get_size());
  return empty({std::max<int64_t>(n, 1)}, DType::u8);
}

}  // namespace oar::cpu::onednn

#include "engine/core/build_info.h"

namespace oar {
std::string onednn_version() {
  const dnnl_version_t* v = dnnl_version();
  return std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
         std::to_string(v->patch) + " (" + v->hash + ")";
}
}  // namespace oar
