"""The same read gives the same dtypes on pandas 2.2 and on pandas 3.x.

Two environments are built with uv (the newest pandas 2.2.x, the newest 3.x, each with the
package's other dependencies), the source tree on their ``PYTHONPATH``. In each, a subprocess
reads from the sandbox on loopback with both dtype backends, writes the numpy_nullable frame
to Parquet and reads it back with plain ``pd.read_parquet``, and prints every column's dtype
described without pandas' version-dependent reprs (storage and missing-value marker named).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from scoutframe.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[2]
#: The two pandas lines the package supports (noxfile.PANDAS tests the same ones).
PANDAS_LINES = {"2.2": "pandas==2.2.*", "3": "pandas>=3,<4"}

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

_READ = r"""
import json, sys, warnings
import pandas as pd
import scoutframe
from scoutframe import Client

def describe(dtype):
    parts = [type(dtype).__name__, str(dtype)]
    if isinstance(dtype, pd.StringDtype):
        parts += [dtype.storage, "NA" if dtype.na_value is pd.NA else repr(dtype.na_value)]
    if isinstance(dtype, pd.ArrowDtype):
        parts.append(str(dtype.pyarrow_dtype))
    return " ".join(parts)

key, url, state, parquet = sys.argv[1:5]
warnings.simplefilter("ignore", scoutframe.MaskedEmailWarning)
client = Client(key, url, allow_http=True, state_dir=state, config_file=state + "/none.toml")
out = {"pandas": pd.__version__}
for backend in ("pyarrow", "numpy_nullable"):
    df = scoutframe.read_spherescout(
        countries="FR", category="Plumber", method="pages", nrows=60,
        dtype_backend=backend, client=client, progress=False,
    )
    out[backend] = {name: describe(dtype) for name, dtype in df.dtypes.items()}
    missing = df["website"][df["website"].isna()]
    out[backend + " missing"] = repr(missing.iloc[0]) if len(missing) else "no missing value"
    df.spherescout.to_parquet(parquet)
    back = pd.read_parquet(parquet)
    out[backend + " parquet"] = {name: describe(dtype) for name, dtype in back.dtypes.items()}
print(json.dumps(out))
"""


def _environment(root: Path, line: str) -> Path:
    """A venv with the package's dependencies and pandas of ``line``; its Python."""
    from uv import find_uv_bin

    uv = find_uv_bin()
    venv = root / f"pandas-{line}"
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    python = venv / "bin" / "python"
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(python), *deps, PANDAS_LINES[line]],
        check=True,
    )
    return python


@pytest.fixture(scope="module")
def dtypes_by_pandas(
    sandbox_docs: Sandbox, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, Any]]:
    root = tmp_path_factory.mktemp("pandas-lines")
    account = sandbox_docs.admin.create_account(credits=0)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env["PYTHONPATH"] = str(ROOT)
    found = {}
    for line in PANDAS_LINES:
        python = _environment(root, line)
        state = root / f"state-{line}"
        state.mkdir()
        done = subprocess.run(
            [
                *(str(python), "-c", _READ, account["api_key"], sandbox_docs.url, str(state)),
                str(root / f"frame-{line}.parquet"),
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        found[line] = json.loads(done.stdout)
    return found


def test_each_environment_has_the_pandas_line_it_was_built_for(dtypes_by_pandas) -> None:
    assert dtypes_by_pandas["2.2"]["pandas"].startswith("2.2.")
    assert dtypes_by_pandas["3"]["pandas"].startswith("3.")


@pytest.mark.parametrize("backend", ["pyarrow", "numpy_nullable"])
def test_a_read_has_the_same_dtypes_on_pandas_2_2_and_3(dtypes_by_pandas, backend) -> None:
    old, new = dtypes_by_pandas["2.2"], dtypes_by_pandas["3"]
    assert list(old[backend]) == list(new[backend])  # the same columns, in the same order
    assert old[backend] == new[backend]
    assert old[f"{backend} missing"] == new[f"{backend} missing"]
    assert old[f"{backend} parquet"] == new[f"{backend} parquet"]


def test_the_numpy_nullable_strings_are_arrow_backed_with_pd_na(dtypes_by_pandas) -> None:
    for found in dtypes_by_pandas.values():
        dtypes = found["numpy_nullable"]
        assert dtypes["name"] == "StringDtype string pyarrow NA"
        assert dtypes["zipcode"] == "StringDtype string pyarrow NA"
        assert dtypes["review_count"] == "Int32Dtype Int32"
        assert dtypes["collected_at"] == "DatetimeTZDtype datetime64[us, UTC]"
        assert dtypes["email"] == "ObjectDType object"  # lists: NumPy has no list dtype
        assert found["numpy_nullable missing"] == "<NA>"
        # plain pd.read_parquet of the file gives the frame's own string dtype back
        assert found["numpy_nullable parquet"]["name"] == "StringDtype string pyarrow NA"


def test_the_pyarrow_backend_is_arrow_all_the_way(dtypes_by_pandas) -> None:
    for found in dtypes_by_pandas.values():
        assert found["pyarrow missing"] == "<NA>"
        dtypes = found["pyarrow"]
        assert dtypes["name"] == "ArrowDtype string[pyarrow] string"
        assert dtypes["email"] == "ArrowDtype list<item: string>[pyarrow] list<item: string>"
        assert dtypes["collected_at"].startswith("ArrowDtype timestamp[us, tz=UTC]")
