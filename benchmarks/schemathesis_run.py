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
PROPERTY_TEST = "test_no_server_errors_and_responses_match_schema"


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
        # One test case an operation (JUnit drops schemathesis' "[GET /v1/banks]" suffix);
        # the plain tests beside them are not counted.
        cases = [c for c in suite.iter("testcase") if c.get("name", "") == PROPERTY_TEST]
        failed = [
            (problem.get("message") or "").splitlines()[0][:200]
            for case in cases
            for problem in (case.find("failure"), case.find("error"))
            if problem is not None
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
