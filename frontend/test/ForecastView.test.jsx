import { render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import RetrainModel from '../src/RetrainModel.jsx';
import { installFetch, jsonResponse, openapiDoc, orderExplanation } from './fakes.js';

const API = 'http://api.test';
const SERIES = [
  { product_id: 'P1', store_id: 'S1', category: 'drinks', rows: 100 },
  { product_id: 'P2', store_id: 'S1', category: 'snacks', rows: 100 },
  { product_id: 'P3', store_id: 'S2', category: 'drinks', rows: 100 },
];
const day = (i) => new Date(Date.UTC(2024, 0, 1 + i)).toISOString().slice(0, 10);
const FORECAST = {
  model_version: 'v7',
  selection: { product_id: 'P1', store_id: 'S1' },
  frequency: 'daily',
  history: Array.from({ length: 30 }, (_, i) => ({ date: day(i), quantity: 10 + (i % 7) })),
  forecast: Array.from({ length: 14 }, (_, i) => ({ date: day(30 + i), yhat: 12, yhat_lower: 8, yhat_upper: 16, prophet: 13, lstm: 11 })),
  inventory: {
    safety_stock: 9.5, reorder_point: 93.5, min_level: 93.5, max_level: 300, order_quantity: 206.5, on_hand: 80,
    on_order: 30, inventory_position: 110, days_of_cover: 6.7, stockout_date: '2024-02-06', order_now: true,
    suggested_order_qty: 220, order_qty_before_constraints: 190, service_level: 0.95,
    lead_time_days: 7, avg_daily_demand: 12, review_period_days: 0,
    explanation: orderExplanation({ demand: 84, safety: 9.5, size: 206.5, onHand: 80, onOrder: 30, moq: 220 }),
  },
  warnings: [
    { code: 'short_history', severity: 'info', message: 'Only 30 days of history.' },
    { code: 'below_reorder_point', severity: 'critical', message: 'Stock is below the reorder point.' },
    { code: 'stale_model', severity: 'warning', message: 'The model is 12 days old.' },
  ],
  plot_url: '/plots/abc.png',
};

function server({ modelVersion = 'v7', forecast = () => jsonResponse(200, FORECAST), openapi = openapiDoc() } = {}) {
  return installFetch((req) => {
    const path = req.url.replace(API, '');
    if (req.method === 'GET' && path === '/openapi.json') return jsonResponse(openapi ? 200 : 404, openapi || { error: { code: 'not_found', message: 'no route', details: null } });
    if (req.method === 'GET' && path === '/') return jsonResponse(200, { status: 'ok', model_version: modelVersion, rows: 90, series: 3 });
    if (req.method === 'GET' && path.startsWith('/series')) {
      const offset = Number(new URL(req.url).searchParams.get('offset'));
      return jsonResponse(200, { items: SERIES.slice(offset), total: SERIES.length });
    }
    if (req.method === 'POST' && path === '/forecast') return forecast(req);
    if (req.method === 'GET' && path.startsWith('/plan?')) {
      return jsonResponse(200, { model_version: 'v7', start: '2024-01-31', series: 1, rows: [{ product_id: 'P1', store_id: 'S1', category: 'drinks', order_now: true }] });
    }
    return jsonResponse(404, { error: { code: 'not_found', message: 'no route', details: null } });
  });
}

describe('forecast view', () => {
  it('works without a retrain when a model exists: pickers from /series, chart, inventory, warnings, PNG link', async () => {
    const srv = server();
    const user = userEvent.setup();
    render(<RetrainModel apiBaseUrl={API} token="tk" showForecast />);

    expect(await screen.findByTestId('forecast-model')).toHaveTextContent('Active model: v7');
    await waitFor(() => expect(within(screen.getByTestId('fc-product')).getAllByRole('option')).toHaveLength(4));
    expect(within(screen.getByTestId('fc-store')).getAllByRole('option').map((o) => o.value)).toEqual(['', 'S1', 'S2']);
    expect(within(screen.getByTestId('fc-category')).getAllByRole('option').map((o) => o.value)).toEqual(['', 'drinks', 'snacks']);

    // the store narrows the products
    await user.selectOptions(screen.getByTestId('fc-store'), 'S1');
    expect(within(screen.getByTestId('fc-product')).getAllByRole('option').map((o) => o.value)).toEqual(['', 'P1', 'P2']);
    await user.selectOptions(screen.getByTestId('fc-product'), 'P1');
    await user.clear(screen.getByTestId('fc-days'));
    await user.type(screen.getByTestId('fc-days'), '14');
    await user.clear(screen.getByTestId('fc-lead-time'));
    await user.type(screen.getByTestId('fc-lead-time'), '7');
    await user.type(screen.getByTestId('fc-on-hand'), '80');
    await user.click(screen.getByTestId('forecast-submit'));

    const out = await screen.findByTestId('forecast-output');
    const post = srv.calls.find((c) => c.method === 'POST');
    expect(post.url).toBe(`${API}/forecast`);
    expect(post.headers.Authorization).toBe('Bearer tk');
    // the typed values only: the fields left blank (service level, cover days) are the server's
    expect(JSON.parse(post.body)).toEqual({ product_id: 'P1', store_id: 'S1', days: 14, lead_time_days: 7, on_hand: 80, plot: true });

    // chart drawn from the JSON (recharts SVG): history, forecast, band, reorder point
    const chart = screen.getByTestId('forecast-chart');
    const svg = chart.querySelector('svg');
    expect(svg).not.toBeNull();
    await waitFor(() => expect(chart.querySelectorAll('.recharts-line').length).toBeGreaterThanOrEqual(3));
    expect(chart.querySelector('.recharts-area')).not.toBeNull();
    expect(chart.querySelector('.recharts-reference-line')).not.toBeNull();
    expect(chart).toHaveTextContent('reorder point 93.5');

    expect(within(out).getByTestId('forecast-selection')).toHaveTextContent('Model v7 · Product id: P1 · Store id: S1 · daily');
    expect(screen.getByTestId('inv-reorder_point')).toHaveTextContent('Reorder point93.5');
    expect(screen.getByTestId('inv-safety_stock')).toHaveTextContent('9.5');
    expect(screen.getByTestId('inv-order_now')).toHaveTextContent('Yes');
    expect(screen.getByTestId('inv-service_level')).toHaveTextContent('95%');
    expect(screen.getByTestId('inv-review_period_days')).toHaveTextContent('Review period days0'); // unknown keys still shown
    // on order and the inventory position next to on hand; the order before the constraints
    const metrics = within(screen.getByTestId('inventory-metrics')).getAllByRole('term').map((t) => t.textContent);
    expect(metrics.slice(0, 3)).toEqual(['On hand', 'On order', 'Inventory position']);
    expect(screen.getByTestId('inv-on_order')).toHaveTextContent('On order30');
    expect(screen.getByTestId('inv-inventory_position')).toHaveTextContent('Inventory position110');
    expect(screen.getByTestId('inv-order_qty_before_constraints')).toHaveTextContent('Order before supplier constraints190');
    expect(screen.queryByTestId('inv-explanation')).toBeNull(); // a list: shown as its steps, not as a metric
    const steps = within(screen.getByTestId('inventory-explanation'));
    expect(steps.getByRole('heading')).toHaveTextContent('How the suggested order is reached');
    expect(steps.getAllByRole('listitem').map((li) => li.textContent)).toEqual(FORECAST.inventory.explanation.map((s) => s.text));
    expect(screen.getByTestId('order-banner')).toHaveTextContent('Suggested order: 220 units');

    const warnings = within(screen.getByTestId('warnings-list')).getAllByRole('listitem');
    expect(warnings.map((w) => w.dataset.severity)).toEqual(['critical', 'warning', 'info']);
    expect(warnings[0]).toHaveTextContent('Stock is below the reorder point.');
    expect(warnings[0]).toHaveTextContent('below_reorder_point');

    expect(screen.getByTestId('plot-link')).toHaveAttribute('href', `${API}/plots/abc.png`);
    // next to the forecast: the simulation of its policy, on request only
    expect(screen.getByTestId('simulate-submit')).toHaveTextContent('Simulate the policy');

    // what to order, for the form's selection and policy (its stock on hand is the server's)
    await user.click(screen.getByTestId('plan-submit'));
    expect(await screen.findAllByTestId('plan-row')).toHaveLength(1);
    expect(srv.calls.find((c) => c.url.includes('/plan?')).url)
      .toBe(`${API}/plan?product_id=P1&store_id=S1&days=14&lead_time_days=7`);
  });

  it('shows forecast errors plainly and says when no model exists yet', async () => {
    server({ forecast: () => jsonResponse(404, { error: { code: 'unknown_series', message: 'No series matches P9', details: null } }) });
    const onError = vi.fn();
    const user = userEvent.setup();
    render(<RetrainModel apiBaseUrl={API} showForecast onError={onError} />);
    await screen.findByTestId('forecast-form');
    await user.click(screen.getByTestId('forecast-submit'));
    expect(await screen.findByTestId('forecast-error')).toHaveTextContent('HTTP 404 · unknown_series: No series matches P9');
    expect(onError).toHaveBeenCalledWith(expect.objectContaining({ code: 'unknown_series' }));
    expect(screen.queryByTestId('forecast-output')).toBeNull();
  });

  it('asks for data when the server has no model', async () => {
    server({ modelVersion: null });
    render(<RetrainModel apiBaseUrl={API} showForecast />);
    await waitFor(() => expect(screen.getByTestId('server-status')).toHaveTextContent('no model yet'));
    expect(screen.getByTestId('forecast-model')).toHaveTextContent('No model is active yet');
    expect(screen.queryByTestId('forecast-form')).toBeNull();
  });

  it('takes the bounds and defaults (as placeholders) of its fields from /openapi.json, checks them, and asks for the charted history', async () => {
    const srv = server({ openapi: openapiDoc({ lead_time_days: { type: 'number', default: 5, exclusiveMinimum: 0, maximum: 42 }, history: { type: 'integer', default: 28, minimum: 0 } }) });
    const user = userEvent.setup();
    render(<RetrainModel apiBaseUrl={API} showForecast />);
    await screen.findByTestId('forecast-form');
    const lead = screen.getByTestId('fc-lead-time');
    await waitFor(() => expect(lead).toHaveAttribute('placeholder', '5 (default)'));
    expect(lead).toHaveValue(null);
    expect(lead).toHaveAttribute('max', '42');
    expect(lead).toHaveAttribute('min', '0');
    expect(screen.getByTestId('fc-service-level')).toHaveAttribute('max', '1');
    expect(screen.getByTestId('fc-service-level')).toHaveAttribute('placeholder', '0.95 (default)');
    expect(screen.getByTestId('fc-service-level')).toHaveValue(null);
    expect(screen.getByTestId('fc-days')).toHaveAttribute('step', '1');
    expect(screen.getByTestId('fc-days')).toHaveValue(null); // no default declared: the server's applies

    // an exclusive bound the browser cannot express is still checked, before any request
    await user.clear(screen.getByTestId('fc-service-level'));
    await user.type(screen.getByTestId('fc-service-level'), '1');
    await user.click(screen.getByTestId('forecast-submit'));
    expect(await screen.findByTestId('forecast-error')).toHaveTextContent('Check the field "Service level": must be less than 1.');
    expect(screen.getByTestId('fc-service-level')).toHaveFocus();
    await user.clear(lead);
    await user.type(lead, '43');
    await user.clear(screen.getByTestId('fc-service-level'));
    await user.type(screen.getByTestId('fc-service-level'), '0.9');
    await user.click(screen.getByTestId('forecast-submit'));
    expect(await screen.findByTestId('forecast-error')).toHaveTextContent('Check the field "Lead time (days)": must be at most 42.');
    expect(srv.calls.filter((c) => c.method === 'POST')).toHaveLength(0);

    await user.clear(lead);
    await user.type(lead, '42');
    await user.click(screen.getByTestId('forecast-submit'));
    await screen.findByTestId('forecast-output');
    expect(JSON.parse(srv.calls.find((c) => c.method === 'POST').body)).toEqual({ service_level: 0.9, lead_time_days: 42, history: 90, plot: true });
  });

  it('sends no policy field the user left blank, so the series\' item settings apply; a typed one is sent', async () => {
    const srv = server();
    const user = userEvent.setup();
    render(<RetrainModel apiBaseUrl={API} showForecast />);
    await waitFor(() => expect(screen.getByTestId('fc-lead-time')).toHaveAttribute('placeholder', '7 (default)'));
    expect(screen.getByTestId('fields-hint')).toHaveTextContent('A blank field is not sent');
    await waitFor(() => expect(within(screen.getByTestId('fc-product')).getAllByRole('option')).toHaveLength(4));
    await user.selectOptions(screen.getByTestId('fc-product'), 'P1');
    const sent = (method, path) => srv.calls.filter((c) => c.method === method && c.url.startsWith(`${API}${path}`)).at(-1);

    // untouched: the forecast, the plan and the simulation carry no policy field (the stub
    // answers /simulate with a 404: only what the panel sends matters here)
    await user.click(screen.getByTestId('forecast-submit'));
    await screen.findByTestId('forecast-output');
    expect(JSON.parse(sent('POST', '/forecast').body)).toEqual({ product_id: 'P1', plot: true });
    await user.click(screen.getByTestId('plan-submit'));
    await screen.findAllByTestId('plan-row');
    expect(sent('GET', '/plan?').url).toBe(`${API}/plan?product_id=P1`);
    await user.click(screen.getByTestId('simulate-submit'));
    await waitFor(() => expect(sent('POST', '/simulate')).toBeDefined());
    expect(JSON.parse(sent('POST', '/simulate').body)).toEqual({ product_id: 'P1', plot: true });

    // typed: sent as typed, to all three
    await user.type(screen.getByTestId('fc-lead-time'), '3');
    await user.type(screen.getByTestId('fc-service-level'), '0.9');
    await user.click(screen.getByTestId('forecast-submit'));
    await waitFor(() => expect(srv.calls.filter((c) => c.method === 'POST' && c.url === `${API}/forecast`)).toHaveLength(2));
    expect(JSON.parse(sent('POST', '/forecast').body)).toEqual({ product_id: 'P1', service_level: 0.9, lead_time_days: 3, plot: true });
    await user.click(screen.getByTestId('plan-submit'));
    await waitFor(() => expect(sent('GET', '/plan?').url).toBe(`${API}/plan?product_id=P1&service_level=0.9&lead_time_days=3`));
    await user.click(screen.getByTestId('simulate-submit'));
    await waitFor(() => expect(srv.calls.filter((c) => c.url === `${API}/simulate`)).toHaveLength(2));
    expect(JSON.parse(sent('POST', '/simulate').body)).toEqual({ product_id: 'P1', service_level: 0.9, lead_time_days: 3, plot: true });

    // cleared again: not sent again
    await user.clear(screen.getByTestId('fc-lead-time'));
    await user.click(screen.getByTestId('plan-submit'));
    await waitFor(() => expect(sent('GET', '/plan?').url).toBe(`${API}/plan?product_id=P1&service_level=0.9`));
  });

  it('still forecasts when /openapi.json cannot be read, leaving blank fields to the server', async () => {
    const srv = server({ openapi: null });
    const user = userEvent.setup();
    render(<RetrainModel apiBaseUrl={API} showForecast />);
    expect(await screen.findByTestId('bounds-status')).toHaveTextContent('Could not read the request\'s bounds from /openapi.json');
    expect(screen.getByTestId('fc-service-level')).not.toHaveAttribute('max');
    await user.type(screen.getByTestId('fc-lead-time'), '3');
    await user.click(screen.getByTestId('forecast-submit'));
    await screen.findByTestId('forecast-output');
    expect(JSON.parse(srv.calls.find((c) => c.method === 'POST').body)).toEqual({ lead_time_days: 3, plot: true });
  });
});
