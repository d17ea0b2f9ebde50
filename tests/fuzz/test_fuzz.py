"""10,000 generated and mutated specs, overlays and locks: no traceback, exit 0/1/2 only, bounded memory."""

from __future__ import annotations

import re
import resource
import subprocess
import sys

from tests.conftest import REPO

EXAMPLES = 10_000
MEMORY_CAP_MB = 1536  # the alias bomb and the shard-1,000,000,000 lock each needed gigabytes


def test_fuzzed_specs_end_in_exit_codes_only():
    def cap() -> None:
        limit = MEMORY_CAP_MB * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    result = subprocess.run(
        [sys.executable, "-m", "tests.fuzz.fuzz_specs", str(EXAMPLES)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1500,
        preexec_fn=cap,
        check=False,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    summary = re.search(r"examples: (\d+) codes: (\{.*\}) seconds: ([\d.]+)", result.stdout)
    assert summary, result.stdout[-2000:]
    print(summary.group(0))  # the count and time, for the CI log (pytest -s / -rP)
    assert int(summary.group(1)) >= EXAMPLES
    codes = eval(summary.group(2))  # a dict literal printed by the fuzzer itself
    assert set(codes) <= {0, 1, 2} and all(codes.get(c, 0) > 0 for c in (0, 1, 2)), codes
