// Rprop (torch.optim.Rprop, torch 2.13 single-tensor path). State: [prev, stepSize].
//   g = sign·g;  f = η₊ if g·prev > 0, η₋ if < 0, 1 if = 0 (NaN stays NaN)
//   stepSize = clamp(stepSize·f, min, max);  g = 0 where f = η₋
//   p = p − sgn(g)·stepSize;  prev = g
// Every product is by ±1 or 0 but stepSize·f: the result does not depend on fused multiply-adds.
struct rprop : unconditional_state {
  OPTIM_LAYOUT(S, ETA_MINUS, ETA_PLUS, STEP_MIN, STEP_MAX, SIGN);
  OPTIM_NO_LAYOUT(F);
  OPTIM_LAYOUT(B, PREV, STEP_SIZE);

  OPTIM_LOOP {
    OPTIM_TENSOR(t, prev, step);
    const T eta_minus = T(s[S::ETA_MINUS]), eta_plus = T(s[S::ETA_PLUS]);
    const T lo = T(s[S::STEP_MIN]), hi = T(s[S::STEP_MAX]), sign = T(s[S::SIGN]);
    const T nan = __builtin_nan("");
    for (size_t i = 0; i < n; i++) {
      T gi = sign * g[i];
      const T prod = gi * prev[i];
      // Flat selects, each on its own compare (nested ones are control flow that GCC does not
      // if-convert for AVX2 or SSE2: the loop ran one element at a time there).
      T f = prod == T(0) ? T(1) : nan;
      f = prod < T(0) ? eta_minus : f;
      f = prod > T(0) ? eta_plus : f;
      const T x = step[i] * f;
      T st = x > hi ? hi : x;
      st = x < lo ? lo : st;
      step[i] = st;
      gi = f == eta_minus ? T(0) : gi;
      T sgn = gi > T(0) ? T(1) : T(0);
      sgn = gi < T(0) ? T(-1) : sgn;
      p[i] = p[i] - sgn * st;
      prev[i] = gi;
    }
  }
};
