import { stat } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { buildImage } from "../harness/built-image.js";
import { createScratch, type Scratch } from "../harness/kiln.js";

const registry = inject("registry");

describe("heredocs", () => {
  let scratch: Scratch;
  beforeAll(async () => {
    scratch = await createScratch();
  });
  afterAll(async () => {
    await scratch.dispose();
  });

  test("RUN <<EOF runs every line of the document with the shell, expanding variables", async () => {
    const context = await scratch.context("run-shell", {
      Dockerfile: [
        `FROM ${registry}/busybox:latest`,
        "ENV WHO=kiln",
        "RUN <<EOF",
        "echo first > /first",
        'echo "by $WHO" > /second',
        "EOF",
        "",
      ].join("\n"),
    });
    const image = await buildImage(scratch, "run-shell", context);
    expect(await image.read("first")).toBe("first\n");
    expect(await image.read("second")).toBe("by kiln\n");
  });

  test("RUN <<EOF with a shebang runs the document as an executable script", async () => {
    const context = await scratch.context("run-shebang", {
      Dockerfile: [
        `FROM ${registry}/busybox:latest`,
        "RUN <<EOF",
        "#!/bin/sh -e",
        'echo "argv0=$0" > /script',
        "EOF",
        "",
      ].join("\n"),
    });
    const image = await buildImage(scratch, "run-shebang", context);
    // The script ran as its own program (mounted under /dev/pipes), not as `sh -c` text.
    expect(await image.read("script")).toMatch(/^argv0=\/dev\/pipes\/EOF\n$/);
  });

  test("COPY <<EOF makes a file, <<-EOF strips leading tabs, and a quoted delimiter is not expanded", async () => {
    const context = await scratch.context("copy", {
      Dockerfile: [
        `FROM ${registry}/busybox:latest`,
        "ARG NAME=world",
        "COPY <<EOF /greeting",
        "hello $NAME",
        "EOF",
        "COPY <<-EOF /tabs",
        "\tindented ${NAME}",
        "\t\ttwice",
        "\tEOF",
        "COPY <<'EOF' /literal",
        "hello $NAME",
        "EOF",
        'COPY <<"END" /double',
        "${NAME}",
        "END",
        "",
      ].join("\n"),
    });
    const image = await buildImage(scratch, "copy", context);
    expect(await image.read("greeting")).toBe("hello world\n");
    expect(await image.read("tabs")).toBe("indented world\ntwice\n");
    expect(await image.read("literal")).toBe("hello $NAME\n");
    expect(await image.read("double")).toBe("${NAME}\n");
    expect((await stat(join(image.rootfs, "greeting"))).mode & 0o777).toBe(0o644);
  });

  test("several heredocs in one COPY become several files in the destination directory", async () => {
    const context = await scratch.context("copy-many", {
      Dockerfile: [
        `FROM ${registry}/busybox:latest`,
        "COPY <<one <<two /docs/",
        "first",
        "one",
        "second",
        "two",
        "",
      ].join("\n"),
    });
    const image = await buildImage(scratch, "copy-many", context);
    expect(await image.read("docs/one")).toBe("first\n");
    expect(await image.read("docs/two")).toBe("second\n");
  });

  test("RUN <<-EOF strips tabs and a quoted delimiter keeps $ for the shell to see literally", async () => {
    const context = await scratch.context("run-quoted", {
      Dockerfile: [
        `FROM ${registry}/busybox:latest`,
        "ENV X=outer",
        "RUN <<-EOF",
        "\techo tabbed > /tabbed",
        "\tEOF",
        "RUN cat <<'EOF' > /quoted",
        "value $X",
        "EOF",
        "RUN cat <<EOF > /unquoted",
        "value $X",
        "EOF",
        "",
      ].join("\n"),
    });
    const image = await buildImage(scratch, "run-quoted", context);
    expect(await image.read("tabbed")).toBe("tabbed\n");
    expect(await image.read("quoted")).toBe("value $X\n");
    expect(await image.read("unquoted")).toBe("value outer\n");
  });
});
