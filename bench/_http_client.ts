/**
 * A minimal HTTP/1.1 keep-alive client for load generation: one request at
 * a time per connection, Content-Length or chunked responses. `fetch` costs
 * the load generator more CPU than the server spends on a request, which on
 * a 2-core machine shared with three nodes would measure the client.
 *
 * @module
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const CRLFCRLF = [13, 10, 13, 10];

/** One keep-alive connection. */
export class RawHttpConnection {
  #conn: Deno.TcpConn;
  #buf = new Uint8Array(0);
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
  async request(
    method: string,
    path: string,
    body?: Uint8Array,
  ): Promise<{ status: number; body: string }> {
    const head = encoder.encode(
      `${method} ${path} HTTP/1.1\r\nhost: ${this.#host}\r\ncontent-length: ${
        body?.length ?? 0
      }\r\n\r\n`,
    );
    const out = new Uint8Array(head.length + (body?.length ?? 0));
    out.set(head);
    if (body) out.set(body, head.length);
    let off = 0;
    while (off < out.length) off += await this.#conn.write(out.subarray(off));
    // Headers.
    let end: number;
    while ((end = indexOf(this.#buf, CRLFCRLF)) < 0) await this.#fill();
    const headerText = decoder.decode(this.#buf.subarray(0, end));
    this.#buf = this.#buf.subarray(end + 4);
    const lines = headerText.split("\r\n");
    const status = Number(lines[0].split(" ")[1]);
    let length = -1;
    let chunked = false;
    for (const line of lines.slice(1)) {
      const i = line.indexOf(":");
      const name = line.slice(0, i).trim().toLowerCase();
      const value = line.slice(i + 1).trim();
      if (name === "content-length") length = Number(value);
      else if (name === "transfer-encoding" && value.toLowerCase().includes("chunked")) {
        chunked = true;
      }
    }
    if (chunked) {
      let text = "";
      for (;;) {
        let eol: number;
        while ((eol = indexOf(this.#buf, [13, 10])) < 0) await this.#fill();
        const size = parseInt(decoder.decode(this.#buf.subarray(0, eol)), 16);
        this.#buf = this.#buf.subarray(eol + 2);
        while (this.#buf.length < size + 2) await this.#fill();
        text += decoder.decode(this.#buf.subarray(0, size));
        this.#buf = this.#buf.subarray(size + 2);
        if (size === 0) return { status, body: text };
      }
    }
    if (length < 0) throw new Error("response without content-length");
    while (this.#buf.length < length) await this.#fill();
    const text = decoder.decode(this.#buf.subarray(0, length));
    this.#buf = this.#buf.subarray(length);
    return { status, body: text };
  }

  async #fill(): Promise<void> {
    const chunk = new Uint8Array(16384);
    const n = await this.#conn.read(chunk);
    if (n === null) throw new Error("connection closed by the server");
    const merged = new Uint8Array(this.#buf.length + n);
    merged.set(this.#buf);
    merged.set(chunk.subarray(0, n), this.#buf.length);
    this.#buf = merged;
  }

  /** Close the connection. */
  close(): void {
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }
}

function indexOf(haystack: Uint8Array, needle: number[]): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
