"""The ``confoundry`` command: help, the report command, the demo command, one-line errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import types

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from confoundry import cli  # noqa: E402

MODEL_MODULE = '''
import numpy as np
from sklearn.linear_model import LogisticRegression

def load_model(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(200, 2))
    y = (X[:, 0] > 0).astype(int)
    return LogisticRegression().fit(X, y)

not_callable = 3
'''


@pytest.fixture
def project(tmp_path):
    rng = np.random.default_rng(0)
    n = 160
    df = pd.DataFrame({"age": rng.normal(size=n), "bun": rng.normal(size=n),
                       "site": rng.choice(["a", "b"], n)})
    df["death"] = (df["age"] + rng.normal(size=n) > 0).astype(int)
    df.to_csv(tmp_path / "test.csv", index=False)
    (tmp_path / "cf_test_model_mod.py").write_text(MODEL_MODULE)
    cfg = tmp_path / "audit.toml"
    cfg.write_text(textwrap.dedent('''
        [data]
        test = "test.csv"
        label = "death"
        metadata = ["site"]

        [model]
        entry_point = "cf_test_model_mod:load_model"
        kwargs = { seed = 0 }
        name = "logistic model"

        [audit]
        random_state = 0
        n_boot = 30
        n_permutations = 30
        steps = ["data", "performance", "probes"]
        '''))
    return tmp_path, cfg


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "confoundry.cli", *args], capture_output=True,
                          text=True, timeout=300)


def help_text(capsys, *args):
    with pytest.raises(SystemExit) as exc:
        cli.main([*args, "--help"])
    assert exc.value.code == 0
    return capsys.readouterr().out


def test_help_lists_commands(capsys):
    text = help_text(capsys)
    assert "demo" in text and "report" in text and "--debug" in text
    text = help_text(capsys, "report")
    assert "entry_point" in text and "[data]" in text and "never unpickled" in text.replace(
        "\n", " ") or "Nothing is unpickled" in text
    text = help_text(capsys, "demo")
    assert "--json" in text and "pneumonia" in text and "--quick" in text


def test_no_command_prints_help_and_fails(capsys):
    assert cli.main([]) == cli.EXIT_USAGE
    assert "usage: confoundry" in capsys.readouterr().err


def test_report_end_to_end(project, capsys):
    tmp, cfg = project
    out, js = tmp / "r.html", tmp / "r.json"
    code = cli.main(["report", str(cfg), "--out", str(out), "--json", str(js), "--quiet"])
    err = capsys.readouterr().err
    assert code == 0, err
    html = out.read_text(encoding="utf-8")
    assert "logistic model" in html and "http://" not in html
    import json

    d = json.loads(js.read_text())
    assert d["steps"]["performance"]["status"] == "ran"
    assert d["steps"]["baselines"]["status"] == "skipped"
    assert "Wrote" in err


def test_report_prints_verdict_and_findings(project, capsys):
    import json
    import re

    from confoundry.audit._findings import VERDICTS

    tmp, cfg = project
    # a site that goes with the label: the dataset is confounded, so there are findings
    df = pd.read_csv(tmp / "test.csv")
    flip = np.random.default_rng(1).random(len(df)) < 0.15
    df["site"] = np.where((df["death"] == 1) ^ flip, "a", "b")
    df.to_csv(tmp / "test.csv", index=False)
    # 30 permutations cannot reach q < 0.05 over five probes (p >= 1/31)
    cfg.write_text(cfg.read_text().replace("n_permutations = 30", "n_permutations = 200"))
    js = tmp / "r2.json"
    code = cli.main(["report", str(cfg), "--out", str(tmp / "r2.html"), "--json", str(js)])
    out = capsys.readouterr().out
    assert code == 0
    lines = out.strip().splitlines()
    patterns = [re.escape(v).replace(re.escape("{n}"), r"\d+") for v in VERDICTS.values()]
    assert any(re.fullmatch(p, lines[0]) for p in patterns), lines[0]
    findings = json.loads(js.read_text())["findings"]
    shown = [ln for ln in lines[1:] if re.match(r"\[(HIGH|MEDIUM|LOW|INFO)\] ", ln)]
    assert findings and len(shown) == min(10, len(findings))
    assert shown[0].startswith(f"[{findings[0]['severity'].upper()}] ")


def _bad_config(project, text):
    tmp, _ = project
    cfg = tmp / "bad.toml"
    cfg.write_text(textwrap.dedent(text))
    return cfg


@pytest.mark.parametrize("text, message", [
    ("[data\n", "not valid TOML"),
    ('[model]\nentry_point = "x:y"\n', "has no [data] table"),
    ('[data]\ntest = "test.csv"\n[model]\nentry_point = "m:f"\n', "[data] label is missing"),
    ('[data]\ntest = "test.csv"\nlabel = "death"\n[model]\nentry_point = "nodots"\n',
     "expected 'package.module:function'"),
    ('[data]\ntest = "test.csv"\nlabel = "death"\n[model]\n'
     'entry_point = "no_such_module_xyz:f"\n', "cannot import module 'no_such_module_xyz'"),
    ('[data]\ntest = "test.csv"\nlabel = "death"\n[model]\n'
     'entry_point = "cf_test_model_mod:missing"\n', "has no attribute 'missing'"),
    ('[data]\ntest = "test.csv"\nlabel = "death"\n[model]\n'
     'entry_point = "cf_test_model_mod:not_callable"\n', "is not callable"),
    ('[data]\ntest = "model.pkl"\nlabel = "death"\n[model]\nentry_point = "m:f"\n',
     "pickled files are never loaded"),
    ('[data]\ntest = "missing.csv"\nlabel = "death"\n[model]\nentry_point = "m:f"\n',
     "does not exist"),
    ('[data]\ntest = "test.csv"\nlabel = "outcome"\n[model]\n'
     'entry_point = "cf_test_model_mod:load_model"\n', "no label column 'outcome'"),
    ('[data]\ntest = "test.csv"\nlabel = "death"\nmetadata = ["hospital"]\n[model]\n'
     'entry_point = "cf_test_model_mod:load_model"\n', "no metadata column(s) ['hospital']"),
    ('[data]\ntest = "test.csv"\nlabel = "death"\nfeatures = ["age", "site"]\n'
     'metadata = ["site"]\n[model]\nentry_point = "cf_test_model_mod:load_model"\n',
     "metadata must not be model inputs"),
    ('[data]\ntest = "test.csv"\nlabel = "death"\n[model]\n'
     'entry_point = "cf_test_model_mod:load_model"\n[audit]\nbogus = 1\n',
     "[audit] has unknown key(s) ['bogus']"),
    ('[data]\ntest = "test.csv"\nlabel = "death"\nmetadata = ["site"]\n[model]\n'
     'entry_point = "cf_test_model_mod:load_model"\n[audit]\nn_boot = 0\n', "n_boot=0"),
    ('[data]\ntest = "test.csv"\nlabel = "death"\n[model]\n'
     'entry_point = "cf_test_model_mod:load_model"\n',
     "X has non-numeric column(s)"),
])
def test_report_bad_input_one_line_error(project, capsys, text, message):
    cfg = _bad_config(project, text)
    code = cli.main(["report", str(cfg), "--out", str(project[0] / "x.html"), "--quiet"])
    err = capsys.readouterr().err
    assert code == cli.EXIT_ERROR
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("confoundry: error: ")
    assert message in lines[0]
    assert "Traceback" not in err


def test_missing_config_and_bad_out(project, capsys):
    tmp, cfg = project
    assert cli.main(["report", str(tmp / "nope.toml")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(["report", str(cfg), "--out", str(tmp / "r.txt")]) == 1
    assert "should end in .html" in capsys.readouterr().err
    assert cli.main(["report", str(cfg), "--out", str(tmp / "no" / "dir" / "r.html")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_real_process_exit_status(project):
    """The command as a process: non-zero exit and one line on stderr."""
    tmp, _ = project
    out = run_cli("report", str(tmp / "nope.toml"))
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.strip().count("\n") == 0
    assert out.stderr.startswith("confoundry: error: config file")


def test_debug_reraises(project):
    tmp, _ = project
    with pytest.raises(cli.CLIError, match="does not exist"):
        cli.main(["--debug", "report", str(tmp / "nope.toml")])
    with pytest.raises(cli.CLIError, match="does not exist"):
        cli.main(["report", str(tmp / "nope.toml"), "--debug"])


def test_demo_forwards_arguments(monkeypatch, tmp_path, capsys):
    calls = {}

    def run_pneumonia_demo(*, out, json_path=None, n=None, quick=False, random_state=0,
                           verbose=True):
        calls.update(out=out, json_path=json_path, n=n, quick=quick,
                     random_state=random_state, verbose=verbose)

    fake = types.ModuleType("confoundry.demos")
    fake.run_pneumonia_demo = run_pneumonia_demo
    monkeypatch.setitem(sys.modules, "confoundry.demos", fake)
    out = str(tmp_path / "r.html")
    js = str(tmp_path / "r.json")
    assert cli.main(["demo", "pneumonia", "--out", out, "--json", js, "--n", "500",
                     "--quick", "--quiet"]) == 0
    assert calls == {"out": out, "json_path": js, "n": 500, "quick": True, "random_state": 0,
                     "verbose": False}


def test_demo_missing_is_a_one_line_error(monkeypatch, tmp_path, capsys):
    fake = types.ModuleType("confoundry.demos")  # no run_pneumonia_demo yet
    monkeypatch.setitem(sys.modules, "confoundry.demos", fake)
    assert cli.main(["demo", "pneumonia", "--out", str(tmp_path / "r.html")]) == 1
    err = capsys.readouterr().err.strip()
    assert err == ("confoundry: error: the pneumonia demo is not available in this installation "
                   "(confoundry.demos.run_pneumonia_demo is missing)")
    assert cli.main(["demo", "pneumonia", "--n", "5", "--out", str(tmp_path / "r.html")]) == 1


def test_demo_rejects_unknown_case_study(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["demo", "influenza"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_console_script_is_declared():
    from importlib import metadata

    eps = [ep for ep in metadata.entry_points(group="console_scripts") if ep.name == "confoundry"]
    assert eps and eps[0].value == "confoundry.cli:main"


def _break_step(monkeypatch, name):
    import dataclasses

    from confoundry.audit import _steps

    def explode(ctx):
        raise IndexError("tuple index out of range")

    monkeypatch.setattr(_steps, "STEPS", tuple(
        dataclasses.replace(st, run=explode) if st.name == name else st for st in _steps.STEPS))
    return next(st for st in _steps.STEPS if st.name == name)


def test_report_summary_lists_unanswered_questions(project, capsys, monkeypatch):
    tmp, cfg = project
    st = _break_step(monkeypatch, "performance")
    code = cli.main(["report", str(cfg), "--out", str(tmp / "r.html")])
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    assert "No serious problem" not in lines[0] and "question" in lines[0]
    i = lines.index("Unanswered (a step failed):")
    assert st.question in lines[i + 1] and "IndexError" in lines[i + 1]
    assert "Not asked (an input is missing):" not in out  # steps= left the others out


def test_report_strict_stops_at_the_failed_step(project, capsys, monkeypatch):
    tmp, cfg = project
    _break_step(monkeypatch, "performance")
    code = cli.main(["report", str(cfg), "--out", str(tmp / "r.html"), "--strict", "--quiet"])
    err = capsys.readouterr().err
    assert code == cli.EXIT_ERROR
    assert "IndexError: tuple index out of range" in err and "audit step 'performance'" in err
    assert not (tmp / "r.html").exists()


def test_report_checkpoint_dir_resumes(project, capsys):
    import json

    tmp, cfg = project
    args = ["report", str(cfg), "--out", str(tmp / "r.html"), "--json", str(tmp / "r.json"),
            "--quiet", "--checkpoint-dir", str(tmp / "ck")]
    assert cli.main(args) == 0
    first = json.loads((tmp / "r.json").read_text())["steps"]
    assert not any(s["from_checkpoint"] for s in first.values())
    assert cli.main(args) == 0
    again = json.loads((tmp / "r.json").read_text())["steps"]
    assert all(s["from_checkpoint"] for s in again.values() if s["status"] == "ran")
    assert "ran (from checkpoint)" in (tmp / "r.html").read_text(encoding="utf-8")
    (tmp / "file").write_text("x")
    bad = ["report", str(cfg), "--out", str(tmp / "r.html"), "--checkpoint-dir",
           str(tmp / "file")]
    assert cli.main(bad) == cli.EXIT_ERROR
    assert "--checkpoint-dir" in capsys.readouterr().err


def test_report_interrupted_with_checkpoint_writes_the_partial_report(project, capsys,
                                                                      monkeypatch):
    import dataclasses

    from confoundry.audit import _steps

    tmp, cfg = project

    def stop(ctx):
        raise KeyboardInterrupt

    monkeypatch.setattr(_steps, "STEPS", tuple(
        dataclasses.replace(st, run=stop) if st.name == "probes" else st for st in _steps.STEPS))
    code = cli.main(["report", str(cfg), "--out", str(tmp / "r.html"), "--quiet",
                     "--checkpoint-dir", str(tmp / "ck")])
    assert code == cli.EXIT_INTERRUPTED == 130
    assert "run the same command again to resume" in capsys.readouterr().err
    page = (tmp / "r.html").read_text(encoding="utf-8")
    assert "The audit was interrupted" in page and "interrupted (KeyboardInterrupt)" in page
