import type { Digest } from "../../solver/llb/index.js";
import type { ProgressEvent } from "../../solver/progress.js";
import type { ProgressMode } from "../options/build-request.js";
import { PlainProgress } from "./progress-plain.js";

/** What the end of a build tells a view, for its summary. */
export interface BuildSummary {
  readonly failed: boolean;
  readonly finished: number;
  readonly digest: Digest | undefined;
  /** The outputs, as the user wrote them. */
  readonly outputs: readonly string[];
  /** `kiln logs ID` shows the full output of every step. */
  readonly buildId: string;
}

/** A progress view: it takes events as they come (never blocking) and closes with a summary. */
export interface ProgressRenderer {
  push(event: ProgressEvent): void;
  /** Draws the end of the build; resolves when the view has released the terminal. */
  finish(summary: BuildSummary): Promise<void>;
}

/**
 * The view for `--progress MODE` on `stream`: `auto` is the live tty view when the stream is a
 * terminal and plain lines otherwise; `rawjson` writes one JSON event per line (the events the
 * API yields); `quiet` draws nothing.
 */
export async function createProgressRenderer(mode: ProgressMode, stream: NodeJS.WriteStream): Promise<ProgressRenderer> {
  const write = (text: string): void => void stream.write(text);
  switch (mode) {
    case "auto":
      return stream.isTTY === true ? tty(stream) : plain(write);
    case "tty":
      return tty(stream);
    case "plain":
      return plain(write);
    case "rawjson":
      return { push: (event) => write(`${JSON.stringify(event)}\n`), finish: async () => {} };
    case "quiet":
      return { push: () => {}, finish: async () => {} };
  }
}

/** The live view, loaded only when drawn: ink and React take about a second to load, which every plain or scripted build would otherwise pay. */
async function tty(stream: NodeJS.WriteStream): Promise<ProgressRenderer> {
  const { TtyProgress } = await import("./progress-tty.js");
  return new TtyProgress(stream);
}

function plain(write: (text: string) => void): ProgressRenderer {
  const view = new PlainProgress(write);
  return {
    push: (event) => view.push(event),
    finish: async (summary) => {
      view.finish();
      if (summary.digest !== undefined) write(`image digest: ${summary.digest}\n`);
    },
  };
}
