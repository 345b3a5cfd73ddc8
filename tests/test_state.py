"""The .env file: reading, updating in place, atomicity, locking, permissions."""

from __future__ import annotations

import io
import multiprocessing
import os
import re
import signal
import stat
import time
from pathlib import Path

import pytest
from dotenv import dotenv_values
from hypothesis import given, settings
from hypothesis import strategies as st

from scripts.core.errors import ConfigError
from scripts.core.state import EnvFile, encode_value

USER_FILE = """# my settings
DEX_LOGIN=me@example.com   # who I am

export MODEL_NAME='my-model'
UNKNOWN_KEY="kept"
# trailing comment
"""


def test_update_keeps_comments_order_and_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(USER_FILE)
    EnvFile(path).update({"MODEL_NAME": "other", "INGRESS_HOST": "10.0.0.12"})
    assert path.read_text() == (
        "# my settings\n"
        "DEX_LOGIN=me@example.com   # who I am\n"
        "\n"
        "export MODEL_NAME=other\n"
        'UNKNOWN_KEY="kept"\n'
        "# trailing comment\n"
        "INGRESS_HOST=10.0.0.12\n"
    )


def test_inline_comment_survives_when_its_key_is_rewritten(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(USER_FILE)
    EnvFile(path).update({"DEX_LOGIN": "you@example.com"})
    assert "DEX_LOGIN=you@example.com   # who I am\n" in path.read_text()


def test_removing_a_key_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(USER_FILE)
    EnvFile(path).update({"MODEL_NAME": None})
    text = path.read_text()
    assert "MODEL_NAME" not in text
    assert "UNKNOWN_KEY" in text and "# trailing comment" in text


def test_new_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    EnvFile(path).update({"A": "1"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_existing_loose_file_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("A=1\n")
    path.chmod(0o644)
    EnvFile(path).update({"B": "2"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_missing_file_reads_as_empty_and_names_the_step(tmp_path: Path) -> None:
    state = EnvFile(tmp_path / "nope.env").read()
    assert not state.exists and len(state) == 0
    with pytest.raises(ConfigError, match=r"DEX_REQ is needed but .* does not exist: run `invoke fetch-req` first"):
        state.require("DEX_REQ")


def test_missing_and_empty_keys_name_their_provider(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("INGRESS_HOST=\n")
    state = EnvFile(path).read()
    with pytest.raises(ConfigError, match=r"INGRESS_HOST is empty .* run `invoke resolve-ingress` first"):
        state.require("INGRESS_HOST")
    with pytest.raises(ConfigError, match=r"MODEL_NAME is not set .* set MODEL_NAME in the .env file"):
        state.require("MODEL_NAME")


def test_malformed_line_is_reported_by_number(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("A=1\n\n# fine\nthis is not an assignment\n")
    with pytest.raises(ConfigError, match=r"line 4 is not KEY=VALUE"):
        EnvFile(path).read()


@pytest.mark.parametrize(("text", "said"), [('A=1\nBAR="unterminated\n', 'line 2: the value of BAR opens a " quote that is never closed'),
                                            ("export  K = 'x\nY=1\n", "line 1: the value of K opens a ' quote that is never closed")])
def test_an_unclosed_quote_is_named_as_such(tmp_path: Path, text: str, said: str) -> None:
    path = tmp_path / ".env"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(said) + ": close it, or fix or delete that line$"):
        EnvFile(path).read()


def test_update_refuses_a_malformed_file_and_leaves_it_alone(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    original = "A=1\nbroken line here\n"
    path.write_text(original)
    with pytest.raises(ConfigError):
        EnvFile(path).update({"B": "2"})
    assert path.read_text() == original


def test_option_beats_environment_beats_file_beats_default(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    EnvFile(path).update({"MODEL_NAME": "from-file", "MODEL_NAMESPACE": "ns-file", "HTTP_TIMEOUT": "5"})
    variables = {"MODEL_NAME": "from-env", "DEX_PASSWORD": "pw-env", "HTTP_TIMEOUT": "", "LOGIN_COOKIES": "x=1"}
    state = EnvFile(path, variables).read().with_overrides({"MODEL_NAMESPACE": "ns-option"})
    assert state.value("MODEL_NAME") == "from-env" and state.source("MODEL_NAME") == "environment"
    assert state.value("MODEL_NAMESPACE") == "ns-option" and state.source("MODEL_NAMESPACE") == "option"
    assert state.value("DEX_PASSWORD") == "pw-env"
    assert state.value("HTTP_TIMEOUT") == "5" and state.source("HTTP_TIMEOUT") == "file"  # an empty variable is not set
    assert state.value("LOGIN_COOKIES") == ""  # a login in progress never comes from the environment
    assert state.value("DEX_CONNECTOR", "local") == "local" and state.source("DEX_CONNECTOR") == ""
    assert state["MODEL_NAME"] == "from-file"  # the file's own values are what a step rewrites


def test_kubeconfig_in_the_file_wins_over_the_environment(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    EnvFile(path).update({"KUBECONFIG": "/sandbox/kubeconfig"})
    assert EnvFile(path, {"KUBECONFIG": "/home/me/.kube/config"}).read().value("KUBECONFIG") == "/sandbox/kubeconfig"


def test_values_are_read_without_interpolation(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    EnvFile(path).update({"P": "${HOME}$USER"})
    assert EnvFile(path).read()["P"] == "${HOME}$USER"


def test_no_temporary_file_is_left_behind(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    for n in range(5):
        EnvFile(path).update({f"K{n}": str(n)})
    assert sorted(p.name for p in tmp_path.iterdir()) == [".env"]


def _writer(path: str, prefix: str, count: int) -> None:
    env = EnvFile(Path(path))
    for n in range(count):
        env.update({f"{prefix}{n}": str(n)})


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("# shared\n")
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_writer, args=(str(path), prefix, 25)) for prefix in ("A", "B", "C")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    values = dict(EnvFile(path).read())
    assert len(values) == 75
    assert path.read_text().startswith("# shared\n")


def test_symlinked_env_file_is_updated_through_the_link(tmp_path: Path) -> None:
    real = tmp_path / "real.env"
    real.write_text("A=1\n")
    link = tmp_path / ".env"
    os.symlink(real, link)
    EnvFile(link).update({"B": "2"})
    assert link.is_symlink()
    assert dict(dotenv_values(real, interpolate=False)) == {"A": "1", "B": "2"}


# ---- round trip ------------------------------------------------------------------

values = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)


@settings(max_examples=300, deadline=None)
@given(value=values)
def test_any_value_reads_back_exactly_through_python_dotenv(value: str) -> None:
    line = f"KEY={encode_value(value)}\n"
    parsed = dotenv_values(stream=io.StringIO(line), interpolate=False)
    assert parsed == {"KEY": value}


@settings(max_examples=60, deadline=None)
@given(changes=st.dictionaries(st.from_regex(r"[A-Z][A-Z0-9_]{0,8}", fullmatch=True), values, min_size=1, max_size=5))
def test_updates_round_trip_and_keep_user_lines(tmp_path_factory: pytest.TempPathFactory, changes: dict[str, str]) -> None:
    path = tmp_path_factory.mktemp("rt") / ".env"
    path.write_text("# keep me\nUSER_KEY='a b # c'\n")
    env = EnvFile(path)
    env.update(changes)
    env.update(changes)  # a second write of the same values changes nothing
    expected = {"USER_KEY": "a b # c", **changes}
    assert dict(env.read()) == expected
    assert path.read_text().startswith("# keep me\n")


# ---- a writer killed mid-write leaves the old or the new file, never half of one -------------

_BIG = "x" * 200_000


def _write_forever(path: str) -> None:
    env = EnvFile(Path(path))
    n = 0
    while True:
        n += 1
        env.update({"COUNTER": str(n), "BIG": _BIG + str(n)})


def test_a_killed_writer_never_leaves_a_half_file(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("# mine\nKEEP=yes\n")
    context = multiprocessing.get_context("fork")
    for round_number in range(8):
        writer = context.Process(target=_write_forever, args=(str(path),))
        writer.start()
        deadline = time.monotonic() + 5
        while "COUNTER" not in path.read_text() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.01 * (round_number % 4))  # kill at different moments of the write cycle
        os.kill(writer.pid, signal.SIGKILL)
        writer.join()
        values = dict(EnvFile(path).read())
        assert values["KEEP"] == "yes"
        assert values["BIG"] == _BIG + values["COUNTER"]  # one consistent version, whole
        assert path.read_text().startswith("# mine\n")
    EnvFile(path).update({"AFTER": "1"})  # the next write clears what killed writers left
    assert sorted(p.name for p in tmp_path.iterdir()) == [".env"]


def test_files_of_yours_that_look_like_temporary_ones_are_never_removed(tmp_path: Path) -> None:
    """Only what a killed writer of ours left (our exact name, our file) goes; a person's notes stay."""
    path = tmp_path / "cluster.env"
    yours = [".cluster.env.notes.tmp", ".cluster.env.kfdex-notes.tmp", ".cluster.env.kfdex-abcdefgh.tmp.bak"]
    for name in yours:
        (tmp_path / name).write_text("my notes\n")
    (tmp_path / ".cluster.env.kfdex-0123abcd.tmp").symlink_to(tmp_path / yours[0])  # a link is not a file we wrote
    left = tmp_path / ".cluster.env.kfdex-a1b2c3d4.tmp"  # as a killed writer leaves it
    left.write_text("AUTH_COOKIE=secret\n")
    EnvFile(path).update({"A": "1"})
    assert not left.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["cluster.env", ".cluster.env.kfdex-0123abcd.tmp", *yours])
    assert all((tmp_path / name).read_text() == "my notes\n" for name in yours)


@pytest.mark.parametrize("change", ["update", "remove"])
def test_a_read_only_env_file_is_refused_and_left_as_it_is(tmp_path: Path, change: str) -> None:
    path = tmp_path / ".env"
    path.write_text("HTTP_TIMEOUT=60\n")
    path.chmod(0o400)
    with pytest.raises(ConfigError, match=r"it is read-only: make it writable \(chmod u\+w\)") as raised:
        if change == "update":
            EnvFile(path).update({"A": "1"})
        else:
            EnvFile(path).rewrite(lambda _text: None)
    assert raised.value.exit_code == 3
    assert path.read_text() == "HTTP_TIMEOUT=60\n" and stat.S_IMODE(path.stat().st_mode) == 0o400
