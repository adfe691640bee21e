// ASGD (torch.optim.ASGD, torch 2.13 single-tensor path). State: [ax].
//   g = sign·g;  WD: g = fma(λ_w, p, g);  p = p·(1 − λη);  p = fma(−η, g, p)
//   AVERAGE (μ ≠ 1): ax = ax + (p − ax)·μ, three roundings as torch's add_(sub().mul_());  else ax = p
struct asgd : unconditional_state {
  OPTIM_LAYOUT(S, WD, SIGN, DECAY_MUL, NEG_ETA, MU);
  OPTIM_LAYOUT(F, WD, AVERAGE);
  OPTIM_LAYOUT(B, AX);

  OPTIM_LOOP {
    OPTIM_TENSOR(t, ax);
    const decay<S, OPTIM_ON(WD), false, T> decayed(s);
    const T decay_mul = T(s[S::DECAY_MUL]), neg_eta = T(s[S::NEG_ETA]), mu = T(s[S::MU]);
    for (size_t i = 0; i < n; i++) {
      const T gi = decayed(p[i], g[i]);
      const T pi = madd(neg_eta, gi, p[i] * decay_mul);
      p[i] = pi;
      if (OPTIM_ON(AVERAGE)) {
        const T d = (pi - ax[i]) * mu;
        ax[i] = ax[i] + d;
      } else {
        ax[i] = pi;
      }
    }
  }
};
