// NAdam (torch.optim.NAdam, torch >= 2.0). State: [expAvg, expAvgSq].
//   DECOUPLED: p = p·(1 − γλ) first;  g = sign·g;  WD: g = fma(λ, p, g)
//   m = lerp(m, g, 1−β₁);  v = fma((1−β₂)·g, g, β₂·v);  d = √(v / (1−β₂ᵗ)) + ε
//   p = p + (c_g·g)/d;  p = p + (c_m·m)/d   (c_g, c_m: the μ-schedule coefficients, times −γ)
struct nadam : unconditional_state {
  OPTIM_LAYOUT(S, WD, ONE_MINUS_BETA1, BETA2, ONE_MINUS_BETA2, BC2, EPS, COEF_GRAD, COEF_AVG, SIGN,
               DECAY_MUL);
  OPTIM_LAYOUT(F, WD, DECOUPLED);
  OPTIM_LAYOUT(B, EXP_AVG, EXP_AVG_SQ);

  OPTIM_LOOP {
    OPTIM_TENSOR(t, m, v);
    const lerp_moments<S, OPTIM_ON(WD), OPTIM_ON(DECOUPLED), T> start(s);
    const T bc2 = T(s[S::BC2]), eps = T(s[S::EPS]);
    const T cg = T(s[S::COEF_GRAD]), ca = T(s[S::COEF_AVG]);
    for (size_t i = 0; i < n; i++) {
      T pi = p[i], mi = m[i], vi = v[i];
      const T gi = start(pi, g[i], mi, vi);
      m[i] = mi;
      v[i] = vi;
      const T denom = vsqrt(vi / bc2) + eps;
      pi = pi + (cg * gi) / denom;
      p[i] = pi + (ca * mi) / denom;
    }
  }
};
