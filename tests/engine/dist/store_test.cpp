#include "engine/dist/store.h"

#include <gtest/gtest.h>

#include <thread>

#include "engine/dist/process_group.h"

using namespace oar;
using namespace oar::dist;
using namespace std::chrono_literals;

TEST(TcpStore, SetGetAddWaitAcrossClients) {
  TcpStore server("127.0.0.1", 0, true, 5s);
  TcpStore client("127.0.0.1", server.port(), false, 5s);
  server.set("a", std::string("hello"));
  EXPECT_EQ(client.get_string("a"), "hello");
  EXPECT_EQ(client.add("n", 3), 3);
  EXPECT_EQ(server.add("n", 4), 7);
  EXPECT_TRUE(client.check({"a", "n"}));
  EXPECT_EQ(client.missing({"a", "b"}), std::vector<std::string>{"b"});
  // get waits for a key set later by another client.
  std::thread later([&] {
    std::this_thread::sleep_for(50ms);
    server.set("b", Bytes{1, 2, 3});
  });
  EXPECT_EQ(client.get("b"), (Bytes{1, 2, 3}));
  later.join();
  // Binary values with zero bytes and a large value survive.
  Bytes big(3 << 20);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 7);
  client.set("big", big);
  EXPECT_EQ(server.get("big"), big);
}

TEST(TcpStore, WaitTimesOutNamingTheMissingKeys) {
  TcpStore server("127.0.0.1", 0, true, 5s);
  server.set("present", std::string("1"));
  const auto t0 = std::chrono::steady_clock::now();
  try {
    server.wait({"present", "absent"}, 200ms);
    FAIL() << "no timeout";
  } catch (const TimeoutError& e) {
    EXPECT_NE(std::string(e.what()).find("absent"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find("present"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
}

TEST(TcpStore, ClientGivesUpWhenNoServerAnswers) {
  int port;
  {
    TcpStore s("127.0.0.1", 0, true, 1s);
    port = s.port();
  }
  try {
    TcpStore c("127.0.0.1", port, false, 300ms);
    FAIL() << "connected to nothing";
  } catch (const TimeoutError& e) {
    EXPECT_NE(std::string(e.what()).find("could not reach rank 0"), std::string::npos) << e.what();
  }
}

TEST(Rendezvous, NeverArrivingRankIsNamed) {
  RendezvousInfo info;
  info.master_addr = "127.0.0.1";
  // A free port: bind a store, read its port, release it.
  {
    TcpStore s("127.0.0.1", 0, true, 1s);
    info.master_port = s.port();
  }
  info.rank = 0;
  info.world_size = 3;
  info.source = "torchrun";
  try {
    init_process_group(info, "gloo", Device::cpu(), 300ms);
    FAIL() << "rendezvous with nobody succeeded";
  } catch (const TimeoutError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("ranks 1, 2 of 3 never arrived"), std::string::npos) << m;
  }
}

TEST(ProcessGroup, GlooCollectivesBetweenThreads) {
  int port;
  {
    TcpStore s("127.0.0.1", 0, true, 1s);
    port = s.port();
  }
  constexpr int kWorld = 2;
  std::vector<std::vector<float>> results(kWorld);
  std::vector<std::string> errors(kWorld);
  std::vector<std::thread> ts;
  for (int r = 0; r < kWorld; ++r)
    ts.emplace_back([&, r] {
      try {
        RendezvousInfo info{"127.0.0.1", port, r, kWorld, r, kWorld, 0, "test"};
        auto g = init_process_group(info, "auto", Device::cpu(), 10s);
        Tensor t = tensor(std::vector<float>{1.0f * (r + 1), 10.0f * (r + 1)}, Shape{2});
        g->allreduce(t, ReduceOp::sum);  // {3, 30}
        Tensor a = tensor(std::vector<float>{2.0f * r}, Shape{1});
        g->allreduce(a, ReduceOp::avg);  // {1}
        Tensor b = tensor(std::vector<float>{r == 0 ? 7.0f : -1.0f}, Shape{1});
        g->broadcast(b, 0);  // {7}
        Tensor in = tensor(std::vector<float>{static_cast<float>(r)}, Shape{1});
        Tensor out = zeros({kWorld});
        g->allgather(in, out);  // {0, 1}
        Tensor rs_in = tensor(std::vector<float>{1, 2, 3, 4}, Shape{4});
        Tensor rs_out = zeros({2});
        g->reduce_scatter(rs_in, rs_out, ReduceOp::sum);  // rank 0 {2, 4}, rank 1 {6, 8}
        g->barrier();
        const std::string who = g->broadcast_string(r == 0 ? "from rank 0" : "");
        auto sums = g->sum_doubles({0.5, static_cast<double>(r)});
        std::vector<float>& res = results[r];
        for (const Tensor* x : {&t, &a, &b, &out, &rs_out})
          for (int64_t i = 0; i < x->numel(); ++i) res.push_back(x->data<float>()[i]);
        res.push_back(who == "from rank 0" ? 1.0f : 0.0f);
        res.push_back(static_cast<float>(sums[0]));
        res.push_back(static_cast<float>(sums[1]));
        g->barrier();
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  for (auto& t : ts) t.join();
  for (int r = 0; r < kWorld; ++r) ASSERT_EQ(errors[r], "") << "rank " << r;
  EXPECT_EQ(results[0], (std::vector<float>{3, 30, 1, 7, 0, 1, 2, 4, 1, 1, 1}));
  EXPECT_EQ(results[1], (std::vector<float>{3, 30, 1, 7, 0, 1, 6, 8, 1, 1, 1}));
}
