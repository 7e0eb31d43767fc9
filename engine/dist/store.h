#pragma once
// A small TCP key-value store: rank 0 hosts it on MASTER_PORT, every rank (rank 0 included)
// talks to it as a client. It carries the rendezvous (who is there), the NCCL unique id, Gloo's
// rendezvous::Store and small broadcasts (the checkpoint to resume from).
//
// Every blocking call has a deadline; on expiry it throws TimeoutError saying what it waited for.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/core/error.h"

namespace oar::dist {

class TimeoutError : public Error {
 public:
  using Error::Error;
};

using Bytes = std::vector<uint8_t>;

class TcpStore {
 public:
  // host/port: where the server listens (is_server: bind port on all interfaces; port 0 picks a
  // free one, see port()). Clients retry connecting until `timeout`.
  TcpStore(std::string host, int port, bool is_server, std::chrono::milliseconds timeout);
  ~TcpStore();
  TcpStore(const TcpStore&) = delete;
  TcpStore& operator=(const TcpStore&) = delete;

  void set(const std::string& key, const Bytes& value);
  void set(const std::string& key, const std::string& value) {
    set(key, Bytes(value.begin(), value.end()));
  }
  // Waits until the key exists (up to the store's timeout) and returns its value.
  Bytes get(const std::string& key);
  std::string get_string(const std::string& key) {
    Bytes b = get(key);
    return std::string(b.begin(), b.end());
  }
  // Atomically adds delta to an integer key (0 when absent) and returns the new value.
  int64_t add(const std::string& key, int64_t delta);
  // True when every key exists now.
  bool check(const std::vector<std::string>& keys);
  // Waits until every key exists; throws TimeoutError naming the missing keys.
  void wait(const std::vector<std::string>& keys);
  void wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout);
  // The keys of `keys` that do not exist now.
  std::vector<std::string> missing(const std::vector<std::string>& keys);

  std::chrono::milliseconds timeout() const { return timeout_; }
  void set_timeout(std::chrono::milliseconds t) { timeout_ = t; }
  int port() const { return port_; }
  const std::string& host() const { return host_; }

 private:
  struct Server;
  Bytes request(uint8_t op, const std::string& key, const Bytes& value);
  std::string host_;
  int port_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<Server> server_;
  int fd_ = -1;
};

}  // namespace oar::dist
