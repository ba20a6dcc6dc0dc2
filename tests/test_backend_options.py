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


# --- the flags are derived from the option dataclasses (one option set per backend) ------------------------------


def _backend_group_flags(argv_prefix: list[str]) -> set[str]:
    import argparse

    from proactivebench.cli import build_parser

    parser = build_parser()
    sub = parser
    for name in argv_prefix:  # walk down to the subcommand's parser
        action = next(a for a in sub._actions if isinstance(a, argparse._SubParsersAction))
        sub = action.choices[name]
    group = next(g for g in sub._action_groups if g.title.startswith("backend options"))
    return {option for action in group._group_actions for option in action.option_strings}


@pytest.mark.parametrize("command", [["eval"], ["judge"], ["curate", "first-turn"]])
def test_every_command_that_runs_models_offers_exactly_the_declared_options(command):
    import dataclasses

    from proactivebench.eval.backends.options import option_classes

    declared = {
        "--" + field.name.replace("_", "-")
        for cls in option_classes().values()
        for field in dataclasses.fields(cls)
        if "cli" in field.metadata
    }
    assert {"--max-new-tokens", "--device", "--base-url", "--concurrency"} <= declared
    assert _backend_group_flags(command) == declared


def test_a_new_option_field_becomes_a_flag_that_reaches_the_backend(monkeypatch):
    """A backend registered with its own option dataclass: its field is a flag, and what the user passes arrives."""
    from dataclasses import dataclass, field

    from proactivebench.cli import build_parser
    from proactivebench.eval.backends import base, options as backend_options_module
    from proactivebench.eval.backends.options import backend_options, cli_flag

    @dataclass
    class EchoOptions:
        beam_width: int = field(default=1, metadata=cli_flag("beams"))

    received = {}

    def make_echo(target, **options):
        received.update(options)
        return object()

    make_echo.OPTION_CLASS, make_echo.OPTIONS = EchoOptions, ("beam_width",)
    monkeypatch.setitem(base.BACKENDS, "echo", make_echo)
    original = backend_options_module.option_classes
    monkeypatch.setattr(backend_options_module, "option_classes", lambda: {**original(), "echo": EchoOptions})
    args = build_parser().parse_args(["eval", "--dataset", "d", "--model", "echo:x", "--beam-width", "3"])
    options = backend_options(args)
    assert options == {"beam_width": 3}  # unset flags stay out: each backend keeps its own defaults
    load_backend("echo:x", **options)
    assert received == {"beam_width": 3}


def test_a_temperature_flag_turns_hf_sampling_on():
    from proactivebench.cli import build_parser
    from proactivebench.eval.backends.options import backend_options

    args = build_parser().parse_args(["eval", "--dataset", "d", "--model", "hf:x", "--temperature", "0.7", "--timeout", "5"])
    assert backend_options(args) == {"temperature": 0.7, "do_sample": True, "timeout": 5.0}
    args = build_parser().parse_args(["eval", "--dataset", "d", "--model", "hf:x", "--temperature", "0"])
    assert backend_options(args) == {"temperature": 0.0, "do_sample": False}
