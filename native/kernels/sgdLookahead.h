// SGD with Nesterov momentum in the look-ahead form of Sutskever et al. (2013). State: [velocity].
// The gradient is taken at the look-ahead point θ + μv: a call with AHEAD moves p there before
// the closure runs (p = fma(μ, v, p), g not read); the update call then computes, from that point
// x = θ + μv and the gradient g at it:
//   d = g;  WD: d = fma(λ, x, d)
//   v' = fma(−γ, d, μ·v);  p = (x − μ·v) + v'      (= θ + v')
struct sgdLookahead : unconditional_state {
  OPTIM_LAYOUT(S, WD, MOMENTUM, NEG_LR);
  OPTIM_LAYOUT(F, WD, AHEAD);
  OPTIM_LAYOUT(B, VELOCITY);

  OPTIM_LOOP {
    OPTIM_TENSOR(t, v);
    const T wd = T(s[S::WD]), mom = T(s[S::MOMENTUM]), neg_lr = T(s[S::NEG_LR]);
    if (OPTIM_ON(AHEAD)) {
      for (size_t i = 0; i < n; i++) p[i] = madd(mom, v[i], p[i]);
      return;
    }
    for (size_t i = 0; i < n; i++) {
      T d = g[i];
      if (OPTIM_ON(WD)) d = madd(wd, p[i], d);
      const T prev = mom * v[i];
      const T next = madd(neg_lr, d, prev);
      v[i] = next;
      p[i] = (p[i] - prev) + next;
    }
  }
};
