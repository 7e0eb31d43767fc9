// The NCCL backend: one rank per CUDA device; the unique id travels through our TCP store
// (rank 0 sets "<prefix>id", the others get it), as PyTorch and Paddle do.
//
// First version: each collective waits for the device to finish queued work, runs on the
// group's own stream and waits for it, so callers see results in place, like the Gloo backend.
#include <cuda_runtime.h>
#include <nccl.h>

#include <cstring>

#include "engine/dist/process_group.h"

namespace oar::dist {

namespace {

void cuda_ok(cudaError_t e, const char* what) {
  if (e != cudaSuccess) OAR_FAIL("nccl group: ", what, ": ", cudaGetErrorString(e));
}

ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case DType::f32:
      return ncclFloat32;
    case DType::f16:
      return ncclFloat16;
    case DType::bf16:
      return ncclBfloat16;
    case DType::i32:
      return ncclInt32;
    case DType::i64:
      return ncclInt64;
    case DType::u8:
      return ncclUint8;
    default:
      OAR_FAIL("nccl: dtype ", dtype_name(t), " is not supported");
  }
}

class NcclGroup : public ProcessGroup {
 public:
  NcclGroup(std::shared_ptr<TcpStore> store, int rank, int size, std::chrono::milliseconds timeout,
            std::string prefix, Device device)
      : ProcessGroup(std::move(store), rank, size, timeout),
        prefix_(std::move(prefix)),
        device_(device) {
    cuda_ok(cudaSetDevice(device.index), "cudaSetDevice");
    ncclUniqueId id;
    if (rank == 0) {
      ok(ncclGetUniqueId(&id), "ncclGetUniqueId");
      store_->set(prefix_ + "id", Bytes(reinterpret_cast<uint8_t*>(&id),
                                        reinterpret_cast<uint8_t*>(&id) + sizeof id));
    }
    const Bytes b = store_->get(prefix_ + "id");
    OAR_CHECK(b.size() == sizeof id, "nccl: malformed unique id in the store");
    std::memcpy(&id, b.data(), sizeof id);
    ok(ncclCommInitRank(&comm_, size, id, rank), "ncclCommInitRank");
    cuda_ok(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
  }
  ~NcclGroup() override {
    if (comm_) ncclCommDestroy(comm_);
    if (stream_) cudaStreamDestroy(stream_);
  }

  std::string backend() const override { return "nccl"; }

  void allreduce(Tensor& t, ReduceOp op) override {
    check(t, "allreduce");
    launch(
        [&] {
          return ncclAllReduce(t.raw_data(), t.raw_data(), t.numel(), nccl_type(t.dtype()),
                               op == ReduceOp::avg ? ncclAvg : ncclSum, comm_, stream_);
        },
        "ncclAllReduce");
  }
  void broadcast(Tensor& t, int root) override {
    check(t, "broadcast");
    launch(
        [&] {
          return ncclBroadcast(t.raw_data(), t.raw_data(), t.numel(), nccl_type(t.dtype()), root,
                               comm_, stream_);
        },
        "ncclBroadcast");
  }
  void allgather(const Tensor& in, Tensor& out) override {
    check(in, "allgather");
    check(out, "allgather");
    OAR_CHECK(out.numel() == in.numel() * size_, "allgather: output must hold ", size_, " x ",
              in.numel(), " elements");
    launch(
        [&] {
          return ncclAllGather(in.raw_data(), out.raw_data(), in.numel(), nccl_type(in.dtype()),
                               comm_, stream_);
        },
        "ncclAllGather");
  }
  void reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op) override {
    check(in, "reduce_scatter");
    check(out, "reduce_scatter");
    OAR_CHECK(in.numel() == out.numel() * size_, "reduce_scatter: input must hold ", size_, " x ",
              out.numel(), " elements");
    launch(
        [&] {
          return ncclReduceScatter(in.raw_data(), out.raw_data(), out.numel(),
                                   nccl_type(in.dtype()), op == ReduceOp::avg ? ncclAvg : ncclSum,
                                   comm_, stream_);
        },
        "ncclReduceScatter");
  }
  std::unique_ptr<ProcessGroup> new_group(const std::string& name) override {
    return std::make_unique<NcclGroup>(store_, rank_, size_, timeout_, prefix_ + name + "/",
                                       device_);
  }

 private:
  void ok(ncclResult_t r, const char* what) {
    if (r != ncclSuccess)
      OAR_FAIL("nccl: ", what, " failed on rank ", rank_, ": ", ncclGetErrorString(r),
               r == ncclSystemError || r == ncclRemoteError
                   ? " (a peer is unreachable or exited; NCCL_DEBUG=INFO shows which)"
                   : "");
  }
  void check(const Tensor& t, const char* what) const {
    OAR_CHECK(t.defined() && t.device().is_cuda() && t.is_contiguous(), what,
              " (nccl): needs a contiguous CUDA tensor");
  }
  template <typename F>
  void launch(F&& f, const char* what) {
    cuda_ok(cudaSetDevice(device_.index), "cudaSetDevice");
    cuda_ok(cudaDeviceSynchronize(), "waiting for queued work");
    ok(f(), what);
    cuda_ok(cudaStreamSynchronize(stream_), what);
  }

  std::string prefix_;
  Device device_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
};

}  // namespace

std::unique_ptr<ProcessGroup> make_nccl_group(std::shared_ptr<TcpStore> store, int rank, int size,
                                              std::chrono::milliseconds timeout,
                                              const std::string& prefix, const Device& device) {
  return std::make_unique<NcclGroup>(std::move(store), rank, size, timeout, prefix, device);
}

}  // namespace oar::dist
