// Yogi (optax.yogi, optax 0.2.8). State: [mu, nu], both starting at initialAccumulatorValue.
// Unfused, as optax runs each operation on its own.
//   m = (1−b₁)·g + b₁·m;  v = v − ((1−b₂)·sign(v − g²))·g²
//   p = p + (−γ)·((m / (1−b₁ᵗ)) / (√(v / (1−b₂ᵗ) + ε_root) + ε))
struct yogi : unconditional_state {
  OPTIM_LAYOUT(S, ONE_MINUS_B1, B1, ONE_MINUS_B2, EPS_ROOT, BC1, BC2, EPS, NEG_LR);
  OPTIM_NO_LAYOUT(F);
  OPTIM_LAYOUT(B, MU, NU);

  OPTIM_LOOP {
    OPTIM_TENSOR(t, m, v);
    const T omb1 = T(s[S::ONE_MINUS_B1]), b1 = T(s[S::B1]), omb2 = T(s[S::ONE_MINUS_B2]);
    const T eps_root = T(s[S::EPS_ROOT]), bc1 = T(s[S::BC1]), bc2 = T(s[S::BC2]);
    const T eps = T(s[S::EPS]), neg_lr = T(s[S::NEG_LR]);
    for (size_t i = 0; i < n; i++) {
      const T gi = g[i];
      const T mi = omb1 * gi + b1 * m[i];
      const T g2 = gi * gi, d = v[i] - g2;
      // jnp.sign: 0 stays 0, NaN stays NaN; two flat selects (see lion.h)
      T sgn = d > T(0) ? T(1) : d;
      sgn = d < T(0) ? T(-1) : sgn;
      const T vi = v[i] - (omb2 * sgn) * g2;
      m[i] = mi;
      v[i] = vi;
      p[i] = p[i] + neg_lr * ((mi / bc1) / (vsqrt(vi / bc2 + eps_root) + eps));
    }
  }
};
