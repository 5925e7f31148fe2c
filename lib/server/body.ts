// Request bodies: JSON objects up to a size limit, refused (413) as soon as the limit is
// known to be exceeded: from Content-Length before reading, or while reading a body
// without one, so an oversized body is never buffered whole.
import type * as http from 'http';
import { HttpError, badRequest, clientClosed } from './errors';

export const DEFAULT_BODY_LIMIT = 1024 * 1024;

const tooLarge = (limit: number) =>
  new HttpError(413, `The request body is larger than ${limit} bytes`, 'invalid_request_error', null, 'body_too_large', { connection: 'close' });

export function readJsonBody(req: http.IncomingMessage, limit: number): Promise<Record<string, unknown>> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) return Promise.reject(tooLarge(limit));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (error: unknown, value?: Record<string, unknown>) => {
      if (done) return;
      done = true;
      req.off('data', onData);
      if (error) reject(error);
      else resolve(value!);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        // Stop buffering; the rest of the body is discarded with the connection.
        req.pause();
        finish(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    // A reset or a close mid-body is the client leaving, not a fault of the server.
    req.on('error', (e) => finish(clientClosed(`The client's connection failed while sending the body: ${e.message}`)));
    req.on('aborted', () => finish(clientClosed('The client closed the connection while sending the body')));
    req.on('end', () => {
      if (done) return;
      try {
        finish(null, parseObject(Buffer.concat(chunks).toString('utf8')));
      } catch (e) {
        finish(e);
      }
    });
  });
}

function parseObject(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw badRequest(`The request body is not valid JSON: ${(e as Error).message}`, null, 'invalid_json');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw badRequest('The request body must be a JSON object', null, 'invalid_json');
  }
  return value as Record<string, unknown>;
}
