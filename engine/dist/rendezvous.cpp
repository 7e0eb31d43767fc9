#include "engine/dist/rendezvous.h"

#include <cerrno>
#include <cstdlib>
#include <vector>

#include "engine/core/error.h"

namespace oar::dist {

namespace {

int parse_int(const char* name, const char* v, int lo, int hi) {
  char* end = nullptr;
  errno = 0;
  const long x = std::strtol(v, &end, 10);
  if (errno != 0 || end == v || *end != '\0' || x < lo || x > hi)
    OAR_FAIL("environment: ", name, "='", v, "' is not an integer in [", lo, ", ", hi, "]");
  return static_cast<int>(x);
}

// "host:port" or "[v6]:port".
void split_endpoint(const char* name, const std::string& ep, std::string& host, int& port) {
  const size_t c = ep.rfind(':');
  if (c == std::string::npos || c == 0 || c + 1 == ep.size())
    OAR_FAIL("environment: ", name, "='", ep, "' is not host:port");
  host = ep.substr(0, c);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  port = parse_int(name, ep.substr(c + 1).c_str(), 1, 65535);
}

}  // namespace

std::optional<RendezvousInfo> rendezvous_from_env(const EnvLookup& lookup) {
  auto env = [&](const char* k) -> const char* {
    const char* v = lookup ? lookup(k) : std::getenv(k);
    return v && *v ? v : nullptr;
  };
  auto need = [&](const char* k, const char* why) {
    const char* v = env(k);
    if (!v) OAR_FAIL("environment: ", why, " but ", k, " is not set");
    return v;
  };
  RendezvousInfo r;
  if (const char* rc = env("TORCHELASTIC_RESTART_COUNT"))
    r.restart_count = parse_int("TORCHELASTIC_RESTART_COUNT", rc, 0, 1 << 30);
  if (const char* rc = env("OAR_RESTART_COUNT"))
    r.restart_count = parse_int("OAR_RESTART_COUNT", rc, 0, 1 << 30);

  if (env("WORLD_SIZE")) {
    r.source = "torchrun";
    const char* why = "WORLD_SIZE is set";
    r.world_size = parse_int("WORLD_SIZE", env("WORLD_SIZE"), 1, 1 << 20);
    if (r.world_size == 1 && !env("RANK")) return r;
    r.rank = parse_int("RANK", need("RANK", why), 0, r.world_size - 1);
    r.master_addr = need("MASTER_ADDR", why);
    r.master_port = parse_int("MASTER_PORT", need("MASTER_PORT", why), 1, 65535);
    if (const char* l = env("LOCAL_WORLD_SIZE"))
      r.local_world_size = parse_int("LOCAL_WORLD_SIZE", l, 1, r.world_size);
    if (const char* l = env("LOCAL_RANK"))
      r.local_rank = parse_int("LOCAL_RANK", l, 0, r.world_size - 1);
    return r;
  }

  const char* n =
      env("PADDLE_TRAINERS_NUM") ? env("PADDLE_TRAINERS_NUM") : env("PADDLE_GLOBAL_SIZE");
  const char* eps = env("PADDLE_TRAINER_ENDPOINTS");
  if (n || eps || env("PADDLE_MASTER") || env("PADDLE_TRAINER_ID")) {
    r.source = "paddle";
    std::vector<std::string> endpoints;
    if (eps) {
      std::string s = eps, cur;
      for (char ch : s + ",") {
        if (ch == ',') {
          if (!cur.empty()) endpoints.push_back(cur);
          cur.clear();
        } else {
          cur += ch;
        }
      }
    }
    if (n)
      r.world_size = parse_int(
          env("PADDLE_TRAINERS_NUM") ? "PADDLE_TRAINERS_NUM" : "PADDLE_GLOBAL_SIZE", n, 1, 1 << 20);
    else if (!endpoints.empty())
      r.world_size = static_cast<int>(endpoints.size());
    else
      OAR_FAIL(
          "environment: Paddle variables are set but neither PADDLE_TRAINERS_NUM nor "
          "PADDLE_TRAINER_ENDPOINTS says how many trainers there are");
    if (!endpoints.empty() && static_cast<int>(endpoints.size()) != r.world_size)
      OAR_FAIL("environment: PADDLE_TRAINER_ENDPOINTS lists ", endpoints.size(),
               " endpoints but PADDLE_TRAINERS_NUM is ", r.world_size);
    const char* id_name = env("PADDLE_TRAINER_ID") ? "PADDLE_TRAINER_ID" : "PADDLE_GLOBAL_RANK";
    const char* id = env(id_name);
    if (!id) {
      if (r.world_size == 1) return r;
      OAR_FAIL("environment: Paddle variables are set but PADDLE_TRAINER_ID is not");
    }
    r.rank = parse_int(id_name, id, 0, r.world_size - 1);
    if (const char* m = env("PADDLE_MASTER"))
      split_endpoint("PADDLE_MASTER", m, r.master_addr, r.master_port);
    else if (!endpoints.empty())
      split_endpoint("PADDLE_TRAINER_ENDPOINTS", endpoints[0], r.master_addr, r.master_port);
    else if (r.world_size > 1)
      OAR_FAIL(
          "environment: Paddle variables are set but neither PADDLE_MASTER nor "
          "PADDLE_TRAINER_ENDPOINTS says where trainer 0 is");
    const char* lr_name = env("PADDLE_LOCAL_RANK") ? "PADDLE_LOCAL_RANK" : "PADDLE_RANK_IN_NODE";
    if (const char* l = env(lr_name)) r.local_rank = parse_int(lr_name, l, 0, r.world_size - 1);
    if (const char* l = env("PADDLE_LOCAL_SIZE"))
      r.local_world_size = parse_int("PADDLE_LOCAL_SIZE", l, 1, r.world_size);
    return r;
  }
  return std::nullopt;
}

}  // namespace oar::dist
