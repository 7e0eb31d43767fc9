#include "engine/dist/store.h"

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace oar::dist {

namespace {

enum Op : uint8_t { kSet = 1, kGet = 2, kAdd = 3, kMissing = 4 };

using Clock = std::chrono::steady_clock;

// Reads exactly n bytes; false on EOF or error.
bool read_all(int fd, void* p, size_t n) {
  auto* b = static_cast<uint8_t*>(p);
  while (n > 0) {
    const ssize_t r = ::recv(fd, b, n, 0);
    if (r == 0) return false;
    if (r < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    b += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

bool write_all(int fd, const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  while (n > 0) {
    const ssize_t w = ::send(fd, b, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    b += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool write_frame(int fd, uint8_t tag, const std::string& key, const Bytes& value) {
  const uint32_t kl = static_cast<uint32_t>(key.size());
  const uint64_t vl = value.size();
  Bytes msg(1 + 4 + kl + 8 + vl);
  msg[0] = tag;
  std::memcpy(&msg[1], &kl, 4);
  std::memcpy(&msg[5], key.data(), kl);
  std::memcpy(&msg[5 + kl], &vl, 8);
  if (vl) std::memcpy(&msg[13 + kl], value.data(), vl);
  return write_all(fd, msg.data(), msg.size());
}

bool read_frame(int fd, uint8_t& tag, std::string& key, Bytes& value) {
  uint32_t kl = 0;
  uint64_t vl = 0;
  if (!read_all(fd, &tag, 1) || !read_all(fd, &kl, 4)) return false;
  if (kl > (1u << 20)) return false;
  key.resize(kl);
  if (kl && !read_all(fd, key.data(), kl)) return false;
  if (!read_all(fd, &vl, 8) || vl > (uint64_t{1} << 32)) return false;
  value.resize(vl);
  return vl == 0 || read_all(fd, value.data(), vl);
}

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> out;
  size_t a = 0;
  while (a <= s.size() && !s.empty()) {
    const size_t b = s.find('\n', a);
    out.push_back(s.substr(a, b == std::string::npos ? std::string::npos : b - a));
    if (b == std::string::npos) break;
    a = b + 1;
  }
  return out;
}

std::string join_lines(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "\n" : "") + v[i];
  return s;
}

}  // namespace

struct TcpStore::Server {
  int listen_fd = -1;
  std::mutex mu;
  std::map<std::string, Bytes> data;
  std::vector<int> clients;
  std::vector<std::thread> threads;
  std::thread acceptor;
  bool stopping = false;

  ~Server() {
    {
      std::lock_guard<std::mutex> l(mu);
      stopping = true;
      for (int fd : clients) ::shutdown(fd, SHUT_RDWR);
    }
    ::shutdown(listen_fd, SHUT_RDWR);
    if (acceptor.joinable()) acceptor.join();
    for (auto& t : threads) t.join();
    for (int fd : clients) ::close(fd);
    ::close(listen_fd);
  }

  void accept_loop() {
    for (;;) {
      const int fd = ::accept(listen_fd, nullptr, nullptr);
      std::lock_guard<std::mutex> l(mu);
      if (fd < 0) {
        if (stopping || (errno != EINTR && errno != ECONNABORTED)) return;
        continue;
      }
      if (stopping) {
        ::close(fd);
        return;
      }
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      clients.push_back(fd);
      threads.emplace_back([this, fd] { serve(fd); });
    }
  }

  void serve(int fd) {
    uint8_t op = 0;
    std::string key;
    Bytes value;
    while (read_frame(fd, op, key, value)) {
      uint8_t status = 0;
      Bytes reply;
      {
        std::lock_guard<std::mutex> l(mu);
        if (op == kSet) {
          data[key] = value;
        } else if (op == kGet) {
          auto it = data.find(key);
          if (it == data.end())
            status = 1;
          else
            reply = it->second;
        } else if (op == kAdd) {
          int64_t cur = 0, delta = 0;
          auto it = data.find(key);
          if (it != data.end() && it->second.size() == 8) std::memcpy(&cur, it->second.data(), 8);
          if (value.size() == 8) std::memcpy(&delta, value.data(), 8);
          cur += delta;
          Bytes b(8);
          std::memcpy(b.data(), &cur, 8);
          data[key] = b;
          reply = b;
        } else if (op == kMissing) {
          std::vector<std::string> miss;
          for (auto& k : split_lines(std::string(value.begin(), value.end())))
            if (!data.count(k)) miss.push_back(k);
          const std::string s = join_lines(miss);
          reply.assign(s.begin(), s.end());
        } else {
          return;
        }
      }
      if (!write_frame(fd, status, "", reply)) return;
    }
  }
};

TcpStore::TcpStore(std::string host, int port, bool is_server, std::chrono::milliseconds timeout)
    : host_(std::move(host)), port_(port), timeout_(timeout) {
  if (is_server) {
    auto s = std::make_unique<Server>();
    s->listen_fd = ::socket(AF_INET6, SOCK_STREAM, 0);
    bool v6 = s->listen_fd >= 0;
    if (!v6) s->listen_fd = ::socket(AF_INET, SOCK_STREAM, 0);
    OAR_CHECK(s->listen_fd >= 0, "store: cannot create a socket: ", std::strerror(errno));
    int one = 1, zero = 0;
    ::setsockopt(s->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rc;
    if (v6) {
      ::setsockopt(s->listen_fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
      sockaddr_in6 a{};
      a.sin6_family = AF_INET6;
      a.sin6_addr = in6addr_any;
      a.sin6_port = htons(static_cast<uint16_t>(port));
      rc = ::bind(s->listen_fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    } else {
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_ANY);
      a.sin_port = htons(static_cast<uint16_t>(port));
      rc = ::bind(s->listen_fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    }
    if (rc != 0) {
      const int e = errno;
      ::close(s->listen_fd);
      s->listen_fd = -1;
      OAR_FAIL("store: rank 0 cannot listen on port ", port, ": ", std::strerror(e),
               e == EADDRINUSE ? " (another job uses it: pick another MASTER_PORT)" : "");
    }
    OAR_CHECK(::listen(s->listen_fd, 1024) == 0, "store: listen failed: ", std::strerror(errno));
    sockaddr_storage got{};
    socklen_t len = sizeof got;
    ::getsockname(s->listen_fd, reinterpret_cast<sockaddr*>(&got), &len);
    port_ = ntohs(got.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&got)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&got)->sin_port);
    Server* raw = s.get();
    s->acceptor = std::thread([raw] { raw->accept_loop(); });
    server_ = std::move(s);
  }

  // Connect (rank 0 too, through loopback), retrying until the deadline: rank 0 may start later.
  const auto deadline = Clock::now() + timeout_;
  std::string last_error = "no attempt";
  auto backoff = std::chrono::milliseconds(10);
  for (;;) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    const std::string h = is_server ? std::string("127.0.0.1") : host_;
    const int g = ::getaddrinfo(h.c_str(), std::to_string(port_).c_str(), &hints, &res);
    if (g != 0) {
      last_error = std::string("cannot resolve host: ") + ::gai_strerror(g);
    } else {
      for (addrinfo* ai = res; ai; ai = ai->ai_next) {
        const int fd = ::socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) continue;
        if (::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
          fd_ = fd;
          break;
        }
        last_error = std::strerror(errno);
        ::close(fd);
      }
      ::freeaddrinfo(res);
    }
    if (fd_ >= 0) break;
    if (Clock::now() >= deadline)
      throw TimeoutError(detail::concat(
          "store: could not reach rank 0's store at ", host_, ":", port_, " within ",
          timeout_.count() / 1000.0, " s (", last_error,
          "); is rank 0 running and MASTER_ADDR/MASTER_PORT the same on every rank?"));
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(500));
  }
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

TcpStore::~TcpStore() {
  if (fd_ >= 0) ::close(fd_);
  server_.reset();
}

Bytes TcpStore::request(uint8_t op, const std::string& key, const Bytes& value) {
  uint8_t status = 0;
  std::string k;
  Bytes reply;
  if (!write_frame(fd_, op, key, value) || !read_frame(fd_, status, k, reply))
    OAR_FAIL("store: lost the connection to rank 0's store at ", host_, ":", port_,
             " (rank 0 has exited?)");
  if (status == 1) throw std::out_of_range(key);
  return reply;
}

void TcpStore::set(const std::string& key, const Bytes& value) {
  request(kSet, key, value);
}

Bytes TcpStore::get(const std::string& key) {
  wait({key});
  return request(kGet, key, {});
}

int64_t TcpStore::add(const std::string& key, int64_t delta) {
  Bytes b(8);
  std::memcpy(b.data(), &delta, 8);
  const Bytes r = request(kAdd, key, b);
  int64_t v = 0;
  std::memcpy(&v, r.data(), 8);
  return v;
}

std::vector<std::string> TcpStore::missing(const std::vector<std::string>& keys) {
  const std::string s = join_lines(keys);
  const Bytes r = request(kMissing, "", Bytes(s.begin(), s.end()));
  return split_lines(std::string(r.begin(), r.end()));
}

bool TcpStore::check(const std::vector<std::string>& keys) {
  return missing(keys).empty();
}

void TcpStore::wait(const std::vector<std::string>& keys) {
  wait(keys, timeout_);
}

void TcpStore::wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout) {
  const auto start = Clock::now();
  const auto deadline = start + timeout;
  auto backoff = std::chrono::microseconds(100);
  for (;;) {
    const std::vector<std::string> miss = missing(keys);
    if (miss.empty()) return;
    if (Clock::now() >= deadline) {
      std::string names;
      for (size_t i = 0; i < miss.size() && i < 8; ++i) names += (i ? ", " : "") + miss[i];
      if (miss.size() > 8) names += ", ...";
      throw TimeoutError(detail::concat("store: timed out after ", timeout.count() / 1000.0,
                                        " s waiting for ", names));
    }
    std::this_thread::sleep_for(backoff);
    // Poll finely for the first second (barriers between ranks in step), then back off.
    const std::chrono::microseconds cap = Clock::now() - start > std::chrono::seconds(1)
                                              ? std::chrono::milliseconds(50)
                                              : std::chrono::milliseconds(1);
    backoff = std::min<std::chrono::microseconds>(backoff * 2, cap);
  }
}

}  // namespace oar::dist
