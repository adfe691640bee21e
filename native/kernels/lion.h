// Lion (optax.lion, optax 0.2.8). State: [mu]. optax runs each operation on its own (no fused
// multiply-adds): the products and sums here round one at a time.
//   c = (1−b₁)·g + b₁·m;  u = sign(c)  (sign(0) = 0, NaN stays NaN)
//   m = (1−b₂)·g + b₂·m
//   WD: u = u + λ·p;  p = p + (−γ)·u
struct lion : unconditional_state {
  OPTIM_LAYOUT(S, ONE_MINUS_B1, B1, ONE_MINUS_B2, B2, WD, NEG_LR);
  OPTIM_LAYOUT(F, WD);
  OPTIM_LAYOUT(B, MU);

  OPTIM_LOOP {
    OPTIM_TENSOR(t, m);
    const T omb1 = T(s[S::ONE_MINUS_B1]), b1 = T(s[S::B1]);
    const T omb2 = T(s[S::ONE_MINUS_B2]), b2 = T(s[S::B2]);
    const T wd = T(s[S::WD]), neg_lr = T(s[S::NEG_LR]);
    for (size_t i = 0; i < n; i++) {
      const T gi = g[i], mi = m[i];
      const T c = omb1 * gi + b1 * mi;
      // c itself when 0 (keeps −0) or NaN; two flat selects (a nested one is control flow that
      // GCC does not if-convert for AVX2 or SSE2, and the loop ran one element at a time).
      T u = c > T(0) ? T(1) : c;
      u = c < T(0) ? T(-1) : u;
      m[i] = omb2 * gi + b2 * mi;
      if (OPTIM_ON(WD)) u = u + wd * p[i];
      p[i] = p[i] + neg_lr * u;
    }
  }
};
