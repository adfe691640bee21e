// SGD (torch.optim.SGD). State: [momentumBuffer] with MOMENTUM.
//   d = sign·g;  WD: d = fma(wd, p, d)
//   MOMENTUM: b = FIRST ? d : fma(1−τ, d, μ·b);  d = NESTEROV ? fma(μ, b, d) : b
//   p = fma(−γ, d, p)
struct sgd {
  OPTIM_LAYOUT(S, WD, MOMENTUM, ONE_MINUS_DAMPENING, NEG_LR, SIGN);
  OPTIM_LAYOUT(F, WD, MOMENTUM, NESTEROV, FIRST);
  OPTIM_LAYOUT(B, MOMENTUM_BUFFER);
  static constexpr int8_t when[B::COUNT] = {F::MOMENTUM};

  OPTIM_LOOP {
    OPTIM_TENSOR(t, buf);
    const decay<S, OPTIM_ON(WD), false, T> decayed(s);
    const T mom = T(s[S::MOMENTUM]), omd = T(s[S::ONE_MINUS_DAMPENING]), neg_lr = T(s[S::NEG_LR]);
    for (size_t i = 0; i < n; i++) {
      T d = decayed(p[i], g[i]);
      if (OPTIM_ON(MOMENTUM)) {
        const T b = OPTIM_ON(FIRST) ? d : madd(omd, d, buf[i] * mom);
        buf[i] = b;
        d = OPTIM_ON(NESTEROV) ? madd(mom, b, d) : b;
      }
      p[i] = madd(neg_lr, d, p[i]);
    }
  }
};
