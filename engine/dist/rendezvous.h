#pragma once
// Who am I, how many are we, where is rank 0: read from the environment that torchrun, Kubeflow's
// PyTorchJob and PaddleJob, Volcano's pytorch plugin and `oar launch` set.
//
//   torchrun style: MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK [, LOCAL_RANK, LOCAL_WORLD_SIZE]
//   Paddle style:   PADDLE_TRAINER_ID, PADDLE_TRAINERS_NUM, and PADDLE_MASTER (host:port) or
//                   PADDLE_TRAINER_ENDPOINTS (rank 0 = the first entry) [, PADDLE_LOCAL_RANK,
//                   PADDLE_RANK_IN_NODE, PADDLE_LOCAL_SIZE]; PADDLE_GLOBAL_RANK/_SIZE also read.
#include <functional>
#include <optional>
#include <string>

namespace oar::dist {

struct RendezvousInfo {
  std::string master_addr;
  int master_port = 0;
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  int restart_count = 0;  // TORCHELASTIC_RESTART_COUNT / OAR_RESTART_COUNT
  std::string source;     // "torchrun" or "paddle": which variables were used
};

using EnvLookup = std::function<const char*(const char*)>;

// nullopt when no distributed variable is set (a plain single-process run). Throws oar::Error
// naming the variable when one is set but another is missing or malformed.
std::optional<RendezvousInfo> rendezvous_from_env(const EnvLookup& env = nullptr);

}  // namespace oar::dist
