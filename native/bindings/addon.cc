// Node-API glue for the step kernels: unpack and validate arguments, then call a kernel. No
// arithmetic here. The exports are generated from the kernel registry (native/kernels/registry.h):
// `<name>Step(list, scalars, flags)` for each kernel, `prepare(list, stride)`, `kernelLayouts()`,
// `info()`, `setIsa(name)`; linalg.cc adds the linear algebra.
//
// Every refusal is a JavaScript exception naming the argument; nothing is written to any
// buffer until every argument of the call has been checked.
#include <node_api.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <utility>
#include <cstdio>
#include <string>
#include <vector>

#include "../kernels/kernel_abi.h"
#include "../kernels/pool.h"
#include "glue.h"

#ifndef OPTIM_VERSION
#define OPTIM_VERSION "0.0.0"
#endif

void RegisterLinalg(napi_env env, napi_value exports);  // linalg.cc
void RegisterDistributed(napi_env env, napi_value exports);  // distributed.cc

namespace {

using optim::KernelTable;
using optim::TensorRef;
using namespace optim::glue;

struct DepthGuard {
  Env* e;
  explicit DepthGuard(Env* env) : e(env) { e->depth++; }
  ~DepthGuard() { e->depth--; }
  DepthGuard(const DepthGuard&) = delete;
  DepthGuard& operator=(const DepthGuard&) = delete;
};

// A prepared tensor list: the pointers of a group's buffers, unpacked once. A step through it
// costs one check per distinct ArrayBuffer, not one unwrap per array: each distinct buffer is
// represented by the view that reaches furthest into it, and a step refuses to run unless that
// view still has the data pointer and length it had (a detached buffer reads as length 0, and a
// shrunk resizable buffer puts its furthest view out of bounds, which also reads as length 0).
// Holding a reference to one view per buffer keeps every buffer alive while the handle lives.
struct Prepared {
  napi_typedarray_type dtype = napi_float32_array;
  size_t stride = 0;
  std::vector<TensorRef<float>> f32;
  std::vector<TensorRef<double>> f64;
  // float32 p and g with bfloat16 (Uint16Array) state buffers.
  bool bf16 = false;
  std::vector<TensorRef<float, uint16_t>> bf16s;
  struct Check {
    napi_ref ref;  // the ArrayBuffer itself, or for a resizable buffer the furthest view
    bool resizable;
    void* data;
    size_t length;
  };
  std::vector<Check> checks;
  // The same tensors with each stretch of consecutive views merged into one (see coalesce): what
  // a step runs. The lists above stay, to name the tensor a non-finite gradient is in.
  std::vector<TensorRef<float>> f32_runs;
  std::vector<TensorRef<double>> f64_runs;
  std::vector<TensorRef<float, uint16_t>> bf16_runs;
  // The environment's set of live handles (glue.h, Env::prepared), which this one is in.
  std::shared_ptr<std::unordered_set<const void*>> registry;
};

// Unpacks list = [p0, g0, s0..., p1, g1, s1..., ...] into `out`. All-or-nothing.
// Where a view sits in its ArrayBuffer; used to build a Prepared's checks.
struct ViewInfo {
  napi_value view;
  napi_value buffer;
  char* base;  // start of the ArrayBuffer (data - byteOffset)
  size_t end;  // byteOffset + byteLength
  void* data;
  size_t length;
};

// Every p and g must have type `want`; every state buffer `want_state` (the same, or Uint16Array
// for bfloat16 state).
template <typename T, typename S = T>
bool unpack(napi_env env, napi_value list, uint32_t len, size_t stride, const char* fn,
            napi_typedarray_type want, napi_typedarray_type want_state,
            std::vector<napi_value>& vals, std::vector<TensorRef<T, S>>& out,
            std::vector<ViewInfo>* views = nullptr) {
  // Pass 1 reads every element. A getter on the list can run any JavaScript (another step, a
  // transfer that detaches a buffer already seen), so nothing is unwrapped until all are read.
  // Each element is checked to be a typed array as it is read (that runs no JavaScript), and the
  // scratch grows with the elements actually present: a sparse list claiming 2^32 - 1 elements
  // is refused at its first hole instead of asking for 34 GB up front.
  vals.clear();
  vals.reserve(len < 4096 ? len : 4096);
  for (uint32_t idx = 0; idx < len; idx++) {
    napi_value el = nullptr;
    bool is_ta = false;
    if (napi_get_element(env, list, idx, &el) != napi_ok) {
      throw_type(env, std::string(fn) + ": list[" + std::to_string(idx) + "] is unreadable");
      return false;
    }
    if (napi_is_typedarray(env, el, &is_ta) != napi_ok || !is_ta) {
      throw_type(env, std::string(fn) + ": list[" + std::to_string(idx) +
                          "] must be a Float32Array or Float64Array" +
                          (want_state == napi_uint16_array ? " (or a Uint16Array: bfloat16 state)" : ""));
      return false;
    }
    vals.push_back(el);
  }
  // Pass 2 unwraps; no JavaScript runs from here until the kernels are done.
  const size_t count = len / stride;
  out.resize(count);
  for (size_t i = 0; i < count; i++) {
    TensorRef<T, S>& t = out[i];
    for (size_t k = 0; k < optim::kMaxStates; k++) t.s[k] = nullptr;
    for (size_t j = 0; j < stride; j++) {
      const uint32_t idx = static_cast<uint32_t>(i * stride + j);
      napi_value el = vals[idx];
      bool is_ta = false;
      if (napi_is_typedarray(env, el, &is_ta) != napi_ok || !is_ta) {
        throw_type(env, std::string(fn) + ": list[" + std::to_string(idx) +
                            "] must be a Float32Array or Float64Array");
        return false;
      }
      napi_typedarray_type type;
      size_t n = 0, offset = 0;
      void* data = nullptr;
      if (napi_get_typedarray_info(env, el, &type, &n, &data, nullptr, &offset) != napi_ok) {
        throw_type(env, std::string(fn) + ": list[" + std::to_string(idx) + "] is unreadable");
        return false;
      }
      const napi_typedarray_type expected = j < 2 ? want : want_state;
      if (type != expected) {
        throw_type(env, std::string(fn) + ": list[" + std::to_string(idx) + "] must be a " +
                            type_name(expected) + (j < 2 ? " like list[0]" : " like list[2]") +
                            ", got " + type_name(type));
        return false;
      }
      if (j == 0) {
        t.n = n;
      } else if (n != t.n) {
        throw_range(env, std::string(fn) + ": list[" + std::to_string(idx) + "] has length " +
                             std::to_string(n) + ", but its parameter list[" +
                             std::to_string(i * stride) + "] has length " + std::to_string(t.n));
        return false;
      }
      if (n == 0) {
        // A detached buffer reads as length 0; refuse it rather than treat it as empty.
        napi_value buffer = nullptr;
        bool detached = false;
        if (napi_get_typedarray_info(env, el, &type, &n, &data, &buffer, nullptr) == napi_ok &&
            buffer != nullptr && napi_is_detached_arraybuffer(env, buffer, &detached) == napi_ok &&
            detached) {
          throw_type(env, std::string(fn) + ": list[" + std::to_string(idx) +
                              "] is backed by a detached ArrayBuffer");
          return false;
        }
      }
      if (n > 0 && data == nullptr) {
        throw_type(env, std::string(fn) + ": list[" + std::to_string(idx) +
                            "] is backed by a detached ArrayBuffer");
        return false;
      }
      if (views && n > 0) {
        napi_value buffer = nullptr;
        napi_get_typedarray_info(env, el, &type, &n, &data, &buffer, &offset);
        views->push_back(
            {el, buffer, static_cast<char*>(data) - offset,
             offset + n * (j < 2 ? sizeof(T) : sizeof(S)), data, n});
      }
      if (j == 0) t.p = static_cast<T*>(data);
      else if (j == 1) t.g = static_cast<T*>(data);
      else t.s[j - 2] = static_cast<S*>(data);
    }
  }
  return true;
}

// The dtype of list[0], which every other array of the call must share.
bool first_type(napi_env env, napi_value list, const char* fn, napi_typedarray_type* type) {
  napi_value first;
  bool is_ta = false;
  *type = napi_int8_array;
  if (napi_get_element(env, list, 0, &first) == napi_ok &&
      napi_is_typedarray(env, first, &is_ta) == napi_ok && is_ta) {
    napi_get_typedarray_info(env, first, type, nullptr, nullptr, nullptr, nullptr);
  }
  if (*type == napi_float32_array || *type == napi_float64_array) return true;
  throw_type(env, std::string(fn) + ": list[0] must be a Float32Array or Float64Array" +
                      (is_ta ? std::string(", got ") + type_name(*type) : std::string()));
  return false;
}

// Every buffer of a prepared list must still be where it was when prepared. A fixed-length
// buffer can only go away by being detached, which is cheap to ask; a resizable one can also
// shrink, so its furthest view is re-read.
bool verify(napi_env env, const Prepared& h, const char* fn) {
  for (const Prepared::Check& c : h.checks) {
    napi_value v;
    bool bad = napi_get_reference_value(env, c.ref, &v) != napi_ok || v == nullptr;
    if (!bad && c.resizable) {
      size_t n = 0;
      void* data = nullptr;
      napi_typedarray_type type;
      bad = napi_get_typedarray_info(env, v, &type, &n, &data, nullptr, nullptr) != napi_ok ||
            n != c.length || data != c.data;
    } else if (!bad) {
      bool detached = false;
      bad = napi_is_detached_arraybuffer(env, v, &detached) != napi_ok || detached;
    }
    if (bad) {
      throw_type(env, std::string(fn) +
                          ": a buffer of the prepared list was detached or resized since it was "
                          "prepared; prepare the list again");
      return false;
    }
  }
  return true;
}

// Separately allocated small tensors each start cold: the hardware prefetcher does not cross
// into the next allocation. Asking for the head of the next tensor's buffers while this one
// runs hides that latency (1000 tensors of 1000 floats: measured in bench/).
template <typename T, typename S>
inline void prefetch_head(const TensorRef<T, S>& t) {
  constexpr size_t kLine = 64 / sizeof(T);
  const size_t n = t.n < 8 * kLine ? t.n : 8 * kLine;
  for (size_t j = 0; j < n; j += kLine) {
    __builtin_prefetch(t.p + j, 1);
    __builtin_prefetch(t.g + j, 0);
    for (size_t k = 0; k < optim::kMaxStates; k++) {
      if (t.s[k]) __builtin_prefetch(t.s[k] + j, 1);
    }
  }
}

// Tensors that are consecutive views of the same buffers (a parameter arena, and the state arenas
// the optimizers allocate in param order) are one tensor to an elementwise kernel: stepped as one,
// the call pays the per-tensor costs once, and its vectors stay aligned across what would have
// been tensor boundaries. 1000 views of 1000 float32 through Adam: 1.19x one 1e6 tensor before
// (1.66x on one thread, where every 1000-element tensor ran with unaligned loads), see bench/.
// Empty tensors are dropped. The bits are the same: every element gets the same arithmetic.
template <typename T, typename S>
bool continues(const TensorRef<T, S>& run, const TensorRef<T, S>& t) {
  if (t.p != run.p + run.n || t.g != run.g + run.n) return false;
  for (size_t k = 0; k < optim::kMaxStates; k++) {
    if ((run.s[k] == nullptr) != (t.s[k] == nullptr)) return false;
    if (run.s[k] != nullptr && t.s[k] != run.s[k] + run.n) return false;
  }
  return true;
}

template <typename T, typename S>
std::vector<TensorRef<T, S>> coalesce(const std::vector<TensorRef<T, S>>& ts) {
  std::vector<TensorRef<T, S>> runs;
  for (const TensorRef<T, S>& t : ts) {
    if (t.n == 0) continue;
    if (!runs.empty() && continues(runs.back(), t)) {
      runs.back().n += t.n;
    } else {
      runs.push_back(t);
    }
  }
  return runs;
}

// A tensor's elements [a, a + n) as a tensor of their own (the kernels are elementwise).
template <typename T, typename S>
inline TensorRef<T, S> slice(TensorRef<T, S> t, size_t a, size_t n) {
  t.p += a;
  t.g += a;
  for (size_t j = 0; j < optim::kMaxStates; j++) {
    if (t.s[j] != nullptr) t.s[j] += a;
  }
  t.n = n;
  return t;
}

// A vector load that straddles two cache lines costs a second access: on Zen 4 with AVX-512,
// Adam float32 at 1e7 elements ran at 0.78 ns per element on Node's ArrayBuffers (which start
// 16 bytes past a 64-byte boundary: malloc's header) and at 0.51 on the same arrays 64-byte
// aligned (one thread, medians of 15; the same arrays viewed at 0, 4, 8 and 12 floats into their
// buffers; 0.51 at every offset since). So a tensor long enough is stepped in two
// calls: the few elements before p's first cache-line boundary, then the rest, whose vectors
// are all aligned when the other buffers share p's offset (as buffers from one allocator, and
// the state arenas, do). The updates are elementwise: the bits are the same.
constexpr size_t kCacheLine = 64;
constexpr size_t kMinAlignElements = 128;

template <typename T, typename S>
inline void step_aligned(optim::StepFn<T, S> fn, const TensorRef<T, S>& t, const double* s, uint32_t flags) {
  const size_t mis = reinterpret_cast<uintptr_t>(t.p) % kCacheLine;
  const size_t head = mis % sizeof(T) == 0 ? ((kCacheLine - mis) % kCacheLine) / sizeof(T) : 0;
  if (head == 0 || t.n < kMinAlignElements) {
    fn(t, s, flags);
    return;
  }
  fn(slice(t, 0, head), s, flags);
  fn(slice(t, head, t.n - head), s, flags);
}

// The non-finite scan, its loads aligned the same way.
template <typename T>
inline size_t scan_aligned(optim::FirstNonFiniteFn<T> scan, const T* g, size_t n) {
  const size_t mis = reinterpret_cast<uintptr_t>(g) % kCacheLine;
  const size_t head = mis % sizeof(T) == 0 ? ((kCacheLine - mis) % kCacheLine) / sizeof(T) : 0;
  if (head == 0 || n < kMinAlignElements) return scan(g, n);
  const size_t bad = scan(g, head);
  return bad < head ? bad : head + scan(g + head, n - head);
}

// A step large enough is split across the pool (kernels/pool.h) into parts of at least this many
// elements: a sleeping worker takes tens of microseconds to wake, about what one thread needs for
// 65536 float32 Adam elements, so below two such parts one thread is as fast.
constexpr size_t kMinPartElements = size_t(1) << 16;

// One call's elements as one range, cut into chunks at multiples of 64 elements (whole cache
// lines and SIMD vectors); a chunk may span several tensors. Each part owns a run of consecutive
// chunks and takes them from the front; a part that runs out takes the chunks left to the others
// from their back. So a thread that runs slower (a core shared with another tenant: on this
// 2-vCPU VM the worker's half of a 1e6-element Adam step took 1.3 to 1.4x the caller's, perf)
// gives work away instead of making the caller wait, while each thread still streams through
// its own memory in order. The updates are elementwise, so the bits are the same whoever steps a
// chunk.
template <typename T, typename S>
struct Split {
  // Chunks per part: the finest unit of balance (1/16 of a part). No smaller than kMinChunk
  // elements, so a claim (one compare-and-swap) stays far below a chunk's work.
  static constexpr size_t kChunksPerPart = 16;
  static constexpr size_t kMinChunk = size_t(1) << 13;

  const std::vector<TensorRef<T, S>>& ts;
  std::vector<size_t> start;  // start[i]: index of tensor i's first element in the range
  size_t total = 0;
  size_t chunk = 0;           // elements per chunk (a multiple of 64)
  size_t chunks = 0;
  int parts = 1;
  const optim::FirstNonFiniteFn<T> first_nonfinite;
  optim::StepFn<T, S> fn = nullptr;
  const double* s = nullptr;
  uint32_t flags = 0;
  std::atomic<size_t> first_bad{SIZE_MAX};  // the scan: the first tensor found bad so far
  // Per part, its chunks not yet taken, [lo, hi) packed as lo << 32 | hi: the owner takes lo,
  // others take hi - 1, each with one compare-and-swap, so no chunk is taken twice.
  struct alignas(64) Queue {
    std::atomic<uint64_t> range{0};
  };
  Queue queue[optim::kMaxPoolThreads];

  Split(const std::vector<TensorRef<T, S>>& list, optim::FirstNonFiniteFn<T> scan)
      : ts(list), first_nonfinite(scan) {
    start.resize(ts.size() + 1);
    for (size_t i = 0; i < ts.size(); i++) start[i + 1] = start[i] + ts[i].n;
    total = start[ts.size()];
    const size_t by_size = total / kMinPartElements;
    const int threads = optim::pool_threads();
    parts = by_size < size_t(threads) ? int(by_size) : threads;
    if (parts < 1) parts = 1;
    const size_t want = total / (size_t(parts) * kChunksPerPart);
    chunk = ((want > kMinChunk ? want : kMinChunk) + 63) & ~size_t(63);
    chunks = (total + chunk - 1) / chunk;
  }

  // Deals the chunks out again, in order, the same number (give or take one) to each part.
  void deal() {
    for (int k = 0; k < parts; k++) {
      const uint64_t lo = chunks * size_t(k) / size_t(parts), hi = chunks * size_t(k + 1) / size_t(parts);
      queue[k].range.store(lo << 32 | hi, std::memory_order_relaxed);
    }
  }

  // Takes a chunk of part q's: its first (owner) or its last; false when none is left.
  bool take(int q, bool owner, size_t* c) {
    std::atomic<uint64_t>& r = queue[q].range;
    uint64_t cur = r.load(std::memory_order_relaxed);
    for (;;) {
      const uint64_t lo = cur >> 32, hi = cur & 0xffffffffu;
      if (lo >= hi) return false;
      const uint64_t next = owner ? ((lo + 1) << 32 | hi) : (lo << 32 | (hi - 1));
      if (r.compare_exchange_weak(cur, next, std::memory_order_relaxed)) {
        *c = owner ? lo : hi - 1;
        return true;
      }
    }
  }

  // Part k's work: its own chunks, then what the others have left, visit(element lo, hi) each.
  template <typename Visit>
  void work(int k, Visit visit) {
    size_t c;
    while (take(k, true, &c)) visit(c * chunk, std::min(total, (c + 1) * chunk));
    for (int d = 1; d < parts; d++) {
      const int q = (k + d) % parts;
      while (take(q, false, &c)) visit(c * chunk, std::min(total, (c + 1) * chunk));
    }
  }

  // Calls visit(i, offset, count) for each piece of a tensor in elements [lo, hi), in tensor
  // order; stops when visit returns false.
  template <typename Visit>
  void pieces(size_t lo, size_t hi, Visit visit) const {
    size_t i = size_t(std::upper_bound(start.begin(), start.end(), lo) - start.begin()) - 1;
    for (; i < ts.size() && start[i] < hi; i++) {
      const size_t a = lo > start[i] ? lo - start[i] : 0;
      const size_t b = (hi < start[i + 1] ? hi : start[i + 1]) - start[i];
      if (b > a && !visit(i, a, b - a)) return;
    }
  }

  // Lowers first_bad to i (a racing part may have found an earlier one).
  void found(size_t i) {
    size_t cur = first_bad.load(std::memory_order_relaxed);
    while (i < cur && !first_bad.compare_exchange_weak(cur, i, std::memory_order_relaxed)) {
    }
  }

  static void scan_part(void* ctx, int k) {
    Split& sp = *static_cast<Split*>(ctx);
    sp.work(k, [&](size_t lo, size_t hi) {
      sp.pieces(lo, hi, [&](size_t i, size_t a, size_t n) {
        // A tensor after one already found bad cannot be the first.
        if (i > sp.first_bad.load(std::memory_order_relaxed)) return false;
        if (scan_aligned(sp.first_nonfinite, sp.ts[i].g + a, n) < n) {
          sp.found(i);
          return false;
        }
        return true;
      });
    });
  }

  static void step_part(void* ctx, int k) {
    Split& sp = *static_cast<Split*>(ctx);
    sp.work(k, [&](size_t lo, size_t hi) {
      sp.pieces(lo, hi, [&](size_t i, size_t a, size_t n) {
        if (i + 1 < sp.ts.size() && a + n == sp.ts[i].n) prefetch_head(sp.ts[i + 1]);
        step_aligned(sp.fn, slice(sp.ts[i], a, n), sp.s, sp.flags);
        return true;
      });
    });
  }
};

template <typename T, typename S>
void run(optim::StepFn<T, S> fn, const std::vector<TensorRef<T, S>>& ts, const double* s,
         uint32_t flags) {
  const size_t count = ts.size();
  for (size_t i = 0; i < count; i++) {
    if (i + 1 < count) prefetch_head(ts[i + 1]);
    step_aligned(fn, ts[i], s, flags);
  }
}

// The index to return for a non-finite gradient found in ts[bad]: with `named` (the tensors as
// the caller listed them, when `ts` merged some: coalesce), looked up again there.
template <typename T, typename S>
napi_value bad_tensor(napi_env env, optim::FirstNonFiniteFn<T> scan,
                      const std::vector<TensorRef<T, S>>* named, size_t bad) {
  if (named) {
    const std::vector<TensorRef<T, S>>& list = *named;
    for (bad = 0; bad < list.size(); bad++) {
      if (scan_aligned(scan, list[bad].g, list[bad].n) < list[bad].n) break;
    }
  }
  napi_value idx = nullptr;
  napi_create_double(env, static_cast<double>(bad), &idx);
  return idx;
}

// The step with its gradient policy. With F_CHECK_FINITE every gradient of the call is scanned
// before anything is written; the first tensor holding a NaN or an infinity is returned (its
// index in the call, a JS number) and nothing is updated. Otherwise the result is undefined.
// A call of at least two parts' worth of elements runs both passes on the pool.
// `scan` is the non-finite scan of T, `fn` the kernel (float32 state, float64, or bfloat16 state);
// `named` as in bad_tensor.
template <typename T, typename S>
napi_value step(napi_env env, optim::FirstNonFiniteFn<T> scan, optim::StepFn<T, S> fn,
                const std::vector<TensorRef<T, S>>& ts, const double* s, uint32_t flags,
                const std::vector<TensorRef<T, S>>* named = nullptr) {
  size_t total = 0;
  for (const TensorRef<T, S>& t : ts) total += t.n;
  if (total >= 2 * kMinPartElements && optim::pool_threads() > 1) {
    Split<T, S> sp(ts, scan);
    if (flags & optim::F_CHECK_FINITE) {
      sp.deal();
      optim::pool_run(sp.parts, &Split<T, S>::scan_part, &sp);
      const size_t bad = sp.first_bad.load(std::memory_order_relaxed);
      if (bad != SIZE_MAX) return bad_tensor(env, scan, named, bad);
      if (flags & optim::F_CHECK_ONLY) return nullptr;
    }
    sp.fn = fn;
    sp.s = s;
    sp.flags = flags;
    sp.deal();
    optim::pool_run(sp.parts, &Split<T, S>::step_part, &sp);
    return nullptr;
  }
  if (flags & optim::F_CHECK_FINITE) {
    for (size_t i = 0; i < ts.size(); i++) {
      if (scan_aligned(scan, ts[i].g, ts[i].n) < ts[i].n) return bad_tensor(env, scan, named, i);
    }
    if (flags & optim::F_CHECK_ONLY) return nullptr;
  }
  run(fn, ts, s, flags);
  return nullptr;
}

// The state's type in a list: Uint16Array (bfloat16 state) when list[2] is one, else the same as
// p's. Reads list[2] only (no getter runs twice: unpack reads every element again and checks).
napi_typedarray_type state_type(napi_env env, napi_value list, size_t stride, napi_typedarray_type p_type) {
  if (stride <= 2 || p_type != napi_float32_array) return p_type;
  napi_value el;
  bool is_ta = false;
  napi_typedarray_type t = p_type;
  if (napi_get_element(env, list, 2, &el) == napi_ok && napi_is_typedarray(env, el, &is_ta) == napi_ok && is_ta) {
    napi_get_typedarray_info(env, el, &t, nullptr, nullptr, nullptr, nullptr);
  }
  return t == napi_uint16_array ? t : p_type;
}

// The exports' names, `<name>Step`, made once for the process.
const std::string* step_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (size_t i = 0; i < optim::kKernelCount; i++) v.push_back(std::string(optim::kKernelInfo[i].name) + "Step");
    return v;
  }();
  return names.data();
}

// <name>Step(list, scalars, flags): one export per registered kernel, its index as the data.
napi_value Step(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 3;
  napi_value argv[3];
  void* data = nullptr;
  if (napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, &data) != napi_ok) return nullptr;
  const size_t KIND = reinterpret_cast<uintptr_t>(data);
  const optim::KernelInfo& info = optim::kKernelInfo[KIND];
  const std::string& fname = step_names()[KIND];
  const struct {
    const char* name;
    size_t n_scalars;
    uint32_t all_flags;
  } k = {fname.c_str(), size_t(info.n_scalars), info.all_flags()};
  if (argc != 3) {
    return throw_type(env, std::string(k.name) + "(list, scalars, flags) takes 3 arguments, got " +
                               std::to_string(argc));
  }
  // The common case, a prepared list with valid flags and scalars, is recognised with as few
  // Node-API calls as possible (each costs ~10 to 30 ns of the step's fixed cost); anything else
  // goes through the checks that build the error messages.
  Env* inst = env_of(env);
  Prepared* prepared = nullptr;
  void* wrapped = nullptr;
  // The handle's `native` (an External: napi_get_value_external costs ~30 instructions), or the
  // handle object itself (napi_unwrap looks up a private property: ~780).
  if (((napi_get_value_external(env, argv[0], &wrapped) == napi_ok) ||
       napi_unwrap(env, argv[0], &wrapped) == napi_ok) &&
      wrapped != nullptr && inst->prepared->count(wrapped) != 0) {
    prepared = static_cast<Prepared*>(wrapped);
  } else {
    bool is_array = false;
    napi_is_array(env, argv[0], &is_array);
    if (!is_array) {
      return throw_type(env, std::string(k.name) +
                                 ": list must be an Array of typed arrays or a prepared list");
    }
  }
  const uint32_t all_flags = k.all_flags | optim::F_CHECK_FINITE | optim::F_CHECK_ONLY;
  uint32_t flags = 0;
  double fd = -1;
  if (napi_get_value_double(env, argv[2], &fd) == napi_ok && fd >= 0 && fd <= all_flags && fd == std::floor(fd) &&
      (static_cast<uint32_t>(fd) & ~all_flags) == 0) {
    flags = static_cast<uint32_t>(fd);
  } else if (!read_flags(env, argv[2], k.name, all_flags, &flags)) {
    return nullptr;
  }
  if ((flags & optim::F_CHECK_ONLY) && !(flags & optim::F_CHECK_FINITE)) {
    return throw_range(env, std::string(k.name) + ": flags: CHECK_ONLY (512) needs CHECK_FINITE (256)");
  }
  double* scalars = nullptr;
  size_t n_scalars = 0;
  napi_typedarray_type scalars_type;
  void* scalars_data = nullptr;
  if (napi_get_typedarray_info(env, argv[1], &scalars_type, &n_scalars, &scalars_data, nullptr, nullptr) == napi_ok &&
      scalars_type == napi_float64_array) {
    scalars = static_cast<double*>(scalars_data);
  } else if (!read_f64_array(env, argv[1], k.name, "scalars", &scalars, &n_scalars)) {
    return nullptr;
  }
  if (n_scalars != k.n_scalars) {
    return throw_range(env, std::string(k.name) + ": scalars must have length " +
                                std::to_string(k.n_scalars) + ", got " + std::to_string(n_scalars));
  }
  const size_t stride = 2 + info.state_count(flags);
  // The scalars are copied first: a scalars array aliasing a tensor must not change the
  // hyperparameters halfway through the update.
  double s[16];
  for (size_t i = 0; i < n_scalars; i++) s[i] = scalars[i];

  if (prepared) {
    if (prepared->stride != stride) {
      return throw_range(env, std::string(k.name) + ": the prepared list has " +
                                  std::to_string(prepared->stride - 2) +
                                  " state buffers per tensor, these flags need " +
                                  std::to_string(stride - 2));
    }
    if (!verify(env, *prepared, k.name)) return nullptr;
    const optim::KernelTable& kt = *inst->table;
    const Prepared& h = *prepared;
    if (h.bf16) return step(env, kt.f32.first_nonfinite, kt.bf16[KIND], h.bf16_runs, s, flags, &h.bf16s);
    if (h.dtype == napi_float32_array) return step(env, kt.f32.first_nonfinite, kt.f32.step[KIND], h.f32_runs, s, flags, &h.f32);
    return step(env, kt.f64.first_nonfinite, kt.f64.step[KIND], h.f64_runs, s, flags, &h.f64);
  }

  uint32_t len = 0;
  napi_get_array_length(env, argv[0], &len);
  if (len % stride != 0) {
    return throw_range(env, std::string(k.name) + ": list length " + std::to_string(len) +
                                " is not a multiple of " + std::to_string(stride) +
                                " (param, grad and " + std::to_string(stride - 2) +
                                " state buffers per tensor for these flags)");
  }
  if (len == 0) return nullptr;
  napi_typedarray_type type;
  if (!first_type(env, argv[0], k.name, &type)) return nullptr;
  const napi_typedarray_type stype = state_type(env, argv[0], stride, type);
  const optim::KernelTable& kt = *inst->table;
  DepthGuard guard(inst);
  if (inst->depth > 1) {
    // Re-entered from a getter: private scratch, so the outer call's vectors stay intact.
    std::vector<napi_value> vals;
    if (stype == napi_uint16_array) {
      std::vector<TensorRef<float, uint16_t>> ts;
      if (!unpack<float, uint16_t>(env, argv[0], len, stride, k.name, type, stype, vals, ts)) return nullptr;
      return step(env, kt.f32.first_nonfinite, kt.bf16[KIND], ts, s, flags);
    } else if (type == napi_float32_array) {
      std::vector<TensorRef<float>> ts;
      if (!unpack<float>(env, argv[0], len, stride, k.name, type, type, vals, ts)) return nullptr;
      return step(env, kt.f32.first_nonfinite, kt.f32.step[KIND], ts, s, flags);
    } else {
      std::vector<TensorRef<double>> ts;
      if (!unpack<double>(env, argv[0], len, stride, k.name, type, type, vals, ts)) return nullptr;
      return step(env, kt.f64.first_nonfinite, kt.f64.step[KIND], ts, s, flags);
    }
  }
  if (stype == napi_uint16_array) {
    if (!unpack<float, uint16_t>(env, argv[0], len, stride, k.name, type, stype, inst->vals, inst->bf16)) return nullptr;
    return step(env, kt.f32.first_nonfinite, kt.bf16[KIND], inst->bf16, s, flags);
  }
  if (type == napi_float32_array) {
    if (!unpack<float>(env, argv[0], len, stride, k.name, type, type, inst->vals, inst->f32)) return nullptr;
    return step(env, kt.f32.first_nonfinite, kt.f32.step[KIND], inst->f32, s, flags);
  }
  if (!unpack<double>(env, argv[0], len, stride, k.name, type, type, inst->vals, inst->f64)) return nullptr;
  return step(env, kt.f64.first_nonfinite, kt.f64.step[KIND], inst->f64, s, flags);
}

// prepare(list, stride): validates a tensor list once and returns a handle that step kernels
// accept in place of the list (see Prepared).
napi_value Prepare(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, nullptr) != napi_ok) return nullptr;
  if (argc != 2) return throw_type(env, "prepare(list, stride) takes 2 arguments");
  bool is_array = false;
  napi_is_array(env, argv[0], &is_array);
  if (!is_array) return throw_type(env, "prepare: list must be an Array of typed arrays");
  napi_valuetype vt;
  double d = 0;
  if (napi_typeof(env, argv[1], &vt) != napi_ok || vt != napi_number) {
    return throw_type(env, "prepare: stride must be a number");
  }
  napi_get_value_double(env, argv[1], &d);
  if (!(d >= 2 && d <= 2 + optim::kMaxStates && d == std::floor(d))) {
    return throw_range(env, "prepare: stride must be an integer from 2 to " +
                                std::to_string(2 + optim::kMaxStates));
  }
  const size_t stride = static_cast<size_t>(d);
  uint32_t len = 0;
  napi_get_array_length(env, argv[0], &len);
  if (len % stride != 0) {
    return throw_range(env, "prepare: list length " + std::to_string(len) +
                                " is not a multiple of stride " + std::to_string(stride));
  }
  auto* h = new Prepared();
  h->stride = stride;
  std::vector<ViewInfo> views;
  std::vector<napi_value> vals;
  bool ok = true;
  if (len > 0 && !first_type(env, argv[0], "prepare", &h->dtype)) ok = false;
  const napi_typedarray_type stype = ok && len > 0 ? state_type(env, argv[0], stride, h->dtype) : h->dtype;
  h->bf16 = stype == napi_uint16_array;
  if (ok && h->bf16) {
    ok = unpack<float, uint16_t>(env, argv[0], len, stride, "prepare", h->dtype, stype, vals, h->bf16s, &views);
  } else if (ok && h->dtype == napi_float32_array) {
    ok = unpack<float>(env, argv[0], len, stride, "prepare", h->dtype, h->dtype, vals, h->f32, &views);
  } else if (ok) {
    ok = unpack<double>(env, argv[0], len, stride, "prepare", h->dtype, h->dtype, vals, h->f64, &views);
  }
  if (ok) {
    h->f32_runs = coalesce(h->f32);
    h->f64_runs = coalesce(h->f64);
    h->bf16_runs = coalesce(h->bf16s);
  }
  napi_value obj = nullptr;
  if (ok) ok = napi_create_object(env, &obj) == napi_ok;
  if (!ok) {
    delete h;
    return nullptr;
  }
  // One check per distinct ArrayBuffer: the view reaching furthest into it.
  std::sort(views.begin(), views.end(), [](const ViewInfo& a, const ViewInfo& b) {
    return a.base != b.base ? std::less<char*>()(a.base, b.base) : a.end > b.end;
  });
  for (size_t i = 0; i < views.size(); i++) {
    if (i > 0 && views[i].base == views[i - 1].base) continue;
    const bool resizable = is_resizable(env, views[i].buffer);
    napi_ref ref;
    napi_create_reference(env, resizable ? views[i].view : views[i].buffer, 1, &ref);
    h->checks.push_back({ref, resizable, views[i].data, views[i].length});
  }
  // The External owns the list (its finalizer frees it); the handle object carries it as a
  // read-only, non-enumerable, non-configurable `native` (so the External lives as long as the
  // object, whose wrap points at the same list) and is wrapped for raw callers that pass it.
  h->registry = env_of(env)->prepared;
  h->registry->insert(h);
  napi_value external = nullptr;
  if (napi_create_external(
          env, h,
          [](napi_env e, void* data, void*) {
            auto* p = static_cast<Prepared*>(data);
            p->registry->erase(p);
            for (auto& c : p->checks) napi_delete_reference(e, c.ref);
            delete p;
          },
          nullptr, &external) != napi_ok) {
    h->registry->erase(h);
    for (auto& c : h->checks) napi_delete_reference(env, c.ref);
    delete h;
    return throw_type(env, "prepare: could not create the prepared list's handle");
  }
  napi_property_descriptor native_prop = {"native", nullptr, nullptr, nullptr, nullptr, external, napi_default, nullptr};
  if (napi_define_properties(env, obj, 1, &native_prop) != napi_ok ||
      napi_wrap(env, obj, h, nullptr, nullptr, nullptr) != napi_ok) {
    return throw_type(env, "prepare: could not attach the prepared list to its handle");
  }
  napi_value count;
  napi_create_uint32(env, static_cast<uint32_t>(len / stride), &count);
  napi_set_named_property(env, obj, "tensors", count);
  napi_value nb;
  napi_create_uint32(env, static_cast<uint32_t>(h->checks.size()), &nb);
  napi_set_named_property(env, obj, "buffers", nb);
  return obj;
}

// kernelLayouts(): { [name]: { scalars, flags, states: [names], stateWhen: [flag index or -1] } }
// for every registered kernel, as the kernels declare them (checked against the TypeScript
// descriptors by test/kernel-layouts.test.ts).
napi_value KernelLayouts(napi_env env, napi_callback_info) {
  napi_value out;
  napi_create_object(env, &out);
  auto str = [env](const char* s) {
    napi_value v;
    napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v);
    return v;
  };
  for (size_t i = 0; i < optim::kKernelCount; i++) {
    const optim::KernelInfo& k = optim::kKernelInfo[i];
    napi_value o, when;
    napi_create_object(env, &o);
    napi_set_named_property(env, o, "scalars", str(k.scalars));
    napi_set_named_property(env, o, "flags", str(k.flags));
    napi_set_named_property(env, o, "states", str(k.states));
    napi_create_array_with_length(env, size_t(k.n_states), &when);
    for (int j = 0; j < k.n_states; j++) {
      napi_value w;
      napi_create_int32(env, k.when[j], &w);
      napi_set_element(env, when, uint32_t(j), w);
    }
    napi_set_named_property(env, o, "stateWhen", when);
    napi_set_named_property(env, out, k.name, o);
  }
  return out;
}

// info(): what runs in this environment, told by the addon itself: the step kernels' instruction
// set and whether they fuse multiply-adds, the linear algebra in use and its thread cap.
napi_value Info(napi_env env, napi_callback_info) {
  const Env* e = env_of(env);
  napi_value o;
  napi_create_object(env, &o);
  napi_set_named_property(env, o, "simd", string(env, e->table->isa));
  napi_set_named_property(env, o, "fma", boolean(env, e->table->fma));
  napi_set_named_property(env, o, "blas", string(env, e->openblas ? "openblas" : "builtin"));
  napi_set_named_property(env, o, "openblasAvailable", boolean(env, optim::linalg::have_openblas()));
  napi_set_named_property(env, o, "linalgIsa", string(env, e->linalg_avx2() ? "avx2" : "baseline"));
  napi_set_named_property(env, o, "threads", number(env, e->openblas ? optim::linalg::blas_max_threads() : 1));
  napi_set_named_property(env, o, "stepThreads", number(env, optim::pool_threads()));
  napi_set_named_property(env, o, "version", string(env, OPTIM_VERSION));
  napi_set_named_property(env, o, "bestSimd", string(env, optim::kernels().isa));
  napi_set_named_property(env, o, "maxStates", number(env, double(optim::kMaxStates)));
  napi_set_named_property(env, o, "minAlignElements", number(env, double(kMinAlignElements)));
  return o;
}

// setIsa(name): this environment's instruction set for the step kernels and the built-in linear
// algebra: 'avx512' | 'avx2' | 'baseline' | 'best'. False, changing nothing, when the CPU or the
// build lacks it.
napi_value SetIsa(napi_env env, napi_callback_info cbinfo) {
  std::string name;
  if (!read_name(env, cbinfo, "setIsa(name)", &name)) return nullptr;
  const KernelTable* t = name == "best" ? &optim::kernels() : optim::kernels_for(name.c_str());
  if (!t) return boolean(env, false);
  env_of(env)->table = t;
  return boolean(env, true);
}

// lineOffset(a): the byte offset of typed array a's first element within its cache line. The
// optimizers lay their state out so each state view starts at its param's offset (and param()
// its grad): step_aligned can then align every stream of a tensor with one split, where streams
// at different offsets would straddle lines on every vector load (see kCacheLine).
napi_value LineOffset(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, nullptr) != napi_ok) return nullptr;
  bool is_ta = false;
  void* data = nullptr;
  if (argc < 1 || napi_is_typedarray(env, argv[0], &is_ta) != napi_ok || !is_ta ||
      napi_get_typedarray_info(env, argv[0], nullptr, nullptr, &data, nullptr, nullptr) != napi_ok) {
    return throw_type(env, "lineOffset(a): a must be a typed array");
  }
  return number(env, double(reinterpret_cast<uintptr_t>(data) % kCacheLine));
}

// setNumThreads(n): the threads a large step may use, the caller's included (1 to 64); for the
// whole process, as torch.set_num_threads.
napi_value SetNumThreads(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, nullptr) != napi_ok) return nullptr;
  double n = 0;
  if (!read_number(env, argv[0], "setNumThreads(n): n", &n)) return nullptr;
  if (!(n >= 1 && n <= optim::kMaxPoolThreads && n == std::floor(n))) {
    return throw_range(env, "setNumThreads(n): n must be an integer from 1 to " +
                                std::to_string(optim::kMaxPoolThreads) + ", got " + std::to_string(n));
  }
  optim::pool_set_threads(int(n));
  return nullptr;
}

Env* initial_env() {
  // OPTIM_BLAS=builtin at run time starts on the built-in linear algebra.
  const char* blas = std::getenv("OPTIM_BLAS");
  const bool builtin = blas && std::strcmp(blas, "builtin") == 0;
  Env* e = new Env();
  e->table = &optim::kernels();
  e->openblas = optim::linalg::have_openblas() && !builtin;
  return e;
}

napi_value Init(napi_env env, napi_value exports) {
  napi_set_instance_data(
      env, initial_env(), [](napi_env, void* data, void*) { delete static_cast<Env*>(data); }, nullptr);
  std::vector<napi_property_descriptor> props;
  const std::string* names = step_names();
  for (size_t i = 0; i < optim::kKernelCount; i++) {
    props.push_back({names[i].c_str(), nullptr, Step, nullptr, nullptr, nullptr, napi_enumerable,
                     reinterpret_cast<void*>(uintptr_t(i))});
  }
  const std::pair<const char*, napi_callback> fns[] = {
      {"prepare", Prepare}, {"kernelLayouts", KernelLayouts}, {"info", Info}, {"setIsa", SetIsa},
      {"setNumThreads", SetNumThreads}, {"lineOffset", LineOffset}};
  for (const auto& f : fns) {
    props.push_back({f.first, nullptr, f.second, nullptr, nullptr, nullptr, napi_enumerable, nullptr});
  }
  napi_define_properties(env, exports, props.size(), props.data());
  RegisterLinalg(env, exports);
  RegisterDistributed(env, exports);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
