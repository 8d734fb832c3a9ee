import { KilnError } from "../../solver/llb/index.js";

/** A command line that kiln cannot make sense of: exit code 2, with the message and a pointer to --help. */
export class UsageError extends KilnError {
  constructor(message: string) {
    super("KILN_USAGE", message);
  }
}
