'use strict';
// The parameter layouts the optimizer benchmarks step, and the gradient they fill in (the same
// values torch_adam.py builds for the PyTorch peer).
const optim = require('../dist/index.js');

function fillGrad(g) {
  for (let i = 0; i < g.length; i++) g[i] = (i & 1 ? 1e-2 : -1e-2) * (0.5 + (i % 97) / 97);
}

/** Each param owns its data and grad (param() allocates the grad). */
function separate(count, n) {
  return Array.from({ length: count }, () => {
    const p = optim.param(new Float32Array(n).fill(0.01));
    fillGrad(p.grad);
    return p;
  });
}

/** Data and grads as views of two large buffers: the layout a parameter arena would give. */
function views(count, n) {
  const data = new Float32Array(count * n).fill(0.01);
  const grad = new Float32Array(count * n);
  fillGrad(grad);
  return Array.from({ length: count }, (_, i) => {
    const p = optim.param(data.subarray(i * n, (i + 1) * n));
    p.grad = grad.subarray(i * n, (i + 1) * n);
    return p;
  });
}

/** Many small tensors against one large, 1e6 elements each (issue 13: 1000 × 1000 ≤ 1.15× one). */
const LAYOUTS = [
  { name: '1000 tensors × 1000 (separate buffers)', make: () => separate(1000, 1000), elements: 1e6 },
  { name: '1000 tensors × 1000 (data, grad as views of one buffer)', make: () => views(1000, 1000), elements: 1e6 },
  { name: '1 tensor × 1e6', make: () => separate(1, 1e6), elements: 1e6 },
];

/** Whether a layout is the single tensor the others are compared with. */
const isOneTensor = (layout) => layout === LAYOUTS[LAYOUTS.length - 1].name;

module.exports = { fillGrad, LAYOUTS, isOneTensor };
