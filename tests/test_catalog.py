"""``fedrobust list`` and ``fedrobust run --help`` name every allowed value, with a line each."""

import subprocess
import sys

import pytest

from fedrobust.catalog import catalog, format_catalog, summary
from fedrobust.cli import main
from fedrobust.models.registry import MODELS


def test_every_registry_is_listed_with_a_description():
    from fedrobust.attacks.registry import ATTACKS
    from fedrobust.strategies import STRATEGIES

    sections = catalog()
    assert set(sections["strategy"]) == set(STRATEGIES) and set(sections["attack"]) == set(ATTACKS)
    assert set(sections["model"]) == set(MODELS)
    assert all(line for names in sections.values() for line in names.values())  # no name without a line
    assert sections["dataset"]["mnist5k"].startswith("5,000 real MNIST digits")


def test_a_registered_model_is_listed_from_its_docstring(monkeypatch):
    def tiny(input_shape, num_classes, **options):
        """A tiny test model.

        More text that is not the summary.
        """

    monkeypatch.setitem(MODELS, "tiny", tiny)
    assert catalog()["model"]["tiny"] == "A tiny test model."


def test_summary_is_one_line_without_markup_and_cut():
    class C:
        """``x`` uses :func:`~fedrobust.aggregators.krum` and
        continues here.

        Not this."""

    assert summary(C) == "x uses fedrobust.aggregators.krum and continues here."
    assert summary(C, width=10) == "x uses fe…"


def test_the_cli_lists_and_run_help_names_the_choices(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert out == format_catalog() + "\n" and "strategy (--strategy):" in out and "  alie " in out
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    help_text = capsys.readouterr().out
    assert "allowed values (fedrobust list describes each):" in help_text
    assert "--partitioner: iid, dirichlet, label-shards, half-class" in help_text


def test_building_the_parser_loads_no_registry():
    code = "import sys; from fedrobust.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"
