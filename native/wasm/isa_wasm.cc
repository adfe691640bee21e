// The step kernels for WebAssembly (wasm32 + SIMD128), from the same headers as the native ones.
// WebAssembly has no guaranteed fused multiply-add, so every operation rounds (OPTIM_FMA 0), as
// the native baseline set does: the two give the same bits (test/wasm-backend.test.ts).
#define OPTIM_ISA wasm
#define OPTIM_ISA_NAME "wasm-simd128"
#define OPTIM_FMA 0
#define OPTIM_DEFINE_LAYOUTS
#include "isa_table.inc"
