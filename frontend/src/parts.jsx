import { useLayoutEffect, useRef, useState } from 'react';
import { describeError } from './api.js';

/** A number for people (the client's formatNumber, which the plain page uses too). */
export { formatNumber as fmt } from './api.js';

/** Width of an element, following resizes; a fallback where layout is unavailable (jsdom). */
export function useWidth(fallback = 720) {
  const ref = useRef(null);
  const [width, setWidth] = useState(fallback);
  useLayoutEffect(() => {
    const node = ref.current;
    if (!node) return undefined;
    const measure = () => { const w = node.clientWidth; if (w > 0) setWidth(w); };
    measure();
    if (typeof ResizeObserver === 'undefined') {
      window.addEventListener('resize', measure);
      return () => window.removeEventListener('resize', measure);
    }
    const ro = new ResizeObserver(measure);
    ro.observe(node);
    return () => ro.disconnect();
  }, []);
  return [ref, width];
}

export function ProgressBar({ value, label, testId, indeterminate = false, variant }) {
  const pct = Math.round(Math.max(0, Math.min(1, value || 0)) * 100);
  return (
    <div
      className={`rr-bar${variant ? ` rr-bar-${variant}` : ''}${indeterminate ? ' rr-indeterminate' : ''}`}
      role="progressbar"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={indeterminate ? undefined : pct}
      data-testid={testId}
    >
      <div className="rr-bar-fill" style={{ width: `${pct}%` }} />
    </div>
  );
}

export function ErrorPanel({ error, testId = 'error-message', skipHint = false }) {
  if (!error) return null;
  const problems = Array.isArray(error?.details?.problems) ? error.details.problems : null;
  const total = typeof error?.details?.total === 'number' ? error.details.total : problems?.length || 0;
  return (
    <div className="rr-alert rr-error" role="alert" data-testid={testId}>
      <p className="rr-error-text">
        {describeError(error)}
        {problems && skipHint ? ' Tick "Skip bad rows" to store the good rows anyway.' : ''}
      </p>
      {problems && problems.length > 0 && (
        <div className="rr-table-wrap">
          <table data-testid="error-table">
            <caption>Problems found in the file</caption>
            <thead><tr><th scope="col">Row</th><th scope="col">Column</th><th scope="col">Problem</th></tr></thead>
            <tbody>
              {problems.map((p, i) => (
                <tr key={i}>
                  <td className="rr-num">{p.row ?? '–'}</td>
                  <td>{p.column ?? '–'}</td>
                  <td>{p.problem ?? JSON.stringify(p)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {problems && total > problems.length && (
        <p className="rr-hint" data-testid="error-more">
          {(total - problems.length).toLocaleString()} more problem{total - problems.length === 1 ? '' : 's'} not listed ({total.toLocaleString()} in all).
        </p>
      )}
    </div>
  );
}
