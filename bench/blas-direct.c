// OpenBLAS sgemm/dgemm called directly from C, no Node and no addon: the yardstick of the
// "addon >= 90% of OpenBLAS direct" target. blas-direct.js compiles it at bench time
// (cc -O2 blas-direct.c -lopenblas); separate.js runs it under each OPENBLAS_NUM_THREADS.
// Usage: blas-direct 64,128,... ; prints one JSON object per dtype and size.
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

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: blas-direct 64,128,...\n");
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
