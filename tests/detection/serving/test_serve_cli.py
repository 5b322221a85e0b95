"""tools/serve.py: every option has help and shows its default, --help imports no torch, the
`taxdet serve` verb, safe defaults, usage errors; the startup lines say what is served."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from taxdet.detection.serving.serve_main import startup_lines
from taxdet.tools import cli, serve
from tests.paths import REPO


def test_every_option_has_help_and_shows_its_default():
    for action in serve.build_parser()._actions:
        flag = "/".join(action.option_strings) or action.dest
        assert action.help and action.help.strip(), f"{flag} has no help"
        if action.option_strings and action.default not in (None, False, 0, argparse.SUPPRESS):
            assert "default" in action.help, f"{flag} does not show its default"


def test_help_imports_no_torch_and_the_verb_is_registered():
    code = ("import sys\nfrom taxdet.tools import cli\ntry:\n    cli.main(['serve', '--help'])\n"
            "except SystemExit:\n    pass\nassert 'torch' not in sys.modules, 'torch imported'\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "--checkpoint" in out.stdout and "--images-root" in out.stdout
    assert cli.VERBS["serve"][0] == "serve"


def test_defaults_are_safe(tmp_path, monkeypatch):
    for var in ("LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY", "TAXDET_SERVE_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    opts = serve.options(serve.parse_args(["--checkpoint", str(tmp_path / "c.pt")]))
    assert (opts.host, opts.port, opts.auth_token, opts.basic_auth) == ("127.0.0.1", 9090,
                                                                         None, None)
    assert opts.limits.max_bytes == 32 * 1024 * 1024 and opts.max_body_bytes > 0
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "from-env")
    assert serve.parse_args(["--checkpoint", "c.pt"]).label_studio_token == "from-env"


@pytest.mark.parametrize("argv", [["--score-threshold", "2"], ["--max-batch", "0"],
                                  ["--basic-auth", "nocolon"], ["--port", "0"]])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        serve.parse_args(["--checkpoint", "c.pt", *argv])
    assert exc.value.code == 2


def test_bad_project_flag_and_missing_checkpoint_exit_1(served, capsys, tmp_path):
    code = serve.main(["--checkpoint", str(served.ckpt), "--project", "3=nobody", "-q"])
    assert code == 1 and "'nobody' is not a customer" in capsys.readouterr().err
    assert serve.main(["--checkpoint", str(tmp_path / "missing.pt"), "-q"]) == 1


def test_startup_lines_name_customers_backend_and_url(served):
    lines = startup_lines(served.service, "http://127.0.0.1:9090")
    text = "\n".join(lines)
    assert "backend torch" in text and "http://127.0.0.1:9090" in text
    assert "customer customer_b: Pedestrian_adult, Pedestrian_child, Car, Truck" in text
    assert "project 7 -> customer_a" in text and "access: open" in text
