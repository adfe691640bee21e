// OpenBLAS sgemm/dgemm called directly from C, no Node and no addon: the yardstick of the
// "addon >= 90% of OpenBLAS direct" target. blas-direct.js compiles it at bench time
// (cc -O2 blas-direct.c -lopenblas); separate.js runs it under each OPENBLAS_NUM_THREADS.
// Usage: blas-direct 64,128,... ; prints one JSON object per dtype and size.
// `blas-direct potrf 500,1000,...`: dpotrf instead (see potrf_main; bench/cholesky-direct.js).
// Timing follows timing.js: a warm-up of >= 40 ms, samples of >= 20 ms, the median of 7 rounds
// (5 when a sample exceeds 60 ms, 3 past 150 ms).
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

// One square n×n·n×n product, row-major as the addon calls it: C = A·B.
static void call(int f64, int n, void* a, void* b, void* c) {
  if (f64) cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, a, n, b, n, 0.0, c, n);
  else cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
}

static double batch_ms(int f64, int n, void* a, void* b, void* c, long count) {
  double t0 = now_ms();
  for (long i = 0; i < count; i++) call(f64, n, a, b, c);
  return now_ms() - t0;
}

static double median_ms(int f64, int n, int* rounds_out) {
  size_t bytes = (size_t)n * n * (f64 ? 8 : 4);
  void *a = malloc(bytes), *b = malloc(bytes), *c = malloc(bytes);
  // Values in [-1, 1): what linalg.js multiplies, and no subnormals to slow anything down.
  unsigned s = 12345;
  for (size_t i = 0; i < (size_t)n * n; i++) {
    s = s * 1103515245u + 12345u;
    double v = (s >> 8) / 8388608.0 - 1.0;
    if (f64) ((double*)a)[i] = v, ((double*)b)[i] = -v;
    else ((float*)a)[i] = (float)v, ((float*)b)[i] = (float)-v;
  }
  call(f64, n, a, b, c);
  long batch = 1;
  double spent = 0, t;
  for (;;) {
    t = batch_ms(f64, n, a, b, c, batch);
    spent += t;
    if (spent >= 40 && t >= 10) break;
    batch *= 2;
  }
  long inner = (long)(20 / (t / batch)) + 1;
  double sample[7];
  sample[0] = batch_ms(f64, n, a, b, c, inner);
  int rounds = sample[0] > 150 ? 3 : sample[0] > 60 ? 5 : 7;
  for (int r = 0; r < rounds; r++) sample[r] = batch_ms(f64, n, a, b, c, inner) / inner;
  qsort(sample, rounds, sizeof(double), cmp);
  free(a), free(b), free(c);
  *rounds_out = rounds;
  return rounds % 2 ? sample[rounds / 2] : (sample[rounds / 2 - 1] + sample[rounds / 2]) / 2;
}

// LAPACK's dpotrf as OpenBLAS exports it (its C implementation of the Fortran interface; no
// LAPACKE, so the link line stays -lopenblas). On a row-major lower triangle, 'U' in column-major
// terms: the call the addon makes, on the caller's memory as it is.
void dpotrf_(const char* uplo, const int* n, double* a, const int* lda, int* info);

// `blas-direct potrf 500,1000,...`: per size, the median ms of dpotrf alone, measured as
// (memcpy of the matrix + dpotrf) − (memcpy alone): each call must start from the unfactored
// matrix. The matrix is diagonally dominant, as bench/linalg.js's spd(). One JSON line per size.
static int potrf_main(char* list) {
  for (char* tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
    int n = atoi(tok), info = 0;
    size_t nn = (size_t)n * n;
    double *a = malloc(nn * 8), *w = malloc(nn * 8), both[9], copy[9];
    unsigned s = 7;
    for (int i = 0; i < n; i++) {
      for (int j = 0; j <= i; j++) {
        s = s * 1103515245u + 12345u;
        double v = ((s >> 8) / 8388608.0 - 1.0) / n;
        a[(size_t)i * n + j] = a[(size_t)j * n + i] = i == j ? 2 : v;
      }
    }
    double t0 = 0, one = 0;
    for (int k = 0; k < 3; k++) {
      t0 = now_ms();
      memcpy(w, a, nn * 8);
      dpotrf_("U", &n, w, &n, &info);
      one = now_ms() - t0;
    }
    if (info != 0) {
      fprintf(stderr, "dpotrf: info %d at n = %d\n", info, n);
      return 1;
    }
    long inner = (long)(20 / one) + 1;
    for (int r = 0; r < 9; r++) {
      t0 = now_ms();
      for (long k = 0; k < inner; k++) {
        memcpy(w, a, nn * 8);
        dpotrf_("U", &n, w, &n, &info);
      }
      both[r] = (now_ms() - t0) / inner;
      t0 = now_ms();
      for (long k = 0; k < inner; k++) {
        memcpy(w, a, nn * 8);
        __asm__ volatile("" ::"r"(w) : "memory");  // keep every copy
      }
      copy[r] = (now_ms() - t0) / inner;
    }
    qsort(both, 9, sizeof(double), cmp);
    qsort(copy, 9, sizeof(double), cmp);
    printf("{\"kind\":\"potrf\",\"dtype\":\"float64\",\"n\":%d,\"ms\":%.6f,\"copyMs\":%.6f,\"threads\":%d,\"repeats\":9}\n",
           n, both[4] - copy[4], copy[4], openblas_get_num_threads());
    fflush(stdout);
    free(a), free(w);
  }
  return 0;
}

int main(int argc, char** argv) {
  if (argc == 3 && strcmp(argv[1], "potrf") == 0) return potrf_main(argv[2]);
  if (argc != 2) {
    fprintf(stderr, "usage: blas-direct 64,128,...  |  blas-direct potrf 500,1000,...\n");
    return 2;
  }
  for (int f64 = 0; f64 <= 1; f64++) {
    char* sizes = strdup(argv[1]);
    for (char* tok = strtok(sizes, ","); tok; tok = strtok(NULL, ",")) {
      int n = atoi(tok), rounds;
      double ms = median_ms(f64, n, &rounds);
      printf("{\"dtype\":\"%s\",\"n\":%d,\"ms\":%.6f,\"gflops\":%.4f,\"threads\":%d,\"repeats\":%d}\n",
             f64 ? "float64" : "float32", n, ms, 2.0 * n * n * n / (ms * 1e6), openblas_get_num_threads(), rounds);
      fflush(stdout);
    }
    free(sizes);
  }
  return 0;
}
