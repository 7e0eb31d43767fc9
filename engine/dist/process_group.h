#pragma once
// A process group: collectives over the ranks of a job. Gloo between CPU processes, NCCL between
// GPUs (one rank per device); the backend is chosen by the tensors' device ("auto").
//
// Every collective is called by every rank in the same order with the same shapes. Tensors are
// contiguous; results are written in place. A collective that does not complete within the
// group's timeout throws dist::TimeoutError (or oar::Error for a lost peer) naming what it can:
// the ranks that did not arrive at a barrier or rendezvous, the peer whose connection closed.
#include <chrono>
#include <memory>
#include <string>

#include "engine/dist/rendezvous.h"
#include "engine/dist/store.h"
#include "engine/tensor/tensor.h"

namespace oar::dist {

enum class ReduceOp { sum, avg };

class ProcessGroup {
 public:
  ProcessGroup(std::shared_ptr<TcpStore> store, int rank, int size,
               std::chrono::milliseconds timeout)
      : store_(std::move(store)), rank_(rank), size_(size), timeout_(timeout) {}
  virtual ~ProcessGroup() = default;
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  std::chrono::milliseconds timeout() const { return timeout_; }
  virtual std::string backend() const = 0;

  // t (f32, i32, i64) <- sum (or mean) over ranks.
  virtual void allreduce(Tensor& t, ReduceOp op = ReduceOp::sum) = 0;
  // t <- root's t.
  virtual void broadcast(Tensor& t, int root = 0) = 0;
  // out (size() * in.numel() elements, rank-major) <- every rank's in.
  virtual void allgather(const Tensor& in, Tensor& out) = 0;
  // out (in.numel() / size() elements) <- this rank's slice of the reduction of every rank's in.
  virtual void reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op = ReduceOp::sum) = 0;
  // Through the store, so a timeout can name the ranks that did not arrive.
  virtual void barrier();

  // Another group over the same ranks with its own connections (a background reducer's
  // collectives then never interleave with the main thread's).
  virtual std::unique_ptr<ProcessGroup> new_group(const std::string& name) = 0;

  // Small values through the store: root's s on every rank.
  std::string broadcast_string(const std::string& s, int root = 0);
  // Every rank's s, by rank.
  std::vector<std::string> allgather_string(const std::string& s);
  // Element-wise sums in double precision (metric states, logged losses), through the store.
  std::vector<double> sum_doubles(const std::vector<double>& v);
  TcpStore& store() { return *store_; }

 protected:
  std::shared_ptr<TcpStore> store_;
  int rank_, size_;
  std::chrono::milliseconds timeout_;
  int64_t barrier_seq_ = 0, bcast_seq_ = 0, gather_seq_ = 0;
};

// Which backend: "gloo", "nccl", or "auto" (nccl for CUDA devices, else gloo).
std::string resolve_backend(const std::string& backend, const Device& device);

// Rendezvous at rank 0's store (every rank announces itself; throws TimeoutError naming the ranks
// that never arrived) and builds the group. The store lives as long as the group.
std::unique_ptr<ProcessGroup> init_process_group(const RendezvousInfo& info,
                                                 const std::string& backend, const Device& device,
                                                 std::chrono::milliseconds timeout);

// Whether this build has the backend.
bool gloo_available();
bool nccl_available();

// Backends (gloo_group.cpp, nccl_group.cpp).
std::unique_ptr<ProcessGroup> make_gloo_group(std::shared_ptr<TcpStore> store, int rank, int size,
                                              std::chrono::milliseconds timeout,
                                              const std::string& prefix, const std::string& host);
std::unique_ptr<ProcessGroup> make_nccl_group(std::shared_ptr<TcpStore> store, int rank, int size,
                                              std::chrono::milliseconds timeout,
                                              const std::string& prefix, const Device& device);

}  // namespace oar::dist
