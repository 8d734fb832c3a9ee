import { Box, render, Static, Text, type Instance } from "ink";
import { useEffect, useState, type ReactElement } from "react";
import type { ProgressEvent } from "../../solver/progress.js";
import { formatDuration, formatTransfer, ProgressModel, type VertexView } from "./progress-model.js";
import type { BuildSummary, ProgressRenderer } from "./renderer.js";

/** The live view redraws at most this often; events between redraws only update the model. */
const REDRAW_MS = 100;

/**
 * The live terminal view, drawn with ink: finished steps scroll up as permanent lines (ink's
 * Static, so they are written once), and below them a header with elapsed time and counts, every
 * running step with its elapsed time, transfers and the last lines of its output, side by side
 * when steps run in parallel. Events only update a ProgressModel; a timer redraws from it at a
 * bounded rate, so a step that prints a million lines costs the build nothing.
 */
export class TtyProgress implements ProgressRenderer {
  readonly #model = new ProgressModel();
  readonly #instance: Instance;
  #summary: BuildSummary | undefined;
  #setSummary: ((summary: BuildSummary) => void) | undefined;

  constructor(stream: NodeJS.WriteStream) {
    this.#instance = render(
      <LiveView model={this.#model} onSummary={(set) => (this.#setSummary = set)} />,
      { stdout: stream, stderr: stream, patchConsole: false, exitOnCtrlC: false, maxFps: 1000 / REDRAW_MS },
    );
  }

  push(event: ProgressEvent): void {
    this.#model.push(event);
  }

  async finish(summary: BuildSummary): Promise<void> {
    this.#summary = summary;
    this.#setSummary?.(summary);
    // Let the last frame (with the summary) render before releasing the terminal.
    await new Promise((resolve) => setTimeout(resolve, REDRAW_MS));
    this.#instance.unmount();
    await this.#instance.waitUntilExit().catch(() => {});
  }

  /** For tests: the summary last given to finish. */
  get summary(): BuildSummary | undefined {
    return this.#summary;
  }
}

function LiveView({ model, onSummary }: { model: ProgressModel; onSummary: (set: (s: BuildSummary) => void) => void }): ReactElement {
  const [, setFrame] = useState(0);
  const [summary, setSummary] = useState<BuildSummary | undefined>(undefined);
  useEffect(() => {
    onSummary(setSummary);
    const timer = setInterval(() => setFrame((n) => n + 1), REDRAW_MS);
    return () => clearInterval(timer);
  }, [model, onSummary]);
  const now = summary?.finished ?? Date.now();
  const counts = model.counts();
  const finished = [...model.finishedOrder];
  return (
    <>
      <Static items={finished}>{(v) => <FinishedLine key={v.digest} vertex={v} />}</Static>
      {summary === undefined ? (
        <Box flexDirection="column">
          <Text>
            <Text bold color="blue">[+] Building {formatDuration(now - model.started)}</Text>
            {` (${counts.finished}/${counts.total}) ${counts.running} running, ${counts.cached} cached`}
            {counts.failed > 0 ? <Text color="red">{`, ${counts.failed} failed`}</Text> : null}
          </Text>
          {model.running().map((v) => (
            <RunningStep key={v.digest} vertex={v} now={now} />
          ))}
        </Box>
      ) : (
        <Summary model={model} summary={summary} />
      )}
    </>
  );
}

function FinishedLine({ vertex }: { vertex: VertexView }): ReactElement {
  const time = formatDuration((vertex.finished ?? vertex.started) - vertex.started);
  switch (vertex.state) {
    case "cached":
      return <StepLine color="blue" name={` => CACHED ${vertex.name}`} time="" />;
    case "failed":
      return (
        <Box flexDirection="column">
          <StepLine color="red" name={` => ERROR ${vertex.name}`} time={time} />
          {vertex.tail.map((line, i) => (
            <Text key={i} dimColor>{` => => # ${line}`}</Text>
          ))}
        </Box>
      );
    case "done":
    case "running":
      return <StepLine color="green" name={` => ${vertex.name}`} time={`DONE ${time}`} />;
  }
}

/** One step: its name cut to the terminal's width, the time at the right edge (BuildKit's layout). */
function StepLine({ name, time, color }: { name: string; time: string; color?: string }): ReactElement {
  return (
    <Box>
      <Box flexGrow={1} flexShrink={1}>
        <Text wrap="truncate-end" {...(color === undefined ? {} : { color })}>{name}</Text>
      </Box>
      <Box flexShrink={0} marginLeft={1}>
        <Text {...(color === undefined ? {} : { color })}>{time}</Text>
      </Box>
    </Box>
  );
}

function RunningStep({ vertex, now }: { vertex: VertexView; now: number }): ReactElement {
  return (
    <Box flexDirection="column">
      <StepLine color="yellow" name={` => ${vertex.name === "" ? vertex.digest.slice(0, 19) : vertex.name}`} time={formatDuration(now - vertex.started)} />
      {[...vertex.transfers.values()].map((t) => (
        <Text key={t.id} dimColor>{` => => ${t.id.slice(0, 19)} ${formatTransfer(t)}`}</Text>
      ))}
      {[...vertex.tail, ...(vertex.partial === "" ? [] : [vertex.partial])].slice(-5).map((line, i) => (
        <Text key={i} dimColor wrap="truncate-end">{` => => # ${line}`}</Text>
      ))}
    </Box>
  );
}

function Summary({ model, summary }: { model: ProgressModel; summary: BuildSummary }): ReactElement {
  const counts = model.counts();
  const ran = [...model.vertices.values()].filter((v) => v.state === "done" || v.state === "failed").length;
  return (
    <Box flexDirection="column" marginTop={1}>
      <Text bold color={summary.failed ? "red" : "green"}>
        {`${summary.failed ? "Build failed" : "Built"} in ${formatDuration(summary.finished - model.started)}: ${ran} step${ran === 1 ? "" : "s"} run, ${counts.cached} cached`}
      </Text>
      {summary.digest === undefined ? null : <Text>{`image digest: ${summary.digest}`}</Text>}
      {summary.outputs.map((o) => (
        <Text key={o}>{`output: ${o}`}</Text>
      ))}
      {model.warnings.length === 0 ? null : (
        <Box flexDirection="column">
          <Text color="yellow">{`${model.warnings.length} warning${model.warnings.length === 1 ? "" : "s"} found:`}</Text>
          {model.warnings.map((w, i) => (
            <Text key={i} color="yellow">{` - ${w}`}</Text>
          ))}
        </Box>
      )}
      {model.explanations.length === 0 ? null : (
        <Box flexDirection="column">
          <Text>{`Why ${model.explanations.length} step${model.explanations.length === 1 ? "" : "s"} ran (--explain-cache):`}</Text>
          {model.explanations.map((e, i) => (
            <Text key={i}>{` - ${e}`}</Text>
          ))}
        </Box>
      )}
      <Text dimColor>{`full logs: kiln logs ${summary.buildId}`}</Text>
    </Box>
  );
}
