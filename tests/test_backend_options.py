"""Issue 17 item 6: out-of-range backend options are refused in one line before any work, whatever the backend."""

from __future__ import annotations

import pytest

from proactivebench.cli import main
from proactivebench.eval.backends import load_backend
from proactivebench.eval.backends.hf import HFOptions
from proactivebench.eval.backends.openai_server import OpenAIOptions


@pytest.mark.parametrize(
    "flag, value, rule",
    [("--timeout", "0", "more than 0"), ("--max-new-tokens", "0", "at least 1"), ("--temperature", "-5", "0 (greedy) or more")],
)
def test_eval_refuses_an_out_of_range_option(flag, value, rule, imported_dir, tmp_path, capsys):
    results = tmp_path / "r.duckdb"
    code = main(["eval", "--dataset", str(imported_dir), "--model", "baseline:oracle", "--results", str(results),
                 "--no-progress", flag, value])
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in out + err
    assert lines[0].startswith(f"error: {flag} ") and rule in lines[0]
    assert not results.exists()  # refused before the results file is opened


@pytest.mark.parametrize("options", [HFOptions, OpenAIOptions])
def test_each_backends_option_set_checks_its_ranges(options):
    with pytest.raises(ValueError, match="--max-new-tokens 0: must be at least 1"):
        options(max_new_tokens=0)
    with pytest.raises(ValueError, match="--top-p 1.5"):
        options(top_p=1.5)
    assert options(max_new_tokens=1, top_p=1.0).max_new_tokens == 1


def test_load_backend_refuses_a_bad_value_even_for_an_option_the_kind_ignores():
    with pytest.raises(ValueError, match="--timeout 0: must be more than 0 seconds"):
        load_backend("baseline:oracle", timeout=0)


def test_an_option_no_backend_knows_is_an_error_not_dropped():
    with pytest.raises(ValueError, match="unknown backend option.*base_ulr"):
        load_backend("baseline:oracle", base_ulr="http://127.0.0.1:1/v1")
    assert load_backend("baseline:oracle", max_new_tokens=5).spec == "baseline:oracle"  # another kind's option
