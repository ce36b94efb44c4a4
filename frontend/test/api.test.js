import { describe, expect, it } from 'vitest';
import { SSEParser, errorFromResponse, sentence, totalEpochs } from '../src/api.js';

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
