"""The ``confoundry`` command.

::

    confoundry demo pneumonia --out report.html [--json report.json] [--n N] [--quick]
    confoundry report CONFIG.toml --out report.html [--json report.json]
                      [--checkpoint-dir DIR] [--strict]

Bad input ends with a one-line error and a non-zero exit status (``--debug`` shows the
traceback). Nothing is unpickled: the model comes from a Python entry point named in the config.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
DATA_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq")

CONFIG_HELP = """\
CONFIG.toml names the data, the model and the audit options, e.g.

  [data]
  test = "test.csv"                 # CSV, TSV or Parquet; paths relative to CONFIG.toml
  train = "train.csv"               # optional: enables the baselines and training controls
  label = "death"                   # the label column
  metadata = ["hospital", "care"]   # columns the model never saw (probes, domains)
  features = ["age", "asthma"]      # optional; default: every other column

  [model]
  entry_point = "mypackage.models:load_model"   # a function returning the trained model
  kwargs = { path = "weights.pt" }              # optional keyword arguments for it
  preprocess = "mypackage.models:to_tensor"     # optional
  train_fn = "mypackage.models:train"           # optional: enables the retraining controls
  name = "MLP"                                  # optional display name

  [audit]
  random_state = 0
  expectations = { asthma = "increasing" }
  attribution_method = "auto"
  n_boot = 1000
  n_permutations = 1000
  strict = false                    # true: stop at the first step that raises

With --checkpoint-dir DIR every finished step is stored in DIR as it finishes; running the same
command again (after a crash, a killed job or Ctrl-C) loads those steps instead of recomputing
them. Nothing is unpickled: the entry point is your own code, which loads the model as it sees fit.
The directory of CONFIG.toml is put on sys.path so that a module next to it can be imported.
"""

_AUDIT_KEYS = {
    "random_state", "expectations", "attribution_method", "n_boot", "n_permutations",
    "max_attribution_rows", "baseline_kinds", "layer", "n_repeats", "steps", "group_column",
    "verbose", "strict",
}


class CLIError(Exception):
    """Bad input on the command line or in the config: reported as one line, exit status 1."""


# ------------------------------------------------------------------- parsing
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="confoundry",
        description="Audit a trained biomedical model: glass-box baselines, attributions and "
                    "expectations, confounder probes, domains and slices, in one offline HTML "
                    "report.",
        epilog="Run 'confoundry COMMAND --help' for the options of a command.")
    parser.add_argument("--version", action="version", version=_version())
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo", help="run a case study end to end on simulated data",
        description="Run a case study end to end on an embedded simulator and write its report.")
    demo.add_argument("name", choices=["pneumonia", "radiographs"], help="which case study")
    demo.add_argument("--out", default="report.html", help="HTML report path "
                      "(default: report.html)")
    demo.add_argument("--json", dest="json_path", default=None, help="also write the JSON record")
    demo.add_argument("--n", type=int, default=None, help="number of simulated patients")
    demo.add_argument("--quick", action="store_true",
                      help="smaller cohort and budgets, for a fast look")
    demo.add_argument("--random-state", type=int, default=0, help="seed (default: 0)")
    demo.add_argument("--quiet", action="store_true", help="no progress display")
    for p in (demo,):
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the full traceback on errors")

    rep = sub.add_parser(
        "report", help="audit a saved model on data files named in a TOML config",
        description="Audit a model on the data named in CONFIG.toml and write the report.",
        epilog=CONFIG_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    rep.add_argument("config", help="path to CONFIG.toml")
    rep.add_argument("--out", default="report.html", help="HTML report path "
                     "(default: report.html)")
    rep.add_argument("--json", dest="json_path", default=None, help="also write the JSON record")
    rep.add_argument("--quiet", action="store_true", help="no progress display")
    rep.add_argument("--checkpoint-dir", dest="checkpoint_dir", default=None, metavar="DIR",
                     help="store each finished step in DIR and resume from it when run again")
    rep.add_argument("--strict", action="store_true", default=None,
                     help="stop at the first step that raises (default: record it as failed "
                          "and go on)")
    rep.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                     help="show the full traceback on errors")
    return parser


def _version() -> str:
    try:
        from confoundry import __version__
    except Exception:  # pragma: no cover
        __version__ = "unknown"
    return f"confoundry {__version__}"


# ---------------------------------------------------------------------- demo
def run_radiograph_demo(args: argparse.Namespace) -> int:
    """The imaging case study: artefacts go to ``<out stem>_files/``, the report to ``--out``."""
    import shutil

    from confoundry.demos._radiographs import run_radiograph_case_study

    _check_out(args.out, ".html", "--out")
    out = Path(args.out)
    files = out.with_name(out.stem + "_files")
    res = run_radiograph_case_study(files, quick=args.quick, random_state=args.random_state,
                                    verbose=not args.quiet, loso=False, report=out.name,
                                    audit_control=False)
    if not args.quiet:
        _print_findings(res.marker.get("audit_result"))
    report = files / out.name
    if report.exists():
        shutil.copyfile(report, out)
    if args.json_path:
        shutil.copyfile(files / "results.json", args.json_path)
    _say(f"wrote {args.out} (figures and tables in {files}/, {res.elapsed_s:.0f} s)", args)
    return EXIT_OK


def run_demo(args: argparse.Namespace) -> int:
    if getattr(args, "name", "pneumonia") == "radiographs":
        return run_radiograph_demo(args)
    try:
        demos = importlib.import_module("confoundry.demos")
    except ModuleNotFoundError as exc:
        if exc.name not in ("confoundry.demos", "confoundry"):
            raise
        raise CLIError("the pneumonia demo is not available in this installation "
                       "(confoundry.demos is missing)") from None
    fn = getattr(demos, "run_pneumonia_demo", None)
    if fn is None:
        raise CLIError("the pneumonia demo is not available in this installation "
                       "(confoundry.demos.run_pneumonia_demo is missing)")
    if args.n is not None and args.n < 100:
        raise CLIError(f"--n={args.n} is too small; expected at least 100 patients")
    _check_out(args.out, ".html", "--out")
    if args.json_path:
        _check_out(args.json_path, ".json", "--json")
    kwargs: dict[str, Any] = {"out": args.out, "json_path": args.json_path, "n": args.n,
                              "quick": args.quick, "random_state": args.random_state,
                              "verbose": not args.quiet}
    params = inspect.signature(fn).parameters
    has_var = any(p.kind is p.VAR_KEYWORD for p in params.values())
    call = {k: v for k, v in kwargs.items() if has_var or k in params}
    if "n" not in call and args.n is not None:
        raise CLIError("--n is not supported by this version of the pneumonia demo")
    if call.get("n") is None:
        call.pop("n", None)
    result = fn(**call)
    if not args.quiet:
        _print_findings(result)
    _say(f"wrote {args.out}" + (f" and {args.json_path}" if args.json_path else ""), args)
    return EXIT_OK


# -------------------------------------------------------------------- report
def load_config(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a report config (see ``confoundry report --help``)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    p = Path(path)
    if not p.is_file():
        raise CLIError(f"config file {str(p)!r} does not exist")
    try:
        with open(p, "rb") as fh:
            cfg = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise CLIError(f"config file {str(p)!r} is not valid TOML: {exc}") from None
    for section in ("data", "model"):
        if not isinstance(cfg.get(section), dict):
            raise CLIError(f"config file {str(p)!r} has no [{section}] table; expected [data] "
                           "and [model] (see 'confoundry report --help')")
    unknown = sorted(set(cfg) - {"data", "model", "audit"})
    if unknown:
        raise CLIError(f"config has unknown table(s) {unknown}; expected [data], [model] and "
                       "optionally [audit]")
    data, model = cfg["data"], cfg["model"]
    for key in ("test", "label"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise CLIError(f"[data] {key} is missing; expected a string (see 'confoundry report "
                           "--help')")
    bad = sorted(set(data) - {"test", "train", "label", "metadata", "features"})
    if bad:
        raise CLIError(f"[data] has unknown key(s) {bad}; expected test, train, label, "
                       "metadata, features")
    if not isinstance(model.get("entry_point"), str):
        raise CLIError("[model] entry_point is missing; expected 'package.module:function'")
    bad = sorted(set(model) - {"entry_point", "kwargs", "preprocess", "train_fn", "name"})
    if bad:
        raise CLIError(f"[model] has unknown key(s) {bad}; expected entry_point, kwargs, "
                       "preprocess, train_fn, name")
    audit = cfg.get("audit", {})
    if not isinstance(audit, dict):
        raise CLIError("[audit] must be a table")
    bad = sorted(set(audit) - _AUDIT_KEYS)
    if bad:
        raise CLIError(f"[audit] has unknown key(s) {bad}; expected some of "
                       f"{sorted(_AUDIT_KEYS)}")
    cfg["_dir"] = p.resolve().parent
    return cfg


def read_table(path: str | os.PathLike, *, what: str) -> Any:
    """Read a CSV/TSV/Parquet file into a DataFrame (never a pickle)."""
    import pandas as pd

    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in DATA_SUFFIXES:
        raise CLIError(f"{what} {str(p)!r} has suffix {suffix or '(none)'!r}; expected one of "
                       f"{DATA_SUFFIXES} (pickled files are never loaded)")
    if not p.is_file():
        raise CLIError(f"{what} {str(p)!r} does not exist")
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(p)
        return pd.read_csv(p, sep="\t" if suffix == ".tsv" else ",")
    except ImportError as exc:
        raise CLIError(f"cannot read {what} {str(p)!r}: {exc}") from None
    except Exception as exc:
        raise CLIError(f"cannot read {what} {str(p)!r}: {type(exc).__name__}: "
                       f"{str(exc).splitlines()[0] if str(exc) else ''}") from None


def load_entry_point(spec: str, *, what: str, base_dir: Path | None = None) -> Callable:
    """Import ``package.module:function`` (the directory of the config first on sys.path)."""
    if not isinstance(spec, str) or spec.count(":") != 1:
        raise CLIError(f"{what}={spec!r} is not valid; expected 'package.module:function'")
    mod_name, attr = spec.split(":")
    if not mod_name or not attr:
        raise CLIError(f"{what}={spec!r} is not valid; expected 'package.module:function'")
    added = False
    if base_dir is not None and str(base_dir) not in sys.path:
        sys.path.insert(0, str(base_dir))
        added = True
    try:
        module = importlib.import_module(mod_name)
    except ModuleNotFoundError as exc:
        raise CLIError(f"{what}={spec!r}: cannot import module {exc.name!r}") from None
    finally:
        if added:
            sys.path.remove(str(base_dir))
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise CLIError(f"{what}={spec!r}: module {mod_name!r} has no attribute {part!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise CLIError(f"{what}={spec!r} is not callable")
    return obj


def _split_columns(frame: Any, data_cfg: Mapping[str, Any], *, what: str) -> tuple[Any, Any, Any]:
    label = data_cfg["label"]
    if label not in frame.columns:
        raise CLIError(f"{what} has no label column {label!r}; its columns are "
                       f"{_short(list(frame.columns))}")
    meta_cols = data_cfg.get("metadata", [])
    if isinstance(meta_cols, str):
        meta_cols = [meta_cols]
    if not isinstance(meta_cols, list) or not all(isinstance(c, str) for c in meta_cols):
        raise CLIError(f"[data] metadata={meta_cols!r} is not valid; expected a list of column "
                       "names")
    missing = [c for c in meta_cols if c not in frame.columns]
    if missing:
        raise CLIError(f"{what} has no metadata column(s) {missing}")
    feats = data_cfg.get("features")
    if feats is None:
        feats = [c for c in frame.columns if c != label and c not in meta_cols]
    elif not isinstance(feats, list) or not all(isinstance(c, str) for c in feats):
        raise CLIError(f"[data] features={feats!r} is not valid; expected a list of column names")
    missing = [c for c in feats if c not in frame.columns]
    if missing:
        raise CLIError(f"{what} has no feature column(s) {_short(missing)}")
    overlap = sorted(set(feats) & (set(meta_cols) | {label}))
    if overlap:
        raise CLIError(f"[data] features include the label or metadata column(s) {overlap}; "
                       "metadata must not be model inputs")
    meta = frame[meta_cols].reset_index(drop=True) if meta_cols else None
    return frame[feats].reset_index(drop=True), frame[label].to_numpy(), meta


def _short(items: Sequence[Any], k: int = 8) -> str:
    items = list(items)
    return repr(items[:k])[:-1] + (", ...]" if len(items) > k else "]")


def run_report(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    base = cfg["_dir"]
    dcfg, mcfg, acfg = cfg["data"], cfg["model"], dict(cfg.get("audit", {}))
    _check_out(args.out, ".html", "--out")
    if args.json_path:
        _check_out(args.json_path, ".json", "--json")
    test = read_table(base / dcfg["test"], what="[data] test")
    X_test, y_test, meta = _split_columns(test, dcfg, what="[data] test")
    X_train = y_train = meta_train = None
    if dcfg.get("train"):
        train = read_table(base / dcfg["train"], what="[data] train")
        X_train, y_train, meta_train = _split_columns(train, dcfg, what="[data] train")
    factory = load_entry_point(mcfg["entry_point"], what="[model] entry_point", base_dir=base)
    kwargs = mcfg.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise CLIError("[model] kwargs must be a table of keyword arguments")
    _say(f"loading the model from {mcfg['entry_point']}", args)
    model = factory(**kwargs)
    preprocess = train_fn = None
    if mcfg.get("preprocess"):
        preprocess = load_entry_point(mcfg["preprocess"], what="[model] preprocess",
                                      base_dir=base)
    if mcfg.get("train_fn"):
        train_fn = load_entry_point(mcfg["train_fn"], what="[model] train_fn", base_dir=base)

    from confoundry import Audit

    verbose = bool(acfg.pop("verbose", not args.quiet)) and not args.quiet
    if getattr(args, "strict", None):
        acfg["strict"] = True
    try:
        audit = Audit(model, X_test, y_test, metadata=meta, X_train=X_train, y_train=y_train,
                      preprocess=preprocess, train_fn=train_fn, verbose=verbose,
                      model_name=mcfg.get("name"),
                      metadata_train=meta_train if train_fn is not None else None, **acfg)
    except (TypeError, ValueError) as exc:
        raise CLIError(str(exc).splitlines()[0]) from None
    ckpt = getattr(args, "checkpoint_dir", None)
    if ckpt is not None and Path(ckpt).exists() and not Path(ckpt).is_dir():
        raise CLIError(f"--checkpoint-dir={ckpt!r} is a file; expected a folder")
    result = audit.run(checkpoint_dir=ckpt)
    result.to_html(args.out)
    if args.json_path:
        result.to_json(args.json_path)
    v = result.verdict()
    if not args.quiet:
        _print_findings(result)
    _say(f"{v['text']} Wrote {args.out}" + (f" and {args.json_path}" if args.json_path else ""),
         args, force=True)
    if any(s.status == "interrupted" for s in result.steps.values()):
        _say(f"confoundry: interrupted; the finished steps are kept in {ckpt}: run the same "
             "command again to resume", args, force=True)
        return EXIT_INTERRUPTED
    return EXIT_OK


def _print_findings(result: Any, *, limit: int = 10) -> None:
    """The verdict, the four questions and the worst findings on stdout: what a user reads
    before the report."""
    import textwrap

    if result is None or not hasattr(result, "findings"):
        return
    from .audit._text import format_findings

    v = result.verdict()
    questions = result.questions() if callable(getattr(result, "questions", None)) else ()
    print(format_findings(result.findings(), v, width=100, limit=limit, questions=questions))
    todo = list(getattr(v, "unanswered", ()) or ())
    for status, head in (("failed", "Unanswered (a step failed):"),
                         ("interrupted", "Unanswered (the audit was interrupted):"),
                         ("skipped", "Not asked (an input is missing):")):
        rows = [u for u in todo if u["status"] == status]
        if rows:
            print(head)
        for u in rows:
            why = f"{u['step']}: {u['reason']}" if status != "interrupted" else u["step"]
            print(textwrap.fill(f"  - {u['question']} [{why}]", width=100,
                                subsequent_indent="      "))


def _check_out(path: str, suffix: str, flag: str) -> None:
    p = Path(path)
    if p.suffix.lower() != suffix:
        raise CLIError(f"{flag}={path!r} should end in {suffix}")
    parent = p.resolve().parent
    if not parent.is_dir():
        raise CLIError(f"{flag}={path!r}: directory {str(parent)!r} does not exist")


def _say(msg: str, args: argparse.Namespace, *, force: bool = False) -> None:
    if force or not getattr(args, "quiet", False):
        print(msg, file=sys.stderr)


# ---------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``confoundry`` command; returns the exit status.

    Examples
    --------
    >>> main(["report", "does-not-exist.toml"])
    1
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    debug = bool(getattr(args, "debug", False))
    try:
        if args.command == "demo":
            return run_demo(args)
        return run_report(args)
    except CLIError as exc:
        if debug:
            raise
        print(f"confoundry: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:  # pragma: no cover
        print("confoundry: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if debug:
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        where = "".join(f" [{n}]" for n in getattr(exc, "__notes__", ()) or ())
        print(f"confoundry: error: {type(exc).__name__}: {first}{where} (run with --debug for "
              "the traceback)", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
