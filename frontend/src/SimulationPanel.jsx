import { useEffect, useState } from 'react';
import {
  POLICY_LABELS, formatOutcome, simulatedPolicies, simulationBody, simulationFields, simulationReading,
} from './api.js';
import { ErrorPanel } from './parts.jsx';

/**
 * "Would this policy have worked?": on request, POST /simulate replays restock's policy, the
 * seed's rule and a min/max rule for the form's selection and policy values over the active
 * version's backtest; shows the reading, the three policies' figures and the server's chart
 * (the PNG of on hand per policy with orders and stockouts, fetched with the token).
 * On request only: a replay costs the server a loop per series and period.
 */
export default function SimulationPanel({ client, fields, values, selection }) {
  const [state, setState] = useState({ loading: false, report: null, error: null });
  const [image, setImage] = useState(null); // object URL of the chart, revoked when replaced
  useEffect(() => () => { if (image) URL.revokeObjectURL(image); }, [image]);

  const run = async () => {
    let body;
    try {
      body = simulationBody(fields, values, selection);
    } catch (error) {
      setState({ loading: false, report: null, error });
      return;
    }
    setState({ loading: true, report: null, error: null });
    setImage(null);
    try {
      const report = await client.simulate(body);
      setState({ loading: false, report, error: null });
      if (report.plot_url) setImage(URL.createObjectURL(await client.blob(report.plot_url)));
    } catch (error) {
      setState((s) => ({ ...s, loading: false, error }));
    }
  };

  const { report } = state;
  const policies = simulatedPolicies(report);
  const fieldsShown = simulationFields(report);
  return (
    <section className="rr-simulation-panel" aria-label="Would this policy have worked?" data-testid="simulation-panel">
      <h3>Would this policy have worked?</h3>
      <p className="rr-hint">Replays the policy above on the backtest's actual sales, next to the seed's rule and a min/max rule.</p>
      <div className="rr-actions">
        <button type="button" onClick={run} disabled={state.loading} data-testid="simulate-submit">
          {state.loading ? 'Simulating…' : 'Simulate the policy'}
        </button>
      </div>
      <ErrorPanel error={state.error} testId="simulation-error" />
      {report && (
        <>
          <p className="rr-reading" data-testid="simulation-reading">{simulationReading(report)}</p>
          <div className="rr-table-wrap">
            <table data-testid="simulation-table">
              <thead>
                <tr><th scope="col">Policy</th>{fieldsShown.map(([key, label]) => <th scope="col" key={key}>{label}</th>)}</tr>
              </thead>
              <tbody>
                {policies.map((name) => (
                  <tr key={name} data-testid={`sim-${name}`}>
                    <th scope="row">{POLICY_LABELS[name]}</th>
                    {fieldsShown.map(([key]) => <td className="rr-num" key={key}>{formatOutcome(key, report.total[name][key])}</td>)}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {image && (
            <img className="rr-simulation-chart" src={image} data-testid="simulation-chart"
              alt="On hand per policy over the simulated periods, with its orders and stockout periods" />
          )}
        </>
      )}
    </section>
  );
}
