// The baseline kernel set: whatever the build's minimum target has (SSE2 on x86-64, NEON with
// fused multiply-add on arm64). Every CPU the binary loads on runs these. It also defines the
// kernels' layouts (kKernelInfo).
#define OPTIM_ISA baseline
#if defined(__aarch64__)
#define OPTIM_ISA_NAME "neon"
#define OPTIM_FMA 1
#elif defined(__x86_64__) || defined(__SSE2__)
#define OPTIM_ISA_NAME "sse2"
#define OPTIM_FMA 0
#else
#define OPTIM_ISA_NAME "scalar"
#define OPTIM_FMA 0
#endif
#define OPTIM_DEFINE_LAYOUTS
#include "isa_table.inc"
