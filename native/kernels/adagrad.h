// Adagrad (torch.optim.Adagrad, torch 1.13). State: [sum].
//   g = sign·g;  WD: g = fma(wd, p, g);  sum = fma(g, g, sum)
//   p = p + (−clr·g) / (√sum + ε),  clr = γ / (1 + (t−1)·η)
struct adagrad {
  OPTIM_LAYOUT(S, WD, NEG_CLR, EPS, SIGN);
  OPTIM_LAYOUT(F, WD);
  OPTIM_LAYOUT(B, SUM);
  static constexpr int8_t when[B::COUNT] = {ALWAYS};

  template <typename T, uint32_t FL>
  static void loop(const TensorRef<T>& t, const double* s) {
    constexpr bool WD = FL & bit(F::WD);
    OPTIM_TENSOR(t);
    T* __restrict sum = t.s[0];
    const T wd = T(s[S::WD]), neg_clr = T(s[S::NEG_CLR]);
    const T eps = T(s[S::EPS]), sign = T(s[S::SIGN]);
    for (size_t i = 0; i < n; i++) {
      T gi = sign * g[i];
      if (WD) gi = madd(wd, p[i], gi);
      const T acc = madd(gi, gi, sum[i]);
      sum[i] = acc;
      p[i] = p[i] + (neg_clr * gi) / (vsqrt(acc) + eps);
    }
  }
};
