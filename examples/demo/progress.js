'use strict';
// Training progress: a live cli-progress bar (epoch, loss, samples/s) on a terminal; one plain
// line per epoch elsewhere (CI logs, pipes), where a redrawn bar would be noise.
const cliProgress = require('cli-progress');

class Progress {
  constructor(stream = process.stdout) {
    this.stream = stream;
    this.tty = Boolean(stream.isTTY);
    this.bar = null;
  }

  /** A run of `total` batches over `epochs` epochs begins. */
  start(label, total, epochs) {
    this.label = label;
    this.epochs = epochs;
    if (!this.tty) return;
    this.bar = new cliProgress.SingleBar({
      format: '  {label} |{bar}| epoch {epoch}/{epochs} | loss {loss} | {rate} samples/s | {duration}s',
      barsize: 24,
      hideCursor: true,
      stream: this.stream,
      // Redraw from update() itself: the training loop is synchronous, so timers never fire.
      synchronousUpdate: true,
      fps: 10,
    }, cliProgress.Presets.shades_classic);
    this.bar.start(total, 0, { label, epoch: 1, epochs, loss: '-', rate: '-' });
  }

  /** After a batch: `done` batches so far, the current epoch (1-based), a running loss. */
  update(done, epoch, loss, samplesPerSecond) {
    if (this.bar) this.bar.update(done, { epoch, loss: loss.toFixed(4), rate: Math.round(samplesPerSecond).toLocaleString('en-US') });
  }

  /** At the end of an epoch: plain mode prints it. */
  epoch(text) {
    if (!this.tty) this.stream.write(`  ${this.label}  ${text}\n`);
  }

  /** The run is over: stop the bar, then print `text` (if any). */
  stop(text) {
    if (this.bar) {
      this.bar.stop();
      this.bar = null;
    }
    if (text) this.stream.write(`  ${this.label}  ${text}\n`);
  }
}

module.exports = { Progress };
