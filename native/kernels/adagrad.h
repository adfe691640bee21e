// Adagrad (torch.optim.Adagrad, torch 1.13 and 2.13: the same arithmetic). State: [sum].
//   g = sign·g;  WD: g = fma(wd, p, g);  sum = fma(g, g, sum)
//   p = p + (−clr·g) / (√sum + ε),  clr = γ / (1 + (t−1)·η)
struct adagrad : unconditional_state {
  OPTIM_LAYOUT(S, WD, NEG_CLR, EPS, SIGN);
  OPTIM_LAYOUT(F, WD);
  OPTIM_LAYOUT(B, SUM);

  OPTIM_LOOP {
    OPTIM_TENSOR(t, sum);
    const decay<S, OPTIM_ON(WD), false, T> decayed(s);
    const T neg_clr = T(s[S::NEG_CLR]), eps = T(s[S::EPS]);
    for (size_t i = 0; i < n; i++) {
      const T gi = decayed(p[i], g[i]);
      const T acc = madd(gi, gi, sum[i]);
      sum[i] = acc;
      p[i] = p[i] + (neg_clr * gi) / (vsqrt(acc) + eps);
    }
  }
};
