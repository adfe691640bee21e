// Schedule-free SGD and AdamW (optax.contrib.schedule_free_sgd / schedule_free_adamw, optax
// 0.2.8). p holds the training point y (where gradients are taken). State: [z, nu (ADAM)].
// Unfused, as optax runs each operation on its own. γ_t (NEG_SCHEDULED_LR = −γ_t, after the
// warm-up), c = CK and 1 − c come from the optimizer (src/optim/schedule-free.ts). INIT (the
// first step, z just created): z is read as y (optax's z₀ = w₀), not from the buffer.
//   ADAM: v = (1−b₂)·g² + b₂·v;  d = (1 / (√(v / (1−b₂ᵗ)) + ε))·g;  else d = g
//   WD: d = d + λ·y
//   z' = z + (−γ_t)·d
//   x = (1 − c)·((y − (1−β)·z)·(1/β)) + c·z'   (the previous x, from the old z; optax's division by
//                                                the constant β, as XLA compiles it: times 1/β)
//   y' = β·x + (1−β)·z';  z = z';  p = y + (y' − y)   (optax returns the update y' − y)
struct scheduleFree {
  OPTIM_LAYOUT(S, ONE_MINUS_B2, B2, BC2, EPS, WD, NEG_SCHEDULED_LR, B1, ONE_MINUS_B1, INV_B1, CK, ONE_MINUS_CK);
  OPTIM_LAYOUT(F, ADAM, WD, INIT);
  OPTIM_LAYOUT(B, Z, NU);
  static constexpr int8_t when[B::COUNT] = {ALWAYS, F::ADAM};

  OPTIM_LOOP {
    OPTIM_TENSOR(t, z, v);
    const T omb2 = T(s[S::ONE_MINUS_B2]), b2 = T(s[S::B2]), bc2 = T(s[S::BC2]), eps = T(s[S::EPS]);
    const T wd = T(s[S::WD]), neg_lr = T(s[S::NEG_SCHEDULED_LR]);
    const T b1 = T(s[S::B1]), omb1 = T(s[S::ONE_MINUS_B1]), inv_b1 = T(s[S::INV_B1]);
    const T ck = T(s[S::CK]), omck = T(s[S::ONE_MINUS_CK]);
    for (size_t i = 0; i < n; i++) {
      const T gi = g[i], yi = p[i], zi = OPTIM_ON(INIT) ? yi : z[i];
      T d = gi;
      if (OPTIM_ON(ADAM)) {
        const T vi = omb2 * (gi * gi) + b2 * v[i];
        v[i] = vi;
        d = (T(1) / (vsqrt(vi / bc2) + eps)) * gi;
      }
      if (OPTIM_ON(WD)) d = d + wd * yi;
      const T zn = zi + neg_lr * d;
      const T xi = omck * ((yi - omb1 * zi) * inv_b1) + ck * zn;
      const T yn = b1 * xi + omb1 * zn;
      z[i] = zn;
      p[i] = yi + (yn - yi);
    }
  }
};
