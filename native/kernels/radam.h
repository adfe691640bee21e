// RAdam (torch.optim.RAdam, torch >= 2.0). State: [expAvg, expAvgSq].
//   DECOUPLED: p = p·(1 − γλ) first;  g = sign·g;  WD: g = fma(λ, p, g)
//   m = lerp(m, g, 1−β₁);  v = fma((1−β₂)·g, g, β₂·v);  m̂ = m / (1−β₁ᵗ)
//   RECTIFIED: p = p − ((m̂·γ)·(√(1−β₂ᵗ) / (√v + ε)))·r_t;  else p = p − m̂·γ
struct radam : unconditional_state {
  OPTIM_LAYOUT(S, WD, ONE_MINUS_BETA1, BETA2, ONE_MINUS_BETA2, BC1, LR, BC2_SQRT, EPS, RECT, SIGN,
               DECAY_MUL);
  OPTIM_LAYOUT(F, WD, RECTIFIED, DECOUPLED);
  OPTIM_LAYOUT(B, EXP_AVG, EXP_AVG_SQ);

  OPTIM_LOOP {
    OPTIM_TENSOR(t, m, v);
    const lerp_moments<S, OPTIM_ON(WD), OPTIM_ON(DECOUPLED), T> start(s);
    const T bc1 = T(s[S::BC1]), lr = T(s[S::LR]), rect = T(s[S::RECT]);
    const T bc2_sqrt = T(s[S::BC2_SQRT]), eps = T(s[S::EPS]);
    for (size_t i = 0; i < n; i++) {
      T pi = p[i], mi = m[i], vi = v[i];
      start(pi, g[i], mi, vi);
      m[i] = mi;
      v[i] = vi;
      const T mh = mi / bc1;
      if (OPTIM_ON(RECTIFIED)) {
        const T adaptive = bc2_sqrt / (vsqrt(vi) + eps);
        p[i] = pi - ((mh * lr) * adaptive) * rect;
      } else {
        p[i] = pi - mh * lr;
      }
    }
  }
};
