// AdaBelief (optax.adabelief, optax 0.2.8). State: [mu, nu]. Unfused, as optax runs each
// operation on its own.
//   m = (1−b₁)·g + b₁·m;  e = g − m;  s = (1−b₂)·e² + b₂·s + ε_root  (ε_root is stored: it accumulates)
//   NESTEROV: m̂ = b₁·(m / (1−b₁ᵗ⁺¹)) + (1−b₁)·(g / (1−b₁ᵗ)); else m̂ = m / (1−b₁ᵗ)
//   p = p + (−γ)·(m̂ / (√(s / (1−b₂ᵗ)) + ε))
struct adabelief : unconditional_state {
  OPTIM_LAYOUT(S, ONE_MINUS_B1, B1, ONE_MINUS_B2, B2, EPS_ROOT, BC1, BC1_NEXT, BC2, EPS, NEG_LR);
  OPTIM_LAYOUT(F, NESTEROV);
  OPTIM_LAYOUT(B, MU, NU);

  OPTIM_LOOP {
    OPTIM_TENSOR(t, m, v);
    const T omb1 = T(s[S::ONE_MINUS_B1]), b1 = T(s[S::B1]);
    const T omb2 = T(s[S::ONE_MINUS_B2]), b2 = T(s[S::B2]), eps_root = T(s[S::EPS_ROOT]);
    const T bc1 = T(s[S::BC1]), bc1_next = T(s[S::BC1_NEXT]), bc2 = T(s[S::BC2]);
    const T eps = T(s[S::EPS]), neg_lr = T(s[S::NEG_LR]);
    for (size_t i = 0; i < n; i++) {
      const T gi = g[i];
      const T mi = omb1 * gi + b1 * m[i];
      const T e = gi - mi;
      const T vi = (omb2 * (e * e) + b2 * v[i]) + eps_root;
      m[i] = mi;
      v[i] = vi;
      const T mh = OPTIM_ON(NESTEROV) ? b1 * (mi / bc1_next) + omb1 * (gi / bc1) : mi / bc1;
      p[i] = p[i] + neg_lr * (mh / (vsqrt(vi / bc2) + eps));
    }
  }
};
