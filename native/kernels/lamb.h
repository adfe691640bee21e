// LAMB (optax.lamb, optax 0.2.8). State: [mu, nu, update]. Unfused, as optax runs each operation
// on its own. The trust ratio r = ‖p‖/‖u‖ is a whole-tensor quantity, which an elementwise loop
// split across threads cannot form: the optimizer (src/optim/lamb.ts) runs a step as two calls,
// DIRECTION (u into `update`), its norms in TypeScript, then APPLY with r; or, when r is known
// beforehand (‖p‖ = 0 gives r = 1), one call with neither flag.
//   m = (1−b₁)·g + b₁·m;  v = (1−b₂)·g² + b₂·v
//   u = (m / (1−b₁ᵗ)) / (√(v / (1−b₂ᵗ) + ε_root) + ε);  WD: u = u + λ·p;  update = u
//   p = p + (−γ)·(u·r)                       (not under DIRECTION)
//   APPLY: only p = p + (−γ)·(update·r); the moments, g and the other flags are not read.
struct lamb : unconditional_state {
  OPTIM_LAYOUT(S, ONE_MINUS_B1, B1, ONE_MINUS_B2, B2, BC1, BC2, EPS_ROOT, EPS, WD, RATIO, NEG_LR);
  OPTIM_LAYOUT(F, WD, DIRECTION, APPLY);
  OPTIM_LAYOUT(B, MU, NU, UPDATE);

  OPTIM_LOOP {
    OPTIM_TENSOR(t, m, v, u);
    const T ratio = T(s[S::RATIO]), neg_lr = T(s[S::NEG_LR]);
    if (OPTIM_ON(APPLY)) {
      for (size_t i = 0; i < n; i++) p[i] = p[i] + neg_lr * (u[i] * ratio);
      return;
    }
    const T omb1 = T(s[S::ONE_MINUS_B1]), b1 = T(s[S::B1]);
    const T omb2 = T(s[S::ONE_MINUS_B2]), b2 = T(s[S::B2]);
    const T bc1 = T(s[S::BC1]), bc2 = T(s[S::BC2]), eps_root = T(s[S::EPS_ROOT]), eps = T(s[S::EPS]);
    const T wd = T(s[S::WD]);
    for (size_t i = 0; i < n; i++) {
      const T gi = g[i];
      const T mi = omb1 * gi + b1 * m[i];
      const T vi = omb2 * (gi * gi) + b2 * v[i];
      m[i] = mi;
      v[i] = vi;
      T ui = (mi / bc1) / (vsqrt(vi / bc2 + eps_root) + eps);
      if (OPTIM_ON(WD)) ui = ui + wd * p[i];
      u[i] = ui;
      if (!OPTIM_ON(DIRECTION)) p[i] = p[i] + neg_lr * (ui * ratio);
    }
  }
};
