// oar launch: starts the workers of one node with the rendezvous environment (as torchrun does),
// prefixes their output with the rank, stops the group when one fails and names it, and can
// restart the group, which then resumes from the last checkpoint.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "apps/oar/commands.h"
#include "engine/core/error.h"

namespace oar::app {

namespace {

using Clock = std::chrono::steady_clock;

std::atomic<int> g_launch_signal{0};
void on_launch_signal(int sig) {
  g_launch_signal.store(sig);
}

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  OAR_CHECK(fd >= 0, "launch: cannot create a socket: ", std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  ::close(fd);
  OAR_CHECK(ok, "launch: cannot find a free port: ", std::strerror(errno));
  return ntohs(a.sin_port);
}

std::string self_exe() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string("oar");
}

struct Worker {
  int rank = 0, local_rank = 0;
  pid_t pid = -1;
  int out = -1, err = -1;  // pipes, -1 once closed
  std::string out_buf, err_buf;
  std::string last_line, last_error;
  bool running = false;
  int status = 0;
};

void emit(FILE* f, const Worker& w, const std::string& line) {
  std::fprintf(f, "[rank %d] %s\n", w.rank, line.c_str());
  std::fflush(f);
}

// Splits complete lines off buf; progress bars' '\r' redraws count as line ends.
void drain(int& fd, std::string& buf, Worker& w, FILE* f, bool is_err) {
  char chunk[8192];
  const ssize_t n = ::read(fd, chunk, sizeof chunk);
  if (n <= 0) {
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (!buf.empty()) {
      emit(f, w, buf);
      if (is_err) w.last_line = buf;
      buf.clear();
    }
    ::close(fd);
    fd = -1;
    return;
  }
  buf.append(chunk, static_cast<size_t>(n));
  size_t start = 0;
  for (size_t i = 0; i < buf.size(); ++i) {
    if (buf[i] != '\n' && buf[i] != '\r') continue;
    std::string line = buf.substr(start, i - start);
    start = i + 1;
    if (line.empty()) continue;
    emit(f, w, line);
    if (is_err) {
      w.last_line = line;
      if (line.find("error") != std::string::npos) w.last_error = line;
    }
  }
  buf.erase(0, start);
}

std::string describe_exit(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int s = WTERMSIG(status);
    const char* name = sigabbrev_np(s);
    return "was killed by signal " + std::to_string(s) +
           (name ? std::string(" (SIG") + name + ")" : "");
  }
  return "ended with status " + std::to_string(status);
}

// Runs one attempt of the group; returns 0 when every worker succeeded.
int run_group(const LaunchOptions& o, int port, int attempt, std::string& failure) {
  const int world = o.nproc_per_node * o.nnodes;
  std::vector<Worker> ws(static_cast<size_t>(o.nproc_per_node));
  std::vector<std::string> cmd = o.command;
  if (cmd[0] == "oar") cmd[0] = self_exe();
  for (int lr = 0; lr < o.nproc_per_node; ++lr) {
    Worker& w = ws[static_cast<size_t>(lr)];
    w.local_rank = lr;
    w.rank = o.node_rank * o.nproc_per_node + lr;
    int po[2], pe[2];
    OAR_CHECK(::pipe(po) == 0 && ::pipe(pe) == 0, "launch: pipe: ", std::strerror(errno));
    const pid_t pid = ::fork();
    OAR_CHECK(pid >= 0, "launch: fork: ", std::strerror(errno));
    if (pid == 0) {
      ::dup2(po[1], 1);
      ::dup2(pe[1], 2);
      ::close(po[0]);
      ::close(po[1]);
      ::close(pe[0]);
      ::close(pe[1]);
      auto set = [](const char* k, const std::string& v) { ::setenv(k, v.c_str(), 1); };
      set("MASTER_ADDR", o.master_addr);
      set("MASTER_PORT", std::to_string(port));
      set("WORLD_SIZE", std::to_string(world));
      set("RANK", std::to_string(w.rank));
      set("LOCAL_RANK", std::to_string(lr));
      set("LOCAL_WORLD_SIZE", std::to_string(o.nproc_per_node));
      set("GROUP_RANK", std::to_string(o.node_rank));
      set("TORCHELASTIC_RESTART_COUNT", std::to_string(attempt));
      set("TORCHELASTIC_MAX_RESTARTS", std::to_string(o.max_restarts));
      set("OAR_RESTART_COUNT", std::to_string(attempt));
      if (!std::getenv("OMP_NUM_THREADS"))
        set("OMP_NUM_THREADS",
            std::to_string(std::max<long>(1, ::sysconf(_SC_NPROCESSORS_ONLN) / o.nproc_per_node)));
      std::vector<char*> argv;
      for (auto& a : cmd) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execvp(argv[0], argv.data());
      std::fprintf(stderr, "error: launch: cannot run %s: %s\n", argv[0], std::strerror(errno));
      ::_exit(127);
    }
    ::close(po[1]);
    ::close(pe[1]);
    w.pid = pid;
    w.out = po[0];
    w.err = pe[0];
    w.running = true;
    std::fprintf(stderr, "launch: rank %d (local %d) pid %d\n", w.rank, lr, static_cast<int>(pid));
  }

  int failed = -1, idle_spins = 0;
  bool stopping = false;
  Clock::time_point kill_at{};
  auto stop_all = [&](int sig) {
    for (auto& w : ws)
      if (w.running) ::kill(w.pid, sig);
  };
  for (;;) {
    std::vector<pollfd> fds;
    std::vector<std::pair<Worker*, bool>> who;
    for (auto& w : ws) {
      if (w.out >= 0) {
        fds.push_back({w.out, POLLIN, 0});
        who.emplace_back(&w, false);
      }
      if (w.err >= 0) {
        fds.push_back({w.err, POLLIN, 0});
        who.emplace_back(&w, true);
      }
    }
    if (!fds.empty()) ::poll(fds.data(), fds.size(), 100);
    for (size_t i = 0; i < fds.size(); ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      Worker& w = *who[i].first;
      if (who[i].second)
        drain(w.err, w.err_buf, w, stderr, true);
      else
        drain(w.out, w.out_buf, w, stdout, false);
    }
    bool any_running = false;
    for (auto& w : ws) {
      if (!w.running) continue;
      int st = 0;
      const pid_t r = ::waitpid(w.pid, &st, WNOHANG);
      if (r == w.pid) {
        w.running = false;
        w.status = st;
        const bool ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
        if (!ok && failed < 0 && !stopping) failed = static_cast<int>(&w - ws.data());
      } else {
        any_running = true;
      }
    }
    const int sig = g_launch_signal.load();
    if (!stopping && (failed >= 0 || sig != 0) && any_running) {
      // Stop the rest: SIGTERM lets them finish the step and save; SIGKILL after the grace time.
      stopping = true;
      stop_all(SIGTERM);
      kill_at = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(o.grace_s * 1000));
    }
    if (stopping && any_running && Clock::now() >= kill_at) {
      stop_all(SIGKILL);
      kill_at = Clock::now() + std::chrono::hours(1);
    }
    bool pipes_open = false;
    for (auto& w : ws) pipes_open |= w.out >= 0 || w.err >= 0;
    if (!any_running && (!pipes_open || stopping)) break;
    if (!any_running) {
      // Exited workers may have left children holding the pipes; give them a moment.
      if (++idle_spins > 20) break;
    }
  }
  for (auto& w : ws) {
    if (w.out >= 0) ::close(w.out);
    if (w.err >= 0) ::close(w.err);
  }
  if (failed >= 0) {
    const Worker& w = ws[static_cast<size_t>(failed)];
    failure = detail::concat("rank ", w.rank, " (pid ", w.pid, ") ", describe_exit(w.status),
                             !w.last_error.empty()  ? "; its last error: " + w.last_error
                             : !w.last_line.empty() ? "; its last line: " + w.last_line
                                                    : std::string("; it printed nothing"));
    return 1;
  }
  if (g_launch_signal.load() != 0) {
    failure = "stopped by signal " + std::to_string(g_launch_signal.load());
    return 128 + g_launch_signal.load();
  }
  return 0;
}

}  // namespace

int cmd_launch(const LaunchOptions& o) {
  OAR_CHECK(!o.command.empty(),
            "launch: no command (usage: oar launch --nproc_per_node N -- oar train -c CONFIG)");
  OAR_CHECK(o.nproc_per_node >= 1 && o.nnodes >= 1 && o.node_rank >= 0 && o.node_rank < o.nnodes,
            "launch: need --nproc_per_node >= 1, --nnodes >= 1 and 0 <= --node_rank < --nnodes");
  int port = o.master_port;
  if (port == 0) {
    OAR_CHECK(o.nnodes == 1,
              "launch: --master_port is required with --nnodes > 1 (every node "
              "must use the same one)");
    port = free_port();
  }
  struct sigaction sa {};
  sa.sa_handler = on_launch_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  for (int attempt = 0;; ++attempt) {
    std::fprintf(stderr, "launch: %d worker(s) on node %d of %d, world size %d, master %s:%d%s\n",
                 o.nproc_per_node, o.node_rank, o.nnodes, o.nproc_per_node * o.nnodes,
                 o.master_addr.c_str(), port,
                 attempt ? (" (restart " + std::to_string(attempt) + ")").c_str() : "");
    std::string failure;
    const int rc = run_group(o, port, attempt, failure);
    if (rc == 0) return 0;
    std::fprintf(stderr, "error: launch: %s\n", failure.c_str());
    if (rc > 128 || attempt >= o.max_restarts) return rc > 128 ? rc : 1;
    std::fprintf(stderr, "launch: restarting the group (%d of %d) from the last checkpoint\n",
                 attempt + 1, o.max_restarts);
    if (o.master_port == 0) port = free_port();
  }
}

}  // namespace oar::app
