#include "engine/dist/process_group.h"

#include <cstring>

#include <unistd.h>

namespace oar::dist {

namespace {

// "1, 3 and 4" from the keys "<prefix><rank>" that are missing.
std::string missing_ranks(TcpStore& store, const std::string& prefix, int size, int* count) {
  std::vector<std::string> keys;
  for (int r = 0; r < size; ++r) keys.push_back(prefix + std::to_string(r));
  const std::vector<std::string> miss = store.missing(keys);
  *count = static_cast<int>(miss.size());
  std::string s;
  for (size_t i = 0; i < miss.size(); ++i) {
    if (i == 16) {
      s += ", ...";
      break;
    }
    s += (i ? ", " : "") + miss[i].substr(prefix.size());
  }
  return s;
}

}  // namespace

void ProcessGroup::barrier() {
  const std::string prefix = "barrier/" + std::to_string(barrier_seq_++) + "/";
  store_->set(prefix + std::to_string(rank_), std::string("1"));
  std::vector<std::string> keys;
  for (int r = 0; r < size_; ++r) keys.push_back(prefix + std::to_string(r));
  try {
    store_->wait(keys, timeout_);
  } catch (const TimeoutError&) {
    int n = 0;
    const std::string who = missing_ranks(*store_, prefix, size_, &n);
    throw TimeoutError(detail::concat("barrier: rank ", rank_, " waited ",
                                      timeout_.count() / 1000.0, " s; rank", n > 1 ? "s " : " ",
                                      who, " of ", size_, " did not answer"));
  }
}

std::string ProcessGroup::broadcast_string(const std::string& s, int root) {
  const std::string key = "bcast/" + std::to_string(bcast_seq_++);
  if (rank_ == root) store_->set(key, s);
  try {
    return store_->get_string(key);
  } catch (const TimeoutError&) {
    throw TimeoutError(detail::concat("broadcast: rank ", rank_, " waited ",
                                      timeout_.count() / 1000.0, " s for rank ", root,
                                      ", which did not answer"));
  }
}

std::vector<std::string> ProcessGroup::allgather_string(const std::string& s) {
  const std::string prefix = "gather/" + std::to_string(gather_seq_++) + "/";
  store_->set(prefix + std::to_string(rank_), s);
  std::vector<std::string> keys;
  for (int r = 0; r < size_; ++r) keys.push_back(prefix + std::to_string(r));
  try {
    store_->wait(keys, timeout_);
  } catch (const TimeoutError&) {
    int n = 0;
    const std::string who = missing_ranks(*store_, prefix, size_, &n);
    throw TimeoutError(detail::concat("allgather: rank ", rank_, " waited ",
                                      timeout_.count() / 1000.0, " s; rank", n > 1 ? "s " : " ",
                                      who, " of ", size_, " did not answer"));
  }
  std::vector<std::string> out;
  for (const auto& k : keys) out.push_back(store_->get_string(k));
  return out;
}

std::vector<double> ProcessGroup::sum_doubles(const std::vector<double>& v) {
  std::string bytes(v.size() * sizeof(double), '\0');
  if (!v.empty()) std::memcpy(bytes.data(), v.data(), bytes.size());
  std::vector<double> out(v.size(), 0.0);
  for (const std::string& b : allgather_string(bytes)) {
    OAR_CHECK(b.size() == bytes.size(), "sum_doubles: ranks sent ", b.size() / sizeof(double),
              " and ", v.size(), " values");
    for (size_t i = 0; i < v.size(); ++i) {
      double x;
      std::memcpy(&x, b.data() + i * sizeof(double), sizeof x);
      out[i] += x;
    }
  }
  return out;
}

std::string resolve_backend(const std::string& backend, const Device& device) {
  if (backend == "auto") return device.is_cuda() ? "nccl" : "gloo";
  if (backend == "nccl" && !device.is_cuda())
    OAR_FAIL(
        "trainer.distributed.backend: nccl needs a CUDA device (--device cuda); this run is on ",
        device.str(), " (use gloo or auto)");
  OAR_CHECK(backend == "gloo" || backend == "nccl", "trainer.distributed.backend: '", backend,
            "' is not one of auto, gloo, nccl");
  return backend;
}

std::unique_ptr<ProcessGroup> init_process_group(const RendezvousInfo& info,
                                                 const std::string& backend, const Device& device,
                                                 std::chrono::milliseconds timeout) {
  const std::string be = resolve_backend(backend, device);
  auto store =
      std::make_shared<TcpStore>(info.master_addr, info.master_port, info.rank == 0, timeout);
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  store->set("rdzv/rank/" + std::to_string(info.rank), std::string(host));
  std::vector<std::string> keys;
  for (int r = 0; r < info.world_size; ++r) keys.push_back("rdzv/rank/" + std::to_string(r));
  try {
    store->wait(keys, timeout);
  } catch (const TimeoutError&) {
    int n = 0;
    const std::string who = missing_ranks(*store, "rdzv/rank/", info.world_size, &n);
    throw TimeoutError(detail::concat(
        "rendezvous: rank ", info.rank, " waited ", timeout.count() / 1000.0, " s at ",
        info.master_addr, ":", info.master_port, " (", info.source, " environment); rank",
        n > 1 ? "s " : " ", who, " of ", info.world_size,
        " never arrived. Start every worker, with the same MASTER_ADDR, MASTER_PORT and "
        "WORLD_SIZE (or raise trainer.distributed.timeout_s)"));
  }
  // Gloo's TCP device binds to an address the peers can reach: loopback for a one-machine job.
  std::string bind_host;
  if (info.master_addr == "127.0.0.1" || info.master_addr == "localhost" ||
      info.master_addr == "::1")
    bind_host = "127.0.0.1";
  if (be == "nccl")
    return make_nccl_group(store, info.rank, info.world_size, timeout, "nccl/", device);
  return make_gloo_group(store, info.rank, info.world_size, timeout, "gloo/", bind_host);
}

}  // namespace oar::dist

namespace oar::dist {
bool nccl_available() {
#if OAR_WITH_CUDA
  return true;
#else
  return false;
#endif
}
}  // namespace oar::dist

#if !OAR_WITH_CUDA
namespace oar::dist {
std::unique_ptr<ProcessGroup> make_nccl_group(std::shared_ptr<TcpStore>, int, int,
                                              std::chrono::milliseconds, const std::string&,
                                              const Device&) {
  OAR_FAIL(
      "trainer.distributed.backend nccl: this build of oar has no CUDA (configure with "
      "OAR_WITH_CUDA=ON where nvcc and NCCL are installed)");
}
}  // namespace oar::dist
#endif
