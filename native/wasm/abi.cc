// The C ABI of optim.wasm (built by scripts/build-wasm.js, loaded by src/backend/wasm.ts): one
// tensor per call, its buffers in the module's own memory. No C library: memory comes from a
// bump allocator over the linear memory, grown on demand.
#include <stddef.h>
#include <stdint.h>

#include "kernel_abi.h"

namespace optim {
const KernelTable* table_wasm();
}  // namespace optim

using namespace optim;

#define OPTIM_EXPORT(name) __attribute__((export_name(#name)))

extern "C" {
extern unsigned char __heap_base;
static uintptr_t heap_top = 0;

// 64-byte aligned bytes that live as long as the instance; 0 when the memory cannot grow.
OPTIM_EXPORT(alloc) void* wasm_alloc(size_t bytes) {
  if (heap_top == 0) heap_top = reinterpret_cast<uintptr_t>(&__heap_base);
  const uintptr_t p = (heap_top + 63) & ~uintptr_t(63);
  const uintptr_t end = p + bytes;
  const size_t have = __builtin_wasm_memory_size(0) * 65536;
  if (end > have && __builtin_wasm_memory_grow(0, (end - have + 65535) / 65536) == size_t(-1)) return nullptr;
  heap_top = end;
  return reinterpret_cast<void*>(p);
}

OPTIM_EXPORT(kernel_count) uint32_t kernel_count() { return uint32_t(kKernelCount); }
// The kernel's registry name ("adam"), a NUL-terminated string in the module's memory.
OPTIM_EXPORT(kernel_name) const char* kernel_name(uint32_t i) { return i < kKernelCount ? kKernelInfo[i].name : nullptr; }
OPTIM_EXPORT(kernel_scalars) uint32_t kernel_scalars(uint32_t i) { return i < kKernelCount ? kKernelInfo[i].n_scalars : 0; }
OPTIM_EXPORT(isa_name) const char* isa_name() { return table_wasm()->isa; }

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
