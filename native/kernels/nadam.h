// NAdam (torch.optim.NAdam, torch >= 2.0). State: [expAvg, expAvgSq].
//   DECOUPLED: p = p·(1 − γλ) first;  g = sign·g;  WD: g = fma(λ, p, g)
//   m = lerp(m, g, 1−β₁);  v = fma((1−β₂)·g, g, β₂·v);  d = √(v / (1−β₂ᵗ)) + ε
//   p = p + (c_g·g)/d;  p = p + (c_m·m)/d   (c_g, c_m: the μ-schedule coefficients, times −γ)
struct nadam {
  OPTIM_LAYOUT(S, WD, ONE_MINUS_BETA1, BETA2, ONE_MINUS_BETA2, BC2, EPS, COEF_GRAD, COEF_AVG, SIGN,
               DECAY_MUL);
  OPTIM_LAYOUT(F, WD, DECOUPLED);
  OPTIM_LAYOUT(B, EXP_AVG, EXP_AVG_SQ);
  static constexpr int8_t when[B::COUNT] = {ALWAYS, ALWAYS};

  template <typename T, uint32_t FL>
  static void loop(const TensorRef<T>& t, const double* s) {
    constexpr bool WD = FL & bit(F::WD), DECOUPLED = FL & bit(F::DECOUPLED);
    OPTIM_TENSOR(t);
    T* __restrict m = t.s[0];
    T* __restrict v = t.s[1];
    const T wd = T(s[S::WD]), omb1 = T(s[S::ONE_MINUS_BETA1]);
    const T b2 = T(s[S::BETA2]), omb2 = T(s[S::ONE_MINUS_BETA2]), bc2 = T(s[S::BC2]);
    const T eps = T(s[S::EPS]), cg = T(s[S::COEF_GRAD]), ca = T(s[S::COEF_AVG]);
    const T sign = T(s[S::SIGN]), decay_mul = T(s[S::DECAY_MUL]);
    const bool small = omb1 < T(0.5) && omb1 > T(-0.5);
    for (size_t i = 0; i < n; i++) {
      T pi = p[i];
      const T gi = decayed_grad<WD, DECOUPLED>(pi, g[i], sign, wd, decay_mul);
      const T mi = lerp(m[i], gi, omb1, small);
      const T vi = second_moment(v[i], gi, b2, omb2);
      m[i] = mi;
      v[i] = vi;
      const T denom = vsqrt(vi / bc2) + eps;
      pi = pi + (cg * gi) / denom;
      p[i] = pi + (ca * mi) / denom;
    }
  }
};
