// RMSprop (torch.optim.RMSprop, torch 2.13 single-tensor path). State: [squareAvg, gradAvg (CENTERED),
// momentumBuffer (MOMENTUM)].
//   g = sign·g;  WD: g = fma(wd, p, g);  v = fma((1−α)·g, g, α·v)
//   CENTERED: ḡ = lerp(ḡ, g, 1−α) (fused: fma(1−α, g−ḡ, ḡ)), x = fma(−ḡ, ḡ, v); else x = v
//   a = √x + ε  (EPS_INSIDE: a = √(x + ε))
//   MOMENTUM: b = μ·b + g/a, p = fma(−γ, b, p); else p = p + (−γ·g)/a
struct rmsprop {
  OPTIM_LAYOUT(S, WD, ALPHA, ONE_MINUS_ALPHA, EPS, MOMENTUM, NEG_LR, SIGN);
  OPTIM_LAYOUT(F, WD, CENTERED, MOMENTUM, EPS_INSIDE);
  OPTIM_LAYOUT(B, SQUARE_AVG, GRAD_AVG, MOMENTUM_BUFFER);
  static constexpr int8_t when[B::COUNT] = {ALWAYS, F::CENTERED, F::MOMENTUM};

  OPTIM_LOOP {
    constexpr bool CENTERED = OPTIM_ON(CENTERED), MOM = OPTIM_ON(MOMENTUM);
    OPTIM_TENSOR(t, sq);
    // gradAvg and momentumBuffer follow squareAvg when their flags make them exist.
    OPTIM_STATE_PTR(ga, CENTERED ? t.s[1] : nullptr);
    OPTIM_STATE_PTR(buf, MOM ? t.s[CENTERED ? 2 : 1] : nullptr);
    const decay<S, OPTIM_ON(WD), false, T> decayed(s);
    const T alpha = T(s[S::ALPHA]), oma = T(s[S::ONE_MINUS_ALPHA]), eps = T(s[S::EPS]);
    const T mom = T(s[S::MOMENTUM]), neg_lr = T(s[S::NEG_LR]);
    const bool small = oma < T(0.5) && oma > T(-0.5);
    for (size_t i = 0; i < n; i++) {
      const T gi = decayed(p[i], g[i]);
      const T v = second_moment(sq[i], gi, alpha, oma);
      sq[i] = v;
      T x = v;
      if (CENTERED) {
        const T a = lerp_fused(ga[i], gi, oma, small);
        ga[i] = a;
        x = madd(-a, a, v);
      }
      const T avg = OPTIM_ON(EPS_INSIDE) ? vsqrt(x + eps) : vsqrt(x) + eps;
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
