// The contract between the step kernels and their callers: plain C++ on raw pointers, no
// Node-API types.
//
// One call of a step kernel updates one tensor in place in a single pass over p, g and the
// state buffers. Hyperparameters arrive folded into scalars; float kernels round each scalar to
// float once, as ATen does for float32 tensors. Each algorithm lives in one header,
// native/kernels/<name>.h, listed once in registry.h, and declares its layout with
// the macros below; the addon reports those layouts (`kernelLayouts()`) and a test checks them
// against the TypeScript descriptors (src/optim/<name>.ts), so the two cannot drift.
#pragma once

#include <cstddef>
#include <cstdint>

#include "registry.h"

namespace optim {

// Most state buffers any algorithm keeps per tensor.
constexpr size_t kMaxStates = 4;

// One tensor's buffers: p, g, then the state buffers the flags select, in the algorithm's order.
// S is the state's storage type: T, or uint16_t for bfloat16 state (float32 p and g only).
template <typename T, typename S = T>
struct TensorRef {
  T* p;
  const T* g;
  S* s[kMaxStates];
  size_t n;
};

template <typename T, typename S = T>
using StepFn = void (*)(const TensorRef<T, S>& t, const double* scalars, uint32_t flags);

// A step over float32 p and g with bfloat16 state (bit patterns): every algorithm's float32 loop,
// its state reads widened and its state writes rounded to nearest even (isa_table.inc,
// Bf16Ptr), so the arithmetic is the float32 kernel's and only the storage narrows.
using Bf16StepFn = StepFn<float, uint16_t>;

// Index of the first NaN or infinity in x[0, n), or n when every value is finite.
template <typename T>
using FirstNonFiniteFn = size_t (*)(const T* x, size_t n);

// A named enumeration whose names are also kept as text, for the layout report:
// OPTIM_LAYOUT(S, WD, BETA1) gives S::WD = 0, S::BETA1 = 1, S::COUNT = 2 and S::names =
// "WD, BETA1".
#define OPTIM_LAYOUT(Tag, ...)                        \
  struct Tag {                                        \
    enum : int { __VA_ARGS__, COUNT };                \
    static constexpr const char* names = #__VA_ARGS__; \
  }
#define OPTIM_NO_LAYOUT(Tag)                         \
  struct Tag {                                       \
    enum : int { COUNT };                            \
    static constexpr const char* names = "";         \
  }

// Every algorithm header declares, inside `struct <name>`:
//   OPTIM_LAYOUT(S, ...)   its scalar slots, in order;
//   OPTIM_LAYOUT(F, ...)   its option flags: flag F::X is the bit 1 << F::X;
//   OPTIM_LAYOUT(B, ...)   its state buffers, in order;
//   static constexpr int8_t when[B::COUNT]: the flag a buffer needs to exist, or -1 (always);
//     a kernel whose buffers always exist derives from unconditional_state instead;
//   template <typename T> static void run(const TensorRef<T>&, const double*, uint32_t).
// A tensor's state pointers hold the buffers that exist for its flags, in order (state_count).
constexpr uint32_t bit(int flag) { return uint32_t(1) << flag; }
constexpr int ALWAYS = -1;
// The base of a kernel whose state buffers exist whatever the flags: its `when`, all ALWAYS.
struct unconditional_state {
  static constexpr int8_t when[kMaxStates] = {ALWAYS, ALWAYS, ALWAYS, ALWAYS};
};

// Flag bits every step kernel accepts, above its own; must match src/backend/kernel.ts.
// CHECK_FINITE: before writing anything, scan every gradient of the call; if one holds a NaN or
// an infinity, update nothing and report which tensor. CHECK_ONLY (with CHECK_FINITE): scan, never
// update (a multi-call step checks all its calls before the first writes).
enum : uint32_t { F_CHECK_FINITE = 256, F_CHECK_ONLY = 512 };

// What the binding needs to know of a kernel: its layout (reported to JavaScript and checked
// against the TypeScript descriptor) and the argument checks it derives from it.
struct KernelInfo {
  const char* name;     // "adam": exported as adamStep
  const char* scalars;  // "WD, BETA1, ..."
  const char* flags;    // "WD, AMSGRAD, ..."
  const char* states;   // "EXP_AVG, ..."
  int n_scalars;
  int n_flags;
  int n_states;
  const int8_t* when;   // n_states entries
  uint32_t all_flags() const { return n_flags == 0 ? 0 : (uint32_t(1) << n_flags) - 1; }
  size_t state_count(uint32_t f) const {
    size_t c = 0;
    for (int i = 0; i < n_states; i++) c += (when[i] < 0 || (f & bit(when[i]))) ? 1 : 0;
    return c;
  }
};

template <typename T>
struct KernelSet {
  StepFn<T> step[kKernelCount];
  FirstNonFiniteFn<T> first_nonfinite;
};

struct KernelTable {
  const char* isa;  // "avx512" | "avx2" | "sse2" | "neon" | "scalar"
  bool fma;         // multiply-adds fused as ATen fuses them
  KernelSet<float> f32;
  KernelSet<double> f64;
  Bf16StepFn bf16[kKernelCount];
};

// The layouts of the registered kernels, in registry order (the same for every ISA).
extern const KernelInfo kKernelInfo[kKernelCount];

// The widest kernel set this CPU runs, chosen once (cpuid, capped by OPTIM_ISA) and immutable.
const KernelTable& kernels();
// A narrower set (for tests and benchmarks): "avx512", "avx2", "baseline". Null if the CPU lacks
// it or the build did not include it.
const KernelTable* kernels_for(const char* isa);

}  // namespace optim
