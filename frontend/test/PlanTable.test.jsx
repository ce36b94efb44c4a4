import { render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import PlanTable from '../src/PlanTable.jsx';
import {
  createClient, explanationLines, formatPlanCell, nextPlanSort, planQuery, planRows, requestFields,
} from '../src/api.js';
import { installFetch, jsonResponse, openapiDoc, orderExplanation } from './fakes.js';
import { expectPlainError } from './helpers.js';

const API = 'http://api.test';
const FIELDS = requestFields(openapiDoc({ history: { type: 'integer', minimum: 1, maximum: 730 } }));

function row(product, store, extra = {}) {
  return {
    product_id: product, store_id: store, category: 'drinks', order_now: false, suggested_order_qty: 0,
    on_hand: 100, on_order: 0, inventory_position: 100, avg_daily_demand: 5, protection_interval_days: 7,
    demand_over_protection_interval: 35, safety_stock: 10, reorder_point: 45, order_up_to_level: 90,
    days_of_cover: 20, stockout_date: '2025-01-21', abc_class: 'A', xyz_class: 'X', demand_cv: 0.3, warnings: [], ...extra,
  };
}

/** A GET /plan answer shaped as the server's, rows in its urgency order. */
function plan() {
  return {
    model_version: 'v7', frequency: 'D', start: '2025-01-01', series: 4, abc_basis: 'volume', policy: {}, notes: {},
    rows: [
      row('P2', 'S1', {
        order_now: true, suggested_order_qty: 96, order_qty_before_constraints: 80.4, on_hand: 10, on_order: 25, inventory_position: 35,
        days_of_cover: 2, stockout_date: '2025-01-03', warnings: ['below_reorder_point', 'order_raised_to_moq', 'order_rounded_to_multiple'],
        explanation: orderExplanation({ demand: 35, safety: 10, size: 70.4, onHand: 10, onOrder: 25, moq: 90, multiple: 96 }),
      }),
      row('P1', 'S2', { order_now: true, suggested_order_qty: 40, on_hand: 30, days_of_cover: 6, category: 'snacks' }),
      row('P3', 'S1', { on_hand: 200, days_of_cover: 40, stockout_date: null }),
      row('P4', 'S2', { order_now: null, suggested_order_qty: null, on_hand: null, days_of_cover: null, stockout_date: null, category: 'snacks' }),
    ],
  };
}

const ids = (rows) => rows.map((r) => `${r.product_id}/${r.store_id}`);

describe('planRows', () => {
  it('keeps the server\'s order without a sort, and order-now rows first under any sort', () => {
    const rows = plan().rows;
    expect(ids(planRows(rows))).toEqual(['P2/S1', 'P1/S2', 'P3/S1', 'P4/S2']);
    expect(ids(planRows(rows, { sort: { key: 'product_id' } }))).toEqual(['P1/S2', 'P2/S1', 'P3/S1', 'P4/S2']);
    expect(ids(planRows(rows, { sort: { key: 'on_hand', descending: true } }))).toEqual(['P1/S2', 'P2/S1', 'P3/S1', 'P4/S2']);
  });

  it('sorts unknown cells last both ways', () => {
    const rows = plan().rows.map((r) => ({ ...r, order_now: false }));
    expect(ids(planRows(rows, { sort: { key: 'days_of_cover' } }))).toEqual(['P2/S1', 'P1/S2', 'P3/S1', 'P4/S2']);
    expect(ids(planRows(rows, { sort: { key: 'days_of_cover', descending: true } }))).toEqual(['P3/S1', 'P1/S2', 'P2/S1', 'P4/S2']);
  });

  it('filters on product, store and category, any case', () => {
    const rows = plan().rows;
    expect(ids(planRows(rows, { filter: 'SNACK' }))).toEqual(['P1/S2', 'P4/S2']);
    expect(ids(planRows(rows, { filter: ' s1 ' }))).toEqual(['P2/S1', 'P3/S1']);
    expect(planRows(rows, { filter: '2025' })).toEqual([]); // dates are not searched
  });

  it('cycles a header: ascending, descending, the server\'s order', () => {
    const asc = nextPlanSort(null, 'on_hand');
    expect(asc).toEqual({ key: 'on_hand', descending: false });
    expect(nextPlanSort(asc, 'on_hand')).toEqual({ key: 'on_hand', descending: true });
    expect(nextPlanSort({ key: 'on_hand', descending: true }, 'on_hand')).toBeNull();
    expect(nextPlanSort({ key: 'on_hand', descending: true }, 'store_id')).toEqual({ key: 'store_id', descending: false });
  });
});

describe('formatPlanCell and planQuery', () => {
  it('formats the cells', () => {
    expect(formatPlanCell('order_now', true)).toBe('yes');
    expect(formatPlanCell('order_now', null)).toBe('–');
    expect(formatPlanCell('suggested_order_qty', 1234.6)).toBe('1,235');
    expect(formatPlanCell('days_of_cover', 2.345)).toBe('2.3');
    expect(formatPlanCell('warnings', ['below_reorder_point', 'short_history'])).toBe('below reorder point, short history');
    expect(formatPlanCell('on_order', 25)).toBe('25');
    expect(explanationLines([{ step: 'order', quantity: 3, text: 'order 3.00' }])).toEqual(['order 3.00']);
    expect(explanationLines(undefined)).toEqual([]);
  });

  it('sends the selection, the horizon and the policy; not the stock on hand, history or chart', () => {
    const values = { days: '14', service_level: '0.9', on_hand: '80', cover_days: '' };
    expect(planQuery(FIELDS, values, { product_id: 'P1', store_id: '', category: 'drinks' }))
      .toEqual({ product_id: 'P1', category: 'drinks', days: 14, service_level: 0.9 });
    expect(() => planQuery(FIELDS, { service_level: '1.2' })).toThrow(/Service level/);
  });
});

describe('client.plan and client.downloadPlan', () => {
  it('GETs /plan with the query and the token', async () => {
    const srv = installFetch(() => jsonResponse(200, plan()));
    const client = createClient({ apiBaseUrl: API, getToken: () => 'tk' });
    expect((await client.plan({ product_id: ['P1', 'P2'], days: 14, store_id: '' })).series).toBe(4);
    expect(srv.calls[0].url).toBe(`${API}/plan?product_id=P1&product_id=P2&days=14`);
    expect(srv.calls[0].headers.Authorization).toBe('Bearer tk');
  });

  it('downloads the CSV with the token as plan.csv through a blob URL', async () => {
    URL.createObjectURL = vi.fn(() => 'blob:plan');
    URL.revokeObjectURL = vi.fn();
    const click = vi.spyOn(HTMLAnchorElement.prototype, 'click').mockImplementation(function record() {
      expect(this.href).toBe('blob:plan');
      expect(this.download).toBe('plan.csv');
    });
    onTestFinished(() => { delete URL.createObjectURL; delete URL.revokeObjectURL; click.mockRestore(); });
    const srv = installFetch(() => new Response('product_id,store_id\nP1,S1\n', { status: 200, headers: { 'Content-Type': 'text/csv' } }));
    await createClient({ apiBaseUrl: API, getToken: () => 'tk' }).downloadPlan({ category: 'drinks' });
    expect(srv.calls[0].url).toBe(`${API}/plan?category=drinks&format=csv`);
    expect(srv.calls[0].headers.Authorization).toBe('Bearer tk');
    expect(click).toHaveBeenCalledTimes(1);
    expect(await URL.createObjectURL.mock.calls[0][0].text()).toBe('product_id,store_id\nP1,S1\n');
    expect(document.querySelector('a[download]')).toBeNull(); // the link is gone after the click
  });
});

describe('PlanTable', () => {
  const renderTable = (values = { days: '14', service_level: '0.95', on_hand: '50' }) => {
    const client = createClient({ apiBaseUrl: API, getToken: () => 'tk' });
    render(<PlanTable client={client} fields={FIELDS} values={values} selection={{ product_id: '', store_id: 'S1', category: '' }} />);
    return client;
  };
  const shown = () => screen.getAllByTestId('plan-row').map((r) => within(r).getAllByRole('cell').slice(0, 2).map((c) => c.textContent).join('/'));

  it('loads the plan on request: order-now rows first, sorting by headers, the text filter', async () => {
    const srv = installFetch(() => jsonResponse(200, plan()));
    renderTable();
    expect(srv.calls).toHaveLength(0); // nothing until asked
    const user = userEvent.setup();
    await user.click(screen.getByTestId('plan-submit'));
    await screen.findByTestId('plan-table');
    expect(srv.calls[0].url).toBe(`${API}/plan?store_id=S1&days=14&service_level=0.95`);
    expect(screen.getByTestId('plan-reading')).toHaveTextContent('4 series, 2 to order now (model v7, from 2025-01-01).');
    expect(shown()).toEqual(['P2/S1', 'P1/S2', 'P3/S1', 'P4/S2']);
    expect(within(screen.getAllByTestId('plan-row')[0]).getAllByRole('cell').map((c) => c.textContent).slice(3, 9))
      .toEqual(['yes', '96Why?', '10', '25', '2', '2025-01-03']);
    expect(screen.getAllByRole('columnheader').map((h) => h.textContent).slice(4, 7)).toEqual(['Suggested order', 'On hand', 'On order']);

    await user.click(screen.getByTestId('plan-sort-product_id'));
    expect(shown()).toEqual(['P1/S2', 'P2/S1', 'P3/S1', 'P4/S2']);
    expect(screen.getByTestId('plan-sort-product_id').closest('th')).toHaveAttribute('aria-sort', 'ascending');
    await user.click(screen.getByTestId('plan-sort-product_id'));
    expect(shown()).toEqual(['P2/S1', 'P1/S2', 'P4/S2', 'P3/S1']);
    await user.click(screen.getByTestId('plan-sort-product_id'));
    expect(shown()).toEqual(['P2/S1', 'P1/S2', 'P3/S1', 'P4/S2']);

    await user.type(screen.getByTestId('plan-filter'), 'snacks');
    expect(shown()).toEqual(['P1/S2', 'P4/S2']);
    await user.clear(screen.getByTestId('plan-filter'));
    await user.type(screen.getByTestId('plan-filter'), 'nothing');
    expect(screen.queryAllByTestId('plan-row')).toHaveLength(0);
    expect(screen.getByTestId('plan-empty')).toBeInTheDocument();
  });

  it('shows each row\'s explanation on request, and the supplier constraints\' warnings as words', async () => {
    installFetch(() => jsonResponse(200, plan()));
    renderTable();
    const user = userEvent.setup();
    await user.click(screen.getByTestId('plan-submit'));
    await screen.findByTestId('plan-table');
    const first = screen.getAllByTestId('plan-row')[0];
    expect(first).toHaveTextContent('below reorder point, order raised to moq, order rounded to multiple');
    // only rows with an explanation have a toggle; it names its row and starts closed
    const why = screen.getByRole('button', { name: 'How the suggested order is reached for P2 at S1' });
    expect(screen.getAllByTestId('plan-why')).toEqual([why]);
    expect(why).toHaveAttribute('aria-expanded', 'false');
    const detail = document.getElementById(why.getAttribute('aria-controls'));
    expect(detail).not.toBeVisible();
    await user.click(why);
    expect(why).toHaveAttribute('aria-expanded', 'true');
    expect(detail).toBeVisible();
    expect(within(detail).getAllByRole('listitem').map((li) => li.textContent)).toEqual(explanationLines(plan().rows[0].explanation));
    expect(detail).toHaveTextContent('- inventory position 35.00 (on hand 10.00 + on order 25.00) = order 80.40');
    expect(detail).toHaveTextContent('raised to the minimum order quantity: 90.00');
    // it stays open under a new sort; a second click closes it
    await user.click(screen.getByTestId('plan-sort-on_order'));
    expect(screen.getByTestId('plan-explanation')).toBeVisible();
    await user.click(screen.getByTestId('plan-why'));
    expect(screen.getByTestId('plan-explanation')).not.toBeVisible();
  });

  it('downloads the CSV of the same query', async () => {
    const srv = installFetch(() => jsonResponse(200, plan()));
    const client = renderTable();
    const download = vi.spyOn(client, 'downloadPlan').mockResolvedValue(undefined);
    await userEvent.setup().click(screen.getByTestId('plan-download'));
    expect(download).toHaveBeenCalledWith({ store_id: 'S1', days: 14, service_level: 0.95 });
    expect(srv.calls).toHaveLength(0);
  });

  it.each([
    [409, 'no_model', 'no model has been trained yet'],
    [404, 'unknown_series', "unknown store_id: 'S1'"],
  ])('shows a %i %s plainly', (status, code, message) => expectPlainError({
    status, code, message, render: renderTable, submit: 'plan-submit', error: 'plan-error', table: 'plan-table',
  }));

  it('shows a failed download plainly, and names a bad form value without asking the server', async () => {
    installFetch(() => jsonResponse(503, { error: { code: 'unavailable', message: 'busy', details: null } }));
    renderTable();
    const user = userEvent.setup();
    await user.click(screen.getByTestId('plan-download'));
    expect(await screen.findByTestId('plan-error')).toHaveTextContent('HTTP 503 · unavailable: busy.');

    const srv = installFetch(() => jsonResponse(200, plan()));
    render(<PlanTable client={createClient({ apiBaseUrl: API })} fields={FIELDS} values={{ service_level: '2' }} selection={{}} />);
    await user.click(screen.getAllByTestId('plan-submit')[1]);
    expect(await screen.findByText(/Check the field "Service level"/)).toBeInTheDocument();
    expect(srv.calls).toHaveLength(0);
  });
});
