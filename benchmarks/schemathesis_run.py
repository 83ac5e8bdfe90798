"""The full schemathesis run over the whole OpenAPI document (docs/security.md quotes it).

Runs tests/e2e/test_api_schema.py (an admin key, every check but positive_data_acceptance, a
fixed seed) with 30 examples an operation instead of CI's 10, and prints the figures:

    python benchmarks/schemathesis_run.py [--examples 30]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=30, help="examples an operation")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "junit.xml"
        env = {**os.environ, "AMPARO_SCHEMA_EXAMPLES": str(args.examples)}
        start = time.monotonic()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                f"--junitxml={report}",
                str(ROOT / "tests" / "e2e" / "test_api_schema.py"),
            ],
            env=env,
            cwd=ROOT,
            check=False,
        )
        elapsed = time.monotonic() - start
        suite = ET.parse(report).getroot()
        suite = suite if suite.tag == "testsuite" else suite[0]
        # One test case an operation ("...[GET /v1/banks]"); the plain tests beside them
        # are not counted.
        cases = [c for c in suite.iter("testcase") if "[" in c.get("name", "")]
        failed = [
            case.get("name", "")
            for case in cases
            if case.find("failure") is not None or case.find("error") is not None
        ]
    print(
        json.dumps(
            {
                "operations": len(cases),
                "examples_per_operation": args.examples,
                "failed_operations": failed,
                "seconds": round(elapsed, 1),
            },
            indent=2,
        )
    )
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
