import { Fragment, useId, useState } from 'react';
import {
  EXPLAIN_BUTTON, EXPLANATION_TITLE, PLAN_COLUMNS, PLAN_TEXT_COLUMNS, SORT_MARK, explainLabel, explanationLines,
  formatPlanCell, nextPlanSort, planQuery, planReading, planRowKey, planRows, planSortState,
} from './api.js';
import { ErrorPanel } from './parts.jsx';

/**
 * "What to order": on request, GET /plan for the form's selection and horizon and policy
 * values (each series with its own stored stock on hand and on order), as a table with the
 * rows to order now first (the server's urgency order), sortable by its column headers within
 * that, a text filter over product, store and category, each row's explanation of its order
 * behind a "Why?" toggle (a row under it, listing the steps), and a download of the whole plan
 * as CSV (fetched with the token). On request only: a plan of every series is the server's
 * largest answer.
 */
export default function PlanTable({ client, fields, values, selection }) {
  const [state, setState] = useState({ loading: false, plan: null, error: null });
  const [filter, setFilter] = useState('');
  const [sort, setSort] = useState(null);
  const [downloading, setDownloading] = useState(false);
  const [explained, setExplained] = useState(() => new Set()); // the rows whose explanation is open
  const uid = useId();
  const toggle = (key) => setExplained((open) => {
    const next = new Set(open);
    if (!next.delete(key)) next.add(key);
    return next;
  });

  /** The query of the form as it is now, or null with the form's problem shown. */
  const currentQuery = () => {
    try {
      return planQuery(fields, values, selection);
    } catch (error) {
      setState((s) => ({ ...s, loading: false, error }));
      return null;
    }
  };

  const load = async () => {
    const query = currentQuery();
    if (!query) return;
    setState({ loading: true, plan: null, error: null });
    try {
      setState({ loading: false, plan: await client.plan(query), error: null });
    } catch (error) {
      setState({ loading: false, plan: null, error });
    }
  };

  const download = async () => {
    const query = currentQuery();
    if (!query) return;
    setDownloading(true);
    setState((s) => ({ ...s, error: null }));
    try {
      await client.downloadPlan(query);
    } catch (error) {
      setState((s) => ({ ...s, error }));
    } finally {
      setDownloading(false);
    }
  };

  const { plan } = state;
  const rows = plan ? planRows(plan.rows, { filter, sort }) : [];
  return (
    <section className="rr-plan-panel" aria-label="What to order" data-testid="plan-panel">
      <h3>What to order</h3>
      <p className="rr-hint">One row per product and store of the selection above, with the policy above and each series' stored stock on hand and on order; the rows to order now first. &quot;Why?&quot; shows how a row's order is reached, step by step.</p>
      <div className="rr-actions">
        <button type="button" onClick={load} disabled={state.loading} data-testid="plan-submit">
          {state.loading ? 'Loading…' : 'Show what to order'}
        </button>
        <button type="button" onClick={download} disabled={downloading} data-testid="plan-download">
          {downloading ? 'Downloading…' : 'Download CSV'}
        </button>
      </div>
      <ErrorPanel error={state.error} testId="plan-error" />
      {plan && (
        <>
          <p className="rr-reading" data-testid="plan-reading">
            {planReading(plan)}
          </p>
          <label className="rr-plan-filter">
            Filter
            <input type="search" value={filter} onChange={(e) => setFilter(e.target.value)}
              placeholder="product, store or category" data-testid="plan-filter" />
          </label>
          <div className="rr-table-wrap">
            <table data-testid="plan-table">
              <thead>
                <tr>
                  {PLAN_COLUMNS.map(([key, label]) => {
                    const sorted = planSortState(sort, key);
                    return (
                      <th scope="col" key={key} aria-sort={sorted}>
                        <button type="button" className="rr-sort" onClick={() => setSort((s) => nextPlanSort(s, key))}
                          data-testid={`plan-sort-${key}`}>
                          {label}{SORT_MARK[sorted]}
                        </button>
                      </th>
                    );
                  })}
                </tr>
              </thead>
              <tbody>
                {rows.map((row, i) => {
                  const key = planRowKey(row);
                  const steps = explanationLines(row.explanation);
                  const open = explained.has(key);
                  const detailId = `${uid}-why-${i}`;
                  return (
                    <Fragment key={key}>
                      <tr className={row.order_now ? 'rr-order-now' : undefined} data-testid="plan-row">
                        {PLAN_COLUMNS.map(([column]) => (
                          <td key={column} className={PLAN_TEXT_COLUMNS.has(column) ? undefined : 'rr-num'}>
                            {formatPlanCell(column, row[column])}
                            {column === 'suggested_order_qty' && steps.length > 0 && (
                              <button type="button" className="rr-why" aria-expanded={open} aria-controls={detailId}
                                aria-label={explainLabel(row)} onClick={() => toggle(key)} data-testid="plan-why">
                                {EXPLAIN_BUTTON}
                              </button>
                            )}
                          </td>
                        ))}
                      </tr>
                      {steps.length > 0 && (
                        <tr id={detailId} className="rr-plan-explanation" hidden={!open} data-testid="plan-explanation">
                          <td colSpan={PLAN_COLUMNS.length}>
                            <p className="rr-explanation-title">{`${EXPLANATION_TITLE}:`}</p>
                            <ol className="rr-explanation">
                              {steps.map((text, n) => <li key={n}>{text}</li>)}
                            </ol>
                          </td>
                        </tr>
                      )}
                    </Fragment>
                  );
                })}
              </tbody>
            </table>
          </div>
          {!rows.length && <p className="rr-hint" data-testid="plan-empty">No row matches the filter.</p>}
        </>
      )}
    </section>
  );
}
