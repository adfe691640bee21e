// Adadelta (torch.optim.Adadelta, torch 2.13 single-tensor path). State: [squareAvg, accDelta].
//   g = sign·g;  WD: g = fma(λ, p, g);  v = fma((1−ρ)·g, g, ρ·v)
//   d = √(u + ε) / √(v + ε) · g;  u = fma((1−ρ)·d, d, ρ·u);  p = fma(−γ, d, p)
struct adadelta : unconditional_state {
  OPTIM_LAYOUT(S, WD, RHO, ONE_MINUS_RHO, EPS, NEG_LR, SIGN);
  OPTIM_LAYOUT(F, WD);
  OPTIM_LAYOUT(B, SQUARE_AVG, ACC_DELTA);

  OPTIM_LOOP {
    OPTIM_TENSOR(t, v, u);
    const decay<S, OPTIM_ON(WD), false, T> decayed(s);
    const T rho = T(s[S::RHO]), omr = T(s[S::ONE_MINUS_RHO]);
    const T eps = T(s[S::EPS]), neg_lr = T(s[S::NEG_LR]);
    for (size_t i = 0; i < n; i++) {
      const T gi = decayed(p[i], g[i]);
      const T vi = second_moment(v[i], gi, rho, omr);
      v[i] = vi;
      const T d = vsqrt(u[i] + eps) / vsqrt(vi + eps) * gi;
      u[i] = second_moment(u[i], d, rho, omr);
      p[i] = madd(neg_lr, d, p[i]);
    }
  }
};
