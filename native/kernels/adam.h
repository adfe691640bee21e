// Adam / AdamW (torch.optim.Adam, torch 2.13 single-tensor path). State: [expAvg, expAvgSq,
// maxExpAvgSq (AMSGRAD)].
//   DECOUPLED: p = p·(1 − γλ) first;  g = sign·g;  WD: g = fma(λ, p, g)
//   m = lerp(m, g, 1−β₁) (fused: fma(1−β₁, g−m, m));  v = fma((1−β₂)·g, g, β₂·v)
//   AMSGRAD: v̂ = max(v̂, v), use v̂
//   p = p + (−γ/(1−β₁ᵗ)·m) / (√v / √(1−β₂ᵗ) + ε)
struct adam {
  OPTIM_LAYOUT(S, WD, ONE_MINUS_BETA1, BETA2, ONE_MINUS_BETA2, NEG_STEP_SIZE, BC2_SQRT, EPS, SIGN,
               DECAY_MUL);
  OPTIM_LAYOUT(F, WD, AMSGRAD, DECOUPLED);
  OPTIM_LAYOUT(B, EXP_AVG, EXP_AVG_SQ, MAX_EXP_AVG_SQ);
  static constexpr int8_t when[B::COUNT] = {ALWAYS, ALWAYS, F::AMSGRAD};

  OPTIM_LOOP {
    OPTIM_TENSOR(t, m, v, vmax);
    const lerp_moments<S, OPTIM_ON(WD), OPTIM_ON(DECOUPLED), T> start(s);
    const T neg_step = T(s[S::NEG_STEP_SIZE]), bc2_sqrt = T(s[S::BC2_SQRT]), eps = T(s[S::EPS]);
    for (size_t i = 0; i < n; i++) {
      T pi = p[i], mi = m[i], vi = v[i];
      start(pi, g[i], mi, vi);
      m[i] = mi;
      v[i] = vi;
      if (OPTIM_ON(AMSGRAD)) {
        vi = maximum(vmax[i], vi);
        vmax[i] = vi;
      }
      const T denom = vsqrt(vi) / bc2_sqrt + eps;
      p[i] = pi + (neg_step * mi) / denom;
    }
  }
};
