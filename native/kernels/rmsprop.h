// RMSprop (torch.optim.RMSprop, torch 1.13). State: [squareAvg, gradAvg (CENTERED),
// momentumBuffer (MOMENTUM)].
//   g = sign·g;  WD: g = fma(wd, p, g);  v = fma((1−α)·g, g, α·v)
//   CENTERED: ḡ = fma(1−α, g, α·ḡ), x = fma(−ḡ, ḡ, v); else x = v
//   a = √x + ε  (EPS_INSIDE: a = √(x + ε))
//   MOMENTUM: b = μ·b + g/a, p = fma(−γ, b, p); else p = p + (−γ·g)/a
struct rmsprop {
  OPTIM_LAYOUT(S, WD, ALPHA, ONE_MINUS_ALPHA, EPS, MOMENTUM, NEG_LR, SIGN);
  OPTIM_LAYOUT(F, WD, CENTERED, MOMENTUM, EPS_INSIDE);
  OPTIM_LAYOUT(B, SQUARE_AVG, GRAD_AVG, MOMENTUM_BUFFER);
  static constexpr int8_t when[B::COUNT] = {ALWAYS, F::CENTERED, F::MOMENTUM};

  template <typename T, uint32_t FL>
  static void loop(const TensorRef<T>& t, const double* s) {
    constexpr bool WD = FL & bit(F::WD), CENTERED = FL & bit(F::CENTERED);
    constexpr bool MOM = FL & bit(F::MOMENTUM), EPS_IN = FL & bit(F::EPS_INSIDE);
    OPTIM_TENSOR(t);
    T* __restrict sq = t.s[0];
    T* __restrict ga = CENTERED ? t.s[1] : nullptr;
    T* __restrict buf = MOM ? t.s[CENTERED ? 2 : 1] : nullptr;
    const T wd = T(s[S::WD]), alpha = T(s[S::ALPHA]);
    const T oma = T(s[S::ONE_MINUS_ALPHA]), eps = T(s[S::EPS]);
    const T mom = T(s[S::MOMENTUM]), neg_lr = T(s[S::NEG_LR]), sign = T(s[S::SIGN]);
    for (size_t i = 0; i < n; i++) {
      T gi = sign * g[i];
      if (WD) gi = madd(wd, p[i], gi);
      const T v = madd(oma * gi, gi, sq[i] * alpha);
      sq[i] = v;
      T x = v;
      if (CENTERED) {
        const T a = madd(oma, gi, ga[i] * alpha);
        ga[i] = a;
        x = madd(-a, a, v);
      }
      const T avg = EPS_IN ? vsqrt(x + eps) : vsqrt(x) + eps;
      if (MOM) {
        const T b = buf[i] * mom + gi / avg;
        buf[i] = b;
        p[i] = madd(neg_lr, b, p[i]);
      } else {
        p[i] = p[i] + (neg_lr * gi) / avg;
      }
    }
  }
};
