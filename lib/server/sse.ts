// Server-sent events in the OpenAI streaming framing: `data: <json>` events, then
// `data: [DONE]`. Headers go out at once so clients see the stream open before the
// first block is final.
import type * as http from 'http';

export function openEventStream(res: http.ServerResponse): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    // Proxies (nginx) must not hold events back.
    'x-accel-buffering': 'no',
  });
  res.flushHeaders();
}

export function sendEvent(res: http.ServerResponse, data: unknown): void {
  if (!res.writableEnded && !res.destroyed) res.write(`data: ${JSON.stringify(data)}\n\n`);
}

export function closeEventStream(res: http.ServerResponse): void {
  if (res.writableEnded || res.destroyed) return;
  res.end('data: [DONE]\n\n');
}
