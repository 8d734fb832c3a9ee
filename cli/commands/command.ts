/** What a command gets from main: where to write, and the global flags. */
export interface CommandContext {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly root: string;
  readonly debug: boolean;
}
