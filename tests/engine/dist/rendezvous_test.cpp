#include "engine/dist/rendezvous.h"

#include <gtest/gtest.h>

#include <map>

#include "engine/core/error.h"

using namespace oar;
using namespace oar::dist;

namespace {
EnvLookup env(std::map<std::string, std::string> m) {
  auto shared = std::make_shared<std::map<std::string, std::string>>(std::move(m));
  return [shared](const char* k) -> const char* {
    auto it = shared->find(k);
    return it == shared->end() ? nullptr : it->second.c_str();
  };
}
std::string error_of(const EnvLookup& e) {
  try {
    rendezvous_from_env(e);
  } catch (const Error& x) {
    return x.what();
  }
  return "";
}
}  // namespace

TEST(RendezvousEnv, NothingSetIsASingleProcess) {
  EXPECT_FALSE(rendezvous_from_env(env({})).has_value());
}

TEST(RendezvousEnv, Torchrun) {
  auto r = rendezvous_from_env(env({{"MASTER_ADDR", "10.0.0.1"},
                                    {"MASTER_PORT", "29500"},
                                    {"WORLD_SIZE", "8"},
                                    {"RANK", "5"},
                                    {"LOCAL_RANK", "1"},
                                    {"LOCAL_WORLD_SIZE", "4"},
                                    {"TORCHELASTIC_RESTART_COUNT", "2"}}));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->master_addr, "10.0.0.1");
  EXPECT_EQ(r->master_port, 29500);
  EXPECT_EQ(r->world_size, 8);
  EXPECT_EQ(r->rank, 5);
  EXPECT_EQ(r->local_rank, 1);
  EXPECT_EQ(r->local_world_size, 4);
  EXPECT_EQ(r->restart_count, 2);
  EXPECT_EQ(r->source, "torchrun");
}

TEST(RendezvousEnv, KubeflowPyTorchJobHasNoLocalRank) {
  // The operator sets MASTER_*, WORLD_SIZE and RANK only (one process per pod).
  auto r = rendezvous_from_env(env({{"MASTER_ADDR", "job-master-0"},
                                    {"MASTER_PORT", "23456"},
                                    {"WORLD_SIZE", "3"},
                                    {"RANK", "2"}}));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->rank, 2);
  EXPECT_EQ(r->local_rank, 0);
  EXPECT_EQ(r->local_world_size, 1);
}

TEST(RendezvousEnv, PaddleEndpointsAndMaster) {
  auto r = rendezvous_from_env(env({{"PADDLE_TRAINER_ENDPOINTS", "10.0.0.1:6170,10.0.0.2:6170"},
                                    {"PADDLE_TRAINER_ID", "1"},
                                    {"PADDLE_TRAINERS_NUM", "2"}}));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->source, "paddle");
  EXPECT_EQ(r->master_addr, "10.0.0.1");
  EXPECT_EQ(r->master_port, 6170);
  EXPECT_EQ(r->rank, 1);
  EXPECT_EQ(r->world_size, 2);
  auto m = rendezvous_from_env(env({{"PADDLE_MASTER", "job-worker-0:8090"},
                                    {"PADDLE_TRAINER_ID", "3"},
                                    {"PADDLE_TRAINERS_NUM", "4"},
                                    {"PADDLE_LOCAL_RANK", "1"}}));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->master_addr, "job-worker-0");
  EXPECT_EQ(m->master_port, 8090);
  EXPECT_EQ(m->rank, 3);
  EXPECT_EQ(m->local_rank, 1);
}

TEST(RendezvousEnv, ErrorsNameTheVariable) {
  EXPECT_NE(error_of(env({{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"MASTER_PORT", "1"}}))
                .find("MASTER_ADDR is not set"),
            std::string::npos);
  EXPECT_NE(
      error_of(
          env({{"WORLD_SIZE", "2"}, {"RANK", "2"}, {"MASTER_ADDR", "a"}, {"MASTER_PORT", "1"}}))
          .find("RANK='2' is not an integer in [0, 1]"),
      std::string::npos);
  EXPECT_NE(error_of(env({{"WORLD_SIZE", "two"}})).find("WORLD_SIZE='two'"), std::string::npos);
  EXPECT_NE(error_of(env({{"PADDLE_TRAINER_ENDPOINTS", "a:1,b:2,c:3"},
                          {"PADDLE_TRAINERS_NUM", "2"},
                          {"PADDLE_TRAINER_ID", "0"}}))
                .find("lists 3 endpoints"),
            std::string::npos);
  EXPECT_NE(error_of(env({{"PADDLE_MASTER", "nohostport"},
                          {"PADDLE_TRAINERS_NUM", "2"},
                          {"PADDLE_TRAINER_ID", "0"}}))
                .find("is not host:port"),
            std::string::npos);
}
