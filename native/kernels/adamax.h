// Adamax (torch.optim.Adamax, torch 2.13 single-tensor path). State: [expAvg, expInf].
//   g = sign·g;  WD: g = fma(λ, p, g)
//   m = lerp(m, g, 1−β₁)  (fused as ATen 2.x: fma(1−β₁, g−m, m))
//   u = max(β₂·u, |g| + ε)
//   p = p + (−γ/(1−β₁ᵗ)·m) / u
struct adamax : unconditional_state {
  OPTIM_LAYOUT(S, WD, ONE_MINUS_BETA1, BETA2, EPS, NEG_CLR, SIGN);
  OPTIM_LAYOUT(F, WD);
  OPTIM_LAYOUT(B, EXP_AVG, EXP_INF);

  OPTIM_LOOP {
    OPTIM_TENSOR(t, m, u);
    const decay<S, OPTIM_ON(WD), false, T> decayed(s);
    const T omb1 = T(s[S::ONE_MINUS_BETA1]), b2 = T(s[S::BETA2]);
    const T eps = T(s[S::EPS]), neg_clr = T(s[S::NEG_CLR]);
    const bool small = omb1 < T(0.5) && omb1 > T(-0.5);
    for (size_t i = 0; i < n; i++) {
      const T gi = decayed(p[i], g[i]);
      const T mi = lerp_fused(m[i], gi, omb1, small);
      const T ui = maximum(u[i] * b2, vabs(gi) + eps);
      m[i] = mi;
      u[i] = ui;
      p[i] = p[i] + (neg_clr * mi) / ui;
    }
  }
};
