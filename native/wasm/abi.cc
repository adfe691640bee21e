// The C ABI of optim.wasm (built by scripts/build-wasm.js, loaded by src/backend/wasm.ts): the
// step kernels, one tensor per call, and the built-in linear algebra (native/kernels/linalg.h),
// one matrix operation per call, their buffers in the module's own memory. No C library: memory
// comes from the heap below, grown on demand.
#include <stddef.h>
#include <stdint.h>

#include <new>

#include "kernel_abi.h"
#include "linalg.h"
#include "pool.h"

namespace optim {
const KernelTable* table_wasm();
}  // namespace optim

using namespace optim;

// The step pool (native/kernels/pool.h) in a module without threads: one thread, every part run
// here in order (the built-in gemm asks it how to split).
namespace optim {
int pool_threads() { return 1; }
void pool_set_threads(int) {}
void pool_run(int parts, void (*fn)(void* ctx, int part), void* ctx) {
  for (int part = 0; part < parts; part++) fn(ctx, part);
}
}  // namespace optim

#define OPTIM_EXPORT(name) __attribute__((export_name(#name)))

// The heap: a stack of blocks above __heap_base, each after a header linking it to the one below.
// Freeing a block marks it; the marked blocks at the top are then popped, so memory freed in the
// reverse order of allocation (the kernels' scratch, scoped; the JavaScript side's operands, freed
// in a finally block) is reused at once, and a block freed out of order is reclaimed when the
// blocks above it are. The linear memory grows when the top passes its end and never shrinks.
extern "C" unsigned char __heap_base;

namespace {
struct Block {
  uintptr_t below;  // the top before this block was allocated
  Block* prev;      // the block below, or null
  uint32_t freed;
};
constexpr uintptr_t kHeader = 16;  // sizeof(Block) rounded up; the header ends where the block starts
static_assert(sizeof(Block) <= kHeader, "header");

uintptr_t heap_top = 0;
Block* heap_last = nullptr;

void heap_init() {
  if (heap_top == 0) heap_top = reinterpret_cast<uintptr_t>(&__heap_base);
}

void* heap_alloc(size_t bytes) {
  heap_init();
  const uintptr_t p = (heap_top + kHeader + 63) & ~uintptr_t(63);
  if (p < heap_top || bytes > UINTPTR_MAX - p) return nullptr;  // past the 4 GiB address space
  const uintptr_t end = p + bytes;
  const uint64_t have = uint64_t(__builtin_wasm_memory_size(0)) * 65536;
  if (end > have && __builtin_wasm_memory_grow(0, (uint64_t(end) - have + 65535) / 65536) == size_t(-1)) {
    return nullptr;
  }
  Block* b = reinterpret_cast<Block*>(p - kHeader);
  b->below = heap_top;
  b->prev = heap_last;
  b->freed = 0;
  heap_last = b;
  heap_top = end;
  return reinterpret_cast<void*>(p);
}

void heap_free(void* p) {
  if (p == nullptr) return;
  reinterpret_cast<Block*>(reinterpret_cast<uintptr_t>(p) - kHeader)->freed = 1;
  while (heap_last != nullptr && heap_last->freed) {
    heap_top = heap_last->below;
    heap_last = heap_last->prev;
  }
}
}  // namespace

// The kernels' scratch (gemm's packing buffers, eigh's workspace). Without C++ exceptions a failed
// plain new cannot throw: it traps, which the JavaScript side reports as out of memory.
void* operator new[](size_t bytes) {
  void* p = heap_alloc(bytes);
  if (p == nullptr) __builtin_trap();
  return p;
}
void* operator new[](size_t bytes, const std::nothrow_t&) noexcept { return heap_alloc(bytes); }
void operator delete[](void* p) noexcept { heap_free(p); }
void operator delete[](void* p, size_t) noexcept { heap_free(p); }

extern "C" {
// 64-byte aligned bytes; 0 when the memory cannot grow. Freed by release() (or never: the step
// kernels' buffers, allocated first, live as long as the instance).
OPTIM_EXPORT(alloc) void* wasm_alloc(size_t bytes) { return heap_alloc(bytes); }
// The heap's top now; release(mark) frees every block allocated since (the operands of one linear
// algebra call and whatever scratch its kernel left behind), whatever the order.
OPTIM_EXPORT(mark) uintptr_t wasm_mark() {
  heap_init();
  return heap_top;
}
OPTIM_EXPORT(release) void wasm_release(uintptr_t mark) {
  while (heap_last != nullptr && reinterpret_cast<uintptr_t>(heap_last) >= mark) {
    heap_top = heap_last->below;
    heap_last = heap_last->prev;
  }
}

OPTIM_EXPORT(kernel_count) uint32_t kernel_count() { return uint32_t(kKernelCount); }
// The kernel's registry name ("adam"), a NUL-terminated string in the module's memory.
OPTIM_EXPORT(kernel_name) const char* kernel_name(uint32_t i) { return i < kKernelCount ? kKernelInfo[i].name : nullptr; }
OPTIM_EXPORT(kernel_scalars) uint32_t kernel_scalars(uint32_t i) { return i < kKernelCount ? kKernelInfo[i].n_scalars : 0; }
OPTIM_EXPORT(isa_name) const char* isa_name() { return table_wasm()->isa; }

// The index of g's first NaN or ±Inf, or n (the step kernels' own scan, SIMD).
OPTIM_EXPORT(first_nonfinite_f32) size_t first_nonfinite_f32(const float* g, size_t n) { return table_wasm()->f32.first_nonfinite(g, n); }
OPTIM_EXPORT(first_nonfinite_f64) size_t first_nonfinite_f64(const double* g, size_t n) { return table_wasm()->f64.first_nonfinite(g, n); }

OPTIM_EXPORT(step_f32)
void step_f32(uint32_t k, float* p, const float* g, float* s0, float* s1, float* s2, float* s3, size_t n,
              const double* scalars, uint32_t flags) {
  TensorRef<float> t{p, g, {s0, s1, s2, s3}, n};
  table_wasm()->f32.step[k](t, scalars, flags);
}

OPTIM_EXPORT(step_f64)
void step_f64(uint32_t k, double* p, const double* g, double* s0, double* s1, double* s2, double* s3, size_t n,
              const double* scalars, uint32_t flags) {
  TensorRef<double> t{p, g, {s0, s1, s2, s3}, n};
  table_wasm()->f64.step[k](t, scalars, flags);
}

OPTIM_EXPORT(step_bf16)
void step_bf16(uint32_t k, float* p, const float* g, uint16_t* s0, uint16_t* s1, uint16_t* s2, uint16_t* s3,
               size_t n, const double* scalars, uint32_t flags) {
  TensorRef<float, uint16_t> t{p, g, {s0, s1, s2, s3}, n};
  table_wasm()->bf16[k](t, scalars, flags);
}
}

// ---- the built-in linear algebra (no BLAS: Ctx{openblas=false, avx2=false}) ----
// Row-major, every array in this memory; the JavaScript side validates the arguments and scans for
// non-finite values first, as the reference backend does, so these only compute.

namespace {
constexpr linalg::Ctx kBuiltin{false, false};

template <typename T>
void gemm_t(uint32_t flags, size_t m, size_t n, size_t k, double alpha, const T* a, const T* b,
            double beta, T* c) {
  const bool ta = flags & 1, tb = flags & 2;
  linalg::gemm<T>(kBuiltin, ta, tb, m, n, k, T(alpha), a, ta ? m : k, b, tb ? k : n, T(beta), c, n);
}
}  // namespace

extern "C" {
// c = alpha·op(a)·op(b) + beta·c; flags: 1 = transpose a, 2 = transpose b.
OPTIM_EXPORT(gemm_f32)
void gemm_f32(uint32_t flags, size_t m, size_t n, size_t k, double alpha, const float* a,
              const float* b, double beta, float* c) {
  gemm_t<float>(flags, m, n, k, alpha, a, b, beta, c);
}
OPTIM_EXPORT(gemm_f64)
void gemm_f64(uint32_t flags, size_t m, size_t n, size_t k, double alpha, const double* a,
              const double* b, double beta, double* c) {
  gemm_t<double>(flags, m, n, k, alpha, a, b, beta, c);
}

// c = op(a)·op(a)ᵀ, full; trans: op(a) = aᵀ.
OPTIM_EXPORT(gram_f32)
void gram_f32(uint32_t trans, size_t rows, size_t cols, const float* a, float* c) {
  linalg::gram<float>(kBuiltin, trans != 0, rows, cols, a, c);
}
OPTIM_EXPORT(gram_f64)
void gram_f64(uint32_t trans, size_t rows, size_t cols, const double* a, double* c) {
  linalg::gram<double>(kBuiltin, trans != 0, rows, cols, a, c);
}

// Factors a (n×n, lower triangle) in place; -1, or the first pivot that is not positive.
OPTIM_EXPORT(potrf_f32) int32_t potrf_f32(size_t n, float* a) { return int32_t(linalg::potrf<float>(kBuiltin, n, a)); }
OPTIM_EXPORT(potrf_f64) int32_t potrf_f64(size_t n, double* a) { return int32_t(linalg::potrf<double>(kBuiltin, n, a)); }

// b = (L·Lᵀ)⁻¹·b in place, b n×nrhs.
OPTIM_EXPORT(potrs_f32)
void potrs_f32(size_t n, size_t nrhs, const float* l, float* b) { linalg::potrs<float>(kBuiltin, n, nrhs, l, b); }
OPTIM_EXPORT(potrs_f64)
void potrs_f64(size_t n, size_t nrhs, const double* l, double* b) { linalg::potrs<double>(kBuiltin, n, nrhs, l, b); }

// 0: done; 1: no convergence; 2: no memory for the workspace (linalg::EighStatus).
OPTIM_EXPORT(syevd_f32)
uint32_t syevd_f32(size_t n, const float* a, float* values, float* vectors) {
  return uint32_t(linalg::syevd<float>(kBuiltin, n, a, values, vectors));
}
OPTIM_EXPORT(syevd_f64)
uint32_t syevd_f64(size_t n, const double* a, double* values, double* vectors) {
  return uint32_t(linalg::syevd<double>(kBuiltin, n, a, values, vectors));
}
}
