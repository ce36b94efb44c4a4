import { render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import AccuracyPanel from '../src/AccuracyPanel.jsx';
import RetrainModel from '../src/RetrainModel.jsx';
import { NO_SCORES_READING, accuracyReading, accuracyView, createClient, formatScore, percent } from '../src/api.js';
import { accuracyReport, installFetch, jsonResponse, openapiDoc } from './fakes.js';

const API = 'http://api.test';
const NO_SCORES = { error: { code: 'no_scores', message: 'no scored forecasts for any series yet', details: null } };

describe('accuracyReading', () => {
  it('reads the newest version\'s total in one sentence: error, value added, coverage, bias', () => {
    expect(accuracyReading(accuracyReport({ older: true }))).toBe(
      'From 2024-02-01 to 2024-02-14 (14 days scored): forecasts were off by 12% of volume, 8% less error '
      + 'than repeating last week; 93% of actuals fell inside the 95% band; slight over-forecast (+5%).');
  });

  it('says worse than naive, a clear under-forecast, weeks and a year-long naive', () => {
    const text = accuracyReading(accuracyReport({ total: { fva: -0.25, bias: -0.31, periods: 1 }, version: { frequency: 'W-SUN' } }));
    expect(text).toBe('On 2024-02-01 (1 week scored): forecasts were off by 12% of volume, 25% more error than '
      + 'repeating last year; 93% of actuals fell inside the 95% band; under-forecast by 31% of volume.');
    expect(accuracyReading(accuracyReport({ total: { fva: 0.001, bias: 0.004 } })))
      .toMatch(/, no better than repeating last week; .*; no lasting over- or under-forecast\.$/);
  });

  it('turns model_degraded and forecast_bias into a second sentence that says to retrain', () => {
    const text = accuracyReading(accuracyReport({
      total: { bias: -0.4 }, version: { live_mase: 1.9, backtest_mase: 0.8 }, warnings: ['model_degraded', 'forecast_bias'] }));
    expect(text.split('. ')[1]).toBe('Warning: it erred clearly more than in its backtest (MASE 1.90 against 0.80), and '
      + 'the forecast stayed below the actual sales in every day scored: retrain on recent data.');
    // a code the reading does not know is told by its message
    expect(accuracyReading(accuracyReport({ warnings: ['new_code'] }))).toMatch(/ Warning: new_code of v7\.$/);
  });

  it('says nothing was sold when there is no volume, and "nothing scored yet" without a report', () => {
    expect(accuracyReading(accuracyReport({ total: { wape: null, fva: null, bias: null } })))
      .toBe('From 2024-02-01 to 2024-02-14 (14 days scored): nothing was sold, so there is no volume to measure '
        + 'the error against; 93% of actuals fell inside the 95% band.');
    expect(accuracyReading(null)).toBe(NO_SCORES_READING);
  });

  it('picks the newest version with its own total, points and warnings', () => {
    const report = accuracyReport({ older: true, warnings: ['forecast_bias'] });
    report.warnings.push({ code: 'model_degraded', severity: 'warning', message: 'old', model_version: 'v6' });
    const view = accuracyView(report);
    expect(view.total).toMatchObject({ model_version: 'v7', level: 'total', wape: 0.12 });
    expect(view.points).toHaveLength(14);
    expect(view.warnings.map((w) => w.code)).toEqual(['forecast_bias']);
    expect(view.older).toBe(1);
  });

  it('formats scores', () => {
    expect([formatScore('mase', 0.714), formatScore('wape', 0.123), formatScore('bias', 0.05), formatScore('fva', -0.2),
      formatScore('coverage', null), percent(-0.001, true)]).toEqual(['0.71', '12%', '+5%', '-20%', '–', '0%']);
  });
});

describe('client.accuracy', () => {
  it('sends the selection\'s filled-in filters and answers null for no_scores', async () => {
    const srv = installFetch((req) => (req.url.includes('P1') ? jsonResponse(200, accuracyReport()) : jsonResponse(404, NO_SCORES)));
    const client = createClient({ apiBaseUrl: API });
    expect((await client.accuracy({ product_id: 'P1', store_id: 'S1', category: '' })).versions).toHaveLength(1);
    expect(srv.calls[0].url).toBe(`${API}/accuracy?product_id=P1&store_id=S1`);
    expect(await client.accuracy({})).toBeNull();
    expect(srv.calls[1].url).toBe(`${API}/accuracy`);
  });

  it('still throws any other error', async () => {
    installFetch(() => jsonResponse(404, { error: { code: 'unknown_series', message: "unknown product_id: 'P9'", details: null } }));
    await expect(createClient({ apiBaseUrl: API }).accuracy({ product_id: 'P9' })).rejects.toMatchObject({ code: 'unknown_series' });
  });
});

describe('AccuracyPanel', () => {
  it('shows the reading, the scores and forecast against actual for the selection', async () => {
    const srv = installFetch(() => jsonResponse(200, accuracyReport({ older: true })));
    render(<AccuracyPanel client={createClient({ apiBaseUrl: API })} selection={{ product_id: 'P1', store_id: '', category: '' }} />);
    expect(await screen.findByText(/forecasts were off by 12% of volume/)).toHaveAttribute('data-testid', 'accuracy-reading');
    expect(srv.calls[0].url).toBe(`${API}/accuracy?product_id=P1`);
    expect(screen.getByTestId('accuracy-version')).toHaveTextContent('Model v7 (trained on sales up to 2024-01-31) · 2 series · 1 older version scored too');
    expect(within(screen.getByTestId('acc-wape')).getByRole('definition')).toHaveTextContent('12%');
    expect(within(screen.getByTestId('acc-mase')).getByRole('definition')).toHaveTextContent('0.71');
    expect(within(screen.getByTestId('acc-coverage')).getByRole('definition')).toHaveTextContent('93%');
    const rows = within(screen.getByTestId('accuracy-table')).getAllByRole('row');
    expect(rows).toHaveLength(15);
    expect(within(rows[1]).getAllByRole('cell').map((c) => c.textContent)).toEqual(['2024-02-01', '20', '22', '19']);
    expect(screen.getByTestId('accuracy-chart').querySelectorAll('.recharts-line')).toHaveLength(3);
    expect(screen.queryByTestId('accuracy-error')).toBeNull();
  });

  it('says plainly that nothing is scored yet: no error, no scores', async () => {
    installFetch(() => jsonResponse(404, NO_SCORES));
    render(<AccuracyPanel client={createClient({ apiBaseUrl: API })} selection={{}} />);
    expect(await screen.findByText(NO_SCORES_READING)).toBeInTheDocument();
    expect(screen.queryByTestId('accuracy-error')).toBeNull();
    expect(screen.queryByTestId('accuracy-scores')).toBeNull();
  });

  it('shows any other failure as an error', async () => {
    installFetch(() => jsonResponse(500, { error: { code: 'server_error', message: 'boom', details: null } }));
    render(<AccuracyPanel client={createClient({ apiBaseUrl: API })} selection={{}} />);
    expect(await screen.findByTestId('accuracy-error')).toHaveTextContent('HTTP 500 · server_error: boom.');
    expect(screen.queryByTestId('accuracy-reading')).toBeNull();
  });

  it('comes with the forecast, for the forecast\'s selection', async () => {
    const srv = installFetch((req) => {
      const path = req.url.replace(API, '');
      if (path === '/openapi.json') return jsonResponse(200, openapiDoc());
      if (path === '/') return jsonResponse(200, { status: 'ok', model_version: 'v7' });
      if (path.startsWith('/series')) return jsonResponse(200, { items: [{ product_id: 'P1', store_id: 'S1', category: 'drinks' }], total: 1 });
      if (path === '/forecast') return jsonResponse(200, { model_version: 'v7', selection: {}, frequency: 'D', history: [], forecast: [], inventory: {}, warnings: [] });
      if (path.startsWith('/accuracy')) return jsonResponse(200, accuracyReport({ warnings: ['forecast_bias'] }));
      return jsonResponse(404, { error: { code: 'not_found', message: 'no route', details: null } });
    });
    const user = userEvent.setup();
    render(<RetrainModel apiBaseUrl={API} showForecast />);
    await waitFor(() => expect(within(screen.getByTestId('fc-store')).getAllByRole('option')).toHaveLength(2));
    await user.selectOptions(screen.getByTestId('fc-store'), 'S1');
    await user.click(screen.getByTestId('forecast-submit'));
    const reading = await screen.findByText(/Warning: the forecast stayed above the actual sales in every day scored\./);
    expect(reading).toHaveClass('rr-bad');
    expect(srv.calls.filter((c) => c.url.includes('/accuracy')).map((c) => c.url)).toEqual([`${API}/accuracy?store_id=S1`]);
  });
});
