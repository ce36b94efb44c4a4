import { describe, expect, it } from 'vitest';
import { SSEParser, errorFromResponse, fieldProblem, forecastBody, inputAttrs, periodName, requestFields, sentence, totalEpochs } from '../src/api.js';
import { openapiDoc } from './fakes.js';

describe('SSEParser', () => {
  it('parses events split anywhere, CRLF across chunks, comments, multi-line data and retry', () => {
    const events = [];
    const comments = [];
    let retry = null;
    const p = new SSEParser((e) => events.push(e), { onComment: (c) => comments.push(c), onRetry: (ms) => { retry = ms; } });
    const text = ': heartbeat\r\n\r\nretry: 2500\r\nid: 7\r\nevent: progress\r\ndata: {"a":\r\ndata: 1}\r\n\r\nid: 8\ndata:plain\n\n';
    for (const ch of text) p.push(ch); // one character at a time
    expect(comments).toEqual([' heartbeat']);
    expect(retry).toBe(2500);
    expect(events).toEqual([
      { type: 'progress', data: '{"a":\n1}', id: '7' },
      { type: 'message', data: 'plain', id: '8' },
    ]);
  });

  it('commits the last event id only when an event completes', () => {
    const events = [];
    const p = new SSEParser((e) => events.push(e));
    p.push('id: 1\nevent: progress\ndata: {}\n\nid: 2\nevent: progress\ndata: {"x"');
    expect(events).toHaveLength(1);
    expect(p.lastEventId).toBe('1'); // the half-received event 2 does not count
  });
});

describe('errorFromResponse', () => {
  it('reads the JSON error shape and falls back to a plain message', () => {
    const e = errorFromResponse(422, 'Unprocessable', JSON.stringify({ error: { code: 'invalid_data', message: 'bad rows', details: { problems: [], total: 0 } } }));
    expect(e).toMatchObject({ status: 422, code: 'invalid_data', message: 'bad rows' });
    const r = errorFromResponse(429, 'Too Many Requests', '', '30');
    expect(r.code).toBe('rate_limited');
    expect(r.message).toMatch(/Try again in 30 s/);
  });
});

describe('totalEpochs and sentence', () => {
  it('reads the epoch total from the event, else from its message as the server words it', () => {
    expect(totalEpochs({ epoch: 3, epochs: 10 })).toBe(10);
    expect(totalEpochs({ epoch: 1, message: 'LSTM epoch 1/2: loss 0.6016, val loss 0.4470' })).toBe(2);
    expect(totalEpochs({ epoch: 4, message: 'training' })).toBeNull();
  });
  it('ends a message as a sentence so a hint can follow', () => {
    expect(sentence('3 problem(s) in the file; nothing was stored')).toBe('3 problem(s) in the file; nothing was stored.');
    expect(sentence('Already done.')).toBe('Already done.');
    expect(sentence('')).toBe('');
  });
});

describe('the forecast request from /openapi.json', () => {
  const fields = requestFields(openapiDoc());

  it('reads each field of the POST /forecast body: bounds, defaults, nullable branches', () => {
    expect(fields.service_level).toMatchObject({ type: 'number', exclusiveMin: 0.5, exclusiveMax: 1, min: null, max: null, default: 0.95 });
    expect(fields.days).toMatchObject({ type: 'integer', min: 1, max: null, default: null, description: 'horizon in calendar days (default 30)' });
    expect(fields.on_hand).toMatchObject({ min: -1e15, max: 1e15 });
    // the default is the placeholder, never a value: a value would be sent
    expect(inputAttrs(fields.lead_time_days)).toEqual({ min: '0', max: '3650', step: 'any', placeholder: '7 (default)' });
    expect(inputAttrs(fields.service_level).placeholder).toBe('0.95 (default)');
    expect(inputAttrs(fields.days)).not.toHaveProperty('placeholder'); // no default declared
    expect(requestFields({ paths: {} })).toEqual({});
  });

  it('checks every bound before asking, and builds the body from the filled-in fields', () => {
    expect(fieldProblem(fields.service_level, 0.5)).toBe('must be more than 0.5');
    expect(fieldProblem(fields.lead_time_days, 3650.5)).toBe('must be at most 3650');
    expect(fieldProblem(fields.days, 2.5)).toBe('enter a whole number');
    expect(fieldProblem(fields.days, 0)).toBe('must be at least 1');
    expect(fieldProblem(fields.cover_days, 0)).toBeNull();
    expect(forecastBody(fields, { days: ' 7 ', on_hand: '', cover_days: '0' }, { product_id: 'P1', store_id: '' }))
      .toEqual({ product_id: 'P1', days: 7, cover_days: 0, plot: true });
    // the history the chart draws: 4x the horizon, at least 90, within the declared maximum
    const withHistory = requestFields(openapiDoc({ history: { type: 'integer', default: 28, minimum: 0, maximum: 150 } }));
    expect(forecastBody(withHistory, {}).history).toBe(90);
    expect(forecastBody(withHistory, { days: '30' }).history).toBe(120);
    expect(forecastBody(withHistory, { days: '60' }).history).toBe(150);
    expect(() => forecastBody(fields, { lead_time_days: '0' })).toThrow(expect.objectContaining({ code: 'invalid_input', field: 'lead_time_days' }));
  });
});

describe('periodName', () => {
  it('reads the pandas frequency the API answers with', () => {
    expect(periodName('D')).toBe('day');
    expect(periodName('W-SUN')).toBe('week');
    expect(periodName('MS')).toBe('month');
    expect(periodName(undefined)).toBe('day');
  });
});
