import { useEffect, useId, useMemo, useState } from 'react';
import {
  Area, CartesianGrid, ComposedChart, Legend, Line, ReferenceLine, Tooltip, XAxis, YAxis,
} from 'recharts';
import {
  BLANK_FIELDS_HINT, EXPLANATION_TITLE, FORECAST_FIELDS, SEVERITY_ORDER, explanationLines, forecastBody, formatInventory,
  historyToChart, humanize, inputAttrs, inventoryFields, periodName,
} from './api.js';
import AccuracyPanel from './AccuracyPanel.jsx';
import PlanTable from './PlanTable.jsx';
import SimulationPanel from './SimulationPanel.jsx';
import { ErrorPanel, fmt, useWidth } from './parts.jsx';

const uniqueSorted = (values) => [...new Set(values.filter((v) => v !== null && v !== undefined && v !== '').map(String))]
  .sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));

/** Rows for the chart: history and forecast on one date axis, plus the projected stock. */
export function chartRows(resp, maxHistory) {
  const fc = resp.forecast || [];
  const histAll = resp.history || [];
  const keep = maxHistory ?? historyToChart(fc.length);
  const hist = histAll.slice(-keep);
  const byDate = new Map();
  const row = (date) => { if (!byDate.has(date)) byDate.set(date, { date }); return byDate.get(date); };
  for (const h of hist) row(h.date).quantity = h.quantity;
  for (const f of fc) {
    const r = row(f.date);
    r.yhat = f.yhat;
    r.lower = f.yhat_lower;
    r.upper = f.yhat_upper;
    if (typeof f.yhat_lower === 'number' && typeof f.yhat_upper === 'number') r.band = [Math.max(0, f.yhat_lower), Math.max(0, f.yhat_upper)];
    r.prophet = f.prophet;
    r.lstm = f.lstm;
  }
  const onHand = typeof resp.inventory?.on_hand === 'number' ? resp.inventory.on_hand : null;
  if (onHand !== null && fc.length) {
    let stock = onHand;
    if (hist.length) row(hist[hist.length - 1].date).stock = onHand;
    for (const f of fc) { stock = Math.max(0, stock - (typeof f.yhat === 'number' ? f.yhat : 0)); row(f.date).stock = stock; }
  }
  const rows = [...byDate.values()].sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : 0));
  return { rows, shownHistory: hist.length, totalHistory: histAll.length };
}

function ChartTooltip({ active, payload, label, reorderPoint }) {
  if (!active || !payload || !payload.length) return null;
  const r = payload[0].payload;
  return (
    <div className="rr-tooltip" data-testid="chart-tooltip">
      <strong>{label}</strong>
      {typeof r.quantity === 'number' && <div>Actual: {fmt(r.quantity)}</div>}
      {typeof r.yhat === 'number' && <div>Forecast: {fmt(r.yhat)}{typeof r.lower === 'number' ? ` (${fmt(r.lower)} – ${fmt(r.upper)})` : ''}</div>}
      {(typeof r.prophet === 'number' || typeof r.lstm === 'number') && <div>Prophet {fmt(r.prophet)} · LSTM {fmt(r.lstm)}</div>}
      {typeof r.stock === 'number' && <div>Projected stock: {fmt(r.stock)}</div>}
      {typeof reorderPoint === 'number' && <div>Reorder point: {fmt(reorderPoint)}</div>}
    </div>
  );
}

export function ForecastChart({ resp }) {
  const [ref, width] = useWidth();
  const { rows, shownHistory, totalHistory } = useMemo(() => chartRows(resp), [resp]);
  const inv = resp.inventory || {};
  const rop = typeof inv.reorder_point === 'number' ? inv.reorder_point : null;
  const hasStock = rows.some((r) => typeof r.stock === 'number');
  const hasRight = rop !== null || hasStock;
  const height = Math.round(Math.max(240, Math.min(400, width * 0.5)));
  const per = periodName(resp.frequency);
  const rightMax = Math.max(rop ?? 0, ...rows.map((r) => r.stock ?? 0)) * 1.05 || 1;
  return (
    <div className="rr-chart" ref={ref} data-testid="forecast-chart">
      <ComposedChart
        width={width}
        height={height}
        data={rows}
        margin={{ top: 16, right: hasRight ? 8 : 16, bottom: 8, left: 0 }}
        accessibilityLayer
        title="Forecast chart"
        desc={`Demand per ${per} with the forecast and its interval${hasRight ? '; stock level with the reorder point and projected stock' : ''}.`}
      >
        <CartesianGrid stroke="#e6e9ee" vertical={false} />
        <XAxis dataKey="date" minTickGap={28} tick={{ fontSize: 11 }} />
        <YAxis yAxisId="left" tick={{ fontSize: 11 }} width={48} label={{ value: `demand / ${per}`, angle: -90, position: 'insideLeft', fontSize: 11 }} />
        {hasRight && <YAxis yAxisId="right" orientation="right" tick={{ fontSize: 11 }} width={52} domain={[0, Math.ceil(rightMax)]} label={{ value: 'stock', angle: 90, position: 'insideRight', fontSize: 11 }} />}
        <Tooltip content={<ChartTooltip reorderPoint={rop} />} />
        <Legend wrapperStyle={{ fontSize: 12 }} />
        <Area yAxisId="left" dataKey="band" name="Interval" fill="rgba(31,95,191,0.18)" stroke="none" isAnimationActive={false} connectNulls />
        <Line yAxisId="left" dataKey="quantity" name="History" stroke="#5b6676" dot={false} strokeWidth={1.5} isAnimationActive={false} />
        <Line yAxisId="left" dataKey="yhat" name="Forecast" stroke="#1f5fbf" dot={false} strokeWidth={2.2} isAnimationActive={false} />
        {hasStock && <Line yAxisId="right" dataKey="stock" name="Projected stock" stroke="#1e7a3c" strokeDasharray="6 3" dot={false} strokeWidth={1.8} isAnimationActive={false} />}
        {rop !== null && (
          <ReferenceLine yAxisId="right" y={rop} stroke="#b3261e" strokeDasharray="4 4" strokeWidth={1.8} ifOverflow="extendDomain"
            label={{ value: `reorder point ${fmt(rop)}`, position: 'insideTopRight', fill: '#b3261e', fontSize: 11 }} />
        )}
      </ComposedChart>
      {totalHistory > shownHistory && <p className="rr-hint">Showing the last {shownHistory} of {totalHistory} history points.</p>}
    </div>
  );
}

export function InventoryMetrics({ inventory }) {
  const inv = inventory || {};
  const steps = explanationLines(inv.explanation);
  return (
    <>
      <dl className="rr-metrics" data-testid="inventory-metrics">
        {inventoryFields(inv).map(([k, label]) => (
          <div key={k} data-testid={`inv-${k}`} data-key={k} className={k === 'order_now' && inv[k] === true ? 'rr-highlight' : undefined}>
            <dt>{label}</dt>
            <dd>{formatInventory(k, inv[k])}</dd>
          </div>
        ))}
      </dl>
      {steps.length > 0 && (
        <div className="rr-inventory-explanation" data-testid="inventory-explanation">
          <h4>{EXPLANATION_TITLE}</h4>
          <ol className="rr-explanation">
            {steps.map((text, i) => <li key={i}>{text}</li>)}
          </ol>
        </div>
      )}
    </>
  );
}

export function WarningsList({ warnings }) {
  const list = [...(warnings || [])].sort((a, b) => (SEVERITY_ORDER[a.severity] ?? 3) - (SEVERITY_ORDER[b.severity] ?? 3));
  return (
    <ul className="rr-warnings" data-testid="warnings-list">
      {list.length === 0 && <li className="rr-none" data-severity="none">No warnings.</li>}
      {list.map((w, i) => (
        <li key={`${w.code}-${i}`} data-severity={w.severity || 'info'} data-code={w.code || ''}>
          <span className="rr-sev">{w.severity || 'info'}</span>
          {w.message}
          {w.code && <span className="rr-code"> ({w.code})</span>}
        </li>
      ))}
    </ul>
  );
}

// the first four fields are always shown, the rest under "More inventory options"
const NUMBER_FIELDS = FORECAST_FIELDS.slice(0, 4);
const MORE_FIELDS = FORECAST_FIELDS.slice(4);
const HINTS = { on_hand: ' (blank: latest stored)' };
const TEST_IDS = {
  days: 'fc-days', service_level: 'fc-service-level', lead_time_days: 'fc-lead-time', on_hand: 'fc-on-hand',
  lead_time_std_days: 'fc-lead-time-std', review_period_days: 'fc-review-period', ordering_cost: 'fc-ordering-cost',
  holding_cost: 'fc-holding-cost', cover_days: 'fc-cover-days',
};

/** Forecast form (pickers from /series) and its result: chart, inventory, warnings, PNG link. */
export default function ForecastView({ client, modelVersion, onError }) {
  const uid = useId();
  const [series, setSeries] = useState([]);
  const [seriesNote, setSeriesNote] = useState('');
  const [sel, setSel] = useState({ product_id: '', store_id: '', category: '' });
  const [values, setValues] = useState({});
  const [fields, setFields] = useState(null); // the request's fields and bounds from /openapi.json
  const [fieldsNote, setFieldsNote] = useState('');
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState(null);
  const [resp, setResp] = useState(null);
  const [asked, setAsked] = useState(null); // the selection of the forecast shown
  const [plotError, setPlotError] = useState(null);

  useEffect(() => {
    let alive = true;
    client.forecastFields().then((f) => {
      if (!alive) return;
      setFields(f); // the inputs show the defaults as placeholders (inputAttrs), blank fields are not sent
      setFieldsNote('');
    }, (err) => { if (alive) setFieldsNote(`Could not read the request's bounds from /openapi.json (${err.message}); the server still checks them.`); });
    return () => { alive = false; };
  }, [client]);

  useEffect(() => {
    if (!modelVersion) return undefined;
    let alive = true;
    (async () => {
      setSeriesNote('Loading series…');
      const items = [];
      let total = 0;
      try {
        for (let page = 0; page < 20; page++) {
          const r = await client.json('GET', `/series?limit=500&offset=${items.length}`);
          const got = r?.items || [];
          items.push(...got);
          total = typeof r?.total === 'number' ? r.total : items.length;
          if (!got.length || items.length >= total) break;
        }
        if (!alive) return;
        setSeries(items);
        setSeriesNote(items.length < total ? `Showing the first ${items.length.toLocaleString()} of ${total.toLocaleString()} series in the pickers.` : `${items.length.toLocaleString()} series available.`);
      } catch (err) {
        if (alive) setSeriesNote(`Could not load the series list: ${err.message}`);
      }
    })();
    return () => { alive = false; };
  }, [client, modelVersion]);

  const stores = useMemo(() => uniqueSorted(series.map((s) => s.store_id)), [series]);
  const categories = useMemo(() => uniqueSorted(series.map((s) => s.category)), [series]);
  const products = useMemo(() => uniqueSorted(series
    .filter((s) => (!sel.store_id || String(s.store_id) === sel.store_id) && (!sel.category || String(s.category) === sel.category))
    .map((s) => s.product_id)), [series, sel.store_id, sel.category]);
  const productValue = products.includes(sel.product_id) ? sel.product_id : '';

  if (!modelVersion) {
    return (
      <section className="rr-card" aria-label="Forecast" data-testid="forecast-section">
        <h2>Forecast and reorder</h2>
        <p className="rr-muted" data-testid="forecast-model">No model is active yet: upload data to train one.</p>
      </section>
    );
  }

  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    let body;
    try {
      body = forecastBody(fields, values, { product_id: productValue, store_id: sel.store_id, category: sel.category });
    } catch (err) {
      setError(err);
      e.currentTarget.elements.namedItem(err.field)?.focus();
      return;
    }
    setLoading(true);
    try {
      setResp(await client.json('POST', '/forecast', body));
      setAsked({ product_id: productValue, store_id: sel.store_id, category: sel.category });
    } catch (err) {
      setError(err);
      onError?.(err);
    } finally {
      setLoading(false);
    }
  };

  const openPlot = async (e) => {
    if (!client.headers().Authorization) return; // a plain link works without a token
    e.preventDefault();
    setPlotError(null);
    const win = window.open('', '_blank');
    try {
      const u = URL.createObjectURL(await client.blob(e.currentTarget.href));
      if (win) win.location.href = u; else window.location.href = u;
    } catch (err) {
      win?.close();
      setPlotError(err);
    }
  };

  const setValue = (name) => (e) => setValues((v) => ({ ...v, [name]: e.target.value }));
  const numberInput = (name, label) => (
    <div className="rr-field" key={name}>
      <label htmlFor={`${uid}-${name}`}>{label}{HINTS[name] || ''}</label>
      <input id={`${uid}-${name}`} name={name} type="number" inputMode="decimal" data-testid={TEST_IDS[name]}
        title={fields?.[name]?.description || undefined} value={values[name] ?? ''} onChange={setValue(name)} {...inputAttrs(fields?.[name])} />
    </div>
  );
  const selection = resp?.selection;
  const selText = selection && typeof selection === 'object'
    ? Object.entries(selection).filter(([, v]) => v !== null && v !== undefined && v !== '' && !(Array.isArray(v) && !v.length))
      .map(([k, v]) => `${humanize(k)}: ${Array.isArray(v) ? v.join(', ') : typeof v === 'object' ? JSON.stringify(v) : v}`).join(' · ')
    : selection ? String(selection) : '';
  const inv = resp?.inventory || {};

  return (
    <section className="rr-card" aria-label="Forecast" data-testid="forecast-section">
      <h2>Forecast and reorder</h2>
      <p className="rr-muted" data-testid="forecast-model">Active model: {modelVersion}</p>
      <form onSubmit={submit} noValidate data-testid="forecast-form">
        <div className="rr-grid">
          <div className="rr-field">
            <label htmlFor={`${uid}-product`}>Product</label>
            <select id={`${uid}-product`} name="product_id" data-testid="fc-product" value={productValue} onChange={(e) => setSel((s) => ({ ...s, product_id: e.target.value }))}>
              <option value="">All products</option>
              {products.map((p) => <option key={p} value={p}>{p}</option>)}
            </select>
          </div>
          <div className="rr-field">
            <label htmlFor={`${uid}-store`}>Store</label>
            <select id={`${uid}-store`} name="store_id" data-testid="fc-store" value={sel.store_id} onChange={(e) => setSel((s) => ({ ...s, store_id: e.target.value }))}>
              <option value="">All stores</option>
              {stores.map((p) => <option key={p} value={p}>{p}</option>)}
            </select>
          </div>
          <div className="rr-field">
            <label htmlFor={`${uid}-category`}>Category</label>
            <select id={`${uid}-category`} name="category" data-testid="fc-category" value={sel.category} onChange={(e) => setSel((s) => ({ ...s, category: e.target.value }))}>
              <option value="">All categories</option>
              {categories.map((p) => <option key={p} value={p}>{p}</option>)}
            </select>
          </div>
          {NUMBER_FIELDS.map(([name, label]) => numberInput(name, label))}
        </div>
        <details className="rr-more">
          <summary>More inventory options</summary>
          <div className="rr-grid">
            {MORE_FIELDS.map(([name, label]) => numberInput(name, label))}
          </div>
        </details>
        <p className="rr-hint" data-testid="fields-hint">{BLANK_FIELDS_HINT}</p>
        <p className="rr-hint" data-testid="series-status" aria-live="polite">{seriesNote}</p>
        {fieldsNote && <p className="rr-hint" data-testid="bounds-status">{fieldsNote}</p>}
        <div className="rr-actions">
          <button type="submit" disabled={loading} data-testid="forecast-submit">{loading ? 'Loading…' : 'Show forecast'}</button>
        </div>
      </form>
      <ErrorPanel error={error} testId="forecast-error" />

      {resp && (
        <div data-testid="forecast-output">
          <p className="rr-forecast-line" data-testid="forecast-selection">
            Model {resp.model_version || '?'} · {selText || 'all series'}{resp.frequency ? ` · ${resp.frequency}` : ''}
          </p>
          {inv.order_now === true && (
            <div className="rr-alert rr-error" data-testid="order-banner">
              Order now: stock is at or below the reorder point{inv.suggested_order_qty != null ? `. Suggested order: ${fmt(inv.suggested_order_qty)} units.` : '.'}
            </div>
          )}
          <ForecastChart resp={resp} />
          <div className="rr-two-col">
            <div>
              <h3>Inventory</h3>
              <InventoryMetrics inventory={inv} />
            </div>
            <div>
              <h3>Warnings</h3>
              <WarningsList warnings={resp.warnings} />
              {resp.plot_url && (
                <p>
                  <a href={client.url(resp.plot_url)} target="_blank" rel="noopener noreferrer" data-testid="plot-link" data-plot-url={resp.plot_url} onClick={openPlot}>
                    Open the chart as PNG
                  </a>
                </p>
              )}
              <ErrorPanel error={plotError} testId="plot-error" />
            </div>
          </div>
          <AccuracyPanel client={client} selection={asked} />
          <SimulationPanel client={client} fields={fields} values={values}
            selection={{ product_id: productValue, store_id: sel.store_id, category: sel.category }} />
        </div>
      )}
      <PlanTable client={client} fields={fields} values={values}
        selection={{ product_id: productValue, store_id: sel.store_id, category: sel.category }} />
    </section>
  );
}
