// Node-API glue for optim/distributed: process groups and collectives over Gloo (TCP transport).
// Built in only when scripts/detect-gloo.js finds Gloo (OPTIM_HAVE_GLOO); otherwise the addon
// exports `distributedInfo()` (saying `gloo: false`) and nothing else from here, and src/distributed/ throws a
// DistributedError saying how to get it.
//
// Exports (with Gloo):
//   distributedInfo() -> { gloo: true | false } (the only export when the build has no Gloo)
//   pgCreate(rank, size, host, port, timeoutMs, token, bindHost) -> handle (a process group
//     with its own native thread; nothing connects yet)
//   pgConnect(h) -> Promise: rendezvous through the TCP store at host:port (src/distributed/
//     store.ts, served by rank 0), then Gloo's full mesh
//   pgAllReduce(h, x, op) / pgBroadcast(h, x, root) / pgAllGather(h, in, out) /
//   pgReduceScatter(h, in, out, op) / pgBarrier(h) -> Promise
//   pgDestroy(h) -> Promise: runs after every earlier call settles, then the thread ends.
//
// Every call is queued to the group's thread and runs there in issue order (so the same order on
// every rank); the event loop never waits. A queued call holds references to its typed arrays
// until its Promise settles, and works on them in place (the caller must not write them until
// then, as with torch's async_op=True). Before each collective the ranks exchange a 32-byte
// description of it (kind, dtype, lengths, root/op; a small all-reduce with 2-8 ranks sends the
// first hop of its data in the same messages), so a call that does not match across ranks is
// refused on every rank with the same message instead of hanging or corrupting memory.
//
// Rejections are Errors with a `code`: ERR_OPTIM_DIST_MISMATCH (ranks disagree),
// ERR_OPTIM_DIST_TIMEOUT, ERR_OPTIM_DIST_IO (a peer or the store was lost), ERR_OPTIM_DIST_BROKEN
// (an earlier failure broke the group), ERR_OPTIM_DIST_STORE (the store refused the rank).
#include <node_api.h>

#include <string>

#include "glue.h"

#ifdef OPTIM_HAVE_GLOO

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <gloo/allgather.h>
#include <gloo/allreduce.h>
#include <gloo/broadcast.h>
#include <gloo/common/error.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/store.h>
#include <gloo/transport/tcp/device.h>

namespace {

using namespace optim::glue;
using Clock = std::chrono::steady_clock;
using ms = std::chrono::milliseconds;

// Slot prefixes of our own exchanges (Gloo's collectives use 0x01-0x08, see gloo/types.h).
constexpr uint8_t kAgreeSlot = 0x41;
constexpr uint8_t kGatherSlot = 0x42;

// When an all-reduce is "direct" (see direct_finish): 2 ranks and at most 4 MiB per rank's chunk
// (2e6 float32, 1e6 float64), or 3 to 8 ranks and at most 1 MiB (1e6 float32 with 4 ranks).
//
// 3-8 ranks, measured with 4 ranks on 2 cores (the bench's protocol: slowest rank per repeat,
// medians of alternating jobs), before its first hop rode on the agreement: 1e6 float32 10.6-11.1 ms
// direct against 13.0-13.7 ms for Gloo's ring; at 2e6 about even (20-24 / 19-22 ms); at 1e7, in
// 1 MB-per-chunk sections one after the other, 84-95 ms against the ring's 74-79 ms, and as one
// section far worse (a plain C++ program over Debian's Gloo: 480 against 78 ms; size - 1 concurrent
// multi-megabyte streams into every rank stall on loopback). Above 8 ranks it is untested here.
//
// 2 ranks (one stream each way), since the first hop rides on the agreement and the second hop's
// receives are posted before the reduction: float32 sum, ranges of the medians of alternating jobs
// (3 jobs up to 1e6, 2 above), direct against Gloo's ring (with its default 1 MiB segments) after
// the agreement: 1 element 0.28-0.49 / 0.36-0.54 ms, 1e5 0.53-0.62 / 0.98-1.6 ms, 1e6 3.7-4.1 /
// 5.0-5.2 ms (the ring's first job, 4.6 / 8.2 / 12 ms, ran on a busy machine and is left out), 2e6
// 6.8-7.0 / 8.4-13.9 ms, 1e7 27.5-28.6 / 33.8-37.4 ms. The cap is memory, not speed: every receive
// of the agreement has room for the largest chunk (below), kept from call to call; 1e7 (20 MB
// chunks) stays on the ring, which with 4 MiB segments (kRingSegmentBytes) measures about the same
// there (27-31 ms). (Sending each chunk in 256 KiB-1 MiB segments, to overlap the reduction with
// the transfer, measured no faster and was not kept.)
constexpr size_t kDirectChunkBytes2 = size_t(4) << 20;

// The largest segment of Gloo's ring all-reduce (its default is 1 MiB; a rank's chunk is cut into
// at least two segments, and the ring waits for each in turn). Fewer, larger segments mean fewer
// dependent waits, each a thread wake-up on a busy core here. Float32 sum, ring after the
// agreement, alternating jobs, each job's median (ranges over 3 jobs; 5 for 1e7 at 1 and 4 MiB):
//   segments of    1 MiB      2 MiB      4 MiB      8 MiB
//   4 ranks 4e6    34-39      32-38      32-33      32-36 ms
//   4 ranks 1e7    73-89      76-79      68-86      82-86 ms  (medians of the jobs: 81.2, 69.2)
//   2 ranks 1e7    29-39      32-33      27-31      29-34 ms  (medians of the jobs: 35.0, 28.1)
// It changes only how the ring cuts the array (with 3 or more ranks, which rank adds which
// segment's terms in which order, as rounding allows), not what it computes.
constexpr size_t kRingSegmentBytes = size_t(4) << 20;
constexpr size_t kDirectChunkBytes = size_t(1) << 20;
constexpr size_t kDescBytes = 4 * sizeof(int64_t);

// The largest chunk a direct all-reduce may have in a group of `size` ranks (0: never direct).
size_t direct_chunk_bytes(int size) {
  return size == 2 ? kDirectChunkBytes2 : size >= 3 && size <= 8 ? kDirectChunkBytes : 0;
}

bool direct_possible(int size) { return direct_chunk_bytes(size) > 0; }

// One peer's slot in the agreement's receive and send areas: the description, then room for the
// largest chunk when the group size can go direct.
size_t agree_slot_bytes(int size) { return kDescBytes + direct_chunk_bytes(size); }

bool use_direct(int size, size_t n, size_t elem) {
  // n <= size * (chunk / elem) keeps every rank's chunk (at most ceil(n / size) elements) within
  // direct_chunk_bytes.
  return direct_possible(size) && n > 0 && n <= size_t(size) * (direct_chunk_bytes(size) / elem);
}

// The agreement's areas hold one slot per peer: peer r's is slot peer_index(me, r).
size_t peer_index(int me, int r) { return size_t(r < me ? r : r - 1); }

struct StoreError : std::runtime_error {
  std::string code;
  StoreError(const std::string& c, const std::string& m) : std::runtime_error(m), code(c) {}
};

// ---- the store client: Gloo's Store interface over the TCP store of rank 0 ----
// Frames: u32 big-endian length of the rest, u8 op, u32 field count, then each field as u32
// length + bytes. Replies: u32 length, u8 status ('K' ok / 'E' refused), payload.
class TcpStore : public gloo::rendezvous::Store {
 public:
  TcpStore(const std::string& host, int port, ms timeout) : host_(host), port_(port), timeout_(timeout) {}
  ~TcpStore() override { close_fd(); }

  void connect(const std::string& token, int rank, int size) {
    const auto deadline = Clock::now() + timeout_;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    const std::string port = std::to_string(port_);
    const int gai = getaddrinfo(host_.c_str(), port.c_str(), &hints, &res);
    if (gai != 0) throw StoreError("ERR_OPTIM_DIST_STORE", "cannot resolve masterAddr '" + host_ + "': " + gai_strerror(gai));
    std::string last = "no address";
    for (;;) {
      for (addrinfo* a = res; a; a = a->ai_next) {
        int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) continue;
        if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
          int one = 1;
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          fd_ = fd;
          break;
        }
        last = std::strerror(errno);
        ::close(fd);
      }
      if (fd_ >= 0 || Clock::now() >= deadline) break;
      std::this_thread::sleep_for(ms(25));  // rank 0 may not listen yet
    }
    freeaddrinfo(res);
    if (fd_ < 0) {
      throw StoreError("ERR_OPTIM_DIST_TIMEOUT", "rendezvous: could not reach the store of rank 0 at " + where() +
                                                     " within " + std::to_string(timeout_.count()) + " ms (" + last + ")");
    }
    request('H', {token, std::to_string(rank), std::to_string(size)}, timeout_);
  }

  // The local address of the connection to the store: the interface that reaches rank 0, which
  // Gloo's listener binds to when no bind address is given.
  std::string local_ip() const {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "127.0.0.1";
    char buf[INET6_ADDRSTRLEN] = {0};
    if (ss.ss_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, buf, sizeof buf);
    } else {
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr, buf, sizeof buf);
    }
    return buf;
  }

  void set(const std::string& key, const std::vector<char>& data) override {
    request('S', {key, std::string(data.begin(), data.end())}, timeout_);
  }
  std::vector<char> get(const std::string& key) override {
    const std::string v = request('G', {key}, timeout_);
    return std::vector<char>(v.begin(), v.end());
  }
  void wait(const std::vector<std::string>& keys) override { wait(keys, timeout_); }
  void wait(const std::vector<std::string>& keys, const ms& timeout) override { request('W', keys, timeout); }
  int64_t add(const std::string& key, int64_t delta) {
    return std::stoll(request('A', {key, std::to_string(delta)}, timeout_));
  }

 private:
  std::string where() const { return host_ + ":" + std::to_string(port_); }
  void close_fd() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  static void put32(std::string& s, uint32_t v) {
    const char b[4] = {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
    s.append(b, 4);
  }

  void io(bool write, char* p, size_t n, Clock::time_point deadline, const std::string& what) {
    while (n > 0) {
      const auto left = std::chrono::duration_cast<ms>(deadline - Clock::now()).count();
      if (left <= 0) {
        close_fd();
        throw StoreError("ERR_OPTIM_DIST_TIMEOUT", "store at " + where() + ": timed out after " +
                                                       std::to_string(timeout_.count()) + " ms " + what);
      }
      pollfd pfd{fd_, short(write ? POLLOUT : POLLIN), 0};
      const int r = ::poll(&pfd, 1, int(std::min<long long>(left, 1000)));
      if (r < 0 && errno == EINTR) continue;
      if (r == 0) continue;
      const ssize_t k = write ? ::send(fd_, p, n, MSG_NOSIGNAL) : ::recv(fd_, p, n, 0);
      if (k < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (k <= 0) {
        close_fd();
        throw StoreError("ERR_OPTIM_DIST_IO", "store at " + where() + " closed the connection " + what +
                                                  " (rank 0 lost?)");
      }
      p += k;
      n -= size_t(k);
    }
  }

  std::string request(char op, const std::vector<std::string>& fields, ms timeout) {
    if (fd_ < 0) throw StoreError("ERR_OPTIM_DIST_BROKEN", "store at " + where() + ": not connected");
    std::string what = std::string("(request '") + op + "'";
    if (!fields.empty() && op != 'H') what += " for key '" + fields[0] + "'";
    what += ")";
    std::string body;
    body.push_back(op);
    put32(body, uint32_t(fields.size()));
    for (const auto& f : fields) {
      put32(body, uint32_t(f.size()));
      body += f;
    }
    std::string frame;
    put32(frame, uint32_t(body.size()));
    frame += body;
    const auto deadline = Clock::now() + timeout;
    io(true, &frame[0], frame.size(), deadline, what);
    unsigned char hdr[5];
    io(false, reinterpret_cast<char*>(hdr), 5, deadline, what);
    const uint32_t len = (uint32_t(hdr[0]) << 24) | (uint32_t(hdr[1]) << 16) | (uint32_t(hdr[2]) << 8) | hdr[3];
    if (len < 1 || len > (64u << 20)) {
      close_fd();
      throw StoreError("ERR_OPTIM_DIST_IO", "store at " + where() + ": malformed reply " + what);
    }
    std::string payload(len - 1, '\0');
    if (len > 1) io(false, &payload[0], len - 1, deadline, what);
    if (hdr[4] == 'E') throw StoreError("ERR_OPTIM_DIST_STORE", payload);
    return payload;
  }

  std::string host_;
  int port_;
  ms timeout_;
  int fd_ = -1;
};

// ---- jobs and the group's thread ----

enum class Kind { Connect, AllReduce, Broadcast, AllGather, ReduceScatter, Barrier, Stop };
enum ReduceOp { kSum = 0, kAvg = 1, kMax = 2, kMin = 3 };

const char* kind_name(int k) {
  switch (Kind(k)) {
    case Kind::Connect: return "initProcessGroup";
    case Kind::AllReduce: return "allReduce";
    case Kind::Broadcast: return "broadcast";
    case Kind::AllGather: return "allGather";
    case Kind::ReduceScatter: return "reduceScatter";
    case Kind::Barrier: return "barrier";
    case Kind::Stop: return "destroy";
  }
  return "?";
}
const char* op_name(int op) {
  static const char* names[] = {"sum", "avg", "max", "min"};
  return op >= 0 && op < 4 ? names[op] : "?";
}

struct Group;

struct Job {
  explicit Job(Kind k) : kind(k) {}
  Kind kind;
  bool f64 = false;
  int arg = 0;  // op (allReduce, reduceScatter) or root (broadcast)
  void* in = nullptr;
  void* out = nullptr;
  size_t in_n = 0, out_n = 0;
  napi_ref refs[2] = {nullptr, nullptr};
  napi_deferred deferred = nullptr;
  std::string code, error;  // empty code: fulfilled
};

struct Group {
  int rank, size;
  std::string host, token, bind_host;
  int port;
  ms timeout;

  std::thread thread;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Job*> queue;
  bool busy = false;  // guarded by mu
  napi_threadsafe_function tsfn = nullptr;

  // Main thread only.
  int pending = 0;
  bool stop_queued = false, stopped = false, external_alive = true, detached = false;

  // The group's thread only.
  std::unique_ptr<TcpStore> store;
  std::shared_ptr<gloo::transport::Device> device;
  std::shared_ptr<gloo::rendezvous::Context> context;
  uint32_t tag = 1;
  std::string broken;  // why the group cannot be used any more

  // A peer reported lost (pgAbort, from the store's notice on the main thread) while this
  // thread waits on one of the unbound buffers below: the wait is ended at once. Gloo's pair
  // fails a wait when its connection drops, except for a message it is halfway through reading
  // or writing (its signalException does not reach that op), which then waited out the whole
  // timeout. Guarded by abort_mu.
  std::mutex abort_mu;
  std::vector<gloo::transport::UnboundBuffer*> waiting;
  std::string aborted;  // non-empty: why every wait, from now on, ends at once

  void run();
  void execute(Job* j);
  template <typename T>
  void collective(Job* j);
  void check_agreement(Job* j, const char* x, size_t elem);
  // The agreement's receive and send areas, one slot per peer (see check_agreement); kept from
  // call to call (3 + 3 MiB with 4 ranks, 4 + 4 MiB with 2) so that no call allocates or clears them.
  std::vector<char> agree_rx, agree_tx;
};

template <typename T>
void direct_finish(Group* g, T* x, size_t n, int op);

// Unbound buffers this thread is about to wait on, listed for pgAbort while they live.
class Waits {
 public:
  Waits(Group* g, std::initializer_list<gloo::transport::UnboundBuffer*> bufs) : g_(g), n_(bufs.size()) {
    std::lock_guard<std::mutex> lock(g_->abort_mu);
    if (!g_->aborted.empty()) throw gloo::IoException(g_->aborted);
    g_->waiting.insert(g_->waiting.end(), bufs.begin(), bufs.end());
  }
  ~Waits() {
    std::lock_guard<std::mutex> lock(g_->abort_mu);
    g_->waiting.resize(g_->waiting.size() - n_);
  }
  Waits(const Waits&) = delete;
  Waits& operator=(const Waits&) = delete;

  // A wait that pgAbort ended returns false: that is a loss, not a completion.
  void recv(gloo::transport::UnboundBuffer* b) {
    if (!b->waitRecv(nullptr, g_->timeout)) throw gloo::IoException(reason());
  }
  void send(gloo::transport::UnboundBuffer* b) {
    if (!b->waitSend(nullptr, g_->timeout)) throw gloo::IoException(reason());
  }

 private:
  std::string reason() {
    std::lock_guard<std::mutex> lock(g_->abort_mu);
    return g_->aborted;
  }
  Group* g_;
  size_t n_;
};

void Group::run() {
  for (;;) {
    Job* j;
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return !queue.empty(); });
      j = queue.front();
      queue.pop_front();
      busy = true;
    }
    const bool stop = j->kind == Kind::Stop;
    if (stop) {
      context.reset();
      device.reset();
      store.reset();
    } else {
      execute(j);
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      busy = false;
    }
    napi_call_threadsafe_function(tsfn, j, napi_tsfn_blocking);
    if (stop) return;
  }
}

void Group::execute(Job* j) {
  if (!broken.empty()) {
    j->code = "ERR_OPTIM_DIST_BROKEN";
    j->error = std::string(kind_name(int(j->kind))) + ": the process group is unusable after an earlier failure: " + broken;
    return;
  }
  try {
    if (j->kind == Kind::Connect) {
      store.reset(new TcpStore(host, port, timeout));
      store->connect(token, rank, size);
      gloo::transport::tcp::attr attr;
      attr.hostname = bind_host.empty() ? store->local_ip() : bind_host;
      device = gloo::transport::tcp::CreateDevice(attr);
      context = std::make_shared<gloo::rendezvous::Context>(rank, size);
      context->setTimeout(timeout);
      context->connectFullMesh(*store, device);
      return;
    }
    if (!context) throw StoreError("ERR_OPTIM_DIST_BROKEN", "not connected");
    {
      // After a loss was reported nothing can complete; Gloo's ring waits could not be ended.
      std::lock_guard<std::mutex> lock(abort_mu);
      if (!aborted.empty()) throw gloo::IoException(aborted);
    }
    // A direct all-reduce sends its first hop with the agreement (see check_agreement).
    const size_t elem = j->f64 ? sizeof(double) : sizeof(float);
    const bool direct = j->kind == Kind::AllReduce && use_direct(size, j->in_n, elem);
    check_agreement(j, direct ? static_cast<const char*>(j->in) : nullptr, elem);
    if (!j->code.empty()) return;
    if (direct && j->f64) {
      direct_finish<double>(this, static_cast<double*>(j->in), j->in_n, j->arg);
    } else if (direct) {
      direct_finish<float>(this, static_cast<float*>(j->in), j->in_n, j->arg);
    } else if (j->f64) {
      collective<double>(j);
    } else {
      collective<float>(j);
    }
  } catch (const StoreError& e) {
    j->code = e.code;
    j->error = e.what();
  } catch (const gloo::IoException& e) {
    const std::string m = e.what();
    j->code = m.find("imed out") != std::string::npos ? "ERR_OPTIM_DIST_TIMEOUT" : "ERR_OPTIM_DIST_IO";
    j->error = m;
  } catch (const std::exception& e) {
    j->code = "ERR_OPTIM_DIST_IO";
    j->error = e.what();
  }
  if (!j->code.empty() && j->code != "ERR_OPTIM_DIST_MISMATCH") {
    broken = std::string(kind_name(int(j->kind))) + " failed: " + j->error;
    if (j->kind == Kind::Connect) {
      context.reset();
      device.reset();
      store.reset();
    }
  }
}

// Every rank shares a description of the call it is making; all ranks compare the same table,
// so a mismatch is refused on every rank with the same message. The data must not move before
// that table is known to match: Gloo sizes its transfers from the local call, and a message longer
// than the receive posted for it fails an enforce on Gloo's device thread.
//
// The exchange is one hop: every rank sends its 32 bytes straight to every other rank and waits
// for theirs (it was Gloo's ring all-gather: size - 1 dependent steps). With 4 ranks on this
// machine's 2 cores a step costs thread wake-ups on busy cores, not bandwidth: a plain C++ program
// over Debian's Gloo (no Node) times a 32-byte ring all-gather at 0.12 ms with 2 processes, 0.69 ms
// with 3, 1.3 ms with 4. Timed inside this thread (4 ranks, medians, clocks compared across the
// ranks), from the last rank's arrival until every rank held the table: ring 3.5 ms, one hop
// 1.2-2.3 ms. (Posting the exchange from the main thread as soon as a call is issued, to overlap
// this thread's wake-up, measured no faster and was not kept.)
//
// A direct all-reduce (x given) also sends each peer that peer's chunk of x in the same message,
// so its first data hop costs no wait of its own. That stays safe under a mismatch because every
// receive is posted with room for a whole slot (agree_slot_bytes: the description and the largest
// chunk use_direct allows in a group of this size) whatever this rank's own call is, every rank sends every other rank
// exactly one message per call, and no chunk is used before the descriptions are compared.
void Group::check_agreement(Job* j, const char* x, size_t elem) {
  int64_t mine[4] = {int64_t(j->kind), j->f64 ? 64 : 32, int64_t(j->in_n), int64_t(j->arg)};
  std::vector<int64_t> all(size_t(size) * 4);
  std::memcpy(&all[size_t(rank) * 4], mine, sizeof mine);
  if (size > 1) {
    // With a group size that never goes direct no message carries data: descriptions only.
    const size_t rx_slot = direct_possible(size) ? agree_slot_bytes(size) : kDescBytes;
    const size_t tx_slot = x ? agree_slot_bytes(size) : kDescBytes;
    const size_t peers = size_t(size) - 1;
    if (agree_rx.size() < peers * rx_slot) agree_rx.resize(peers * rx_slot);
    if (agree_tx.size() < peers * tx_slot) agree_tx.resize(peers * tx_slot);
    auto rb = context->createUnboundBuffer(agree_rx.data(), agree_rx.size());
    auto tb = context->createUnboundBuffer(agree_tx.data(), agree_tx.size());
    const uint64_t slot = gloo::Slot::build(kAgreeSlot, tag++);
    const size_t n = j->in_n;
    for (int r = 0; r < size; r++) {
      if (r != rank) rb->recv(r, slot, peer_index(rank, r) * rx_slot, rx_slot);
    }
    for (int r = 0; r < size; r++) {
      if (r == rank) continue;
      char* m = &agree_tx[peer_index(rank, r) * tx_slot];
      std::memcpy(m, mine, kDescBytes);
      size_t bytes = kDescBytes;
      if (x) {
        const size_t lo = n * size_t(r) / size_t(size), hi = n * size_t(r + 1) / size_t(size);
        std::memcpy(m + kDescBytes, x + lo * elem, (hi - lo) * elem);
        bytes += (hi - lo) * elem;
      }
      tb->send(r, slot, peer_index(rank, r) * tx_slot, bytes);
    }
    Waits waits(this, {rb.get(), tb.get()});
    for (int r = 1; r < size; r++) waits.recv(rb.get());
    for (int r = 1; r < size; r++) waits.send(tb.get());
    for (int r = 0; r < size; r++) {
      if (r != rank) std::memcpy(&all[size_t(r) * 4], &agree_rx[peer_index(rank, r) * rx_slot], kDescBytes);
    }
  }
  auto describe = [&](int r) {
    const int64_t* d = &all[size_t(r) * 4];
    std::string s = "rank " + std::to_string(r) + " called " + kind_name(int(d[0]));
    if (Kind(d[0]) != Kind::Barrier) s += " on " + std::to_string(d[2]) + " float" + std::to_string(d[1]) + " elements";
    if (Kind(d[0]) == Kind::AllReduce || Kind(d[0]) == Kind::ReduceScatter) s += std::string(" with op '") + op_name(int(d[3])) + "'";
    if (Kind(d[0]) == Kind::Broadcast) s += " from root " + std::to_string(d[3]);
    return s;
  };
  for (int r = 1; r < size; r++) {
    if (std::memcmp(&all[0], &all[size_t(r) * 4], sizeof mine) != 0) {
      j->code = "ERR_OPTIM_DIST_MISMATCH";
      j->error = std::string(kind_name(int(j->kind))) + ": the ranks' calls do not match (" + describe(0) + ", " +
                 describe(r) + "); every rank must make the same collective calls in the same order";
      return;
    }
  }
}

// x /= size, elementwise (the 'avg' of a sum). For a power of two, as a product with its exact
// reciprocal: both round the same exact value x·2^-k, so the bits are the same (subnormals, ±0,
// infinities and NaN included) and a multiply is cheaper than a divide.
template <typename T>
void divide_by(T* x, size_t n, int size) {
  if ((size & (size - 1)) == 0) {
    const T r = T(1) / T(size);
    for (size_t i = 0; i < n; i++) x[i] *= r;
  } else {
    const T d = T(size);
    for (size_t i = 0; i < n; i++) x[i] /= d;
  }
}

template <typename T>
using ReduceFn = void (*)(void*, const void*, const void*, size_t);

template <typename T>
ReduceFn<T> reduce_fn(int op) {
  switch (op) {
    case kMax: return &gloo::max<T>;
    case kMin: return &gloo::min<T>;
    default: return &gloo::sum<T>;
  }
}

// The "direct" all-reduce: every rank owns a 1/size chunk of x; each rank sends every other rank
// that rank's chunk (one hop, all at once: it rides on the agreement, see check_agreement),
// reduces the size - 1 copies of its own chunk it receives, then sends the reduced chunk to every
// other rank (a second hop). Two dependent waits where Gloo's ring splits x into at least 2 × size
// segments and waits for each ring step in turn. It moves the same bytes as the ring. Every rank
// gets each reduced chunk from its owner, so the result is the same on every rank (the reduction
// order differs from the ring's, as rounding allows; with 2 ranks there is one order, a + b).
// The second hop's receives are posted before the reduction, so each peer's readiness to receive
// is known by the time the reduced chunk is sent (a send waits for it). 'avg' divides the owner's
// reduced chunk before it is sent: the same bits as dividing the whole sum afterwards, on 1/size
// of the elements. Called after check_agreement(j, x, ...) found every rank making this same call.
template <typename T>
void direct_finish(Group* g, T* x, size_t n, int op) {
  const int P = g->size, me = g->rank;
  auto lo = [&](int r) { return n * size_t(r) / size_t(P); };
  auto len = [&](int r) { return lo(r + 1) - lo(r); };
  const size_t mine = len(me);
  const ReduceFn<T> fn = reduce_fn<T>(op);
  T* own = x + lo(me);
  auto xb = g->context->createUnboundBuffer(x, n * sizeof(T));
  const uint64_t slot = gloo::Slot::build(kGatherSlot, g->tag++);
  // The receives write the other ranks' chunks of x only; the reduction below writes only ours.
  int recvs = 0, sends = 0;
  for (int r = 0; r < P; r++) {
    if (r != me && len(r)) xb->recv(r, slot, lo(r) * sizeof(T), len(r) * sizeof(T)), recvs++;
  }
  if (mine) {
    const size_t slot_bytes = agree_slot_bytes(P);
    for (int r = 0; r < P; r++) {
      if (r == me) continue;
      const char* chunk = &g->agree_rx[peer_index(me, r) * slot_bytes + kDescBytes];
      fn(own, own, reinterpret_cast<const T*>(chunk), mine);
    }
    if (op == kAvg) divide_by(own, mine, P);
    for (int r = 0; r < P; r++) {
      if (r != me) xb->send(r, slot, lo(me) * sizeof(T), mine * sizeof(T)), sends++;
    }
  }
  Waits waits(g, {xb.get()});
  for (int i = 0; i < recvs; i++) waits.recv(xb.get());
  for (int i = 0; i < sends; i++) waits.send(xb.get());
}

template <typename T>
void all_reduce(Group* g, T* x, size_t n, int op) {
  if (n == 0) return;
  gloo::AllreduceOptions opts(g->context);
  opts.setOutput<T>(x, n);
  opts.setReduceFunction(reduce_fn<T>(op));
  opts.setTag(g->tag++);
  opts.setTimeout(g->timeout);
  opts.setMaxSegmentSize(kRingSegmentBytes);
  gloo::allreduce(opts);
  if (op == kAvg) divide_by(x, n, g->size);
}

template <typename T>
void Group::collective(Job* j) {
  T* in = static_cast<T*>(j->in);
  T* out = static_cast<T*>(j->out);
  switch (j->kind) {
    case Kind::AllReduce:
      all_reduce<T>(this, in, j->in_n, j->arg);
      return;
    case Kind::Broadcast: {
      if (j->in_n == 0) return;
      gloo::BroadcastOptions opts(context);
      opts.setOutput<T>(in, j->in_n);
      opts.setRoot(j->arg);
      opts.setTag(tag++);
      opts.setTimeout(timeout);
      gloo::broadcast(opts);
      return;
    }
    case Kind::AllGather: {
      if (j->in_n == 0) return;
      gloo::AllgatherOptions opts(context);
      opts.setInput<T>(in, j->in_n);
      opts.setOutput<T>(out, j->out_n);
      opts.setTag(tag++);
      opts.setTimeout(timeout);
      gloo::allgather(opts);
      return;
    }
    case Kind::ReduceScatter: {
      // An all-reduce of a private copy, keeping this rank's chunk: the input is left as it was
      // (as torch's reduce_scatter_tensor leaves it). Gloo's ReduceScatterHalvingDoubling (the
      // algorithm class; Debian's Gloo has no options-style reduce_scatter) gave the same results
      // but measured 3-6× slower on loopback (2 ranks, 5e5 float32: 57 ms against 10 ms for this).
      std::vector<T> tmp(in, in + j->in_n);
      all_reduce<T>(this, tmp.data(), tmp.size(), j->arg);
      if (j->out_n) std::memcpy(out, tmp.data() + size_t(rank) * j->out_n, j->out_n * sizeof(T));
      return;
    }
    case Kind::Barrier:
      // Nothing more: the agreement exchange before it is a barrier (no rank leaves it before
      // every rank's description has arrived, i.e. before every rank has entered). Gloo's barrier
      // after it cost one more round of waits: with 4 ranks, the 1e3-element all-reduce timed
      // right after a barrier measured 8.1 ms with it and 4.5 ms without (same build, back to back).
      return;
    default: return;
  }
}

// ---- main thread ----

void finish(Group* g) {
  // The thread has returned: join it, release the function, free the group once JS dropped it.
  if (g->thread.joinable()) g->thread.join();
  g->stopped = true;
  napi_release_threadsafe_function(g->tsfn, napi_tsfn_release);
}

void maybe_delete(Group* g) {
  if (g->stopped && !g->external_alive) delete g;
}

void settle(napi_env env, napi_value, void* context, void* data) {
  Group* g = static_cast<Group*>(context);
  Job* j = static_cast<Job*>(data);
  if (env != nullptr) {
    for (napi_ref r : j->refs) {
      if (r) napi_delete_reference(env, r);
    }
    if (j->deferred) {
      napi_value undef;
      napi_get_undefined(env, &undef);
      if (j->code.empty()) {
        napi_resolve_deferred(env, j->deferred, undef);
      } else {
        napi_value c, m, e;
        napi_create_string_utf8(env, j->code.c_str(), j->code.size(), &c);
        napi_create_string_utf8(env, j->error.c_str(), j->error.size(), &m);
        napi_create_error(env, c, m, &e);
        napi_reject_deferred(env, j->deferred, e);
      }
    }
    if (--g->pending == 0) napi_unref_threadsafe_function(env, g->tsfn);
  }
  const bool stop = j->kind == Kind::Stop;
  delete j;
  if (stop && env != nullptr) {
    finish(g);
    maybe_delete(g);
  }
}

void enqueue(napi_env env, Group* g, Job* j) {
  if (g->pending++ == 0) napi_ref_threadsafe_function(env, g->tsfn);
  {
    std::lock_guard<std::mutex> lock(g->mu);
    g->queue.push_back(j);
  }
  g->cv.notify_one();
}

void cleanup_hook(void* arg) {
  // The environment is going away (process exit, worker termination). An idle thread is
  // stopped and joined; one inside a collective is left to time out on its own.
  Group* g = static_cast<Group*>(arg);
  if (g->stopped || g->detached) return;
  std::unique_lock<std::mutex> lock(g->mu);
  if (!g->busy && g->queue.empty()) {
    g->queue.push_back(new Job(Kind::Stop));
    lock.unlock();
    g->cv.notify_one();
    if (g->thread.joinable()) g->thread.join();
  } else {
    lock.unlock();
    if (g->thread.joinable()) g->thread.detach();
  }
  g->detached = true;
}

void finalize_external(napi_env env, void* data, void*) {
  Group* g = static_cast<Group*>(data);
  g->external_alive = false;
  if (!g->stop_queued && !g->detached) {
    g->stop_queued = true;
    napi_remove_env_cleanup_hook(env, cleanup_hook, g);
    enqueue(env, g, new Job(Kind::Stop));
  }
  maybe_delete(g);
}

// An integer from lo to hi; anything else (NaN, a fraction, out of range) is a RangeError.
bool read_int(napi_env env, napi_value v, const std::string& what, double lo, double hi, int* out) {
  double d;
  if (!read_number(env, v, what, &d)) return false;
  if (!(d >= lo && d <= hi && d == std::floor(d))) {
    fail(env, range_error(env, what + " must be an integer from " + num(lo) + " to " + num(hi) + ", got " + num(d)));
    return false;
  }
  *out = int(d);
  return true;
}

// Marks the handles pgCreate makes, so no other object is ever taken for a group.
const napi_type_tag kGroupTag = {0x6f7074696d2d6469ULL, 0x73742d67726f7570ULL};

bool read_str(napi_env env, napi_value v, std::string* out, const char* fn = "pgCreate") {
  size_t n = 0;
  if (napi_get_value_string_utf8(env, v, nullptr, 0, &n) != napi_ok) {
    fail(env, type_error(env, std::string(fn) + ": expected a string"));
    return false;
  }
  out->resize(n + 1);
  napi_get_value_string_utf8(env, v, &(*out)[0], n + 1, &n);
  out->resize(n);
  return true;
}

Group* read_group(napi_env env, napi_value v) {
  void* p = nullptr;
  bool tagged = false;
  if (napi_check_object_type_tag(env, v, &kGroupTag, &tagged) != napi_ok || !tagged ||
      napi_get_value_external(env, v, &p) != napi_ok || !p) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value ex;
      napi_get_and_clear_last_exception(env, &ex);
    }
    throw_type(env, "distributed: not a process group handle");
    return nullptr;
  }
  return static_cast<Group*>(p);
}

napi_value PgCreate(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc < 7) return throw_type(env, "pgCreate(rank, size, host, port, timeoutMs, token, bindHost)");
  auto g = std::make_unique<Group>();
  int timeout_ms = 0;
  if (!read_int(env, argv[1], "pgCreate: size", 1, 65536, &g->size) ||
      !read_int(env, argv[0], "pgCreate: rank", 0, g->size - 1, &g->rank) || !read_str(env, argv[2], &g->host) ||
      !read_int(env, argv[3], "pgCreate: port", 1, 65535, &g->port) ||
      !read_int(env, argv[4], "pgCreate: timeoutMs", 1, 2147483647.0, &timeout_ms) ||
      !read_str(env, argv[5], &g->token) || !read_str(env, argv[6], &g->bind_host)) {
    return nullptr;
  }
  g->timeout = ms(timeout_ms);
  napi_value name;
  napi_create_string_utf8(env, "optim.distributed", NAPI_AUTO_LENGTH, &name);
  Group* raw = g.get();
  if (napi_create_threadsafe_function(env, nullptr, nullptr, name, 0, 1, nullptr, nullptr, raw, settle, &raw->tsfn) !=
      napi_ok) {
    return throw_range(env, "pgCreate: cannot create the completion channel");
  }
  napi_unref_threadsafe_function(env, raw->tsfn);
  napi_value ext;
  if (napi_create_external(env, raw, finalize_external, nullptr, &ext) != napi_ok) {
    napi_release_threadsafe_function(raw->tsfn, napi_tsfn_abort);
    return throw_range(env, "pgCreate: cannot create the handle");
  }
  napi_type_tag_object(env, ext, &kGroupTag);
  g.release();
  raw->thread = std::thread([raw] { raw->run(); });
  napi_add_env_cleanup_hook(env, cleanup_hook, raw);
  return ext;
}

bool read_array(napi_env env, napi_value v, const char* fn, const char* arg, Job* j, bool input) {
  bool is = false;
  napi_is_typedarray(env, v, &is);
  if (!is) {
    fail(env, type_error(env, std::string(fn) + ": " + arg + " must be a Float32Array or a Float64Array"));
    return false;
  }
  napi_typedarray_type t;
  size_t n;
  void* data;
  napi_value buffer;
  napi_get_typedarray_info(env, v, &t, &n, &data, &buffer, nullptr);
  bool is_ab = false;
  napi_is_arraybuffer(env, buffer, &is_ab);
  if (is_ab && is_resizable(env, buffer)) {
    // A collective writes the array from another thread until it settles: its memory must stay.
    fail(env, type_error(env, std::string(fn) + ": " + arg + " must not be a view of a resizable ArrayBuffer"));
    return false;
  }
  if (t != napi_float32_array && t != napi_float64_array) {
    fail(env, type_error(env, std::string(fn) + ": " + arg + " must be a Float32Array or a Float64Array, got " +
                                  type_name(t)));
    return false;
  }
  const bool f64 = t == napi_float64_array;
  if (input) {
    j->f64 = f64;
    j->in = data;
    j->in_n = n;
  } else {
    if (f64 != j->f64) {
      fail(env, type_error(env, std::string(fn) + ": input and output must have the same dtype"));
      return false;
    }
    j->out = data;
    j->out_n = n;
  }
  napi_create_reference(env, v, 1, &j->refs[input ? 0 : 1]);
  return true;
}

template <int K>
napi_value PgCall(napi_env env, napi_callback_info info) {
  const Kind kind = Kind(K);
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc < 1) return throw_type(env, "distributed: missing the process group");
  Group* g = read_group(env, argv[0]);
  if (!g) return nullptr;
  const char* fn = kind_name(K);
  if (g->stop_queued) return throw_range(env, std::string(fn) + ": the process group was destroyed");
  auto j = std::make_unique<Job>(kind);
  bool ok = true;
  switch (kind) {
    case Kind::AllReduce:
    case Kind::Broadcast:
      ok = argc >= 3 && read_array(env, argv[1], fn, "x", j.get(), true) &&
           (kind == Kind::Broadcast ? read_int(env, argv[2], std::string(fn) + ": root", 0, g->size - 1, &j->arg)
                                    : read_int(env, argv[2], std::string(fn) + ": op", 0, 3, &j->arg));
      break;
    case Kind::AllGather:
    case Kind::ReduceScatter:
      ok = argc >= 3 && read_array(env, argv[1], fn, "input", j.get(), true) &&
           read_array(env, argv[2], fn, "output", j.get(), false) &&
           (kind != Kind::ReduceScatter || argc < 4 || read_int(env, argv[3], std::string(fn) + ": op", 0, 3, &j->arg));
      break;
    default: break;
  }
  if (!ok) {
    for (napi_ref r : j->refs) {
      if (r) napi_delete_reference(env, r);
    }
    return argc >= 3 ? nullptr : throw_type(env, std::string(fn) + ": missing arguments");
  }
  napi_value promise;
  napi_create_promise(env, &j->deferred, &promise);
  if (kind == Kind::Stop) g->stop_queued = true;
  enqueue(env, g, j.release());
  if (kind == Kind::Stop) napi_remove_env_cleanup_hook(env, cleanup_hook, g);
  return promise;
}

// pgAbort(handle, why): a peer was lost (the store said so). The wait the group's thread is in,
// if it is on one of this module's own unbound buffers, ends now with why, and so does every later
// call; a wait inside Gloo's ring ends at the timeout as before. Safe at any time.
napi_value PgAbort(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc < 2) return throw_type(env, "pgAbort(handle, why)");
  Group* g = read_group(env, argv[0]);
  if (!g) return nullptr;
  std::string why;
  if (!read_str(env, argv[1], &why, "pgAbort")) return nullptr;
  if (why.empty()) why = "a peer was lost";
  std::lock_guard<std::mutex> lock(g->abort_mu);
  if (g->aborted.empty()) g->aborted = why;
  for (gloo::transport::UnboundBuffer* b : g->waiting) {
    b->abortWaitRecv();
    b->abortWaitSend();
  }
  return nullptr;
}

}  // namespace

namespace {
napi_value DistributedInfo(napi_env env, napi_callback_info) {
  napi_value o;
  napi_create_object(env, &o);
  napi_set_named_property(env, o, "gloo", boolean(env, true));
  return o;
}
}  // namespace

void RegisterDistributed(napi_env env, napi_value exports) {
  const auto attr = napi_enumerable;
  const napi_property_descriptor props[] = {
      {"distributedInfo", nullptr, DistributedInfo, nullptr, nullptr, nullptr, attr, nullptr},
      {"pgCreate", nullptr, PgCreate, nullptr, nullptr, nullptr, attr, nullptr},
      {"pgConnect", nullptr, PgCall<int(Kind::Connect)>, nullptr, nullptr, nullptr, attr, nullptr},
      {"pgAllReduce", nullptr, PgCall<int(Kind::AllReduce)>, nullptr, nullptr, nullptr, attr, nullptr},
      {"pgBroadcast", nullptr, PgCall<int(Kind::Broadcast)>, nullptr, nullptr, nullptr, attr, nullptr},
      {"pgAllGather", nullptr, PgCall<int(Kind::AllGather)>, nullptr, nullptr, nullptr, attr, nullptr},
      {"pgReduceScatter", nullptr, PgCall<int(Kind::ReduceScatter)>, nullptr, nullptr, nullptr, attr, nullptr},
      {"pgBarrier", nullptr, PgCall<int(Kind::Barrier)>, nullptr, nullptr, nullptr, attr, nullptr},
      {"pgDestroy", nullptr, PgCall<int(Kind::Stop)>, nullptr, nullptr, nullptr, attr, nullptr},
      {"pgAbort", nullptr, PgAbort, nullptr, nullptr, nullptr, attr, nullptr},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
}

#else  // no Gloo in this build

namespace {
napi_value DistributedInfo(napi_env env, napi_callback_info) {
  napi_value o;
  napi_create_object(env, &o);
  napi_set_named_property(env, o, "gloo", optim::glue::boolean(env, false));
  return o;
}
}  // namespace

void RegisterDistributed(napi_env env, napi_value exports) {
  const napi_property_descriptor prop = {"distributedInfo", nullptr, DistributedInfo, nullptr, nullptr, nullptr,
                                         napi_enumerable, nullptr};
  napi_define_properties(env, exports, 1, &prop);
}

#endif
