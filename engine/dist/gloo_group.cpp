// The Gloo backend: CPU collectives over TCP, rendezvous through our store.
#include <cstring>

#include "engine/dist/process_group.h"

#if OAR_WITH_GLOO
#include <gloo/allgather.h>
#include <gloo/allreduce.h>
#include <gloo/broadcast.h>
#include <gloo/common/error.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/store.h>
#include <gloo/transport/tcp/device.h>
#endif

namespace oar::dist {

bool gloo_available() {
#if OAR_WITH_GLOO
  return true;
#else
  return false;
#endif
}

#if OAR_WITH_GLOO

namespace {

// gloo::rendezvous::Store over our TCP store, under a key prefix.
class GlooStore : public ::gloo::rendezvous::Store {
 public:
  GlooStore(std::shared_ptr<TcpStore> s, std::string prefix)
      : s_(std::move(s)), prefix_(std::move(prefix)) {}
  void set(const std::string& key, const std::vector<char>& data) override {
    s_->set(prefix_ + key, Bytes(data.begin(), data.end()));
  }
  std::vector<char> get(const std::string& key) override {
    const Bytes b = s_->get(prefix_ + key);
    return std::vector<char>(b.begin(), b.end());
  }
  void wait(const std::vector<std::string>& keys) override { wait(keys, s_->timeout()); }
  void wait(const std::vector<std::string>& keys,
            const std::chrono::milliseconds& timeout) override {
    std::vector<std::string> k;
    for (const auto& x : keys) k.push_back(prefix_ + x);
    s_->wait(k, timeout);
  }

 private:
  std::shared_ptr<TcpStore> s_;
  std::string prefix_;
};

template <typename T>
void reduce_sum(void* c, const void* a, const void* b, size_t n) {
  auto* o = static_cast<T*>(c);
  const auto* x = static_cast<const T*>(a);
  const auto* y = static_cast<const T*>(b);
  for (size_t i = 0; i < n; ++i) o[i] = x[i] + y[i];
}

class GlooGroup : public ProcessGroup {
 public:
  GlooGroup(std::shared_ptr<TcpStore> store, int rank, int size, std::chrono::milliseconds timeout,
            std::string prefix, std::string host)
      : ProcessGroup(std::move(store), rank, size, timeout),
        prefix_(std::move(prefix)),
        host_(std::move(host)) {
    ::gloo::transport::tcp::attr attr;
    if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
      attr.iface = ifname;
    else if (!host_.empty())
      attr.hostname = host_;
    try {
      device_ = ::gloo::transport::tcp::CreateDevice(attr);
      auto ctx = std::make_shared<::gloo::rendezvous::Context>(rank, size);
      ctx->setTimeout(timeout);
      GlooStore gs(store_, prefix_);
      ctx->connectFullMesh(gs, device_);
      ctx_ = ctx;
    } catch (const TimeoutError& e) {
      throw TimeoutError(
          detail::concat("gloo: rank ", rank, " could not connect to its peers: ", e.what()));
    } catch (const ::gloo::Exception& e) {
      OAR_FAIL("gloo: rank ", rank, " could not connect to its peers: ", e.what(),
               " (set GLOO_SOCKET_IFNAME to the network interface the nodes share)");
    }
  }

  std::string backend() const override { return "gloo"; }

  void allreduce(Tensor& t, ReduceOp op) override {
    check(t, "allreduce");
    if (t.numel() == 0) return;
    run("allreduce", t.nbytes(), [&] {
      ::gloo::AllreduceOptions o(ctx_);
      o.setTag(next_tag());
      o.setAlgorithm(::gloo::AllreduceOptions::Algorithm::RING);
      switch (t.dtype()) {
        case DType::f32:
          typed<float>(o, t);
          break;
        case DType::i32:
          typed<int32_t>(o, t);
          break;
        case DType::i64:
          typed<int64_t>(o, t);
          break;
        default:
          OAR_FAIL("allreduce: dtype ", dtype_name(t.dtype()), " is not supported by gloo");
      }
      ::gloo::allreduce(o);
    });
    if (op == ReduceOp::avg) scale(t, 1.0 / size_);
  }

  void broadcast(Tensor& t, int root) override {
    check(t, "broadcast");
    if (t.numel() == 0) return;
    run("broadcast", t.nbytes(), [&] {
      ::gloo::BroadcastOptions o(ctx_);
      o.setTag(next_tag());
      o.setRoot(root);
      auto* p = static_cast<uint8_t*>(t.raw_data());
      if (rank_ == root) o.setInput(p, t.nbytes());
      o.setOutput(p, t.nbytes());
      ::gloo::broadcast(o);
    });
  }

  void allgather(const Tensor& in, Tensor& out) override {
    check(in, "allgather");
    check(out, "allgather");
    OAR_CHECK(out.numel() == in.numel() * size_ && out.dtype() == in.dtype(),
              "allgather: output must hold ", size_, " x ", in.numel(), " elements of ",
              dtype_name(in.dtype()));
    run("allgather", out.nbytes(), [&] {
      ::gloo::AllgatherOptions o(ctx_);
      o.setTag(next_tag());
      o.setInput(static_cast<uint8_t*>(in.raw_data()), in.nbytes());
      o.setOutput(static_cast<uint8_t*>(out.raw_data()), out.nbytes());
      ::gloo::allgather(o);
    });
  }

  void reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op) override {
    check(in, "reduce_scatter");
    check(out, "reduce_scatter");
    OAR_CHECK(in.numel() == out.numel() * size_ && out.dtype() == in.dtype(),
              "reduce_scatter: input must hold ", size_, " x ", out.numel(), " elements");
    // Ring allreduce then this rank's slice: the same bytes on the wire as a ring
    // reduce-scatter plus an allgather; enough for CPU groups.
    Tensor tmp = in.clone();
    allreduce(tmp, op);
    out.copy_(tmp.slice(0, rank_ * out.numel(), (rank_ + 1) * out.numel()).reshape(out.shape()));
  }

  std::unique_ptr<ProcessGroup> new_group(const std::string& name) override {
    return std::make_unique<GlooGroup>(store_, rank_, size_, timeout_, prefix_ + name + "/", host_);
  }

 private:
  template <typename T>
  static void typed(::gloo::AllreduceOptions& o, Tensor& t) {
    o.setOutput(static_cast<T*>(t.raw_data()), static_cast<size_t>(t.numel()));
    o.setReduceFunction(
        static_cast<void (*)(void*, const void*, const void*, size_t)>(&reduce_sum<T>));
  }

  static void scale(Tensor& t, double f) {
    const int64_t n = t.numel();
    if (t.dtype() == DType::f32) {
      auto* p = t.data<float>();
      for (int64_t i = 0; i < n; ++i) p[i] *= static_cast<float>(f);
    } else {
      OAR_FAIL("allreduce: avg needs a floating-point tensor");
    }
  }

  void check(const Tensor& t, const char* what) const {
    OAR_CHECK(t.defined() && t.device().is_cpu() && t.is_contiguous(), what,
              " (gloo): needs a contiguous CPU tensor");
  }

  uint32_t next_tag() { return tag_++; }

  template <typename F>
  void run(const char* what, size_t bytes, F&& f) {
    try {
      f();
    } catch (const ::gloo::IoException& e) {
      const std::string msg = e.what();
      const bool timed_out = msg.find("imed out") != std::string::npos;
      const std::string text = detail::concat(
          what, " (gloo, ", bytes, " bytes) on rank ", rank_, " of ", size_,
          timed_out ? " timed out after " : " failed: a peer closed its connection (",
          timed_out ? std::to_string(timeout_.count() / 1000.0) + " s" : std::string("exited?"),
          timed_out ? "" : ")", ": ", msg);
      if (timed_out) throw TimeoutError(text);
      OAR_FAIL(text);
    } catch (const ::gloo::Exception& e) {
      OAR_FAIL(what, " (gloo) on rank ", rank_, ": ", e.what());
    }
  }

  std::string prefix_, host_;
  std::shared_ptr<::gloo::transport::Device> device_;
  std::shared_ptr<::gloo::Context> ctx_;
  uint32_t tag_ = 0;
};

}  // namespace

std::unique_ptr<ProcessGroup> make_gloo_group(std::shared_ptr<TcpStore> store, int rank, int size,
                                              std::chrono::milliseconds timeout,
                                              const std::string& prefix, const std::string& host) {
  return std::make_unique<GlooGroup>(std::move(store), rank, size, timeout, prefix, host);
}

#else

std::unique_ptr<ProcessGroup> make_gloo_group(std::shared_ptr<TcpStore>, int, int,
                                              std::chrono::milliseconds, const std::string&,
                                              const std::string&) {
  OAR_FAIL("this build of oar has no Gloo (install libgloo-dev and reconfigure)");
}

#endif

}  // namespace oar::dist
