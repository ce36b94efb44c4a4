import { act, render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import RetrainModel from '../src/RetrainModel.jsx';
import { csvFile, installFetch, installXHR, jsonResponse, sseStream } from './fakes.js';

const API = 'http://api.test';
const ACCEPTED = {
  job_id: 'j1', status: 'queued', status_url: '/jobs/j1', events_url: '/jobs/j1/events',
  upload: { rows_read: 1200, inserted: 1000, updated: 200 },
};
const METRICS = {
  ensemble: { mase: 0.812, wape: 0.21, smape: 0.23, bias: -0.01 },
  seasonal_naive: { mase: 1.0, wape: 0.27, smape: 0.29, bias: 0.0 },
  prophet: { mase: 0.87, wape: 0.23, smape: 0.25, bias: 0.02 },
  lstm: { mase: 0.9, wape: 0.24, smape: 0.25, bias: -0.03 },
};

/** A server: GET / health, the job's event streams (one per connection), GET/DELETE the job. */
function fakeServer({ modelVersion = null, jobStatus = 'running', onDelete } = {}) {
  const streams = [];
  let resolveStream;
  let nextStream = new Promise((r) => { resolveStream = r; });
  const server = installFetch((req) => {
    const path = req.url.replace(API, '');
    if (req.method === 'GET' && path === '/') return jsonResponse(200, { status: 'ok', model_version: modelVersion, rows: 10, series: 2, queue: 'thread' });
    if (req.method === 'GET' && path === '/jobs/j1/events') {
      const s = sseStream(req.signal);
      streams.push({ ...s.ctl, req });
      resolveStream(s.ctl);
      nextStream = new Promise((r) => { resolveStream = r; });
      return s.response;
    }
    if (req.method === 'GET' && path === '/jobs/j1') return jsonResponse(200, { job_id: 'j1', status: jobStatus, stage: 'lstm', progress: 0.5 });
    if (req.method === 'DELETE' && path === '/jobs/j1') return onDelete ? onDelete(req) : jsonResponse(202, { job_id: 'j1', status: 'running' });
    return jsonResponse(404, { error: { code: 'not_found', message: `no route ${req.method} ${path}`, details: null } });
  });
  return { ...server, streams, stream: () => nextStream, currentStreams: () => streams };
}

async function uploadAndAccept(user, XHR, { accept = ACCEPTED } = {}) {
  await user.upload(screen.getByTestId('file-input'), csvFile());
  await user.click(screen.getByTestId('upload-button'));
  const xhr = XHR.instances.at(-1);
  expect(xhr).toBeTruthy();
  if (accept) act(() => xhr.respond(202, accept));
  return xhr;
}

describe('RetrainModel', () => {
  it('uploads with progress, follows the stream to done and shows the new version and its accuracy', async () => {
    const XHR = installXHR();
    const srv = fakeServer();
    const onComplete = vi.fn();
    const onError = vi.fn();
    const user = userEvent.setup();
    render(<RetrainModel apiBaseUrl={`${API}/`} token="tok-1" onComplete={onComplete} onError={onError} />);

    await user.upload(screen.getByTestId('file-input'), csvFile());
    expect(screen.getByTestId('file-name')).toHaveTextContent('sales.csv');
    await user.click(screen.getByTestId('upload-button'));

    const xhr = XHR.instances[0];
    expect(xhr.method).toBe('POST');
    expect(xhr.url).toBe(`${API}/retrain`);
    expect(xhr.headers.Authorization).toBe('Bearer tok-1');
    expect(xhr.body.get('file').name).toBe('sales.csv');
    expect(xhr.body.get('weights')).toBe('auto');
    expect(xhr.body.get('on_error')).toBeNull();

    act(() => xhr.progress(50, 100));
    expect(screen.getByTestId('upload-progress')).toHaveAttribute('aria-valuenow', '50');
    const streamP = srv.stream();
    act(() => xhr.respond(202, ACCEPTED));
    expect(await screen.findByTestId('upload-summary')).toHaveTextContent('rows read: 1,200');
    expect(screen.getByTestId('job-id')).toHaveTextContent('j1');

    const sse = await streamP;
    const req = srv.streams[0].req;
    expect(req.url).toBe(`${API}/jobs/j1/events`);
    expect(req.headers.Authorization).toBe('Bearer tok-1');
    expect(req.headers.Accept).toBe('text/event-stream');
    expect(req.headers['Last-Event-ID']).toBeUndefined();
    // only CORS-allowed headers: restock's preflight does not list Cache-Control
    expect(Object.keys(req.headers).sort()).toEqual(['Accept', 'Authorization']);

    act(() => {
      sse.send(': heartbeat\n\n');
      sse.event(1, 'progress', { stage: 'validate', progress: 0.02, message: 'checking' });
      sse.event(2, 'progress', { stage: 'lstm', progress: 0.55, message: 'training', epoch: 3, epochs: 10, loss: 0.12345, val_loss: 0.2 });
    });
    await waitFor(() => expect(screen.getByTestId('stage-lstm')).toHaveAttribute('data-state', 'current'));
    expect(screen.getByTestId('stage-lstm')).toHaveAttribute('aria-current', 'step');
    expect(screen.getByTestId('stage-validate')).toHaveAttribute('data-state', 'done');
    expect(screen.getByTestId('stage-ensemble')).toHaveAttribute('data-state', 'pending');
    expect(screen.getByTestId('overall-progress')).toHaveAttribute('aria-valuenow', '55');
    expect(screen.getByTestId('epoch-text')).toHaveTextContent('LSTM epoch 3 of 10');
    expect(screen.getByTestId('epoch-loss')).toHaveTextContent('loss 0.1235');
    expect(screen.getByTestId('epoch-progress')).toHaveAttribute('aria-valuenow', '30');
    expect(screen.getByTestId('job-status')).toHaveTextContent('running');
    expect(screen.getByTestId('cancel-button')).toBeEnabled();

    act(() => {
      sse.event(3, 'progress', { stage: 'done', progress: 1, message: 'done' });
      sse.event(4, 'done', { model_version: 'v42', metrics: METRICS });
    });
    expect(await screen.findByTestId('model-version')).toHaveTextContent('v42');
    expect(screen.getByTestId('accuracy-summary')).toHaveTextContent('ensemble 0.812 vs seasonal naive 1');
    expect(screen.getByTestId('accuracy-summary')).toHaveTextContent('18.8% lower error');
    expect(screen.getByTestId('metric-ensemble-mase')).toHaveTextContent('0.812');
    expect(screen.getByTestId('metric-seasonal_naive-mase')).toHaveTextContent('1');
    expect(screen.getByTestId('job-status')).toHaveTextContent('succeeded');
    expect(screen.getByTestId('stage-done')).toHaveAttribute('data-state', 'done');
    expect(screen.queryByTestId('cancel-button')).toBeNull();
    expect(onComplete).toHaveBeenCalledWith('v42');
    expect(onError).not.toHaveBeenCalled();
    expect(screen.queryByTestId('error-message')).toBeNull();
  });

  it('shows the validation problems as a table with the count of the ones not listed', async () => {
    const XHR = installXHR();
    fakeServer();
    const onError = vi.fn();
    const user = userEvent.setup();
    render(<RetrainModel apiBaseUrl={API} onError={onError} />);
    const xhr = await uploadAndAccept(user, XHR, { accept: null });
    expect(xhr.headers.Authorization).toBeUndefined();
    act(() => xhr.respond(422, { error: { code: 'invalid_data', message: 'The file has 5 invalid rows; nothing was stored.', details: {
      problems: [{ row: 2, column: 'date', problem: 'not a date: "2024-13-01"' }, { row: 7, column: 'quantity', problem: 'must be >= 0' }],
      total: 5,
    } } }));

    const table = await screen.findByTestId('error-table');
    const rows = within(table).getAllByRole('row');
    expect(rows).toHaveLength(3); // header + 2
    expect(rows[1]).toHaveTextContent('2date');
    expect(rows[2]).toHaveTextContent('must be >= 0');
    expect(screen.getByTestId('error-more')).toHaveTextContent('3 more problems not listed (5 in all)');
    expect(screen.getByTestId('error-message')).toHaveTextContent('HTTP 422 · invalid_data: The file has 5 invalid rows');
    expect(onError).toHaveBeenCalledWith(expect.objectContaining({ status: 422, code: 'invalid_data' }));
    expect(screen.queryByTestId('training')).toBeNull();
    expect(screen.getByTestId('upload-button')).toBeEnabled(); // can fix the file and try again
  });

  it('shows server errors plainly, including non-JSON ones and lost connections', async () => {
    const XHR = installXHR();
    fakeServer();
    const user = userEvent.setup();
    render(<RetrainModel apiBaseUrl={API} />);
    let xhr = await uploadAndAccept(user, XHR, { accept: null });
    act(() => xhr.respond(413, { error: { code: 'payload_too_large', message: 'Upload is over 100 MB', details: null } }));
    expect(await screen.findByTestId('error-message')).toHaveTextContent('HTTP 413 · payload_too_large: Upload is over 100 MB');
    expect(screen.queryByTestId('error-table')).toBeNull();

    await user.click(screen.getByTestId('upload-button'));
    xhr = XHR.instances.at(-1);
    act(() => xhr.respond(502, '<html><body>Bad Gateway</body></html>'));
    await waitFor(() => expect(screen.getByTestId('error-message')).toHaveTextContent('HTTP 502 · server_error: Bad gateway'));
    expect(screen.getByTestId('error-message')).toHaveTextContent('Bad Gateway');

    await user.click(screen.getByTestId('upload-button'));
    xhr = XHR.instances.at(-1);
    act(() => xhr.fail());
    await waitFor(() => expect(screen.getByTestId('error-message')).toHaveTextContent('network_error: The upload failed'));
  });

  it('cancels a running job with DELETE and ends as cancelled', async () => {
    const XHR = installXHR();
    const deletes = [];
    const srv = fakeServer({ onDelete: (req) => { deletes.push(req); return jsonResponse(202, { job_id: 'j1', status: 'running' }); } });
    const onError = vi.fn();
    const user = userEvent.setup();
    render(<RetrainModel apiBaseUrl={API} token="tok" onError={onError} />);
    const streamP = srv.stream();
    await uploadAndAccept(user, XHR);
    const sse = await streamP;
    act(() => sse.event(1, 'progress', { stage: 'backtest', progress: 0.1, message: 'backtesting' }));
    await waitFor(() => expect(screen.getByTestId('stage-backtest')).toHaveAttribute('data-state', 'current'));

    await user.click(screen.getByTestId('cancel-button'));
    await waitFor(() => expect(deletes).toHaveLength(1));
    expect(deletes[0].url).toBe(`${API}/jobs/j1`);
    expect(deletes[0].headers.Authorization).toBe('Bearer tok');
    expect(screen.getByTestId('job-status')).toHaveTextContent('cancelling');
    expect(screen.getByTestId('cancel-button')).toBeDisabled();

    act(() => sse.event(2, 'error', { code: 'cancelled', message: 'Cancelled by request' }));
    await waitFor(() => expect(screen.getByTestId('job-status')).toHaveTextContent('cancelled'));
    expect(screen.getByTestId('stage-message')).toHaveTextContent('Training cancelled');
    expect(screen.getByTestId('stage-backtest')).toHaveAttribute('data-state', 'failed');
    expect(screen.queryByTestId('cancel-button')).toBeNull();
    expect(screen.queryByTestId('result')).toBeNull();
    expect(onError).not.toHaveBeenCalled();
  });

  it('reconnects after a drop with Last-Event-ID and neither loses nor repeats events', async () => {
    const XHR = installXHR();
    const srv = fakeServer({ jobStatus: 'running' });
    const onComplete = vi.fn();
    const user = userEvent.setup();
    render(<RetrainModel apiBaseUrl={API} onComplete={onComplete} streamOptions={{ baseDelayMs: 5 }} />);
    const first = srv.stream();
    await uploadAndAccept(user, XHR);
    const s1 = await first;
    const second = srv.stream();
    act(() => {
      s1.send('retry: 5\n\n');
      s1.event(1, 'progress', { stage: 'validate', progress: 0.02, message: 'one' });
      s1.event(2, 'progress', { stage: 'merge', progress: 0.05, message: 'two' });
      // event 3 arrives only in part: it must not be shown, and must come again after the reconnect
      s1.send('id: 3\nevent: progress\ndata: {"stage":"backtest","progr');
    });
    await waitFor(() => expect(screen.getByTestId('event-count')).toHaveTextContent('2'));
    act(() => s1.fail());

    const s2 = await second;
    expect(srv.streams[1].req.headers['Last-Event-ID']).toBe('2');
    // the status was checked between the two connections
    expect(srv.calls.some((c) => c.method === 'GET' && c.url === `${API}/jobs/j1`)).toBe(true);
    act(() => {
      s2.event(2, 'progress', { stage: 'merge', progress: 0.05, message: 'two' }); // replayed: ignored
      s2.event(3, 'progress', { stage: 'backtest', progress: 0.2, message: 'three' });
      s2.event(4, 'progress', { stage: 'lstm', progress: 0.6, message: 'four', epoch: 1, epochs: 2, loss: 0.5 });
      s2.event(5, 'done', { model_version: 'v2', metrics: METRICS });
    });
    expect(await screen.findByTestId('model-version')).toHaveTextContent('v2');
    const ids = within(screen.getByTestId('event-log')).getAllByRole('listitem').map((li) => li.dataset.eventId);
    expect(ids).toEqual(['1', '2', '3', '4', '5']);
    expect(onComplete).toHaveBeenCalledTimes(1);
  });

  it('reports a stream that cannot be opened (e.g. 401) instead of retrying forever', async () => {
    const XHR = installXHR();
    installFetch((req) => {
      if (req.url.endsWith('/events')) return jsonResponse(401, { error: { code: 'unauthorized', message: 'Bad token', details: null } });
      return jsonResponse(200, { status: 'ok', model_version: null });
    });
    const onError = vi.fn();
    const user = userEvent.setup();
    render(<RetrainModel apiBaseUrl={API} onError={onError} />);
    await uploadAndAccept(user, XHR);
    await waitFor(() => expect(screen.getByTestId('job-status')).toHaveTextContent('failed'));
    expect(screen.getByTestId('error-message')).toHaveTextContent('HTTP 401 · unauthorized: Bad token');
    expect(onError).toHaveBeenCalledWith(expect.objectContaining({ status: 401 }));
  });

  it('finishes from GET /jobs/<id> when the stream ends after the job already finished', async () => {
    const XHR = installXHR();
    const srv = fakeServer({ jobStatus: 'failed' });
    const onError = vi.fn();
    const user = userEvent.setup();
    render(<RetrainModel apiBaseUrl={API} onError={onError} streamOptions={{ baseDelayMs: 5 }} />);
    const first = srv.stream();
    await uploadAndAccept(user, XHR);
    const s1 = await first;
    const second = srv.stream();
    act(() => s1.close());
    const s2 = await second; // one more pass for missed events
    act(() => s2.close());
    await waitFor(() => expect(screen.getByTestId('job-status')).toHaveTextContent('failed'));
    expect(onError).toHaveBeenCalled();
  });
});
