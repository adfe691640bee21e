// The AVX2+FMA kernel set, chosen at run time only on a CPU (and OS) that supports it.
#if defined(__x86_64__) || defined(__i386__)
#define OPTIM_ISA avx2
#define OPTIM_ISA_NAME "avx2"
#define OPTIM_ISA_TARGET "avx2,fma"
#define OPTIM_FMA 1
#include "isa_table.inc"
#else
#include "kernel_abi.h"
namespace optim {
const KernelTable* table_avx2() { return nullptr; }
}  // namespace optim
#endif
