// RAdam (torch.optim.RAdam, torch >= 2.0). State: [expAvg, expAvgSq].
//   DECOUPLED: p = p·(1 − γλ) first;  g = sign·g;  WD: g = fma(λ, p, g)
//   m = lerp(m, g, 1−β₁);  v = fma((1−β₂)·g, g, β₂·v);  m̂ = m / (1−β₁ᵗ)
//   RECTIFIED: p = p − ((m̂·γ)·(√(1−β₂ᵗ) / (√v + ε)))·r_t;  else p = p − m̂·γ
struct radam {
  OPTIM_LAYOUT(S, WD, ONE_MINUS_BETA1, BETA2, ONE_MINUS_BETA2, BC1, LR, BC2_SQRT, EPS, RECT, SIGN,
               DECAY_MUL);
  OPTIM_LAYOUT(F, WD, RECTIFIED, DECOUPLED);
  OPTIM_LAYOUT(B, EXP_AVG, EXP_AVG_SQ);
  static constexpr int8_t when[B::COUNT] = {ALWAYS, ALWAYS};

  template <typename T, uint32_t FL>
  static void loop(const TensorRef<T>& t, const double* s) {
    constexpr bool WD = FL & bit(F::WD), RECT = FL & bit(F::RECTIFIED);
    constexpr bool DECOUPLED = FL & bit(F::DECOUPLED);
    OPTIM_TENSOR(t);
    T* __restrict m = t.s[0];
    T* __restrict v = t.s[1];
    const T wd = T(s[S::WD]), omb1 = T(s[S::ONE_MINUS_BETA1]);
    const T b2 = T(s[S::BETA2]), omb2 = T(s[S::ONE_MINUS_BETA2]), bc1 = T(s[S::BC1]);
    const T lr = T(s[S::LR]), bc2_sqrt = T(s[S::BC2_SQRT]), eps = T(s[S::EPS]);
    const T rect = T(s[S::RECT]), sign = T(s[S::SIGN]), decay_mul = T(s[S::DECAY_MUL]);
    const bool small = omb1 < T(0.5) && omb1 > T(-0.5);
    for (size_t i = 0; i < n; i++) {
      T pi = p[i];
      const T gi = decayed_grad<WD, DECOUPLED>(pi, g[i], sign, wd, decay_mul);
      const T mi = lerp(m[i], gi, omb1, small);
      const T vi = second_moment(v[i], gi, b2, omb2);
      m[i] = mi;
      v[i] = vi;
      const T mh = mi / bc1;
      if (RECT) {
        const T adaptive = bc2_sqrt / (vsqrt(vi) + eps);
        p[i] = pi - ((mh * lr) * adaptive) * rect;
      } else {
        p[i] = pi - mh * lr;
      }
    }
  }
};
