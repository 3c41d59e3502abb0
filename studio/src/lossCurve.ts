import { fill, h } from './dom';

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 320;
const HEIGHT = 120;
const PAD = 4;

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, String(value));
  return element;
}

/**
 * The training loss drawn as its reports arrive: one point per report, steps across (0 to the
 * training's total), loss up (0 to the highest seen), as an SVG polyline with no chart library.
 * The caption says the latest values in words, for a screen reader and for anyone reading numbers.
 */
export function lossCurve(): { element: HTMLElement; add: (step: number, total: number, loss: number) => void } {
  const points: { step: number; loss: number }[] = [];
  let total = 1;
  const line = svg('polyline', { class: 'loss-line', fill: 'none', 'vector-effect': 'non-scaling-stroke', points: '' });
  const top = svg('text', { x: PAD, y: 12, class: 'loss-axis' });
  const chart = svg('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: 'loss-chart', 'aria-hidden': 'true', focusable: 'false' });
  chart.append(svg('line', { x1: PAD, y1: HEIGHT - PAD, x2: WIDTH - PAD, y2: HEIGHT - PAD, class: 'loss-axis-line' }), top, line);
  const caption = h('figcaption', { id: 'loss-caption' }, 'No loss reported yet.');

  const draw = () => {
    const highest = Math.max(...points.map((p) => p.loss), Number.EPSILON);
    const x = (step: number) => PAD + ((WIDTH - 2 * PAD) * step) / total;
    const y = (loss: number) => HEIGHT - PAD - ((HEIGHT - 2 * PAD - 12) * loss) / highest;
    line.setAttribute('points', points.map((p) => `${x(p.step).toFixed(1)},${y(p.loss).toFixed(1)}`).join(' '));
    top.textContent = `loss ${highest.toPrecision(3)}`;
    const last = points.at(-1)!;
    fill(caption, `Training loss: ${points.length} report${points.length === 1 ? '' : 's'}; the latest ${last.loss.toPrecision(3)} at step ${last.step} of ${total}.`);
  };

  return {
    element: h('figure', { class: 'loss', 'aria-labelledby': 'loss-caption' }, chart, caption),
    add: (step, stepsInAll, loss) => {
      total = Math.max(stepsInAll, 1);
      // A training resumed from its checkpoint reports the steps after it again: they replace the earlier ones.
      while (points.length && points.at(-1)!.step >= step) points.pop();
      points.push({ step, loss });
      draw();
    },
  };
}
