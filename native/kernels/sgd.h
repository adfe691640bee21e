// SGD (torch.optim.SGD). State: [momentumBuffer] with MOMENTUM.
//   d = sign·g;  WD: d = fma(wd, p, d)
//   MOMENTUM: b = FIRST ? d : fma(1−τ, d, μ·b);  d = NESTEROV ? fma(μ, b, d) : b
//   p = fma(−γ, d, p)
struct sgd {
  OPTIM_LAYOUT(S, WD, MOMENTUM, ONE_MINUS_DAMPENING, NEG_LR, SIGN);
  OPTIM_LAYOUT(F, WD, MOMENTUM, NESTEROV, FIRST);
  OPTIM_LAYOUT(B, MOMENTUM_BUFFER);
  static constexpr int8_t when[B::COUNT] = {F::MOMENTUM};

  template <typename T, uint32_t FL>
  static void loop(const TensorRef<T>& t, const double* s) {
    constexpr bool WD = FL & bit(F::WD), MOM = FL & bit(F::MOMENTUM);
    constexpr bool NEST = FL & bit(F::NESTEROV), FIRST = FL & bit(F::FIRST);
    OPTIM_TENSOR(t);
    T* __restrict buf = t.s[0];
    const T wd = T(s[S::WD]), mom = T(s[S::MOMENTUM]);
    const T omd = T(s[S::ONE_MINUS_DAMPENING]), neg_lr = T(s[S::NEG_LR]), sign = T(s[S::SIGN]);
    for (size_t i = 0; i < n; i++) {
      T d = sign * g[i];
      if (WD) d = madd(wd, p[i], d);
      if (MOM) {
        const T b = FIRST ? d : madd(omd, d, buf[i] * mom);
        buf[i] = b;
        d = NEST ? madd(mom, b, d) : b;
      }
      p[i] = madd(neg_lr, d, p[i]);
    }
  }
};
