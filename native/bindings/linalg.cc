// Node-API glue for the linear algebra kernels: unpack and validate arguments, then run a kernel,
// now (sync) or on the libuv pool (async, returning a Promise). No arithmetic here.
//
// Exports (all arrays row-major, one dtype per call; flags: 1 = transA, 2 = transB):
//   matmul(a, b, c, m, n, k, flags, alpha, beta)   gram(a, c, rows, cols, flags)
//   cholesky(a, out, n)   choSolve(l, b, x, n, nrhs)   eigh(a, values, vectors, n)
//   matmulAsync / choleskyAsync / choSolveAsync / eighAsync: same arguments, Promise<undefined>
//   setBlas('openblas' | 'builtin' | 'best')
// The built-in kernels' instruction set follows the step kernels' (setIsa, addon.cc); info()
// reports both.
// `out` === `a` (cholesky) and `x` === `b` (choSolve) work in place; any other overlap between an
// output and another operand is refused.
//
// Every argument is checked before anything is written or queued; the data checks (non-finite
// values, the pivots) run with the kernel, before it writes. An async call works on private
// copies of its operands and writes the outputs back when it settles (see queue).
#include <node_api.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "../kernels/linalg.h"
#include "../kernels/kernel_abi.h"
#include "glue.h"

namespace {

namespace la = optim::linalg;
using namespace optim::glue;

enum class Op { Matmul, Gram, Cholesky, ChoSolve, Eigh };

const char* op_name(Op op, bool async) {
  switch (op) {
    case Op::Matmul: return async ? "matmulAsync" : "matmul";
    case Op::Gram: return "gram";
    case Op::Cholesky: return async ? "choleskyAsync" : "cholesky";
    case Op::ChoSolve: return async ? "choSolveAsync" : "choSolve";
    case Op::Eigh: return async ? "eighAsync" : "eigh";
  }
  return "linalg";
}

struct Operand {
  const char* name;
  napi_value value;
  void* data;
  size_t length;  // elements
};

// A validated call: everything the kernel needs, and after it runs, what happened.
struct Job {
  Op op;
  bool async;
  bool f64;
  la::Ctx ctx;
  Operand operands[4];  // in argument order (a fixed array: no allocation per call)
  size_t count = 0;
  size_t m = 0, n = 0, k = 0, nrhs = 0;
  bool ta = false, tb = false;
  double alpha = 1, beta = 0;
  bool in_place = false;

  enum Result { OK, NOT_PD, NONFINITE, ZERO_DIAGONAL, NO_CONVERGENCE, OUT_OF_MEMORY } result = OK;
  const char* bad_arg = nullptr;
  size_t bad_row = 0, bad_col = 0;
  double bad_value = 0;
  long pivot = -1;

  const char* fn() const { return op_name(op, async); }
  void* data(size_t i) const { return operands[i].data; }

  template <typename T>
  void run_typed();
  void run() { f64 ? run_typed<double>() : run_typed<float>(); }

  template <typename T>
  bool refuse_nonfinite(const char* arg, long idx, size_t ld, const T* base) {
    if (idx < 0) return false;
    result = NONFINITE;
    bad_arg = arg;
    bad_row = size_t(idx) / ld;
    bad_col = size_t(idx) % ld;
    bad_value = double(base[idx]);
    return true;
  }
};

template <typename T>
void Job::run_typed() {
  switch (op) {
    case Op::Matmul:
      la::gemm<T>(ctx, ta, tb, m, n, k, T(alpha), static_cast<const T*>(data(0)), ta ? m : k,
                  static_cast<const T*>(data(1)), tb ? k : n, T(beta), static_cast<T*>(data(2)), n);
      return;
    case Op::Gram:
      la::gram<T>(ctx, ta, m, k, static_cast<const T*>(data(0)), static_cast<T*>(data(1)));
      return;
    case Op::Cholesky: {
      const T* a = static_cast<const T*>(data(0));
      T* out = static_cast<T*>(data(1));
      if (refuse_nonfinite("a", la::find_nonfinite_lower<T>(n, a, n), n, a)) return;
      if (!in_place && n > 0) std::memcpy(out, a, n * n * sizeof(T));
      const long r = la::potrf<T>(ctx, n, out);
      if (r >= 0) {
        result = NOT_PD;
        pivot = r;
      }
      return;
    }
    case Op::ChoSolve: {
      const T* l = static_cast<const T*>(data(0));
      const T* b = static_cast<const T*>(data(1));
      T* x = static_cast<T*>(data(2));
      if (refuse_nonfinite("b", la::find_nonfinite<T>(n * nrhs, b), nrhs, b)) return;
      for (size_t i = 0; i < n; i++) {
        const T d = l[i * n + i];
        if (d == T(0) || !std::isfinite(d)) {
          result = ZERO_DIAGONAL;
          bad_arg = "L";
          bad_row = bad_col = i;
          bad_value = double(d);
          return;
        }
      }
      if (!in_place && n * nrhs > 0) std::memcpy(x, b, n * nrhs * sizeof(T));
      la::potrs<T>(ctx, n, nrhs, l, x);
      return;
    }
    case Op::Eigh: {
      const T* a = static_cast<const T*>(data(0));
      if (refuse_nonfinite("a", la::find_nonfinite_lower<T>(n, a, n), n, a)) return;
      const la::EighStatus st =
          la::syevd<T>(ctx, n, a, static_cast<T*>(data(1)), static_cast<T*>(data(2)));
      if (st == la::EighStatus::NoConvergence) result = NO_CONVERGENCE;
      if (st == la::EighStatus::OutOfMemory) result = OUT_OF_MEMORY;
      return;
    }
  }
}

// The error a finished job reports, or nullptr.
napi_value job_error(napi_env env, const Job& job) {
  const std::string fn = job.fn();
  switch (job.result) {
    case Job::OK: return nullptr;
    case Job::NOT_PD: {
      const std::string p = std::to_string(job.pivot);
      napi_value e = make_error(
          env, napi_create_error, "ERR_OPTIM_NOT_POSITIVE_DEFINITE",
          fn + ": the matrix is not positive definite: pivot " + p +
              " is not positive (the leading minor of order " + std::to_string(job.pivot + 1) +
              " is not positive definite)");
      napi_value pv;
      napi_create_int64(env, job.pivot, &pv);
      napi_set_named_property(env, e, "pivot", pv);
      return e;
    }
    case Job::NONFINITE:
      return range_error(env, fn + ": " + job.bad_arg + "[" + std::to_string(job.bad_row) + ", " +
                                  std::to_string(job.bad_col) + "] is " + num(job.bad_value) +
                                  "; the matrix must be finite");
    case Job::ZERO_DIAGONAL:
      return range_error(env, fn + ": " + job.bad_arg + "[" + std::to_string(job.bad_row) + ", " +
                                  std::to_string(job.bad_col) + "] is " + num(job.bad_value) +
                                  "; a Cholesky factor's diagonal must be finite and nonzero");
    case Job::NO_CONVERGENCE:
      return make_error(env, napi_create_error, "ERR_OPTIM_NO_CONVERGENCE",
                        fn + ": the eigenvalue iteration did not converge");
    case Job::OUT_OF_MEMORY:
      return make_error(env, napi_create_error, "ERR_OPTIM_OUT_OF_MEMORY",
                        fn + ": not enough memory for the workspace (about 2·n² doubles, n = " +
                            std::to_string(job.n) + ")");
  }
  return nullptr;
}

// ---- argument checks: each returns false with a JavaScript exception pending ----

// A Float32Array or Float64Array (the first operand fixes which, for the others).
bool get_array(napi_env env, napi_value v, const std::string& fn, const char* name, Job& job,
               bool first) {
  bool is_ta = false;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta) {
    return fail(env, type_error(env, fn + ": " + name + " must be a Float32Array or Float64Array"));
  }
  napi_typedarray_type type;
  size_t length = 0, offset = 0;
  void* data = nullptr;
  napi_value buffer = nullptr;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, &buffer, &offset) != napi_ok) {
    return fail(env, type_error(env, fn + ": " + name + " is unreadable"));
  }
  if (type != napi_float32_array && type != napi_float64_array) {
    return fail(env, type_error(env, fn + ": " + name +
                                         " must be a Float32Array or Float64Array, got " +
                                         type_name(type)));
  }
  const bool f64 = type == napi_float64_array;
  if (first) {
    job.f64 = f64;
  } else if (f64 != job.f64) {
    return fail(env, type_error(env, fn + ": " + name + " must be a " +
                                         (job.f64 ? "Float64Array" : "Float32Array") + " like " +
                                         job.operands[0].name + ", got " + type_name(type)));
  }
  bool detached = false;
  if (buffer && napi_is_detached_arraybuffer(env, buffer, &detached) == napi_ok && detached) {
    return fail(env, type_error(env, fn + ": " + name + " is backed by a detached ArrayBuffer"));
  }
  if (length > 0 && data == nullptr) {
    return fail(env, type_error(env, fn + ": " + name + " has no data (detached?)"));
  }
  job.operands[job.count++] = {name, v, data, length};
  return true;
}

// The product of two dimensions, refusing what cannot be a typed-array length.
bool product(napi_env env, const std::string& fn, size_t a, size_t b, size_t* out) {
  if (__builtin_mul_overflow(a, b, out) || *out > (size_t(1) << 53)) {
    return fail(env, range_error(env, fn + ": the dimensions are too large (" + std::to_string(a) +
                                          " × " + std::to_string(b) + ")"));
  }
  return true;
}

bool expect_length(napi_env env, const std::string& fn, const Operand& o, size_t want,
                   const std::string& formula) {
  if (o.length == want) return true;
  return fail(env, range_error(env, fn + ": " + o.name + " has length " + std::to_string(o.length) +
                                        ", expected " + formula + " = " + std::to_string(want)));
}

size_t elem_size(const Job& job) { return job.f64 ? 8 : 4; }

bool overlaps(const Job& job, const Operand& x, const Operand& y) {
  const uintptr_t x0 = uintptr_t(x.data), y0 = uintptr_t(y.data);
  const uintptr_t x1 = x0 + x.length * elem_size(job), y1 = y0 + y.length * elem_size(job);
  return x.length > 0 && y.length > 0 && x0 < y1 && y0 < x1;
}

bool same(const Operand& x, const Operand& y) { return x.data == y.data && x.length == y.length; }

bool refuse_overlap(napi_env env, const Job& job, size_t out, size_t other) {
  const Operand& o = job.operands[out];
  const Operand& p = job.operands[other];
  if (!overlaps(job, o, p)) return true;
  return fail(env, range_error(env, std::string(job.fn()) + ": " + o.name +
                                        " must not share memory with " + p.name));
}

// ---- per-operation parsing ----

bool parse_matmul(napi_env env, napi_value* argv, Job& job) {
  const std::string fn = job.fn();
  uint32_t flags = 0;
  if (!get_array(env, argv[0], fn, "a", job, true)) return false;
  if (!get_array(env, argv[1], fn, "b", job, false)) return false;
  if (!get_array(env, argv[2], fn, "c", job, false)) return false;
  if (!read_dim(env, argv[3], fn, "m", &job.m)) return false;
  if (!read_dim(env, argv[4], fn, "n", &job.n)) return false;
  if (!read_dim(env, argv[5], fn, "k", &job.k)) return false;
  if (!read_flags(env, argv[6], fn, 3, &flags)) return false;
  if (!read_finite(env, argv[7], fn, "alpha", &job.alpha)) return false;
  if (!read_finite(env, argv[8], fn, "beta", &job.beta)) return false;
  job.ta = flags & 1;
  job.tb = flags & 2;
  size_t mk, kn, mn;
  if (!product(env, fn, job.m, job.k, &mk) || !product(env, fn, job.k, job.n, &kn) ||
      !product(env, fn, job.m, job.n, &mn)) {
    return false;
  }
  return expect_length(env, fn, job.operands[0], mk, "m*k") &&
         expect_length(env, fn, job.operands[1], kn, "k*n") &&
         expect_length(env, fn, job.operands[2], mn, "m*n") && refuse_overlap(env, job, 2, 0) &&
         refuse_overlap(env, job, 2, 1);
}

bool parse_gram(napi_env env, napi_value* argv, Job& job) {
  const std::string fn = job.fn();
  uint32_t flags = 0;
  size_t rows = 0, cols = 0;
  if (!get_array(env, argv[0], fn, "a", job, true)) return false;
  if (!get_array(env, argv[1], fn, "c", job, false)) return false;
  if (!read_dim(env, argv[2], fn, "rows", &rows)) return false;
  if (!read_dim(env, argv[3], fn, "cols", &cols)) return false;
  if (!read_flags(env, argv[4], fn, 1, &flags)) return false;
  job.ta = flags & 1;
  job.m = rows;
  job.k = cols;
  const size_t n = job.ta ? cols : rows;
  size_t rc, nn;
  return product(env, fn, rows, cols, &rc) && product(env, fn, n, n, &nn) &&
         expect_length(env, fn, job.operands[0], rc, "rows*cols") &&
         expect_length(env, fn, job.operands[1], nn, job.ta ? "cols*cols" : "rows*rows") &&
         refuse_overlap(env, job, 1, 0);
}

bool parse_cholesky(napi_env env, napi_value* argv, Job& job) {
  const std::string fn = job.fn();
  if (!get_array(env, argv[0], fn, "a", job, true)) return false;
  if (!get_array(env, argv[1], fn, "out", job, false)) return false;
  if (!read_dim(env, argv[2], fn, "n", &job.n)) return false;
  size_t nn;
  if (!product(env, fn, job.n, job.n, &nn) ||
      !expect_length(env, fn, job.operands[0], nn, "n*n") ||
      !expect_length(env, fn, job.operands[1], nn, "n*n")) {
    return false;
  }
  job.in_place = same(job.operands[0], job.operands[1]);
  return job.in_place || refuse_overlap(env, job, 1, 0);
}

bool parse_cho_solve(napi_env env, napi_value* argv, Job& job) {
  const std::string fn = job.fn();
  if (!get_array(env, argv[0], fn, "L", job, true)) return false;
  if (!get_array(env, argv[1], fn, "b", job, false)) return false;
  if (!get_array(env, argv[2], fn, "x", job, false)) return false;
  if (!read_dim(env, argv[3], fn, "n", &job.n)) return false;
  if (!read_dim(env, argv[4], fn, "nrhs", &job.nrhs)) return false;
  size_t nn, nb;
  if (!product(env, fn, job.n, job.n, &nn) || !product(env, fn, job.n, job.nrhs, &nb) ||
      !expect_length(env, fn, job.operands[0], nn, "n*n") ||
      !expect_length(env, fn, job.operands[1], nb, "n*nrhs") ||
      !expect_length(env, fn, job.operands[2], nb, "n*nrhs") || !refuse_overlap(env, job, 2, 0)) {
    return false;
  }
  job.in_place = same(job.operands[1], job.operands[2]);
  return job.in_place || refuse_overlap(env, job, 2, 1);
}

bool parse_eigh(napi_env env, napi_value* argv, Job& job) {
  const std::string fn = job.fn();
  if (!get_array(env, argv[0], fn, "a", job, true)) return false;
  if (!get_array(env, argv[1], fn, "values", job, false)) return false;
  if (!get_array(env, argv[2], fn, "vectors", job, false)) return false;
  if (!read_dim(env, argv[3], fn, "n", &job.n)) return false;
  size_t nn;
  return product(env, fn, job.n, job.n, &nn) &&
         expect_length(env, fn, job.operands[0], nn, "n*n") &&
         expect_length(env, fn, job.operands[1], job.n, "n") &&
         expect_length(env, fn, job.operands[2], nn, "n*n") && refuse_overlap(env, job, 1, 0) &&
         refuse_overlap(env, job, 2, 0) && refuse_overlap(env, job, 2, 1);
}

struct OpInfo {
  Op op;
  size_t argc;
  const char* signature;
  bool (*parse)(napi_env, napi_value*, Job&);
};

constexpr OpInfo kOps[] = {
    {Op::Matmul, 9, "(a, b, c, m, n, k, flags, alpha, beta)", parse_matmul},
    {Op::Gram, 5, "(a, c, rows, cols, flags)", parse_gram},
    {Op::Cholesky, 3, "(a, out, n)", parse_cholesky},
    {Op::ChoSolve, 5, "(L, b, x, n, nrhs)", parse_cho_solve},
    {Op::Eigh, 4, "(a, values, vectors, n)", parse_eigh},
};

// ---- async: a job on the libuv pool ----

// A resizable ArrayBuffer can shrink while the call runs, and its result could then not be
// written back, so async calls refuse one. Growable SharedArrayBuffers only grow; fixed ones are
// fine. Reading the property may run JavaScript, so this runs before any pointer is taken.
bool refuse_resizable(napi_env env, napi_value v, const std::string& fn, size_t index) {
  bool is_ta = false;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta) return true;
  napi_value buffer = nullptr;
  napi_typedarray_type type;
  size_t length = 0;
  if (napi_get_typedarray_info(env, v, &type, &length, nullptr, &buffer, nullptr) != napi_ok ||
      !buffer) {
    return true;
  }
  bool is_ab = false;
  napi_is_arraybuffer(env, buffer, &is_ab);
  if (!is_ab || !is_resizable(env, buffer)) return true;  // a SharedArrayBuffer only grows
  return fail(env, type_error(env, fn + ": argument " + std::to_string(index) +
                                       " is backed by a resizable ArrayBuffer, which could "
                                       "shrink while the call runs; use a fixed-length buffer "
                                       "(or the sync form)"));
}

// The pool thread never touches JavaScript memory. A reference keeps a typed array alive, but
// not its memory: transferring the buffer (postMessage, structuredClone, transfer()) hands the
// memory to a new ArrayBuffer, which the collector may free while the kernel still runs. So the
// operands are copied when the call is made and the outputs copied back when it settles, into
// arrays that still have the memory and length they had.

// A private copy's memory, zeroed. The copy-in runs on the JavaScript thread, into pages never
// touched: a 2000×2000 float64 matrix (32 MB) took 8192 page faults there, and the copy-in and
// copy-out of choleskyAsync held the event loop for ~80 ms each (perf: more time in the fault
// handler than in memcpy). So on Linux a copy from kHugeMin bytes up is an anonymous mapping
// aligned to 2 MiB and advised to use transparent huge pages (16 faults for 32 MB where the
// system allows them, and 4 KiB pages as before where it does not); smaller ones come from calloc.
constexpr size_t kHugePage = size_t(2) << 20;
constexpr size_t kHugeMin = size_t(4) << 20;

class Copy {
 public:
  Copy() = default;
  Copy(const Copy&) = delete;
  Copy& operator=(const Copy&) = delete;
  ~Copy() { release(); }
  void* get() const { return data_; }

  bool allocate(size_t bytes) {
    release();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (bytes >= kHugeMin) {
      const size_t body = (bytes + kHugePage - 1) & ~(kHugePage - 1);
      void* m = mmap(nullptr, body + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (m != MAP_FAILED) {
        const uintptr_t at = (reinterpret_cast<uintptr_t>(m) + kHugePage - 1) & ~uintptr_t(kHugePage - 1);
        const size_t head = at - reinterpret_cast<uintptr_t>(m);
        if (head > 0) munmap(m, head);
        if (kHugePage - head > 0) munmap(reinterpret_cast<char*>(at) + body, kHugePage - head);
        madvise(reinterpret_cast<void*>(at), body, MADV_HUGEPAGE);
        data_ = reinterpret_cast<void*>(at);
        mapped_ = body;
        return true;
      }
    }
#endif
    data_ = std::calloc(1, bytes);
    return data_ != nullptr;
  }

 private:
  void release() {
#if defined(__linux__)
    if (mapped_ > 0) munmap(data_, mapped_);
#endif
    if (mapped_ == 0) std::free(data_);
    data_ = nullptr;
    mapped_ = 0;
  }
  void* data_ = nullptr;
  size_t mapped_ = 0;  // > 0: mapped, not from calloc
};

// The copy-out writes the caller's output, often an array just allocated (choleskyAsync without
// `out`), whose pages are first touched then: the whole 2 MiB pages inside it are advised to use
// huge pages too (advice only: the memory stays the caller's; where it was touched already,
// nothing changes).
void advise_huge(void* p, size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (bytes < kHugeMin) return;
  const uintptr_t lo = (reinterpret_cast<uintptr_t>(p) + kHugePage - 1) & ~uintptr_t(kHugePage - 1);
  const uintptr_t hi = (reinterpret_cast<uintptr_t>(p) + bytes) & ~uintptr_t(kHugePage - 1);
  if (hi > lo) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE);
#else
  (void)p;
  (void)bytes;
#endif
}

struct AsyncCall {
  Job job;
  void* caller_data[4] = {};  // the caller's memory; job.operands point at the copies
  Copy copies[4];
  std::vector<napi_ref> refs;
  napi_deferred deferred = nullptr;
  napi_async_work work = nullptr;
};

bool is_output(Op op, size_t i) {
  switch (op) {
    case Op::Matmul: return i == 2;
    case Op::Gram: return i == 1;
    case Op::Cholesky: return i == 1;
    case Op::ChoSolve: return i == 2;
    case Op::Eigh: return i >= 1;
  }
  return false;
}

// Outputs the kernel overwrites entirely before reading (cholesky's and choSolve's start as a copy
// of the input, unless in place): their copies need no copying in. Matmul's C is always copied in.
bool write_only(const Job& job, size_t i) {
  if (!is_output(job.op, i) || job.in_place) return false;
  return job.op != Op::Matmul;
}

// Points the job at private copies of its operands; false when there is no memory for them.
// An output given as the same array as an input (in place) shares that input's copy.
bool detach_operands(AsyncCall* call) {
  Job& job = call->job;
  for (size_t i = 0; i < job.count; i++) {
    Operand& o = job.operands[i];
    call->caller_data[i] = o.data;
    if (o.length == 0) continue;
    size_t twin = i;
    for (size_t j = 0; j < i; j++) {
      if (o.data == call->caller_data[j] && o.length == job.operands[j].length) twin = j;
    }
    if (twin != i) {
      o.data = job.operands[twin].data;
      continue;
    }
    // Zeroed memory comes from the OS untouched, so a copy never filled costs nothing.
    const size_t bytes = o.length * elem_size(job);
    if (!call->copies[i].allocate(bytes)) return false;
    if (!write_only(job, i)) std::memcpy(call->copies[i].get(), o.data, bytes);
    if (is_output(job.op, i)) advise_huge(o.data, bytes);
    o.data = call->copies[i].get();
  }
  return true;
}

void execute(napi_env, void* data) { static_cast<AsyncCall*>(data)->job.run(); }

void complete(napi_env env, napi_status status, void* data) {
  AsyncCall* call = static_cast<AsyncCall*>(data);
  const Job& job = call->job;
  napi_value error = nullptr;
  if (status != napi_ok) {
    error = make_error(env, napi_create_error, "ERR_OPTIM_CANCELLED",
                       std::string(job.fn()) + ": cancelled");
  } else {
    // A buffer transferred or resized while the pool thread ran: its result cannot be written.
    for (size_t i = 0; i < call->refs.size() && !error; i++) {
      napi_value v = nullptr;
      napi_typedarray_type type;
      size_t length = 0;
      void* ptr = nullptr;
      if (napi_get_reference_value(env, call->refs[i], &v) != napi_ok || !v ||
          napi_get_typedarray_info(env, v, &type, &length, &ptr, nullptr, nullptr) != napi_ok ||
          length != job.operands[i].length || (length > 0 && ptr != call->caller_data[i])) {
        error = type_error(env, std::string(job.fn()) + ": " + job.operands[i].name +
                                    " was detached or resized while the call ran");
      }
    }
    // A refusal of the data (non-finite input, zero diagonal) comes before the kernel writes.
    const bool wrote = job.result != Job::NONFINITE && job.result != Job::ZERO_DIAGONAL;
    for (size_t i = 0; i < job.count && !error && wrote; i++) {
      if (is_output(job.op, i) && job.operands[i].length > 0) {
        std::memcpy(call->caller_data[i], job.operands[i].data,
                    job.operands[i].length * elem_size(job));
      }
    }
    if (!error) error = job_error(env, job);
  }
  if (error) {
    napi_reject_deferred(env, call->deferred, error);
  } else {
    napi_value undefined;
    napi_get_undefined(env, &undefined);
    napi_resolve_deferred(env, call->deferred, undefined);
  }
  for (napi_ref r : call->refs) napi_delete_reference(env, r);
  napi_delete_async_work(env, call->work);
  delete call;
}

napi_value queue(napi_env env, Job&& job) {
  AsyncCall* call = new AsyncCall{};
  call->job = std::move(job);
  napi_value promise = nullptr, name;
  bool ok = napi_create_promise(env, &call->deferred, &promise) == napi_ok;
  const bool copied = ok && detach_operands(call);
  ok = ok && copied;
  for (size_t i = 0; ok && i < call->job.count; i++) {
    napi_ref r;
    ok = napi_create_reference(env, call->job.operands[i].value, 1, &r) == napi_ok;
    if (ok) call->refs.push_back(r);
  }
  ok = ok && napi_create_string_utf8(env, call->job.fn(), NAPI_AUTO_LENGTH, &name) == napi_ok;
  ok = ok && napi_create_async_work(env, nullptr, name, execute, complete, call, &call->work) ==
                 napi_ok;
  ok = ok && napi_queue_async_work(env, call->work) == napi_ok;
  if (!ok) {
    for (napi_ref r : call->refs) napi_delete_reference(env, r);
    if (call->work) napi_delete_async_work(env, call->work);
    const std::string fn = call->job.fn();
    const napi_value error =
        promise && !copied
            ? make_error(env, napi_create_error, "ERR_OPTIM_OUT_OF_MEMORY",
                         fn + ": not enough memory to copy the operands")
            : make_error(env, napi_create_error, "ERR_OPTIM_ASYNC", fn + ": could not queue the work");
    if (call->deferred) napi_reject_deferred(env, call->deferred, error);
    delete call;
    if (!promise) napi_throw(env, error);
  }
  return promise;
}

// ---- the exported functions ----

template <size_t OP, bool ASYNC>
napi_value Call(napi_env env, napi_callback_info cbinfo) {
  const OpInfo& info = kOps[OP];
  napi_value argv[9];
  size_t argc = 9;
  if (napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, nullptr) != napi_ok) return nullptr;
  const std::string fn = op_name(info.op, ASYNC);
  if (argc != info.argc) {
    napi_throw(env, type_error(env, fn + info.signature + " takes " + std::to_string(info.argc) +
                                        " arguments, got " + std::to_string(argc)));
    return nullptr;
  }
  if (ASYNC) {
    for (size_t i = 0; i < argc; i++) {
      if (!refuse_resizable(env, argv[i], fn, i)) return nullptr;
    }
  }
  Job job;
  job.op = info.op;
  job.async = ASYNC;
  job.ctx = env_of(env)->ctx();
  if (!info.parse(env, argv, job)) return nullptr;
  if (ASYNC) return queue(env, std::move(job));
  // An output just allocated (cholesky without `out`) is first touched by the kernel: huge pages.
  for (size_t i = 0; i < job.count; i++) {
    if (is_output(job.op, i)) advise_huge(job.operands[i].data, job.operands[i].length * elem_size(job));
  }
  job.run();
  if (napi_value e = job_error(env, job)) napi_throw(env, e);
  return nullptr;
}

// setBlas(name): 'openblas' | 'builtin' | 'best' for this environment; false (changing nothing)
// when the build has no OpenBLAS or the name is unknown.
napi_value SetBlas(napi_env env, napi_callback_info cbinfo) {
  std::string name;
  if (!read_name(env, cbinfo, "setBlas(name)", &name)) return nullptr;
  Env* e = env_of(env);
  if (name == "builtin") e->openblas = false;
  else if ((name == "openblas" || name == "best") && la::have_openblas()) e->openblas = true;
  else if (name == "best") e->openblas = false;
  else return boolean(env, false);
  return boolean(env, true);
}

}  // namespace

void RegisterLinalg(napi_env env, napi_value exports) {
  const napi_property_attributes attr = napi_enumerable;
  const napi_property_descriptor props[] = {
      {"matmul", nullptr, Call<0, false>, nullptr, nullptr, nullptr, attr, nullptr},
      {"matmulAsync", nullptr, Call<0, true>, nullptr, nullptr, nullptr, attr, nullptr},
      {"gram", nullptr, Call<1, false>, nullptr, nullptr, nullptr, attr, nullptr},
      {"cholesky", nullptr, Call<2, false>, nullptr, nullptr, nullptr, attr, nullptr},
      {"choleskyAsync", nullptr, Call<2, true>, nullptr, nullptr, nullptr, attr, nullptr},
      {"choSolve", nullptr, Call<3, false>, nullptr, nullptr, nullptr, attr, nullptr},
      {"choSolveAsync", nullptr, Call<3, true>, nullptr, nullptr, nullptr, attr, nullptr},
      {"eigh", nullptr, Call<4, false>, nullptr, nullptr, nullptr, attr, nullptr},
      {"eighAsync", nullptr, Call<4, true>, nullptr, nullptr, nullptr, attr, nullptr},
      {"setBlas", nullptr, SetBlas, nullptr, nullptr, nullptr, attr, nullptr},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
}
