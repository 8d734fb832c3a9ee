#!/usr/bin/env bash
# Workload 6: writes OUT/Dockerfile with 2,000 instructions (100 with --quick) for parse and
# lowering time: metadata instructions (ARG, ENV, LABEL, EXPOSE, WORKDIR, USER) that run nothing,
# with variable references, continuations and comments, in a repeating deterministic pattern.
set -euo pipefail
out=${1:?usage: context.sh OUT [quick|full]}
scale=${2:-full}
if [ "$scale" = quick ]; then n=100; else n=2000; fi
rm -rf "$out" && mkdir -p "$out"
awk -v n="$n" 'BEGIN {
  print "FROM busybox:latest"
  for (i = 1; i < n; i++) {
    k = i % 8
    if (k == 0) printf "ARG A%d=value-%d\n", i, i
    else if (k == 1) printf "ENV E%d=\"${A%d:-default}-%d\" \\\n    F%d=second\n", i, i - 1, i, i
    else if (k == 2) printf "LABEL org.example.l%d=\"label %d\"\n", i, i
    else if (k == 3) printf "# a comment before instruction %d\nEXPOSE %d/tcp\n", i, 1000 + i
    else if (k == 4) printf "ENV PATH_%d=/opt/p%d:$PATH\n", i, i
    else if (k == 5) printf "LABEL a%d=1 b%d=2 c%d=3\n", i, i, i
    else if (k == 6) printf "WORKDIR /w/%d\n", i % 10
    else printf "USER %d\n", i % 3
  }
}' > "$out/Dockerfile"
