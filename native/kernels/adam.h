// Adam / AdamW (torch.optim.Adam, torch 1.13). State: [expAvg, expAvgSq, maxExpAvgSq (AMSGRAD)].
//   DECOUPLED: p = p·(1 − γλ) first;  g = sign·g;  WD: g = fma(λ, p, g)
//   m = fma(1−β₁, g, β₁·m);  v = fma((1−β₂)·g, g, β₂·v);  AMSGRAD: v̂ = max(v̂, v), use v̂
//   p = p + (−γ/(1−β₁ᵗ)·m) / (√v / √(1−β₂ᵗ) + ε)
struct adam {
  OPTIM_LAYOUT(S, WD, BETA1, ONE_MINUS_BETA1, BETA2, ONE_MINUS_BETA2, NEG_STEP_SIZE, BC2_SQRT, EPS,
               SIGN, DECAY_MUL);
  OPTIM_LAYOUT(F, WD, AMSGRAD, DECOUPLED);
  OPTIM_LAYOUT(B, EXP_AVG, EXP_AVG_SQ, MAX_EXP_AVG_SQ);
  static constexpr int8_t when[B::COUNT] = {ALWAYS, ALWAYS, F::AMSGRAD};

  template <typename T, uint32_t FL>
  static void loop(const TensorRef<T>& t, const double* s) {
    constexpr bool WD = FL & bit(F::WD), AMS = FL & bit(F::AMSGRAD);
    constexpr bool DECOUPLED = FL & bit(F::DECOUPLED);
    OPTIM_TENSOR(t);
    T* __restrict m = t.s[0];
    T* __restrict v = t.s[1];
    T* __restrict vmax = AMS ? t.s[2] : nullptr;
    const T wd = T(s[S::WD]), b1 = T(s[S::BETA1]), omb1 = T(s[S::ONE_MINUS_BETA1]);
    const T b2 = T(s[S::BETA2]), omb2 = T(s[S::ONE_MINUS_BETA2]);
    const T neg_step = T(s[S::NEG_STEP_SIZE]), bc2_sqrt = T(s[S::BC2_SQRT]);
    const T eps = T(s[S::EPS]), sign = T(s[S::SIGN]), decay_mul = T(s[S::DECAY_MUL]);
    for (size_t i = 0; i < n; i++) {
      T pi = p[i];
      const T gi = decayed_grad<WD, DECOUPLED>(pi, g[i], sign, wd, decay_mul);
      const T mi = madd(omb1, gi, m[i] * b1);
      T vi = second_moment(v[i], gi, b2, omb2);
      m[i] = mi;
      v[i] = vi;
      if (AMS) {
        vi = maximum(vmax[i], vi);
        vmax[i] = vi;
      }
      const T denom = vsqrt(vi) / bc2_sqrt + eps;
      p[i] = pi + (neg_step * mi) / denom;
    }
  }
};
