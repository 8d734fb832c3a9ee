/** What a command gets from main: where to write, and the global flags. */
export interface CommandContext {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** The streams behind stdout/stderr and stdin, for views that need a terminal and for `kiln build -`. */
  readonly stdin: NodeJS.ReadableStream;
  readonly stderrStream: NodeJS.WriteStream;
  readonly root: string;
  readonly debug: boolean;
  /** `--addr` or $KILN_HOST: the daemon to send builds to; undefined = build in this process. */
  readonly addr: string | undefined;
}
