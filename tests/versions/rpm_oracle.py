"""The real rpm library as a test oracle, through one long-lived `rpm --eval` Lua loop.

rpm ships no comparison command on Debian, but its embedded Lua has
``rpm.vercmp`` (rpm >= 4.16: parses both sides as [epoch:]version[-release] and
compares them with rpmverCmp). One process answers every comparison over a pipe,
so hundreds of hypothesis examples cost milliseconds, not a process each.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest

RPM = shutil.which("rpm")

_LOOP = r"""%{lua:
for line in io.lines() do
  local a, b = line:match("^([^\t]*)\t([^\t]*)$")
  local ok, result = pcall(rpm.vercmp, a, b)
  io.write(ok and tostring(result) or "error", "\n")
  io.flush()
end
}"""


class RpmOracle:
    def __init__(self, rpm: str) -> None:
        self._process = subprocess.Popen(
            [rpm, "--eval", _LOOP],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
            env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"},
        )

    def compare(self, a: str, b: str) -> int:
        """rpm's own -1/0/1 for two EVR strings (no tabs or newlines)."""
        assert "\t" not in a + b
        assert "\n" not in a + b
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._process.stdin.write(f"{a}\t{b}\n")
        self._process.stdin.flush()
        answer = self._process.stdout.readline().strip()
        if answer not in ("-1", "0", "1"):
            raise AssertionError(f"rpm could not compare {a!r} and {b!r}: {answer!r}")
        return int(answer)

    def close(self) -> None:
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._process.stdin.close()
        self._process.wait(timeout=10)
        self._process.stdout.close()


@pytest.fixture(scope="module")
def rpm_oracle() -> Iterator[RpmOracle]:
    if RPM is None:
        pytest.skip("rpm is not installed (Debian package 'rpm')")
    oracle = RpmOracle(RPM)
    try:
        if oracle.compare("1.0", "1.0~rc1") != 1:
            pytest.skip("this rpm's Lua rpm.vercmp does not behave as rpm >= 4.16")
        yield oracle
    finally:
        oracle.close()
