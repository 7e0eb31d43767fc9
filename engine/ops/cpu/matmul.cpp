// CPU matrix products on the oneDNN matmul primitive. Operands are passed by their strides
// (transposed views and broadcast batch dims need no copy); primitives are cached by layout.
#include <cstring>
#include <mutex>
#include <string>

#include "engine/core/error.h"
#include "engine/ops/cpu/onednn.h"

namespace oar::cpu {

namespace {

struct MatmulPrimitive {
  dnnl::matmul::primitive_desc pd;
  dnnl::matmul prim;
  dnnl::memory::desc src, weights, bias, dst;
  size_t scratch_bytes = 0;
  // Memory objects reused across calls (only the data pointers change): creating them is a
  // large part of a small product's cost. Whoever holds `mu` may use them.
  std::mutex mu;
  dnnl::memory m_src, m_weights, m_bias, m_dst;
};

// Layout handed to oneDNN: size-1 dims get strides that keep the matrix dims unambiguously
// row- or column-major, and batch dims expanded with stride 0 become broadcast (size 1).
struct Layout {
  dnnl::memory::dims dims, strides;
  bool ok = true;  // false: the matrix dims are neither row- nor column-major (needs a copy)
};

Layout layout_of(const Tensor& t) {
  const int64_t r = t.dim();
  Layout l;
  l.dims.assign(t.shape().begin(), t.shape().end());
  l.strides.assign(t.strides().begin(), t.strides().end());
  int64_t& rows = l.dims[r - 2];
  int64_t& cols = l.dims[r - 1];
  int64_t& rs = l.strides[r - 2];
  int64_t& cs = l.strides[r - 1];
  if (rows == 1 && cols == 1) {
    rs = cs = 1;
  } else if (rows == 1) {
    if (cs == 1)
      rs = cols;
    else
      rs = 1;
  } else if (cols == 1) {
    if (rs == 1)
      cs = rows;
    else
      cs = 1;
  }
  const bool row_major = cs == 1 && rs >= cols;
  const bool col_major = rs == 1 && cs >= rows;
  l.ok = row_major || col_major;
  // Batch dims, inner to outer: broadcast stride-0 dims; give size-1 dims a dense stride.
  int64_t extent = std::max(rows * rs, cols * cs);
  for (int64_t d = r - 3; d >= 0; --d) {
    if (l.strides[d] == 0) l.dims[d] = 1;
    if (l.dims[d] == 1) l.strides[d] = extent;
    extent = std::max(extent, l.dims[d] * l.strides[d]);
  }
  return l;
}

// Every batch dim is 1: one matrix.
bool single_matrix(const Tensor& t) {
  for (int64_t d = 0; d + 2 < t.dim(); ++d)
    if (t.size(d) != 1) return false;
  return true;
}

void append(std::string& key, const dnnl::memory::dims& v) {
  const size_t n = v.size();
  key.push_back(static_cast<char>(n));
  key.append(reinterpret_cast<const char*>(v.data()), n * sizeof(int64_t));
}

}  // namespace

// out [..., M, N] = act(a [..., M, K] x b [..., K, N] (+ bias, broadcastable to out)). All
// operands have out's rank; batch dims of a, b and bias are 1 or out's. out is contiguous. act:
// 0 none, 1 GELU (erf), 2 GELU (tanh), 3 ReLU, applied by oneDNN as a post-op in the same pass.
void matmul(const Tensor& out, const Tensor& a_in, const Tensor& b_in, const Tensor& bias,
            int act) {
  using dnnl::memory;
  Layout la = layout_of(a_in), lb = layout_of(b_in);
  const Tensor a = la.ok ? a_in : a_in.contiguous();
  const Tensor b = lb.ok ? b_in : b_in.contiguous();
  if (!la.ok) la = layout_of(a);
  if (!lb.ok) lb = layout_of(b);

  // A plain f32 product (one matrix each, no bias or activation: linear's backward GEMMs) goes to
  // oneDNN's sgemm: for some layouts the matmul primitive picks a much slower kernel (BERT-base's
  // gy . w [768, 3072] and gy^T x [768, 3072]: 76 and 65 GFLOP/s on one core, sgemm 159 and 150).
  if (!bias.defined() && act == 0 && a.dtype() == DType::f32 && b.dtype() == DType::f32 &&
      out.dtype() == DType::f32 && single_matrix(a) && single_matrix(b) && single_matrix(out)) {
    const int64_t r = out.dim(), m = out.size(r - 2), n = out.size(r - 1), k = a.size(r - 1);
    const bool ta = la.strides[r - 1] != 1, tb = lb.strides[r - 1] != 1;  // column-major
    const int64_t lda = ta ? la.strides[r - 1] : la.strides[r - 2];
    const int64_t ldb = tb ? lb.strides[r - 1] : lb.strides[r - 2];
    const dnnl_status_t st =
        dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, 1.0f, a.data<float>(), lda,
                   b.data<float>(), ldb, 0.0f, out.data<float>(), n);
    OAR_CHECK(st == dnnl_success, "matmul: oneDNN sgemm failed (status ", int(st), ")");
    return;
  }
  const auto dt_a = onednn::data_type(a.dtype()), dt_b = onednn::data_type(b.dtype());
  const auto dt_o = onednn::data_type(out.dtype());
  std::string key = "matmul";
  key.reserve(256);
  key.push_back(static_cast<char>(dt_a));
  key.push_back(static_cast<char>(dt_b));
  key.push_back(static_cast<char>(dt_o));
  append(key, la.dims);
  append(key, la.strides);
  append(key, lb.dims);
  append(key, lb.strides);
  append(key, onednn::dims(out.shape()));
  key.push_back(static_cast<char>(act));
  Layout lbias;
  if (bias.defined()) {
    lbias.dims.assign(bias.shape().begin(), bias.shape().end());
    lbias.strides.assign(bias.strides().begin(), bias.strides().end());
    for (size_t d = 0; d < lbias.dims.size(); ++d)
      if (lbias.dims[d] == 1) lbias.strides[d] = 0;
    int64_t extent = 1;  // dense strides for size-1 dims, inner to outer
    for (int64_t d = static_cast<int64_t>(lbias.dims.size()) - 1; d >= 0; --d) {
      if (lbias.dims[d] == 1) lbias.strides[d] = extent;
      extent = std::max(extent, lbias.dims[d] * lbias.strides[d]);
    }
    key.push_back(static_cast<char>(onednn::data_type(bias.dtype())));
    append(key, lbias.dims);
    append(key, lbias.strides);
  }

  auto p = onednn::cached<MatmulPrimitive>(key, [&]() {
    auto m = std::make_shared<MatmulPrimitive>();
    m->src = memory::desc(la.dims, dt_a, la.strides);
    m->weights = memory::desc(lb.dims, dt_b, lb.strides);
    m->dst = memory::desc(onednn::dims(out.shape()), dt_o, onednn::dims(out.strides()));
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    if (act != 0) {
      dnnl::post_ops po;
      po.append_eltwise(act == 1   ? dnnl::algorithm::eltwise_gelu_erf
                        : act == 2 ? dnnl::algorithm::eltwise_gelu_tanh
                                   : dnnl::algorithm::eltwise_relu,
                        0.0f, 0.0f);
      attr.set_post_ops(po);
    }
    try {
      if (bias.defined()) {
        m->bias = memory::desc(lbias.dims, onednn::data_type(bias.dtype()), lbias.strides);
        m->pd = dnnl::matmul::primitive_desc(onednn::engine(), m->src, m->weights, m->bias, m->dst,
                                             attr);
      } else {
        m->pd = dnnl::matmul::primitive_desc(onednn::engine(), m->src, m->weights, m->dst, attr);
      }
    } catch (const dnnl::error& e) {
      OAR_FAIL("matmul: oneDNN has no matmul for ", dtype_name(a.dtype()), " ",
               shape_str(a.shape()), " x ", shape_str(b.shape()), " on this CPU (", e.what(), ")");
    }
    m->prim = dnnl::matmul(m->pd);
    m->scratch_bytes = m->pd.scratchpad_desc().get_size();
    return m;
  });

  const auto& eng = onednn::engine();
  std::unique_lock<std::mutex> lock(p->mu, std::try_to_lock);
  dnnl::memory src, weights, bias_m, dst;
  if (lock.owns_lock()) {
    if (!p->m_src) {
      p->m_src = memory(p->src, eng, DNNL_MEMORY_NONE);
      p->m_weights = memory(p->weights, eng, DNNL_MEMORY_NONE);
      p->m_dst = memory(p->dst, eng, DNNL_MEMORY_NONE);
      if (bias.defined()) p->m_bias = memory(p->bias, eng, DNNL_MEMORY_NONE);
    }
    src = p->m_src, weights = p->m_weights, dst = p->m_dst, bias_m = p->m_bias;
    src.set_data_handle(a.raw_data());
    weights.set_data_handle(b.raw_data());
    dst.set_data_handle(out.raw_data());
    if (bias.defined()) bias_m.set_data_handle(bias.raw_data());
  } else {  // another thread runs this primitive now
    src = memory(p->src, eng, a.raw_data());
    weights = memory(p->weights, eng, b.raw_data());
    dst = memory(p->dst, eng, out.raw_data());
    if (bias.defined()) bias_m = memory(p->bias, eng, bias.raw_data());
  }
  dnnl_exec_arg_t args[5];
  int n = 0;
  args[n++] = {DNNL_ARG_SRC, src.get()};
  args[n++] = {DNNL_ARG_WEIGHTS, weights.get()};
  args[n++] = {DNNL_ARG_DST, dst.get()};
  if (bias.defined()) args[n++] = {DNNL_ARG_BIAS, bias_m.get()};
  Tensor scratch;
  memory scratch_m;
  if (p->scratch_bytes > 0) {
    scratch = onednn::buffer_for(p->pd.scratchpad_desc());
    scratch_m = memory(p->pd.scratchpad_desc(), eng, scratch.raw_data());
    args[n++] = {DNNL_ARG_SCRATCHPAD, scratch_m.get()};
  }
  const dnnl_status_t st = dnnl_primitive_execute(p->prim.get(), onednn::stream().get(), n, args);
  OAR_CHECK(st == dnnl_success, "matmul: oneDNN execution failed (status ", int(st), ")");
  onednn::stream().wait();
}

}  // namespace oar::cpu
