import { StringDecoder } from "node:string_decoder";

/**
 * Decodes one output stream into UTF-8 text chunks (never splitting a character) and feeds a
 * shared OutputTail. Call `end()` when the stream closes to flush a trailing partial character.
 */
export class OutputStream {
  readonly #decoder = new StringDecoder("utf8");
  readonly #tail: OutputTail;
  readonly #name: "stdout" | "stderr";
  readonly #emit: ((data: string) => void) | undefined;

  constructor(name: "stdout" | "stderr", tail: OutputTail, emit: ((data: string) => void) | undefined) {
    this.#name = name;
    this.#tail = tail;
    this.#emit = emit;
  }

  write(chunk: Buffer): void {
    this.#deliver(this.#decoder.write(chunk));
  }

  end(): void {
    this.#deliver(this.#decoder.end());
    this.#tail.flush(this.#name);
  }

  #deliver(text: string): void {
    if (text === "") return;
    this.#tail.add(this.#name, text);
    this.#emit?.(text);
  }
}

/**
 * The last `limit` complete lines of a process's output, stdout and stderr interleaved in arrival
 * order (a partial line is kept per stream until its newline or the stream's end).
 */
export class OutputTail {
  readonly #limit: number;
  readonly #lines: string[] = [];
  readonly #partial = { stdout: "", stderr: "" };

  constructor(limit: number) {
    this.#limit = limit;
  }

  add(stream: "stdout" | "stderr", text: string): void {
    const parts = (this.#partial[stream] + text).split("\n");
    this.#partial[stream] = parts.pop() ?? "";
    for (const line of parts) this.#push(line);
  }

  flush(stream: "stdout" | "stderr"): void {
    if (this.#partial[stream] !== "") this.#push(this.#partial[stream]);
    this.#partial[stream] = "";
  }

  lines(): string[] {
    return [...this.#lines];
  }

  #push(line: string): void {
    this.#lines.push(line.endsWith("\r") ? line.slice(0, -1) : line);
    if (this.#lines.length > this.#limit) this.#lines.shift();
  }
}
