import { useEffect, useState } from 'react';
import { CartesianGrid, Legend, Line, LineChart, Tooltip, XAxis, YAxis } from 'recharts';
import {
  ACCURACY_FIELDS, accuracyChartHeight, accuracyReading, accuracyVersionLine, accuracyView, formatScore, periodName,
} from './api.js';
import { ErrorPanel, fmt, useWidth } from './parts.jsx';

/**
 * How the forecasts of a selection fared against the actual sales (GET /accuracy): the
 * reading in words, forecast against actual per scored period, and the scores of the newest
 * scored version. Nothing scored yet is said plainly, not shown as an error.
 */
export default function AccuracyPanel({ client, selection }) {
  const [state, setState] = useState({ loading: true, report: null, error: null });
  const [ref, width] = useWidth();
  // a new request when the selection's values change, not each time an equal object is passed
  const asked = JSON.stringify(selection || {});
  useEffect(() => {
    const ctrl = new AbortController();
    setState({ loading: true, report: null, error: null });
    client.accuracy(JSON.parse(asked), { signal: ctrl.signal }).then(
      (report) => setState({ loading: false, report, error: null }),
      (error) => { if (error?.name !== 'AbortError') setState({ loading: false, report: null, error }); },
    );
    return () => ctrl.abort();
  }, [client, asked]);

  const view = accuracyView(state.report);
  const per = periodName(view?.version.frequency);
  return (
    <section className="rr-accuracy-panel" aria-label="How past forecasts fared" data-testid="accuracy-panel" ref={ref}>
      <h3>How past forecasts fared</h3>
      {state.loading && <p className="rr-hint" data-testid="accuracy-reading">Loading the scores…</p>}
      {!state.loading && !state.error && (
        <p className={view?.warnings.length ? 'rr-reading rr-bad' : 'rr-reading'} data-testid="accuracy-reading">{accuracyReading(state.report)}</p>
      )}
      <ErrorPanel error={state.error} testId="accuracy-error" />
      {view?.total && (
        <>
          <p className="rr-hint" data-testid="accuracy-version">
            {accuracyVersionLine(view)}
          </p>
          <div data-testid="accuracy-chart">
            <LineChart width={width} height={accuracyChartHeight(width)} data={view.points}
              margin={{ top: 12, right: 16, bottom: 8, left: 0 }} accessibilityLayer title="Forecast against actual"
              desc={`Actual sales and the forecast per ${per} of the scored dates, with the seasonal naive forecast.`}>
              <CartesianGrid stroke="#e6e9ee" vertical={false} />
              <XAxis dataKey="date" minTickGap={28} tick={{ fontSize: 11 }} />
              <YAxis tick={{ fontSize: 11 }} width={48} />
              <Tooltip formatter={(v) => fmt(v)} />
              <Legend wrapperStyle={{ fontSize: 12 }} />
              <Line dataKey="actual" name="Actual" stroke="#5b6676" dot={false} strokeWidth={1.8} isAnimationActive={false} />
              <Line dataKey="forecast" name="Forecast" stroke="#1f5fbf" dot={false} strokeWidth={2.2} isAnimationActive={false} />
              <Line dataKey="naive" name="Seasonal naive" stroke="#8a94a3" strokeDasharray="4 3" dot={false} strokeWidth={1.4} isAnimationActive={false} />
            </LineChart>
          </div>
          <dl className="rr-metrics" data-testid="accuracy-scores">
            {ACCURACY_FIELDS.map(([key, label]) => (
              <div key={key} data-testid={`acc-${key}`}>
                <dt>{label}</dt>
                <dd>{formatScore(key, view.total[key])}</dd>
              </div>
            ))}
          </dl>
          <details className="rr-more">
            <summary>Forecast against actual as a table</summary>
            <div className="rr-table-wrap">
              <table data-testid="accuracy-table">
                <thead><tr><th scope="col">Date</th><th scope="col">Actual</th><th scope="col">Forecast</th><th scope="col">Seasonal naive</th></tr></thead>
                <tbody>
                  {view.points.map((p) => (
                    <tr key={p.date}><td>{p.date}</td><td className="rr-num">{fmt(p.actual)}</td><td className="rr-num">{fmt(p.forecast)}</td><td className="rr-num">{fmt(p.naive)}</td></tr>
                  ))}
                </tbody>
              </table>
            </div>
          </details>
        </>
      )}
    </section>
  );
}
