/** A position: `line` is 1-based, `character` 0-based (as in BuildKit's source maps). */
export interface SourcePosition {
  readonly line: number;
  readonly character: number;
}

export interface SourceRange {
  readonly start: SourcePosition;
  readonly end: SourcePosition;
}

/** A source file as it travels inside a Definition: a name and its full text. */
export interface SourceInfo {
  readonly name: string;
  readonly data: string;
  readonly language?: string;
}

/** Where an op came from: ranges of one source file. */
export interface SourceLocation {
  readonly source: SourceInfo;
  readonly ranges: readonly SourceRange[];
}
