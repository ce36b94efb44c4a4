// Fakes at the network boundary only: fetch (JSON calls and the SSE stream) and
// XMLHttpRequest (the upload, which needs upload progress events).
import { vi } from 'vitest';

export function jsonResponse(status, body, headers = {}) {
  return new Response(body === undefined ? '' : JSON.stringify(body), {
    status, headers: { 'Content-Type': 'application/json', ...headers },
  });
}

/** An SSE response whose body the test writes to. */
export function sseStream(signal) {
  let controller;
  const enc = new TextEncoder();
  const stream = new ReadableStream({ start(c) { controller = c; } });
  let closed = false;
  const ctl = {
    send(text) { if (!closed) controller.enqueue(enc.encode(text)); },
    event(id, type, data) { ctl.send(`id: ${id}\nevent: ${type}\ndata: ${JSON.stringify(data)}\n\n`); },
    close() { if (!closed) { closed = true; controller.close(); } },
    fail() { if (!closed) { closed = true; controller.error(new TypeError('network error')); } },
  };
  signal?.addEventListener('abort', () => {
    if (!closed) { closed = true; try { controller.error(new DOMException('The operation was aborted.', 'AbortError')); } catch { /* closed */ } }
  });
  return { response: new Response(stream, { status: 200, headers: { 'Content-Type': 'text/event-stream' } }), ctl };
}

/**
 * Install a fake fetch. `handler(req)` gets {url, method, headers, body, signal} and returns a
 * Response (or a promise of one). Every call is kept in `calls`.
 */
export function installFetch(handler) {
  const calls = [];
  const fn = vi.fn(async (url, init = {}) => {
    const headers = { ...(init.headers || {}) };
    const req = { url: String(url), method: (init.method || 'GET').toUpperCase(), headers, body: init.body, signal: init.signal };
    calls.push(req);
    if (init.signal?.aborted) throw new DOMException('The operation was aborted.', 'AbortError');
    return handler(req);
  });
  vi.stubGlobal('fetch', fn);
  return { fn, calls };
}

/** A fake XMLHttpRequest; instances are collected in FakeXHR.instances. */
export class FakeXHR {
  static instances = [];
  constructor() {
    this.headers = {};
    this.upload = {};
    this.status = 0;
    this.statusText = '';
    this.responseText = '';
    this.responseHeaders = {};
    FakeXHR.instances.push(this);
  }
  open(method, url) { this.method = method; this.url = url; }
  setRequestHeader(k, v) { this.headers[k] = v; }
  getResponseHeader(k) { return this.responseHeaders[k.toLowerCase()] ?? null; }
  send(body) { this.body = body; }
  abort() { this.onabort?.(); }
  progress(loaded, total) { this.upload.onprogress?.({ lengthComputable: true, loaded, total }); }
  respond(status, body, headers = {}) {
    this.upload.onload?.();
    this.status = status;
    this.responseText = typeof body === 'string' ? body : JSON.stringify(body);
    this.responseHeaders = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
    this.onload?.();
  }
  fail() { this.onerror?.(); }
}

export function installXHR() {
  FakeXHR.instances = [];
  vi.stubGlobal('XMLHttpRequest', FakeXHR);
  return FakeXHR;
}

export const csvFile = (name = 'sales.csv', text = 'date,product_id,quantity\n2024-01-01,P1,3\n') => new File([text], name, { type: 'text/csv' });

/**
 * An /openapi.json in the shape the server generates (pydantic through spectree: hashed
 * component names, `$ref`s, nullable fields as anyOf with null), with the POST /forecast
 * request fields the forms read. `props` adds or overrides properties.
 */
export function openapiDoc(props = {}) {
  const nullable = (schema, extra = {}) => ({ anyOf: [schema, { type: 'null' }], default: null, ...extra });
  return {
    openapi: '3.1.0',
    paths: { '/forecast': { post: { requestBody: { content: { 'application/json': { schema: { $ref: '#/components/schemas/ForecastRequest.abc1234' } } } } } } },
    components: {
      schemas: {
        'ForecastRequest.abc1234': {
          type: 'object',
          properties: {
            days: nullable({ type: 'integer', minimum: 1 }, { description: 'horizon in calendar days (default 30)' }),
            product_id: nullable({ type: 'string', minLength: 1 }),
            service_level: { type: 'number', default: 0.95, exclusiveMinimum: 0.5, exclusiveMaximum: 1 },
            lead_time_days: { type: 'number', default: 7.0, exclusiveMinimum: 0, maximum: 3650 },
            on_hand: nullable({ type: 'number', minimum: -1e15, maximum: 1e15 }, { description: 'stock now; default: the latest stored' }),
            cover_days: { type: 'number', default: 30.0, minimum: 0, maximum: 3650 },
            plot: { type: 'boolean', default: false },
            ...props,
          },
        },
      },
    },
  };
}

/** A GET /accuracy report of one daily version over 14 days, shaped as the server's
 * AccuracyReport; `total` and `version` override the total row's and the version's fields. */
export function accuracyReport({ total = {}, version = {}, warnings = [], older = false } = {}) {
  const day = (i) => new Date(Date.UTC(2024, 1, 1 + i)).toISOString().slice(0, 10);
  const points = Array.from({ length: 14 }, (_, i) => ({ date: day(i), actual: 20 + (i % 7), forecast: 22, naive: 19 }));
  const v = {
    model_version: 'v7', cutoff: '2024-01-31', frequency: 'D', first_date: day(0), last_date: day(13),
    periods: 14, series: 2, backtest_mase: 0.8, live_mase: 0.9, points, ...version,
  };
  const row = {
    model_version: 'v7', level: 'total', product_id: null, store_id: null, category: null, series: 2, periods: 14,
    first_date: day(0), last_date: day(13), actual: 322, forecast: 308, mase: 0.71, wape: 0.12, bias: 0.05,
    coverage: 0.93, fva: 0.08, ...total,
  };
  const versions = [v];
  const scores = [{ ...row, level: 'series', product_id: 'P1', store_id: 'S1', category: 'drinks', series: 1 }, row];
  if (older) {
    versions.push({ ...v, model_version: 'v6', cutoff: '2024-01-15' });
    scores.push({ ...row, model_version: 'v6', wape: 0.5 });
  }
  return { selection: { product_id: [], store_id: [], category: [] }, start: null, end: null, versions, scores,
    warnings: warnings.map((code) => ({ code, severity: 'warning', message: `${code} of v7`, model_version: 'v7' })) };
}

/**
 * An order's explanation in the server's steps and words (restock.orders.explanations), as
 * GET /plan rows and a forecast's inventory carry it: the demand over the lead time (and
 * review period), plus the safety stock (the reorder point), plus the order quantity (EOQ;
 * the order-up-to level), less the inventory position (the order); then, when given, the
 * order raised to the minimum order quantity `moq` and rounded up to whole multiples
 * (`multiple`, the quantity it came to).
 */
export function orderExplanation({
  leadTime = 7, review = 0, level = 0.95, demand, safety, size, onHand, onOrder, moq = null, multiple = null,
}) {
  const f = (v) => v.toFixed(2);
  const reorder = demand + safety, upTo = reorder + size, position = onHand + onOrder, order = upTo - position;
  const steps = [
    { step: 'demand_over_protection_interval', quantity: demand, text: `expected demand over lead time ${leadTime} d + review period ${review} d: ${f(demand)}` },
    { step: 'reorder_point', quantity: reorder, text: `+ safety stock ${f(safety)} (service level ${level}) = reorder point ${f(reorder)}` },
    { step: 'order_up_to_level', quantity: upTo, text: `+ order quantity ${f(size)} (EOQ) = order-up-to level ${f(upTo)}` },
    { step: 'order', quantity: order, text: `- inventory position ${f(position)} (on hand ${f(onHand)} + on order ${f(onOrder)}) = order ${f(order)}` },
  ];
  if (moq !== null) steps.push({ step: 'order_raised_to_moq', quantity: moq, text: `raised to the minimum order quantity: ${f(moq)}` });
  if (multiple !== null) steps.push({ step: 'order_rounded_to_multiple', quantity: multiple, text: `rounded up to whole order multiples: ${f(multiple)}` });
  return steps;
}
