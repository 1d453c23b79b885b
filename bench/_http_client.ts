/**
 * A minimal HTTP/1.1 keep-alive client for load generation: one request at
 * a time per connection, Content-Length or chunked responses. `fetch` costs
 * the load generator more CPU than the server spends on a request, which on
 * a 2-core machine shared with three nodes would measure the client. This
 * one keeps a read buffer per connection, parses the head from bytes and
 * only decodes a body to text when asked (errors), so it costs a few µs of
 * JavaScript per request.
 *
 * @module
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const CR = 13;
const LF = 10;
const INITIAL_BUFFER_BYTES = 64 * 1024;

/** A response: its status and body bytes (a view valid until the next request). */
export interface RawResponse {
  /** HTTP status code. */
  status: number;
  /** The body; copied out by {@linkcode RawResponse.text} if it must outlive the next request. */
  body: Uint8Array;
  /** The body as text. */
  text(): string;
}

/** One keep-alive connection. */
export class RawHttpConnection {
  #conn: Deno.TcpConn;
  #buf = new Uint8Array(INITIAL_BUFFER_BYTES);
  /** Unconsumed bytes are `#buf[#start, #end)`. */
  #start = 0;
  #end = 0;
  #out = new Uint8Array(4096);
  readonly #host: string;

  private constructor(conn: Deno.TcpConn, host: string) {
    this.#conn = conn;
    this.#host = host;
  }

  /** Connect to `url`'s host and port. */
  static async open(url: string): Promise<RawHttpConnection> {
    const u = new URL(url);
    const conn = await Deno.connect({ hostname: u.hostname, port: Number(u.port) });
    conn.setNoDelay(true);
    return new RawHttpConnection(conn, u.host);
  }

  /** Send one request and read the whole response. */
  async request(method: string, path: string, body?: Uint8Array): Promise<RawResponse> {
    const head = `${method} ${path} HTTP/1.1\r\nhost: ${this.#host}\r\ncontent-length: ${
      body?.length ?? 0
    }\r\n\r\n`;
    const need = head.length * 3 + (body?.length ?? 0);
    if (this.#out.length < need) this.#out = new Uint8Array(need);
    const out = this.#out;
    let len = encoder.encodeInto(head, out).written;
    if (body) {
      out.set(body, len);
      len += body.length;
    }
    let off = 0;
    while (off < len) off += await this.#conn.write(out.subarray(off, len));
    return await this.#readResponse();
  }

  async #readResponse(): Promise<RawResponse> {
    let headEnd: number;
    while ((headEnd = this.#find4(this.#start)) < 0) await this.#fill();
    const buf = this.#buf;
    const start = this.#start;
    // "HTTP/1.1 200 ..."
    const status = (buf[start + 9] - 48) * 100 + (buf[start + 10] - 48) * 10 +
      (buf[start + 11] - 48);
    const headText = decoder.decode(buf.subarray(start, headEnd)).toLowerCase();
    this.#start = headEnd + 4;
    const lengthAt = headText.indexOf("\r\ncontent-length:");
    if (lengthAt >= 0) {
      const length = parseInt(headText.slice(lengthAt + 17), 10);
      while (this.#end - this.#start < length) await this.#fill();
      const at = this.#start;
      this.#start += length;
      return response(status, this.#buf.subarray(at, at + length));
    }
    if (!/\r\ntransfer-encoding:[^\r]*chunked/.test(headText)) {
      throw new Error("response without content-length or chunked encoding");
    }
    const chunks: Uint8Array[] = [];
    for (;;) {
      let eol: number;
      while ((eol = this.#findCrlf(this.#start)) < 0) await this.#fill();
      const size = parseInt(decoder.decode(this.#buf.subarray(this.#start, eol)), 16);
      this.#start = eol + 2;
      while (this.#end - this.#start < size + 2) await this.#fill();
      chunks.push(this.#buf.slice(this.#start, this.#start + size));
      this.#start += size + 2;
      if (size === 0) {
        const total = chunks.reduce((n, c) => n + c.length, 0);
        const body = new Uint8Array(total);
        let pos = 0;
        for (const c of chunks) {
          body.set(c, pos);
          pos += c.length;
        }
        return response(status, body);
      }
    }
  }

  #find4(from: number): number {
    const buf = this.#buf;
    for (let i = from; i + 3 < this.#end; i++) {
      if (buf[i] === CR && buf[i + 1] === LF && buf[i + 2] === CR && buf[i + 3] === LF) return i;
    }
    return -1;
  }

  #findCrlf(from: number): number {
    const buf = this.#buf;
    for (let i = from; i + 1 < this.#end; i++) {
      if (buf[i] === CR && buf[i + 1] === LF) return i;
    }
    return -1;
  }

  async #fill(): Promise<void> {
    if (this.#start === this.#end) {
      this.#start = this.#end = 0;
    } else if (this.#buf.length - this.#end < 4096) {
      // Move what is left to the front, growing the buffer if it is mostly full.
      const left = this.#end - this.#start;
      const target = left * 2 > this.#buf.length ? new Uint8Array(this.#buf.length * 2) : this.#buf;
      target.set(this.#buf.subarray(this.#start, this.#end), 0);
      this.#buf = target;
      this.#start = 0;
      this.#end = left;
    }
    const n = await this.#conn.read(this.#buf.subarray(this.#end));
    if (n === null) throw new Error("connection closed by the server");
    this.#end += n;
  }

  /** Close the connection. */
  close(): void {
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }
}

function response(status: number, body: Uint8Array): RawResponse {
  return { status, body, text: () => decoder.decode(body) };
}
