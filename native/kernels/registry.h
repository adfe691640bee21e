// The step kernels, one entry each: the algorithm's header in native/kernels/ and its
// name in the list. Everything else (the per-ISA tables, the layouts, the addon's exports) is
// generated from this list.
//
// Included plainly, this defines the list. Included by isa_table.inc with OPTIM_KERNEL_BODIES
// defined (inside an ISA's namespace and target region), it brings in the algorithms' loops.
#ifndef OPTIM_KERNELS
#define OPTIM_KERNELS(X) X(sgd) X(sgdLookahead) X(adagrad) X(rmsprop) X(adam) X(nadam) X(radam) X(adamax) X(adadelta) \
  X(rprop) X(asgd) X(lion) X(adabelief) X(yogi) X(lamb) X(lars) X(scheduleFree)

#define OPTIM_COUNT_ONE(name) +1
namespace optim {
constexpr size_t kKernelCount = 0 OPTIM_KERNELS(OPTIM_COUNT_ONE);
}  // namespace optim
#undef OPTIM_COUNT_ONE
#endif

#ifdef OPTIM_KERNEL_BODIES
#undef OPTIM_KERNEL_BODIES
#include "sgd.h"
#include "sgdLookahead.h"
#include "adagrad.h"
#include "rmsprop.h"
#include "adam.h"
#include "nadam.h"
#include "radam.h"
#include "adamax.h"
#include "adadelta.h"
#include "rprop.h"
#include "asgd.h"
#include "lion.h"
#include "adabelief.h"
#include "yogi.h"
#include "lamb.h"
#include "lars.h"
#include "scheduleFree.h"
#endif
