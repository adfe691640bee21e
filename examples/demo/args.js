'use strict';
// Command-line options of `npm run demo` (node:util's parseArgs).
const path = require('node:path');
const { parseArgs } = require('node:util');

const USAGE = `Usage: npm run demo -- [options]

  --data DIR              folder with the Fashion-MNIST IDX files (default: Debian's
                          /usr/share/datasets/fashion-mnist; without either, a seeded synthetic
                          stand-in, with a notice)
  --synthetic             use the synthetic stand-in even when the files are there
  --epochs N              epochs of softmax regression (default 5)
  --batch-size N          minibatch size (default 128)
  --reference-budget S    seconds the reference-backend runs may take together (default 30);
                          a run that would take longer stops early and its time is extrapolated
  --state-dtype D         the optimizers' state storage: param (default: float32, as the
                          params) or bfloat16 (half the state memory; docs/bfloat16.md)
  --out DIR               where the chart and the summary go (default results/demo)
  --help                  this text
`;

function positiveInteger(name, text) {
  const v = Number(text);
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be an integer >= 1, got ${JSON.stringify(text)}`);
  return v;
}

/** The options, or null after printing the usage (for --help). Throws on a bad option. */
function readArgs(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      data: { type: 'string' },
      synthetic: { type: 'boolean', default: false },
      epochs: { type: 'string', default: '5' },
      'batch-size': { type: 'string', default: '128' },
      'reference-budget': { type: 'string', default: '30' },
      out: { type: 'string' },
      'state-dtype': { type: 'string', default: 'param' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return null;
  }
  const budget = Number(values['reference-budget']);
  if (!(budget > 0)) throw new Error(`--reference-budget must be a number of seconds > 0, got ${JSON.stringify(values['reference-budget'])}`);
  const stateDtype = values['state-dtype'];
  if (stateDtype !== 'param' && stateDtype !== 'bfloat16') {
    throw new Error(`--state-dtype must be param or bfloat16, got ${JSON.stringify(stateDtype)}`);
  }
  return {
    stateDtype,
    data: values.data === undefined ? undefined : path.resolve(values.data),
    synthetic: values.synthetic,
    epochs: positiveInteger('epochs', values.epochs),
    batchSize: positiveInteger('batch-size', values['batch-size']),
    referenceBudget: budget,
    out: path.resolve(values.out ?? path.join(__dirname, '..', '..', 'results', 'demo')),
  };
}

module.exports = { readArgs, USAGE };
