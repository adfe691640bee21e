// LARS (optax.lars, optax 0.2.8). State: [trace]. Unfused, as optax runs each operation on its
// own. The trust ratio r = c·‖p‖/(‖g + λp‖ + ε) (1 when a norm is 0, or without the trust ratio)
// is a whole-tensor quantity: the optimizer (src/optim/lars.ts) forms it in TypeScript before the
// call, one call per param.
//   u = g;  WD: u = g + λ·p
//   u = (−γ)·(u·r)                     (the learning rate comes before the momentum)
//   t = u + μ·t;  p = p + (NESTEROV ? u + μ·t : t)
struct lars : unconditional_state {
  OPTIM_LAYOUT(S, WD, RATIO, NEG_LR, MOMENTUM);
  OPTIM_LAYOUT(F, WD, NESTEROV);
  OPTIM_LAYOUT(B, TRACE);

  OPTIM_LOOP {
    OPTIM_TENSOR(t, tr);
    const T wd = T(s[S::WD]), ratio = T(s[S::RATIO]), neg_lr = T(s[S::NEG_LR]), mu = T(s[S::MOMENTUM]);
    for (size_t i = 0; i < n; i++) {
      T ui = g[i];
      if (OPTIM_ON(WD)) ui = ui + wd * p[i];
      ui = neg_lr * (ui * ratio);
      const T ti = ui + mu * tr[i];
      tr[i] = ti;
      p[i] = p[i] + (OPTIM_ON(NESTEROV) ? ui + mu * ti : ti);
    }
  }
};
