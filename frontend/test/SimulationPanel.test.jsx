import { render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import SimulationPanel from '../src/SimulationPanel.jsx';
import { createClient, formatOutcome, requestFields, simulationBody, simulationReading } from '../src/api.js';
import { installFetch, jsonResponse, openapiDoc } from './fakes.js';
import { expectPlainError } from './helpers.js';

const API = 'http://api.test';
const FIELDS = requestFields(openapiDoc({ history: { type: 'integer', minimum: 1, maximum: 730 } }));

function outcome(csl, onHand, extra = {}) {
  return {
    target_service_level: 0.95, cycle_service_level: csl, fill_rate: 0.987, csl_vs_target: csl - 0.95,
    fill_rate_vs_target: 0.037, cycles: 45, stockout_periods: 2, periods: 182, demand: 5000,
    served_from_stock: 4935, average_on_hand: onHand, average_on_hand_value: null, orders: 45, ...extra,
  };
}

/** A POST /simulate report shaped as the server's SimulateResponse. */
function report(extra = {}) {
  return {
    model_version: 'v7', frequency: 'D', selection: { product_id: ['P1'], store_id: [], category: [], series: 2 },
    period: { start: '2024-06-01', end: '2024-11-29', periods: 182 }, policy: { service_level: 0.95 }, seed: 0,
    unit_cost: null,
    total: { restock: outcome(0.956, 3121.6), seed: outcome(0.951, 3098.2), min_max: outcome(0.9, 2500) },
    series: [], skipped: [], plot_url: '/plots/sim.png', ...extra,
  };
}

describe('simulationReading', () => {
  it('reads the three policies in one sentence: service level against the target and the stock held', () => {
    expect(simulationReading(report())).toBe(
      'Replayed over 182 days from 2024-06-01 to 2024-11-29 (2 series): restock\'s policy kept 95.6% of cycles '
      + 'free of stockouts against a 95% target, holding 3,122 units on average; the seed\'s rule 95.1% with 3,098; '
      + 'the min/max rule 90% with 2,500.');
  });

  it('counts weeks, says which series had no backtest, and "–" for a level without cycles', () => {
    const text = simulationReading(report({
      frequency: 'W-SUN', period: { start: '2024-06-02', end: '2024-06-02', periods: 1 }, skipped: ['P9/S1'],
      total: { restock: outcome(null, 10), seed: outcome(1, 12), min_max: outcome(1, 9) },
    }));
    expect(text).toBe('Replayed over 1 week from 2024-06-02 to 2024-06-02 (2 series): restock\'s policy kept – of '
      + 'cycles free of stockouts against a 95% target, holding 10 units on average; the seed\'s rule 100% with 12; '
      + 'the min/max rule 100% with 9. 1 series had no backtest to replay and was left out.');
    expect(simulationReading(null)).toBe('');
  });

  it('formats shares to a tenth of a percent and stock as whole units', () => {
    expect(formatOutcome('fill_rate', 0.98765)).toBe('98.8%');
    expect(formatOutcome('average_on_hand', 12345.6)).toBe('12,346');
    expect(formatOutcome('stockout_periods', null)).toBe('–');
  });
});

describe('simulationBody', () => {
  it('sends the selection and the policy, not the horizon, the history or the stock on hand', () => {
    const values = { days: '14', service_level: '0.9', lead_time_days: '5', on_hand: '80', cover_days: '' };
    expect(simulationBody(FIELDS, values, { product_id: 'P1', store_id: '', category: 'drinks' }))
      .toEqual({ product_id: 'P1', category: 'drinks', service_level: 0.9, lead_time_days: 5, plot: true });
  });

  it('refuses a value out of the declared bounds, naming the field', () => {
    expect(() => simulationBody(FIELDS, { service_level: '1.2' })).toThrow(/Service level/);
  });
});

describe('SimulationPanel', () => {
  const renderPanel = (values = { service_level: '0.95', lead_time_days: '7', days: '30' }) => {
    const client = createClient({ apiBaseUrl: API, getToken: () => 'tk' });
    render(<SimulationPanel client={client} fields={FIELDS} values={values} selection={{ product_id: 'P1', store_id: 'S1', category: '' }} />);
  };

  it('simulates the selection and policy on request: reading, the three policies\' figures, the chart', async () => {
    // jsdom has no object URLs: the panel's are stubbed here and removed after the test
    URL.createObjectURL = vi.fn(() => 'blob:chart');
    URL.revokeObjectURL = vi.fn();
    onTestFinished(() => { delete URL.createObjectURL; delete URL.revokeObjectURL; });
    const srv = installFetch((req) => {
      if (req.method === 'POST' && req.url === `${API}/simulate`) return jsonResponse(200, report());
      if (req.url === `${API}/plots/sim.png`) return new Response('png', { status: 200, headers: { 'Content-Type': 'image/png' } });
      return jsonResponse(404, { error: { code: 'not_found', message: 'no route', details: null } });
    });
    renderPanel();
    expect(srv.calls).toHaveLength(0); // nothing until asked
    await userEvent.setup().click(screen.getByTestId('simulate-submit'));

    expect(await screen.findByTestId('simulation-chart')).toHaveAttribute('src', 'blob:chart');
    const post = srv.calls.find((c) => c.method === 'POST');
    expect(JSON.parse(post.body)).toEqual({ product_id: 'P1', store_id: 'S1', service_level: 0.95, lead_time_days: 7, plot: true });
    expect(srv.calls.find((c) => c.url.endsWith('/plots/sim.png')).headers.Authorization).toBe('Bearer tk');
    expect(screen.getByTestId('simulation-reading')).toHaveTextContent(/^Replayed over 182 days .* restock's policy kept 95\.6%/);
    const restock = within(screen.getByTestId('sim-restock')).getAllByRole('cell').map((c) => c.textContent);
    expect(restock).toEqual(['95.6%', '98.7%', '2', '3,122', '45']); // no unit cost: no value column
    expect(screen.getByTestId('sim-seed')).toHaveTextContent("the seed's rule");
    expect(screen.getByTestId('sim-min_max')).toHaveTextContent('90%');
  });

  it.each([
    [404, 'no_backtest', 'no backtest period for the selection: the model version has no out-of-sample forecasts to replay'],
    [400, 'invalid_parameter', 'lead time 40 days is as long as the simulated period'],
  ])('shows a %i %s plainly', (status, code, message) => expectPlainError({
    status, code, message, render: renderPanel, submit: 'simulate-submit', error: 'simulation-error', table: 'simulation-table',
  }));

  it('names a bad form value without asking the server', async () => {
    const srv = installFetch(() => jsonResponse(200, report()));
    renderPanel({ service_level: '2' });
    await userEvent.setup().click(screen.getByTestId('simulate-submit'));
    expect(await screen.findByTestId('simulation-error')).toHaveTextContent('Check the field "Service level"');
    expect(srv.calls).toHaveLength(0);
  });
});
